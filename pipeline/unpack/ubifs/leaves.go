package ubifs

import (
	"encoding/binary"
	"slices"
	"sort"
)

// leaves is a list of index leaves in key order, packed: at the entry
// limit an image has millions of leaves, and each tree of a diff keeps
// its file leaves for as long as it lives. In key order a leaf differs
// little from the one before, so each is stored as its differences: the
// increase of the inode number, the key (its increase within one inode),
// the move of its node on flash in 8-byte units (nodes start 8-byte
// aligned) and the node's length over minLeafLen, as varints, a few bytes
// in all. Every markEvery-th leaf is kept whole in marks instead, where a
// search starts. Nothing in it is a pointer.
type leaves struct {
	lebSize uint64
	n       int
	buf     []byte
	marks   []mark
}

// markEvery bounds the leaves decoded to find one.
const markEvery = 32

// minLeafLen is the shortest node a leaf may point to (checkPos): a data
// node's header.
const minLeafLen = dataHdrSize

// mark is a leaf kept whole: off is its node's place in the image, and at
// where the next leaf's bytes start in buf.
type mark struct {
	inum, key, len uint32
	off            uint64
	at             int
}

// packer packs leaves as the index walk finds them. A committed index
// lists them in key order, and they are packed at once; from the first
// out of order (a hostile index), they are collected whole instead, to be
// sorted at the end.
type packer struct {
	x       leaves
	last    leaf
	lastOff uint64
	// dedup keeps only the first of leaves of equal keys.
	dedup bool
	flat  []leaf
	mixed bool // flat holds the leaves
}

func newPacker(lebSize uint32, dedup bool) *packer {
	return &packer{x: leaves{lebSize: uint64(lebSize)}, dedup: dedup}
}

// add adds l, whose position passed checkPos.
func (b *packer) add(l leaf) {
	if b.mixed {
		b.flat = append(b.flat, l)
		return
	}
	if b.x.n > 0 {
		switch c := cmpLeaf(l, b.last); {
		case c < 0:
			b.flat = append(b.x.unpack(), l)
			b.mixed, b.x = true, leaves{lebSize: b.x.lebSize}
			return
		case c == 0 && b.dedup:
			return
		}
	}
	b.push(l)
}

// push packs l, which is not before the last leaf packed.
func (b *packer) push(l leaf) {
	x := &b.x
	off := uint64(l.p.lnum)*x.lebSize + uint64(l.p.offs)
	if x.n%markEvery == 0 {
		x.marks = append(x.marks, mark{inum: l.inum, key: l.key, len: l.p.len, off: off, at: len(x.buf)})
	} else {
		key := l.key
		if l.inum == b.last.inum {
			key -= b.last.key
		}
		x.buf = binary.AppendUvarint(x.buf, uint64(l.inum-b.last.inum))
		x.buf = binary.AppendUvarint(x.buf, uint64(key))
		x.buf = binary.AppendVarint(x.buf, int64(off-b.lastOff)/8)
		x.buf = binary.AppendUvarint(x.buf, uint64(l.p.len-minLeafLen))
	}
	x.n++
	b.last, b.lastOff = l, off
}

// done returns the leaves added, in key order.
func (b *packer) done() leaves {
	if b.mixed {
		ls := b.flat
		b.flat = nil
		if !slices.IsSortedFunc(ls, cmpLeaf) {
			slices.SortStableFunc(ls, cmpLeaf)
		}
		b.mixed, b.x = false, leaves{lebSize: b.x.lebSize}
		for _, l := range ls {
			if b.x.n == 0 || !b.dedup || cmpLeaf(l, b.last) != 0 {
				b.push(l)
			}
		}
	}
	// Kept for the life of the tree: without the spare capacity of append.
	b.x.buf = slices.Clone(b.x.buf)
	b.x.marks = slices.Clone(b.x.marks)
	return b.x
}

// unpack returns the leaves of x.
func (x *leaves) unpack() []leaf {
	out := make([]leaf, 0, x.n)
	for c := x.find(0, 0); c.ok(); c.next() {
		out = append(out, c.l)
	}
	return out
}

// cursor is a place in leaves: leaf i, unpacked, while ok.
type cursor struct {
	x   *leaves
	i   int
	at  int // where leaf i+1's bytes start in buf, unless it is marked
	off uint64
	l   leaf
}

func (c *cursor) ok() bool { return c.i < c.x.n }

// next moves to the following leaf.
func (c *cursor) next() {
	c.i++
	switch {
	case c.i >= c.x.n:
		return
	case c.i%markEvery == 0:
		c.load(c.x.marks[c.i/markEvery])
		return
	}
	dInum := c.uvarint()
	key := uint32(c.uvarint())
	if dInum == 0 {
		key += c.l.key
	}
	n, k := binary.Varint(c.x.buf[c.at:])
	if k <= 0 {
		panic("ubifs: packed leaves are damaged")
	}
	c.at += k
	c.l.inum += uint32(dInum)
	c.l.key = key
	c.off += uint64(n * 8)
	c.l.p = c.x.pos(c.off, uint32(c.uvarint())+minLeafLen)
}

func (c *cursor) uvarint() uint64 {
	v, k := binary.Uvarint(c.x.buf[c.at:])
	if k <= 0 {
		panic("ubifs: packed leaves are damaged")
	}
	c.at += k
	return v
}

func (c *cursor) load(m mark) {
	c.at, c.off = m.at, m.off
	c.l = leaf{inum: m.inum, key: m.key, p: c.x.pos(m.off, m.len)}
}

// pos is the position of the node at image offset off: a node lies within
// one LEB, so the offset in it is less than the LEB size.
func (x *leaves) pos(off uint64, n uint32) pos {
	return pos{lnum: uint32(off / x.lebSize), offs: uint32(off % x.lebSize), len: n}
}

// find returns a cursor at the first leaf not before (inum, key), which is
// not ok when there is none.
func (x *leaves) find(inum, key uint32) cursor {
	want := leaf{inum: inum, key: key}
	g := sort.Search(len(x.marks), func(j int) bool {
		m := x.marks[j]
		return cmpLeaf(leaf{inum: m.inum, key: m.key}, want) >= 0
	})
	c := cursor{x: x}
	if g == 0 {
		if x.n > 0 {
			c.load(x.marks[0])
		}
		return c
	}
	c.i = (g - 1) * markEvery
	c.load(x.marks[g-1])
	for c.ok() && cmpLeaf(c.l, want) < 0 {
		c.next()
	}
	return c
}
