package jffs2

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"io"
	"math"
	"slices"
	"strings"

	"github.com/fwvet/fwvet/pipeline"
)

// index is what a scan keeps of an image: where every live node is and
// what it claims, but none of the file data. It is kept small and free of
// pointers, since an image may hold a million entries: a node's metadata
// and a name are read from the image again when the walk needs them.
type index struct {
	r     io.ReaderAt
	order binary.ByteOrder
	// nodes are the inode nodes with a valid node CRC, sorted by inode,
	// then version, then offset once the scan is done.
	nodes []nodeRef
	// dirents are the directory entry nodes: once the scan is done, the
	// newest of each (parent, name) that does not delete it, sorted by
	// parent and then by the seeded hash of the name.
	dirents []direntRef
	seed    maphash.Seed
	// compactAt is the count of dirents at which the scan drops those that
	// newer ones replaced, so that a rewritten name costs nothing.
	compactAt int
	// damage holds, by inode, the nodes skipped that name it, for at most
	// maxDamaged inodes; the rest go to problems.
	damage map[uint32]*report
	// problems are the nodes skipped that no one file owns.
	problems report
	// truncated, when set, says where a node runs past the end of the image.
	truncated error
}

// nodeRef locates one inode node: its offset over 4 (nodes are 4-byte
// aligned), and what sorting and layout need first.
type nodeRef struct {
	ino, off4, version uint32
	// badData is set when the data fails its CRC: the kernel then drops the
	// data, but the metadata, covered by the node CRC, still counts.
	badData bool
}

// direntRef locates one directory entry node.
type direntRef struct {
	pino, ino, version uint32
	hash               uint32 // of the name, seeded
	off4               uint32
	dtype              uint8
	nlen               uint8
}

// dnode is one inode node as read from the image: a version of an inode's
// metadata, and of one range of its data when dsize is non-zero.
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
	badData  bool
}

// report collects damage messages, keeping the first few and a count.
type report struct {
	count int
	msgs  []string
}

const (
	maxReported = 5
	// maxDamaged bounds the inodes whose skipped nodes are kept by inode;
	// past it they are reported for the image as a whole.
	maxDamaged = 4096
	// maxImage is the largest image a 32-bit offset over 4 can index.
	// JFFS2 is a file system for flash chips of at most a few GiB.
	maxImage = 4 << 32
)

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

// inodeDamage records a node skipped that names inode ino.
func (ix *index) inodeDamage(ino uint32, format string, args ...any) {
	d := ix.damage[ino]
	if d == nil {
		if len(ix.damage) >= maxDamaged {
			ix.problems.add("inode %d: %s", ino, fmt.Sprintf(format, args...))
			return
		}
		d = &report{}
		ix.damage[ino] = d
	}
	d.add(format, args...)
}

// maxNodes bounds the inode nodes indexed, at four an entry: a real image
// holds one for each file and directory and one for each page of a file's
// data, while a hostile one could hold one for each 68 bytes.
func maxNodes(lim pipeline.Limits) int64 { return 4 * min(lim.MaxEntries, math.MaxInt64/4) }

// scan reads every node of the image, as the kernel does at mount: a word
// that does not start a node with a valid header CRC is stepped over 4 bytes
// at a time, and a node whose body fails its CRC is skipped whole.
func scan(ctx context.Context, r io.ReaderAt, size int64, lim pipeline.Limits) (*index, error) {
	if size > maxImage {
		return nil, fmt.Errorf("%w: the image is %d bytes, more than the %d GiB this reader indexes", ErrCorrupt, size, maxImage>>30)
	}
	ix := &index{r: r, seed: maphash.MakeSeed(), damage: map[uint32]*report{}}
	ix.compactAt = int(min(lim.MaxEntries, math.MaxInt32) + 1)
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
	if err := ix.compact(lim); err != nil {
		return nil, err
	}
	// A deletion has done its work once it has replaced the older entries
	// of its name.
	ix.dirents = slices.DeleteFunc(ix.dirents, func(d direntRef) bool { return d.ino == 0 })
	ix.dirents = slices.Clip(ix.dirents)
	slices.SortFunc(ix.nodes, func(a, b nodeRef) int {
		if a.ino != b.ino {
			return cmp.Compare(a.ino, b.ino)
		}
		if a.version != b.version {
			return cmp.Compare(a.version, b.version)
		}
		return cmp.Compare(a.off4, b.off4)
	})
	ix.nodes = slices.Clip(ix.nodes)
	return ix, nil
}

