package ext4

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sort"
	"sync"

	"github.com/fwvet/fwvet/pipeline"
)

// fileData is one inode's bytes: inline, or found through its block map,
// which is built on first use and then shared, read-only, by every reader.
type fileData struct {
	img    *Image
	in     *inode
	size   int64
	inline []byte

	mu     sync.Mutex
	mapped bool
	runs   []run
	err    error
}

func (img *Image) fileData(in *inode) (*fileData, error) {
	f := &fileData{img: img, in: in, size: int64(in.size)}
	if in.flags&flagInlineData != 0 {
		b, err := in.inlineData()
		if err != nil {
			return nil, err
		}
		f.inline = b
	}
	return f, nil
}

func (f *fileData) load(ctx context.Context) error {
	if f.inline != nil || f.size == 0 {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.mapped {
		return f.err
	}
	nblocks := (uint64(f.size) + uint64(f.img.bs) - 1) / uint64(f.img.bs)
	runs, err := f.img.blockMap(ctx, f.in, nblocks)
	if ctx.Err() != nil {
		return err // a cancelled reader does not spoil the map for the next one
	}
	f.runs, f.err, f.mapped = runs, err, true
	return err
}

// openAt opens the regular file of inode ino.
func (img *Image) openAt(ctx context.Context, ino uint64, _ int64) (io.ReadCloser, error) {
	if ino > 1<<32-1 {
		return nil, corrupt("inode %d is outside the image", ino)
	}
	in, err := img.inode(uint32(ino))
	if err != nil {
		return nil, err
	}
	if in.typ != pipeline.TypeFile {
		return nil, corrupt("inode %d is a %s, not a file", ino, in.typ)
	}
	f, err := img.fileData(in)
	if err != nil {
		return nil, err
	}
	if err := f.load(ctx); err != nil {
		return nil, err
	}
	if f.inline != nil {
		return &inlineReader{bytes.NewReader(f.inline)}, nil
	}
	return &fileReader{f: f}, nil
}

// readAll reads a small inode's whole contents (a slow symlink's target).
func (f *fileData) readAll(ctx context.Context) ([]byte, error) {
	if f.inline != nil {
		return f.inline, nil
	}
	if err := f.load(ctx); err != nil {
		return nil, err
	}
	b := make([]byte, f.size)
	if _, err := (&fileReader{f: f}).ReadAt(b, 0); err != nil && err != io.EOF {
		return nil, err
	}
	return b, nil
}

type inlineReader struct{ *bytes.Reader }

func (inlineReader) Close() error { return nil }

// fileReader reads a file through its runs. Its ReadAt is safe for
// concurrent use; Read keeps the one offset of a stream.
type fileReader struct {
	f   *fileData
	off int64
}

// Size is the file's size.
func (r *fileReader) Size() int64 { return r.f.size }

func (r *fileReader) Close() error { return nil }

func (r *fileReader) Read(p []byte) (int, error) {
	if r.off >= r.f.size {
		return 0, io.EOF
	}
	n, err := r.ReadAt(p[:min(int64(len(p)), r.f.size-r.off)], r.off)
	r.off += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

// ReadAt implements io.ReaderAt: bytes of mapped, written blocks come from
// the image; holes and unwritten runs read as zeros.
func (r *fileReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("ext4: negative offset %d", off)
	}
	f := r.f
	bs := f.img.bs
	n := 0
	for len(p) > 0 {
		if off >= f.size {
			return n, io.EOF
		}
		blk := uint64(off / bs)
		// The first run that ends after blk holds it or follows the hole it is in.
		i := sort.Search(len(f.runs), func(i int) bool { return f.runs[i].logical+f.runs[i].n > blk })
		var avail int64
		var rn *run
		if i < len(f.runs) && f.runs[i].logical <= blk {
			rn = &f.runs[i]
			avail = int64(rn.logical+rn.n)*bs - off
		} else if i < len(f.runs) {
			avail = int64(f.runs[i].logical)*bs - off
		} else {
			avail = f.size - off
		}
		k := int(min(int64(len(p)), avail, f.size-off))
		if rn == nil || rn.unwritten {
			clear(p[:k])
		} else {
			at := int64(rn.phys+blk-rn.logical)*bs + off%bs
			if m, err := f.img.r.ReadAt(p[:k], at); m < k {
				return n + m, fmt.Errorf("ext4: inode %d: reading %d bytes at %d: %w", f.in.num, k, at, eofIsShort(err))
			}
		}
		n += k
		p = p[k:]
		off += int64(k)
	}
	return n, nil
}

// eofIsShort turns the io.EOF of an image that ends too soon into an
// error, since the file's runs were checked to lie inside it.
func eofIsShort(err error) error {
	if err == nil || err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// WriteTo streams the file in large reads.
func (r *fileReader) WriteTo(w io.Writer) (int64, error) {
	buf := make([]byte, min(1<<20, max(r.f.size-r.off, 1)))
	var total int64
	for {
		n, err := r.Read(buf)
		if n > 0 {
			m, werr := w.Write(buf[:n])
			total += int64(m)
			if werr != nil {
				return total, werr
			}
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}
