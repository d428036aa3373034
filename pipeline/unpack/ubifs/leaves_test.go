package ubifs

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// refIndex is the index as maps, the way the reader kept it before its
// leaves were packed: the first leaf of an inode, a file's blocks with the
// first of each, and the directory entries in index order.
type refIndex struct {
	inodes map[uint32]pos
	dents  map[uint32][]pos
	data   map[uint32]map[uint32]pos
}

// TestLeavesMatchMaps: whatever the order, duplicates and values of the
// leaves, the packed index finds what maps of them find.
func TestLeavesMatchMaps(t *testing.T) {
	const lebSize = 1 << 24
	for seed := range uint64(200) {
		rng := rand.New(rand.NewPCG(seed, 7))
		n := rng.IntN(3000)
		if seed == 0 {
			n = 0
		}
		sorted := seed%2 == 0
		// Blocks enough for a cursor to go further than the leaves
		// between two marks.
		nblocks := uint32(20)
		if seed%5 == 1 {
			nblocks = 200
		}
		inums := []uint32{0, 1, 2, 3, 1000, 1 << 31, 0xFFFFFFFE, 0xFFFFFFFF}
		randPos := func() pos {
			n := uint32(minLeafLen + rng.IntN(maxNodeSize-minLeafLen+1))
			lnum := rng.Uint32()
			if rng.IntN(2) == 0 {
				lnum = rng.Uint32N(4)
			}
			return pos{lnum, rng.Uint32N((lebSize-n)/8+1) * 8, n}
		}
		type in struct {
			typ uint8
			l   leaf
		}
		var ins []in
		for range n {
			inum := inums[rng.IntN(len(inums))]
			if rng.IntN(2) == 0 {
				inum = rng.Uint32N(50)
			}
			if seed%5 == 1 {
				// Runs of one inode across many marks.
				inum = 7
			}
			typ := uint8(rng.IntN(3))
			l := leaf{inum: inum, p: randPos()}
			if typ == keyData {
				block := rng.Uint32N(nblocks)
				if rng.IntN(10) == 0 {
					block = keyValueMask - rng.Uint32N(3)
				}
				l.key = block + 1
			}
			ins = append(ins, in{typ, l})
		}
		if sorted {
			// Directory entries after the other leaves, by parent alone.
			slices.SortStableFunc(ins, func(a, b in) int {
				switch da, db := a.typ == keyDent, b.typ == keyDent; {
				case da != db:
					return int(a.typ) - int(b.typ)
				case da:
					return cmpLeaf(leaf{inum: a.l.inum}, leaf{inum: b.l.inum})
				}
				return cmpLeaf(a.l, b.l)
			})
		}
		ref := refIndex{map[uint32]pos{}, map[uint32][]pos{}, map[uint32]map[uint32]pos{}}
		nodes, dents := newPacker(lebSize, true), newPacker(lebSize, false)
		for _, e := range ins {
			switch e.typ {
			case keyIno:
				if _, dup := ref.inodes[e.l.inum]; !dup {
					ref.inodes[e.l.inum] = e.l.p
				}
				nodes.add(e.l)
			case keyData:
				if ref.data[e.l.inum] == nil {
					ref.data[e.l.inum] = map[uint32]pos{}
				}
				if _, dup := ref.data[e.l.inum][e.l.key-1]; !dup {
					ref.data[e.l.inum][e.l.key-1] = e.l.p
				}
				nodes.add(e.l)
			case keyDent:
				ref.dents[e.l.inum] = append(ref.dents[e.l.inum], e.l.p)
				dents.add(e.l)
			}
		}
		if sorted && (nodes.mixed || dents.mixed) || !sorted && n > 100 && !nodes.mixed {
			t.Fatalf("seed %d: sorted %v, but packed at once %v, %v", seed, sorted, !nodes.mixed, !dents.mixed)
		}
		x := index{nodes: nodes.done(), dents: dents.done()}
		query := slices.Clone(inums)
		for i := range uint32(60) {
			query = append(query, i)
		}
		for _, inum := range query {
			p, ok := x.inode(inum)
			if want, wok := ref.inodes[inum]; ok != wok || p != want {
				t.Fatalf("seed %d: inode %d at %v %v, want %v %v", seed, inum, p, ok, want, wok)
			}
			got, ok := x.dirents(inum, 1<<20)
			if want := ref.dents[inum]; !ok || !slices.Equal(got, want) {
				t.Fatalf("seed %d: entries of %d %v %v, want %v", seed, inum, got, ok, want)
			}
			if len(got) > 0 {
				if _, ok := x.dirents(inum, int64(len(got)-1)); ok {
					t.Fatalf("seed %d: %d entries of %d within a limit of one less", seed, len(got), inum)
				}
			}
			// A reader's cursor goes front to back, then anywhere; a fresh
			// one finds each block from scratch.
			blocks := []int64{-1, 0, 1, 2, 3, 5, 19, 20, 100, keyValueMask - 2, keyValueMask, keyValueMask + 1}
			for range 40 {
				blocks = append(blocks, rng.Int64N(int64(nblocks)+2)-1)
			}
			var d dataCursor
			for _, b := range blocks {
				want, wok := ref.data[inum][uint32(b)]
				if b < 0 || b > keyValueMask {
					want, wok = pos{}, false
				}
				for _, d := range []*dataCursor{&d, {}} {
					if p, ok := x.data(d, inum, b); ok != wok || p != want {
						t.Fatalf("seed %d: block %d of %d at %v %v, want %v %v", seed, b, inum, p, ok, want, wok)
					}
				}
			}
		}
	}
}
