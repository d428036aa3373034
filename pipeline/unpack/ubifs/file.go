package ubifs

import (
	"context"
	"fmt"
	"io"
	"math"
	"sync"

	"github.com/fwvet/fwvet/pipeline"
)

// file is a regular file's bytes: blocks of 4096 bytes, each stored in one
// data node or absent (a hole, read as zeros), cut at the inode's size.
type file struct {
	v    *volume
	inum uint32
	size int64
	// data is where the last block was looked up; the reader's mutex
	// guards it.
	data dataCursor
}

// openAt is the walk's pipeline.OpenAt: loc is the inode number. The
// inode is read again, and checked again, for the number comes from the
// index and a file opens long after the walk that saw it.
func (v *volume) openAt(_ context.Context, loc uint64, size int64) (io.ReadCloser, error) {
	if loc > math.MaxUint32 {
		return nil, corrupt("inode %d is out of range", loc)
	}
	in, err := v.inode(uint32(loc))
	if err != nil {
		return nil, fmt.Errorf("opening the file: %w", err)
	}
	switch {
	case in.typ != pipeline.TypeFile:
		return nil, corrupt("inode %d is a %s, not a regular file", loc, in.typ)
	case in.flags&flagCrypt != 0:
		return nil, corrupt("inode %d is encrypted", loc)
	case int64(in.size) != size:
		return nil, corrupt("inode %d holds %d bytes, its entry says %d", loc, in.size, size)
	}
	return &fileReader{f: &file{v: v, inum: in.inum, size: int64(in.size)}}, nil
}

// block reads block i of the file into buf, which has room for a block,
// and returns the file's bytes in it: a whole block, or the tail.
func (f *file) block(i int64, buf, node []byte) ([]byte, error) {
	want := min(blockSize, f.size-i*blockSize)
	out := buf[:want]
	p, ok := f.v.idx.data(&f.data, f.inum, i)
	if !ok {
		clear(out)
		return out, nil
	}
	if err := f.v.checkPos(p, nodeData); err != nil {
		return nil, err
	}
	node = node[:p.len]
	if err := f.v.readAt(node, p); err != nil {
		return nil, err
	}
	if _, err := parseHeader(node, nodeData); err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	if err := checkKey(node, f.inum, keyData); err != nil {
		return nil, err
	}
	if got := int64(le.Uint32(node[28:]) & keyValueMask); got != i {
		return nil, corrupt("data node at %s holds block %d where the index has block %d", p, got, i)
	}
	n, compr := int(le.Uint32(node[40:])), le.Uint16(node[44:])
	if n > blockSize {
		return nil, corrupt("data node at %s holds %d bytes, more than a block", p, n)
	}
	plain, err := decompress(compr, node[dataHdrSize:], buf)
	if err != nil {
		return nil, fmt.Errorf("%w: data node at %s: %v", ErrCorrupt, p, err)
	}
	if len(plain) != n {
		return nil, corrupt("data node at %s unpacks to %d bytes, its header says %d", p, len(plain), n)
	}
	// A decoder that outgrew buf returned bytes of its own.
	copy(buf[:n], plain)
	// A data node may hold less than a block, the rest being zeros.
	if int64(n) < want {
		clear(buf[n:want])
	}
	return out, nil
}

// fileReader streams a file's bytes. It is also an io.ReaderAt with a
// Size, so a container or binary inside the image is read in place.
type fileReader struct {
	f   *file
	off int64

	mu    sync.Mutex
	node  []byte
	slots [4]struct {
		i    int64
		data []byte
		ok   bool
	}
	next int
}

// Size is the file's size.
func (r *fileReader) Size() int64 { return r.f.size }

// cached returns block i from the few kept: parsers of binaries hop
// between headers, tables and strings in a handful of blocks. The caller
// holds r.mu and uses the bytes before releasing it.
func (r *fileReader) cached(i int64) ([]byte, error) {
	for _, s := range r.slots {
		if s.ok && s.i == i {
			return s.data, nil
		}
	}
	if r.node == nil {
		r.node = make([]byte, maxNodeSize)
	}
	s := &r.slots[r.next]
	if s.data == nil {
		s.data = make([]byte, blockSize)
	}
	s.ok = false
	data, err := r.f.block(i, s.data[:blockSize], r.node)
	if err != nil {
		return nil, fmt.Errorf("inode %d block %d: %w", r.f.inum, i, err)
	}
	s.i, s.data, s.ok = i, data, true
	r.next = (r.next + 1) % len(r.slots)
	return data, nil
}

// ReadAt implements io.ReaderAt.
func (r *fileReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("negative offset %d", off)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for len(p) > 0 {
		if off >= r.f.size {
			return n, io.EOF
		}
		i := off / blockSize
		data, err := r.cached(i)
		if err != nil {
			return n, err
		}
		k := copy(p, data[off-i*blockSize:])
		n += k
		p = p[k:]
		off += int64(k)
	}
	return n, nil
}

func (r *fileReader) Read(p []byte) (int, error) {
	n, err := r.ReadAt(p, r.off)
	r.off += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

// WriteTo hands each block to w.
func (r *fileReader) WriteTo(w io.Writer) (int64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var total int64
	for r.off < r.f.size {
		i := r.off / blockSize
		data, err := r.cached(i)
		if err != nil {
			return total, err
		}
		n, err := w.Write(data[r.off-i*blockSize:])
		total += int64(n)
		r.off += int64(n)
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

func (r *fileReader) Close() error { return nil }
