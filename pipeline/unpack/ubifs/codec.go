package ubifs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/anchore/go-lzo"
	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/zstd"
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

// The kernel's "deflate" crypto compressor, which UBIFS calls zlib, writes
// raw deflate without the zlib header and checksum; so does mkfs.ubifs.
var inflaters sync.Pool

type inflater struct {
	src *bytes.Reader
	fr  io.ReadCloser
}

func inflate(src, dst []byte) ([]byte, error) {
	st, _ := inflaters.Get().(*inflater)
	if st == nil {
		st = &inflater{src: bytes.NewReader(src)}
		st.fr = flate.NewReader(st.src)
	} else {
		st.src.Reset(src)
		if err := st.fr.(flate.Resetter).Reset(st.src, nil); err != nil {
			return nil, err
		}
	}
	n := 0
	for {
		if n == blockSize {
			// A full block: one byte more is too much.
			var probe [1]byte
			if k, _ := st.fr.Read(probe[:]); k > 0 {
				return nil, errTooLong
			}
			break
		}
		k, err := st.fr.Read(dst[n:blockSize])
		n += k
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("deflate: %w", err)
		}
	}
	inflaters.Put(st)
	return dst[:n], nil
}

var zstdOnce = sync.OnceValues(func() (*zstd.Decoder, error) {
	return zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(blockSize+1),
		zstd.WithDecoderMaxWindow(1<<20))
})

// zstdDecoder is shared by every image: DecodeAll is safe for concurrent use.
func zstdDecoder() (*zstd.Decoder, error) { return zstdOnce() }
