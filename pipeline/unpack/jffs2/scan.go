package jffs2

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"strings"

	"github.com/fwvet/fwvet/pipeline"
)

// index is what a scan keeps of an image: where every live node is and
// what it claims, but none of the file data.
type index struct {
	order   binary.ByteOrder
	inodes  map[uint32]*inodeInfo
	dirents map[direntKey]*dirent
	// problems are the nodes skipped that no one file owns.
	problems report
	// truncated, when set, says where a node runs past the end of the image.
	truncated error
	nodes     int
}

// dnode is one inode node: a version of an inode's metadata, and of one
// range of its data when dsize is non-zero.
type dnode struct {
	off      int64 // image offset of the node
	version  uint32
	mode     uint32
	uid, gid uint16
	isize    uint32
	offset   uint32 // where the data goes in the file
	csize    uint32
	dsize    uint32
	compr    uint8
	dataCRC  uint32
	// badData is set when the data fails its CRC: the kernel then drops the
	// data, but the metadata, covered by the node CRC, still counts.
	badData bool
}

type inodeInfo struct {
	nodes  []dnode
	damage report
}

type direntKey struct {
	pino uint32
	name string
}

type dirent struct {
	ino, version uint32
	dtype        uint8
}

// report collects damage messages, keeping the first few and a count.
type report struct {
	count int
	msgs  []string
}

const maxReported = 5

func (r *report) add(format string, args ...any) {
	r.count++
	if len(r.msgs) < maxReported {
		r.msgs = append(r.msgs, fmt.Sprintf(format, args...))
	}
}

func (r *report) String() string {
	s := strings.Join(r.msgs, "; ")
	if r.count > len(r.msgs) {
		s += fmt.Sprintf("; and %d more", r.count-len(r.msgs))
	}
	return s
}

func (ix *index) inode(ino uint32) *inodeInfo {
	in := ix.inodes[ino]
	if in == nil {
		in = &inodeInfo{}
		ix.inodes[ino] = in
	}
	return in
}

// scan reads every node of the image, as the kernel does at mount: a word
// that does not start a node with a valid header CRC is stepped over 4 bytes
// at a time, and a node whose body fails its CRC is skipped whole.
func scan(ctx context.Context, r io.ReaderAt, size int64, lim pipeline.Limits) (*index, error) {
	ix := &index{inodes: map[uint32]*inodeInfo{}, dirents: map[direntKey]*dirent{}}
	w := newWindow(r, size)
	junkStart := int64(-1)
	flushJunk := func(end int64) {
		if junkStart >= 0 {
			ix.problems.add("bytes %#x-%#x hold no valid node (bad magic or header CRC: written partly or overwritten)", junkStart, end)
			junkStart = -1
		}
	}
	for off, iter := int64(0), 0; off+headerSize <= size; iter++ {
		if iter%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		next, err := w.skipErased(off, size)
		if err != nil {
			return nil, err
		}
		if next != off {
			flushJunk(off)
			off = next
			continue
		}
		b, err := w.bytes(off, headerSize)
		if err != nil {
			return nil, err
		}
		var h nodeHeader
		ok := false
		if ix.order == nil {
			ix.order, h, ok = detectOrder(b)
		} else {
			h, ok = parseHeader(b, ix.order)
		}
		if ok && off+int64(h.totlen) > size {
			if ix.truncated == nil {
				ix.truncated = fmt.Errorf("node at %#x of %d bytes runs past the end of the %d-byte image: the image is truncated", off, h.totlen, size)
			}
			ok = false
		}
		if !ok {
			if junkStart < 0 {
				junkStart = off
			}
			off += 4
			continue
		}
		flushJunk(off)
		ix.nodes++
		if h.nodetype&nodeAccurate != 0 {
			if err := ix.node(w, off, h, lim); err != nil {
				return nil, err
			}
		}
		off += pad4(int64(h.totlen))
	}
	flushJunk(size &^ 3)
	if ix.order == nil {
		return nil, fmt.Errorf("%w: no valid node in %d bytes", ErrCorrupt, size)
	}
	return ix, nil
}

// node records one live node with a valid header.
func (ix *index) node(w *window, off int64, h nodeHeader, lim pipeline.Limits) error {
	switch h.nodetype {
	case typeInode:
		return ix.inodeNode(w, off, h)
	case typeDirent:
		return ix.direntNode(w, off, h, lim)
	case typeCleanmarker, typePadding, typeSummary, typeXattr, typeXref:
		// Summaries only speed up a mount; extended attributes are not entries.
	default:
		if h.nodetype&compatMask == incompat {
			ix.problems.add("node at %#x has type %#04x, unknown and marked incompatible: the kernel would refuse to mount the image", off, h.nodetype)
		}
	}
	return nil
}

