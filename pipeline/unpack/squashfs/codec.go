package squashfs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/anchore/go-lzo"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/ulikunitz/xz/lzma"
	xi2 "github.com/xi2/xz"
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
		return &zlibCodec{}, nil
	case compXZ:
		return &xzCodec{dictMax: max(blockSize, 1<<20)}, nil
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
		return blockCodec{"lzo", func(dst, src []byte) (int, error) { return lzo.Decompress(src, dst) }}, nil
	case compLZ4:
		return blockCodec{"lz4", func(dst, src []byte) (int, error) { return lz4.UncompressBlock(src, dst) }}, nil
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

type zlibCodec struct{ pool sync.Pool }

type zlibState struct {
	src *bytes.Reader
	zr  io.ReadCloser
}

func (c *zlibCodec) decompress(dst, src []byte, max int) ([]byte, error) {
	st, _ := c.pool.Get().(*zlibState)
	if st == nil {
		st = &zlibState{src: bytes.NewReader(src)}
		zr, err := zlib.NewReader(st.src)
		if err != nil {
			return nil, err
		}
		st.zr = zr
	} else {
		st.src.Reset(src)
		if err := st.zr.(zlib.Resetter).Reset(st.src, nil); err != nil {
			return nil, err
		}
	}
	out, err := readBounded(dst, st.zr, max)
	if err != nil {
		return nil, err
	}
	c.pool.Put(st)
	return out, nil
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

// blockCodec wraps a raw block decompressor (LZO1X, LZ4) that writes into a
// buffer of fixed size: squashfs stores these blocks without framing, and
// the block size bounds their output.
type blockCodec struct {
	name   string
	decode func(dst, src []byte) (int, error)
}

func (c blockCodec) decompress(dst, src []byte, max int) ([]byte, error) {
	start := len(dst)
	dst = slices.Grow(dst, max)
	n, err := c.decode(dst[start:start+max], src)
	if err != nil {
		return nil, fmt.Errorf("%s block: %w", c.name, err)
	}
	return dst[:start+n], nil
}

// xzCodec decodes xz blocks with XZ Embedded's decoder (a Go port), which
// reads the BCJ filters mksquashfs -Xbcj adds and, reset from a pool,
// reuses its dictionary instead of allocating one per block.
type xzCodec struct {
	dictMax uint32
	pool    sync.Pool
}

type xzState struct {
	src *bytes.Reader
	zr  *xi2.Reader
}

func (c *xzCodec) decompress(dst, src []byte, max int) ([]byte, error) {
	st, _ := c.pool.Get().(*xzState)
	if st == nil {
		st = &xzState{src: bytes.NewReader(src)}
		zr, err := xi2.NewReader(st.src, c.dictMax)
		if err != nil {
			return nil, err
		}
		zr.Multistream(false)
		st.zr = zr
	} else {
		st.src.Reset(src)
		if err := st.zr.Reset(st.src); err != nil {
			return nil, err
		}
		st.zr.Multistream(false)
	}
	out, err := readBounded(dst, st.zr, max)
	if err != nil {
		return nil, err
	}
	c.pool.Put(st)
	return out, nil
}
