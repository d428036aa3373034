package ubifs

import (
	"cmp"
	"context"
	"fmt"
)

// Key types of the simple key format: the top 3 bits of the key's second word.
const (
	keyIno  = 0
	keyData = 1
	keyDent = 2
	keyXent = 3

	keyValueMask = 0x1FFFFFFF
)

// index holds where the leaves of the committed index are: the only part
// of the file system kept in memory.
type index struct {
	// nodes holds the inode and data leaves: an inode's leaf, then its
	// data leaves by block. Opening a file needs them, for as long as the
	// tree listing the file lives.
	nodes leaves
	// dents holds the directory entry leaves, by parent inode and in index
	// order within one parent; only the walk needs them.
	dents leaves
}

// leaf is one leaf of the index: the inode its key names, what else the
// key says, and the node's position.
type leaf struct {
	inum uint32
	// key is 0 for an inode and one more than the block number for a data
	// node. It is 0 for a directory entry too: the reader does not use the
	// name hash, and lists a directory's entries in index order.
	key uint32
	p   pos
}

func cmpLeaf(a, b leaf) int {
	if c := cmp.Compare(a.inum, b.inum); c != 0 {
		return c
	}
	return cmp.Compare(a.key, b.key)
}

type indexWalker struct {
	v            *volume
	nodes, dents *packer
	// seen holds the index nodes visited: a node referenced twice makes the
	// tree a graph, whose walk could cost exponential time.
	seen     map[uint64]bool
	branches int64
	// maxBranches bounds the branches read: index nodes do not overlap on
	// flash, so their branches cannot outnumber the image's bytes over the
	// branch size.
	maxBranches int64
}

// readIndex walks the index B-tree from root and records every leaf.
func (v *volume) readIndex(ctx context.Context, root pos) (*index, error) {
	w := &indexWalker{
		v: v,
		// Of leaves of one key, the first counts: the first leaf of an
		// inode, the first of a file's block.
		nodes:       newPacker(v.sb.lebSize, true),
		dents:       newPacker(v.sb.lebSize, false),
		seen:        map[uint64]bool{},
		maxBranches: v.size / int64(v.branchSize),
	}
	if err := w.node(ctx, root, -1); err != nil {
		return nil, err
	}
	w.seen = nil
	return &index{nodes: w.nodes.done(), dents: w.dents.done()}, nil
}

// node reads the index node at p, which must be at level want (any level
// up to maxLevels for the root, want < 0), and everything below it.
func (w *indexWalker) node(ctx context.Context, p pos, want int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	k := uint64(p.lnum)<<32 | uint64(p.offs)
	if w.seen[k] {
		return corrupt("index node at %s is referenced twice", p)
	}
	w.seen[k] = true
	b, err := w.v.readNode(p, nodeIdx)
	if err != nil {
		return fmt.Errorf("index node: %w", err)
	}
	count, level := int(le.Uint16(b[24:])), int(le.Uint16(b[26:]))
	switch {
	case want < 0 && level > maxLevels:
		return corrupt("index root at %s has level %d, more than %d", p, level, maxLevels)
	case want >= 0 && level != want:
		return corrupt("index node at %s has level %d, its parent expects %d", p, level, want)
	case count == 0 || idxHdrSize+count*w.v.branchSize != len(b):
		return corrupt("index node at %s of %d bytes claims %d branches", p, len(b), count)
	}
	w.branches += int64(count)
	if w.branches > w.maxBranches {
		return corrupt("index has more than %d branches, more than the image can hold", w.maxBranches)
	}
	for i := range count {
		br := b[idxHdrSize+i*w.v.branchSize:]
		child := pos{le.Uint32(br[0:]), le.Uint32(br[4:]), le.Uint32(br[8:])}
		inum, kv := le.Uint32(br[12:]), le.Uint32(br[16:])
		if level > 0 {
			if err := w.node(ctx, child, level-1); err != nil {
				return err
			}
			continue
		}
		if err := w.leaf(child, inum, kv); err != nil {
			return fmt.Errorf("index node at %s branch %d: %w", p, i, err)
		}
	}
	return nil
}

func (w *indexWalker) leaf(p pos, inum, kv uint32) error {
	typ := uint8(kv >> 29)
	if typ > keyXent {
		return corrupt("leaf key of unknown type %d", typ)
	}
	// Key types and node types share their numbers.
	if err := w.v.checkPos(p, typ); err != nil {
		return err
	}
	switch typ {
	case keyIno:
		// An inode key's value is unused: the first leaf of the inode
		// counts, whatever a hostile index put there.
		w.nodes.add(leaf{inum: inum, p: p})
	case keyData:
		w.nodes.add(leaf{inum: inum, key: kv&keyValueMask + 1, p: p})
	case keyDent:
		w.dents.add(leaf{inum: inum, p: p})
	}
	return nil
}

// inode returns where the node of inode inum lies.
func (x *index) inode(inum uint32) (pos, bool) {
	c := x.nodes.find(inum, 0)
	if !c.ok() || c.l.inum != inum || c.l.key != 0 {
		return pos{}, false
	}
	return c.l.p, true
}

// dataCursor finds the data leaves of one file in the order a reader
// mostly wants them, front to back: a search goes on from where the last
// one ended, a step or two for the next block or a hole, unless it is for
// an earlier block or a long way on.
type dataCursor struct {
	c   cursor
	key uint32 // of the last search: c is at the first leaf not before it
}

// data returns where block i of file inum lies, or false for a hole,
// searching from d, which is kept for the file's next search.
func (x *index) data(d *dataCursor, inum uint32, i int64) (pos, bool) {
	if i < 0 || i > keyValueMask {
		return pos{}, false
	}
	want := leaf{inum: inum, key: uint32(i) + 1}
	if d.c.x == nil || want.key < d.key {
		d.c = x.nodes.find(inum, want.key)
	}
	for steps := 0; d.c.ok() && cmpLeaf(d.c.l, want) < 0; steps++ {
		if steps == markEvery {
			d.c = x.nodes.find(inum, want.key)
			break
		}
		d.c.next()
	}
	d.key = want.key
	if !d.c.ok() || d.c.l.inum != inum || d.c.l.key != want.key {
		return pos{}, false
	}
	return d.c.l.p, true
}

// dirents returns where the entries of directory inum lie, or false when
// there are more than limit.
func (x *index) dirents(inum uint32, limit int64) ([]pos, bool) {
	var out []pos
	for c := x.dents.find(inum, 0); c.ok() && c.l.inum == inum; c.next() {
		if int64(len(out)) >= limit {
			return nil, false
		}
		out = append(out, c.l.p)
	}
	return out, true
}
