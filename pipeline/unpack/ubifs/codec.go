package ubifs

import (
	"errors"
	"fmt"
	"sync"

	"github.com/anchore/go-lzo"
	"github.com/klauspost/compress/zstd"

	"github.com/fwvet/fwvet/pipeline/unpack/block"
)

var errTooLong = errors.New("data decompresses past the UBIFS block size")

// decompress expands the payload of a data node compressed with compr into
// dst[:0], which has room for a whole block, and refuses more than that.
func decompress(compr uint16, src, dst []byte) ([]byte, error) {
	dst = dst[:blockSize]
	switch compr {
	case comprNone:
		if len(src) > blockSize {
			return nil, errTooLong
		}
		return dst[:copy(dst, src)], nil
	case comprLZO:
		n, err := lzo.Decompress(src, dst)
		if err != nil {
			return nil, fmt.Errorf("lzo: %w", err)
		}
		return dst[:n], nil
	case comprZlib:
		return inflate(src, dst)
	case comprZstd:
		d, err := zstdDecoder()
		if err != nil {
			return nil, err
		}
		out, err := d.DecodeAll(src, dst[:0])
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		if len(out) > blockSize {
			return nil, errTooLong
		}
		return out, nil
	}
	return nil, corrupt("unknown compressor %d", compr)
}

// inflate decodes raw deflate: the kernel's "deflate" crypto compressor,
// which UBIFS calls zlib, writes it without the zlib header and checksum;
// so does mkfs.ubifs.
func inflate(src, dst []byte) ([]byte, error) {
	n, err := block.Deflate(dst[:blockSize], src)
	if errors.Is(err, block.ErrTooLong) {
		return nil, errTooLong
	}
	if err != nil {
		return nil, err
	}
	return dst[:n], nil
}

var zstdOnce = sync.OnceValues(func() (*zstd.Decoder, error) {
	return zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(blockSize+1),
		zstd.WithDecoderMaxWindow(1<<20))
})

// zstdDecoder is shared by every image: DecodeAll is safe for concurrent use.
func zstdDecoder() (*zstd.Decoder, error) { return zstdOnce() }