func (ix *index) inodeNode(w *window, off int64, h nodeHeader) error {
	if h.totlen < inodeSize {
		ix.problems.add("inode node at %#x is %d bytes, shorter than its header", off, h.totlen)
		return nil
	}
	b, err := w.bytes(off, inodeSize)
	if err != nil {
		return err
	}
	o := ix.order
	ino := o.Uint32(b[12:])
	if crc(b[:60]) != o.Uint32(b[64:]) {
		ix.problems.add("inode node at %#x (claiming inode %d) fails its node CRC; skipped", off, ino)
		if in := ix.inodes[ino]; in != nil {
			in.damage.add("an inode node at %#x that may belong to this file fails its node CRC and was skipped", off)
		}
		return nil
	}
	n := dnode{off: off, version: o.Uint32(b[16:]), mode: o.Uint32(b[20:]), uid: o.Uint16(b[24:]), gid: o.Uint16(b[26:]),
		isize: o.Uint32(b[28:]), offset: o.Uint32(b[44:]), csize: o.Uint32(b[48:]), dsize: o.Uint32(b[52:]),
		compr: b[56], dataCRC: o.Uint32(b[60:])}
	if ino == 0 {
		ix.problems.add("inode node at %#x names inode 0; skipped", off)
		return nil
	}
	in := ix.inode(ino)
	if int64(n.csize) > int64(h.totlen)-inodeSize {
		in.damage.add("data node at %#x claims %d bytes of data in a %d-byte node; skipped", off, n.csize, h.totlen)
		return nil
	}
	if n.compr != comprZero && (n.csize > maxNodeData || n.dsize > maxNodeData) {
		in.damage.add("data node at %#x holds %d bytes for %d, more than the %d a node may; skipped", off, n.csize, n.dsize, maxNodeData)
		return nil
	}
	if n.compr == comprNone && n.csize != n.dsize {
		in.damage.add("uncompressed data node at %#x stores %d bytes for %d; skipped", off, n.csize, n.dsize)
		return nil
	}
	if n.csize > 0 {
		c, err := dataCRC(w, off+inodeSize, int64(n.csize))
		if err != nil {
			return err
		}
		if c != n.dataCRC {
			in.damage.add("data node at %#x (bytes %d-%d, version %d) fails its data CRC; its data is skipped, so the range shows older data or zeros",
				off, n.offset, int64(n.offset)+int64(n.dsize), n.version)
			n.badData = true
		}
	}
	in.nodes = append(in.nodes, n)
	return nil
}

func dataCRC(w *window, off, n int64) (uint32, error) {
	var c uint32
	for n > 0 {
		k := min(n, windowSize)
		b, err := w.bytes(off, int(k))
		if err != nil {
			return 0, err
		}
		c = crcUpdate(c, b)
		off, n = off+k, n-k
	}
	return c, nil
}

func (ix *index) direntNode(w *window, off int64, h nodeHeader, lim pipeline.Limits) error {
	if h.totlen < direntSize {
		ix.problems.add("dirent node at %#x is %d bytes, shorter than its header", off, h.totlen)
		return nil
	}
	b, err := w.bytes(off, int(min(int64(h.totlen), direntSize+255)))
	if err != nil {
		return err
	}
	o := ix.order
	if crc(b[:32]) != o.Uint32(b[32:]) {
		ix.problems.add("dirent node at %#x fails its node CRC; skipped", off)
		return nil
	}
	nsize := int(b[28])
	if direntSize+nsize > int(h.totlen) {
		ix.problems.add("dirent node at %#x has a %d-byte name in a %d-byte node; skipped", off, nsize, h.totlen)
		return nil
	}
	name := b[direntSize : direntSize+nsize]
	if crc(name) != o.Uint32(b[36:]) {
		ix.problems.add("dirent node at %#x fails its name CRC; skipped", off)
		return nil
	}
	if nsize == 0 || bytes.ContainsAny(name, "/\x00") || string(name) == "." || string(name) == ".." {
		ix.problems.add("dirent node at %#x has the invalid name %q; skipped", off, name)
		return nil
	}
	pino := o.Uint32(b[12:])
	d := &dirent{version: o.Uint32(b[16:]), ino: o.Uint32(b[20:]), dtype: b[29]}
	key := direntKey{pino: pino, name: string(name)}
	old, ok := ix.dirents[key]
	if !ok && int64(len(ix.dirents)) >= lim.MaxEntries {
		return &pipeline.LimitError{Limit: "max-entries", Value: lim.MaxEntries, Msg: "the image names more entries than an artifact may hold"}
	}
	// On equal versions the node written later, found later, wins, as in
	// the kernel's jffs2_add_fd_to_list.
	if !ok || d.version >= old.version {
		ix.dirents[key] = d
	}
	return nil
}
