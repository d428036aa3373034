package jffs2

import (
	"errors"
	"fmt"
	"io"
)

// window reads an image front to back through one buffer, so the scan
// touches every byte once with large reads instead of one per node.
type window struct {
	r     io.ReaderAt
	size  int64
	buf   []byte
	start int64 // image offset of buf[0]
	n     int   // valid bytes in buf
}

const windowSize = 256 << 10

func newWindow(r io.ReaderAt, size int64) *window {
	return &window{r: r, size: size, buf: make([]byte, windowSize)}
}

// bytes returns n bytes at off, valid until the next call. n must not exceed
// the window and off+n must lie within the image.
func (w *window) bytes(off int64, n int) ([]byte, error) {
	if n > len(w.buf) || off < 0 || off+int64(n) > w.size {
		return nil, fmt.Errorf("read of %d bytes at %d outside the %d-byte image", n, off, w.size)
	}
	if off >= w.start && off+int64(n) <= w.start+int64(w.n) {
		return w.buf[off-w.start : off-w.start+int64(n)], nil
	}
	want := min(int64(len(w.buf)), w.size-off)
	got, err := w.r.ReadAt(w.buf[:want], off)
	if int64(got) < want {
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		w.n = 0
		return nil, fmt.Errorf("reading image at %d: %w", off, err)
	}
	w.start, w.n = off, got
	return w.buf[off-w.start : off-w.start+int64(n)], nil
}

// skipErased returns the first 4-aligned offset at or after off, below end,
// whose word is not erased flash (0xFFFFFFFF), or end.
func (w *window) skipErased(off, end int64) (int64, error) {
	for off+4 <= end {
		// What the window holds from off is looked at first: asking for a
		// whole window at off would read one for every node.
		var b []byte
		if off >= w.start && off+4 <= w.start+int64(w.n) {
			b = w.buf[off-w.start : min(int64(w.n), end-w.start)]
		} else {
			var err error
			if b, err = w.bytes(off, int(min(int64(len(w.buf)), end-off))); err != nil {
				return off, err
			}
		}
		b = b[:len(b)&^3]
		n := int64(len(b))
		for i := 0; i+4 <= len(b); i += 4 {
			if b[i]&b[i+1]&b[i+2]&b[i+3] != 0xff {
				return off + int64(i), nil
			}
		}
		off += n
	}
	return end, nil
}
