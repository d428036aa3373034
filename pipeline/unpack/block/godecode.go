package block

import (
	"bytes"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/zlib"
	xi2 "github.com/xi2/xz"
)

// The Go decoders are streams: each is reset onto the block from a pool, so
// that its window or dictionary is reused rather than allocated per block.
type goDecoder struct {
	name  string
	pool  sync.Pool
	open  func(src io.Reader) (io.Reader, error)
	reset func(d, src io.Reader) error
}

type goState struct {
	src *bytes.Reader
	d   io.Reader
}

func (g *goDecoder) decode(dst, src []byte) (int, error) {
	st, _ := g.pool.Get().(*goState)
	if st == nil {
		st = &goState{src: bytes.NewReader(src)}
		d, err := g.open(st.src)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", g.name, err)
		}
		st.d = d
	} else {
		st.src.Reset(src)
		if err := g.reset(st.d, st.src); err != nil {
			return 0, fmt.Errorf("%s: %w", g.name, err)
		}
	}
	n, err := fill(dst, st.d)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", g.name, err)
	}
	g.pool.Put(st)
	return n, nil
}

var (
	goZlibDecoder = &goDecoder{name: "zlib",
		open:  func(src io.Reader) (io.Reader, error) { return zlib.NewReader(src) },
		reset: func(d, src io.Reader) error { return d.(zlib.Resetter).Reset(src, nil) }}
	goFlateDecoder = &goDecoder{name: "deflate",
		open:  func(src io.Reader) (io.Reader, error) { return flate.NewReader(src), nil },
		reset: func(d, src io.Reader) error { return d.(flate.Resetter).Reset(src, nil) }}
	// XZ Embedded's decoder (a Go port) reads the BCJ filters mksquashfs
	// -Xbcj adds.
	goXZDecoder = &goDecoder{name: "xz",
		open: func(src io.Reader) (io.Reader, error) {
			d, err := xi2.NewReader(src, XZDictMax)
			if err == nil {
				d.Multistream(false)
			}
			return d, err
		},
		reset: func(d, src io.Reader) error {
			x := d.(*xi2.Reader)
			err := x.Reset(src)
			x.Multistream(false)
			return err
		}}
)

func goZlib(dst, src []byte) (int, error)    { return goZlibDecoder.decode(dst, src) }
func goDeflate(dst, src []byte) (int, error) { return goFlateDecoder.decode(dst, src) }
func goXZ(dst, src []byte) (int, error)      { return goXZDecoder.decode(dst, src) }

// fill reads r to its end into dst and fails if the end does not fit. A
// decoder's io.ErrUnexpectedEOF (truncated data) is an error here, which
// is why this is not io.ReadFull.
func fill(dst []byte, r io.Reader) (int, error) {
	var probe [1]byte
	n, idle := 0, 0
	for {
		buf := dst[n:]
		if len(buf) == 0 {
			buf = probe[:]
		}
		k, err := r.Read(buf)
		if k > 0 && n == len(dst) {
			return 0, ErrTooLong
		}
		n += k
		switch {
		case err == io.EOF:
			return n, nil
		case err != nil:
			return 0, err
		case k > 0:
			idle = 0
		default:
			if idle++; idle > 100 {
				return 0, io.ErrNoProgress
			}
		}
	}
}
