package ubifs

import (
	"context"
	"fmt"
	"slices"
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
	inodes map[uint32]pos
	dents  map[uint32][]pos     // by parent directory inode
	data   map[uint32][]dataRef // by file inode, in block order
}

type dataRef struct {
	block uint32
	p     pos
}

type indexWalker struct {
	v   *volume
	idx *index
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
		v:           v,
		idx:         &index{inodes: map[uint32]pos{}, dents: map[uint32][]pos{}, data: map[uint32][]dataRef{}},
		seen:        map[uint64]bool{},
		maxBranches: v.size / int64(v.branchSize),
	}
	if err := w.node(ctx, root, -1); err != nil {
		return nil, err
	}
	for inum, refs := range w.idx.data {
		w.idx.data[inum] = sortRefs(refs)
	}
	return w.idx, nil
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
		if _, dup := w.idx.inodes[inum]; !dup {
			w.idx.inodes[inum] = p
		}
	case keyData:
		w.idx.data[inum] = append(w.idx.data[inum], dataRef{kv & keyValueMask, p})
	case keyDent:
		w.idx.dents[inum] = append(w.idx.dents[inum], p)
	}
	return nil
}

// sortRefs puts a file's data references in block order, keeping the first
// of duplicates. The index stores them sorted; a hostile one may not.
func sortRefs(refs []dataRef) []dataRef {
	cmp := func(a, b dataRef) int { return int(int64(a.block) - int64(b.block)) }
	if !slices.IsSortedFunc(refs, cmp) {
		slices.SortStableFunc(refs, cmp)
	}
	return slices.CompactFunc(refs, func(a, b dataRef) bool { return a.block == b.block })
}
