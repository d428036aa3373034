package ubi

import (
	"errors"
	"fmt"
	"io"
)

// volReader reads a volume's bytes in place from the image: an offset maps
// to an LEB, the LEB to its PEB, and the PEB to the image. It is an
// io.ReaderAt with a Size, safe for concurrent ReadAt calls, so a file
// system nested in the volume is read at random without a copy.
type volReader struct {
	img *image
	v   *volume
	off int64 // for Read and Seek only
}

// Size is the volume's size.
func (r *volReader) Size() int64 { return r.v.size }

// ReadAt implements io.ReaderAt. Unmapped LEBs of a dynamic volume read as
// 0xFF, as UBI returns them; a missing LEB of a static volume is an error,
// as UBI refuses to read a static volume that lost data.
func (r *volReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("ubi: volume %d: negative offset %d", r.v.id, off)
	}
	v, g := r.v, r.img.g
	n := 0
	for len(p) > 0 {
		if off >= v.size {
			return n, io.EOF
		}
		lnum, in := off/v.lebSize, off%v.lebSize
		k := min(int64(len(p)), v.lebSize-in, v.size-off)
		chunk := p[:k]
		if peb, ok := v.lebs[uint32(lnum)]; ok {
			if err := readAt(r.img.r, chunk, peb*g.pebSize+g.dataOff+in); err != nil {
				return n, fmt.Errorf("ubi: volume %d: LEB %d in PEB %d: %w", v.id, lnum, peb, err)
			}
		} else if v.static {
			return n, corrupt("volume %d: LEB %d of the static volume is missing", v.id, lnum)
		} else {
			for i := range chunk {
				chunk[i] = 0xFF
			}
		}
		n += int(k)
		p = p[k:]
		off += k
	}
	return n, nil
}

func (r *volReader) Read(p []byte) (int, error) {
	n, err := r.ReadAt(p, r.off)
	r.off += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

// Seek implements io.Seeker, so the reader can be wrapped as a file.
func (r *volReader) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		off += r.off
	case io.SeekEnd:
		off += r.v.size
	default:
		return r.off, errors.New("ubi: bad whence")
	}
	if off < 0 {
		return r.off, fmt.Errorf("ubi: seek to negative offset %d", off)
	}
	r.off = off
	return off, nil
}

func (r *volReader) Close() error { return nil }