// node records one live node with a valid header.
func (ix *index) node(w *window, off int64, h nodeHeader, lim pipeline.Limits) error {
	switch h.nodetype {
	case typeInode:
		return ix.inodeNode(w, off, h, lim)
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

// parseInode decodes the fixed part of the inode node at off, reporting
// whether its node CRC holds.
func parseInode(b []byte, o binary.ByteOrder, off int64) (ino uint32, n dnode, ok bool) {
	n = dnode{off: off, version: o.Uint32(b[16:]), mode: o.Uint32(b[20:]), uid: o.Uint16(b[24:]), gid: o.Uint16(b[26:]),
		isize: o.Uint32(b[28:]), offset: o.Uint32(b[44:]), csize: o.Uint32(b[48:]), dsize: o.Uint32(b[52:]),
		compr: b[56], dataCRC: o.Uint32(b[60:])}
	return o.Uint32(b[12:]), n, crc(b[:60]) == o.Uint32(b[64:])
}

func (ix *index) inodeNode(w *window, off int64, h nodeHeader, lim pipeline.Limits) error {
	if h.totlen < inodeSize {
		ix.problems.add("inode node at %#x is %d bytes, shorter than its header", off, h.totlen)
		return nil
	}
	b, err := w.bytes(off, inodeSize)
	if err != nil {
		return err
	}
	ino, n, ok := parseInode(b, ix.order, off)
	if !ok {
		ix.problems.add("inode node at %#x (claiming inode %d) fails its node CRC; skipped", off, ino)
		if ino != 0 {
			ix.inodeDamage(ino, "an inode node at %#x that may belong to this file fails its node CRC and was skipped", off)
		}
		return nil
	}
	if ino == 0 {
		ix.problems.add("inode node at %#x names inode 0; skipped", off)
		return nil
	}
	if int64(n.csize) > int64(h.totlen)-inodeSize {
		ix.inodeDamage(ino, "data node at %#x claims %d bytes of data in a %d-byte node; skipped", off, n.csize, h.totlen)
		return nil
	}
	if n.compr != comprZero && (n.csize > maxNodeData || n.dsize > maxNodeData) {
		ix.inodeDamage(ino, "data node at %#x holds %d bytes for %d, more than the %d a node may; skipped", off, n.csize, n.dsize, maxNodeData)
		return nil
	}
	if n.compr == comprNone && n.csize != n.dsize {
		ix.inodeDamage(ino, "uncompressed data node at %#x stores %d bytes for %d; skipped", off, n.csize, n.dsize)
		return nil
	}
	ref := nodeRef{ino: ino, off4: uint32(off / 4), version: n.version}
	if n.csize > 0 {
		c, err := dataCRC(w, off+inodeSize, int64(n.csize))
		if err != nil {
			return err
		}
		ref.badData = c != n.dataCRC
	}
	if int64(len(ix.nodes)) >= maxNodes(lim) {
		return &pipeline.LimitError{Limit: "max-entries", Value: lim.MaxEntries,
			Msg: fmt.Sprintf("the image holds more than %d inode nodes, four for each entry an artifact may hold", maxNodes(lim))}
	}
	ix.nodes = append(ix.nodes, ref)
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
	ix.dirents = append(ix.dirents, direntRef{pino: o.Uint32(b[12:]), version: o.Uint32(b[16:]), ino: o.Uint32(b[20:]),
		hash: ix.hash(name), off4: uint32(off / 4), dtype: b[29], nlen: uint8(nsize)})
	if len(ix.dirents) >= ix.compactAt {
		return ix.compact(lim)
	}
	return nil
}

func (ix *index) hash(name []byte) uint32 {
	h := maphash.Bytes(ix.seed, name)
	return uint32(h ^ h>>32)
}

// compact keeps, of the dirents of each (parent, name), the newest: on
// equal versions the node written later, found later, as in the kernel's
// jffs2_add_fd_to_list. Dirents of one hash are told apart by their names,
// read again from the image.
func (ix *index) compact(lim pipeline.Limits) error {
	d := ix.dirents
	slices.SortFunc(d, func(a, b direntRef) int {
		switch {
		case a.pino != b.pino:
			return cmp.Compare(a.pino, b.pino)
		case a.hash != b.hash:
			return cmp.Compare(a.hash, b.hash)
		case a.version != b.version:
			return cmp.Compare(a.version, b.version)
		}
		return cmp.Compare(a.off4, b.off4)
	})
	out := d[:0]
	var names []string
	for i := 0; i < len(d); {
		j := i + 1
		for j < len(d) && d[j].pino == d[i].pino && d[j].hash == d[i].hash {
			j++
		}
		if j == i+1 {
			out = append(out, d[i])
			i = j
			continue
		}
		// The newest of each name is the last of the run that bears it.
		// Writing out cannot overtake the run: it holds at most one entry
		// for each of the run's names, and they are read first.
		var keep []direntRef
		names = names[:0]
		for k := j - 1; k >= i; k-- {
			name, err := ix.name(d[k])
			if err != nil {
				return err
			}
			if !slices.Contains(names, name) {
				names = append(names, name)
				keep = append(keep, d[k])
			}
		}
		slices.Reverse(keep)
		out = append(out, keep...)
		i = j
	}
	ix.dirents = out
	if int64(len(out)) > lim.MaxEntries {
		return &pipeline.LimitError{Limit: "max-entries", Value: lim.MaxEntries, Msg: "the image names more entries than an artifact may hold"}
	}
	ix.compactAt = max(ix.compactAt, 2*len(out))
	return nil
}

// name reads a dirent's name from the image; its CRC held at the scan.
func (ix *index) name(d direntRef) (string, error) {
	b, err := ix.appendName(nil, d)
	return string(b), err
}

// appendName appends a dirent's name to b.
func (ix *index) appendName(b []byte, d direntRef) ([]byte, error) {
	n := len(b)
	b = slices.Grow(b, int(d.nlen))[:n+int(d.nlen)]
	off := int64(d.off4)*4 + direntSize
	if _, err := ix.r.ReadAt(b[n:], off); err != nil {
		return b[:n], fmt.Errorf("reading the name of the dirent at %#x: %w", off-direntSize, err)
	}
	return b, nil
}

// dnode reads the inode node that ref locates, as the scan found it.
func (ix *index) dnode(ref nodeRef) (dnode, error) {
	ino, n, err := ix.readInode(ref.off4)
	if err == nil && (ino != ref.ino || n.version != ref.version) {
		err = fmt.Errorf("%w: the inode node at %#x no longer holds what the scan read: the image changed", ErrCorrupt, n.off)
	}
	n.badData = ref.badData
	return n, err
}

// readInode reads the inode node at offset off4*4, whose node CRC held at
// the scan.
func (ix *index) readInode(off4 uint32) (uint32, dnode, error) {
	var b [inodeSize]byte
	off := int64(off4) * 4
	if _, err := ix.r.ReadAt(b[:], off); err != nil {
		return 0, dnode{off: off}, fmt.Errorf("reading the inode node at %#x: %w", off, err)
	}
	ino, n, ok := parseInode(b[:], ix.order, off)
	if !ok {
		return 0, n, fmt.Errorf("%w: the inode node at %#x no longer holds what the scan read: the image changed", ErrCorrupt, off)
	}
	return ino, n, nil
}

// refs returns the nodes of inode ino, oldest first.
func (ix *index) refs(ino uint32) []nodeRef { return refsIn(ix.nodes, ino) }

func refsIn(nodes []nodeRef, ino uint32) []nodeRef {
	i, _ := slices.BinarySearchFunc(nodes, ino, func(n nodeRef, ino uint32) int { return cmp.Compare(n.ino, ino) })
	j := i
	for j < len(nodes) && nodes[j].ino == ino {
		j++
	}
	return nodes[i:j]
}

// children returns where the entries of directory ino lie in dirents, in
// the order of their names' hashes.
func (ix *index) children(ino uint32) (int, int) {
	i, _ := slices.BinarySearchFunc(ix.dirents, ino, func(d direntRef, ino uint32) int { return cmp.Compare(d.pino, ino) })
	j := i
	for j < len(ix.dirents) && ix.dirents[j].pino == ino {
		j++
	}
	return i, j
}
