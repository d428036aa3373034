package unpack

import (
	"hash/maphash"

	"github.com/fwvet/fwvet/pipeline"
)

// names holds a container's entries while it is walked, by path, and the
// file of each waiting to be hashed. Paths are found by a hash of their
// bytes that points at the entry's slot, so the path strings are the
// entries' own: a map of strings (a slot, a file and a not-a-directory set
// each keyed by the path) cost about 150 bytes an entry, 49 MiB for the
// two trees of a /usr image, where this costs about 30. Every ancestor of
// a name is found in one pass over it, so a hostile archive of 4 KiB names
// of 2,000 levels is not quadratic in the name. The hash is seeded per
// container, so that names cannot be made to collide; paths that do
// collide are still told apart by their bytes.
type names struct {
	seed    maphash.Seed
	mask    uint64 // all ones; a test clears bits to make paths collide
	slot    map[uint64]int32
	more    map[uint64][]int32 // further slots whose paths have the same hash
	entries []*pipeline.Entry
	files   []*pending // the file at each slot waiting to be hashed, or nil
}

func newNames() *names {
	return &names{seed: maphash.MakeSeed(), mask: ^uint64(0), slot: map[uint64]int32{}}
}

// lookup returns the slot of the entry at path p.
func (n *names) lookup(p string) (int, bool) {
	return n.find(maphash.String(n.seed, p)&n.mask, p)
}

func (n *names) find(h uint64, p string) (int, bool) {
	i, ok := n.slot[h]
	if !ok {
		return 0, false
	}
	if n.entries[i].Path == p {
		return int(i), true
	}
	for _, i := range n.more[h] {
		if n.entries[i].Path == p {
			return int(i), true
		}
	}
	return 0, false
}

// add puts e, and its pending file if it is one, in a new slot. Its path
// must not be in n yet.
func (n *names) add(e *pipeline.Entry, p *pending) {
	i := int32(len(n.entries))
	n.entries = append(n.entries, e)
	n.files = append(n.files, p)
	if p != nil {
		p.slot = i
	}
	h := maphash.String(n.seed, e.Path) & n.mask
	if _, taken := n.slot[h]; !taken {
		n.slot[h] = i
		return
	}
	if n.more == nil {
		n.more = map[uint64][]int32{}
	}
	n.more[h] = append(n.more[h], i)
}

// replace puts e at slot i, in place of the entry at its path.
func (n *names) replace(i int, e *pipeline.Entry, p *pending) {
	n.entries[i], n.files[i] = e, p
	if p != nil {
		p.slot = int32(i)
	}
}

// ancestor returns the outermost proper ancestor of the clean, rooted path
// p that is in n and is not a directory.
func (n *names) ancestor(p string) (*pipeline.Entry, bool) {
	if len(n.entries) == 0 {
		return nil, false
	}
	var h maphash.Hash
	h.SetSeed(n.seed)
	for i := 0; i < len(p); i++ {
		// A hash's sum depends only on the bytes written so far, and is
		// the sum maphash.String gives for them.
		if p[i] == '/' && i > 0 {
			if j, ok := n.find(h.Sum64()&n.mask, p[:i]); ok && n.entries[j].Type != pipeline.TypeDir {
				return n.entries[j], true
			}
		}
		h.WriteByte(p[i])
	}
	return nil, false
}

// release drops the entries and files, which the caller has packed.
// seal drops what lookups need, once no more names are added.
func (n *names) seal() {
	n.slot, n.more = nil, nil
}

func (n *names) release() {
	clear(n.entries)
	clear(n.files)
	n.entries, n.files, n.slot, n.more = nil, nil, nil, nil
}
