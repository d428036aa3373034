package squashfs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/anchore/go-lzo"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/ulikunitz/xz/lzma"

	"github.com/fwvet/fwvet/pipeline/unpack/block"
)

// codec decompresses one block into dst (appending), refusing to produce
// more than max bytes.
type codec interface {
	decompress(dst, src []byte, max int) ([]byte, error)
}

var errTooLong = errors.New("block decompresses past the block size")

func newCodec(id uint16, blockSize uint32) (codec, error) {
	switch id {
	case compGzip:
		return blockCodec{"", block.Zlib}, nil
	case compXZ:
		return blockCodec{"", block.XZ}, nil
	case compLZMA:
		return streamCodec{func(r io.Reader) (io.Reader, error) {
			return lzma.ReaderConfig{DictCap: int(max(blockSize, 1<<20))}.NewReader(r)
		}}, nil
	case compZstd:
		d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(uint64(max(blockSize, metaBlockSize))+1),
			zstd.WithDecoderMaxWindow(8<<20))
		if err != nil {
			return nil, err
		}
		return zstdCodec{d}, nil
	case compLZO:
		return blockCodec{"lzo block", func(dst, src []byte) (int, error) { return lzo.Decompress(src, dst) }}, nil
	case compLZ4:
		return blockCodec{"lz4 block", func(dst, src []byte) (int, error) { return lz4.UncompressBlock(src, dst) }}, nil
	}
	return nil, corrupt("unknown compression id %d", id)
}

// readBounded appends what r yields to dst, failing past max bytes. It
// fills dst's spare capacity first, so a buffer of max bytes is never
// reallocated.
func readBounded(dst []byte, r io.Reader, max int) ([]byte, error) {
	var probe [1]byte
	for {
		if len(dst) == cap(dst) {
			n, err := r.Read(probe[:])
			if n > 0 {
				if len(dst) >= max {
					return nil, errTooLong
				}
				dst = append(dst, probe[0])
			}
			if err == io.EOF {
				return dst, nil
			}
			if err != nil {
				return nil, err
			}
			continue
		}
		n, err := r.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if len(dst) > max {
			return nil, errTooLong
		}
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// streamCodec decompresses with a fresh stream reader per block.
type streamCodec struct {
	newReader func(io.Reader) (io.Reader, error)
}

func (c streamCodec) decompress(dst, src []byte, max int) ([]byte, error) {
	r, err := c.newReader(bytes.NewReader(src))
	if err != nil {
		return nil, err
	}
	return readBounded(dst, r, max)
}

type zstdCodec struct{ d *zstd.Decoder }

func (c zstdCodec) decompress(dst, src []byte, max int) ([]byte, error) {
	out, err := c.d.DecodeAll(src, dst)
	if err != nil {
		return nil, err
	}
	if len(out) > max {
		return nil, errTooLong
	}
	return out, nil
}

// blockCodec wraps a whole-block decompressor that writes into a buffer of
// fixed size: the block size bounds its output. name prefixes the errors of
// decoders that do not name themselves (squashfs stores LZO and LZ4 blocks
// without framing).
type blockCodec struct {
	name   string
	decode func(dst, src []byte) (int, error)
}

func (c blockCodec) decompress(dst, src []byte, max int) ([]byte, error) {
	start := len(dst)
	dst = slices.Grow(dst, max)
	n, err := c.decode(dst[start:start+max], src)
	if err != nil && c.name != "" {
		return nil, fmt.Errorf("%s: %w", c.name, err)
	}
	if err != nil {
		return nil, err
	}
	return dst[:start+n], nil
}
