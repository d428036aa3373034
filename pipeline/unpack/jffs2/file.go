package jffs2

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
)

// file is the layout of one inode's data: immutable once built, shared by
// its hard links and by every reader opened on it.
type file struct {
	r     io.ReaderAt
	ino   uint32
	nodes []dnode // sorted by version
	frags []frag
	size  int64
}

// nodeData reads, checks and decompresses node i.
func (f *file) nodeData(i int) ([]byte, error) {
	n := f.nodes[i]
	if n.compr == comprZero {
		return nil, nil
	}
	src := make([]byte, n.csize)
	if _, err := f.r.ReadAt(src, n.off+inodeSize); err != nil && !(errors.Is(err, io.EOF) && len(src) == 0) {
		return nil, fmt.Errorf("jffs2: inode %d: reading data node at %#x: %w", f.ino, n.off, err)
	}
	// The scan checked this CRC already; checking again costs little and
	// keeps a reader that changed under us from yielding wrong bytes.
	if crc(src) != n.dataCRC {
		return nil, fmt.Errorf("%w: inode %d: data node at %#x fails its data CRC", ErrCorrupt, f.ino, n.off)
	}
	out, err := decompress(n.compr, src, int(n.dsize))
	if err != nil {
		return nil, fmt.Errorf("%w: inode %d: data node at %#x (bytes %d-%d): %w", ErrCorrupt, f.ino, n.off, n.offset, int64(n.offset)+int64(n.dsize), err)
	}
	return out, nil
}

// fileReader streams a file and is also an io.ReaderAt with a Size, keeping
// the last node it decompressed.
type fileReader struct {
	f   *file
	pos int64

	mu     sync.Mutex
	cached int
	data   []byte
}

// Size is the file's size.
func (r *fileReader) Size() int64 { return r.f.size }

func (r *fileReader) Close() error { return nil }

func (r *fileReader) Read(p []byte) (int, error) {
	n, err := r.ReadAt(p, r.pos)
	r.pos += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

// ReadAt implements io.ReaderAt.
func (r *fileReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("negative offset %d", off)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	f := r.f
	done := 0
	for done < len(p) && off < f.size {
		k := sort.Search(len(f.frags), func(i int) bool { return f.frags[i].end > off })
		if k == len(f.frags) {
			return done, fmt.Errorf("%w: inode %d: no fragment holds byte %d", ErrCorrupt, f.ino, off)
		}
		fr := f.frags[k]
		n := int(min(int64(len(p)-done), fr.end-off))
		dst := p[done : done+n]
		if fr.node < 0 || f.nodes[fr.node].compr == comprZero {
			clear(dst)
		} else {
			if r.cached != fr.node {
				data, err := f.nodeData(fr.node)
				if err != nil {
					return done, err
				}
				r.cached, r.data = fr.node, data
			}
			rel := off - int64(f.nodes[fr.node].offset)
			copy(dst, r.data[rel:])
		}
		done += n
		off += int64(n)
	}
	if done < len(p) {
		return done, io.EOF
	}
	return done, nil
}

// device decodes a device node's number as jffs2_encode_dev stores it: two
// bytes (major<<8 | minor) when both fit, else the kernel's 32-bit form.
func device(b []byte, o binary.ByteOrder) (major, minor uint32, err error) {
	switch len(b) {
	case 2:
		v := uint32(o.Uint16(b))
		return v >> 8, v & 0xff, nil
	case 4:
		v := o.Uint32(b)
		return (v & 0xfff00) >> 8, (v & 0xff) | ((v >> 12) & 0xfff00), nil
	}
	return 0, 0, fmt.Errorf("device number of %d bytes (2 or 4 expected)", len(b))
}
