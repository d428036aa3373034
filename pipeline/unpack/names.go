package unpack

import (
	"hash/maphash"
)

// names finds a container's entries by path while it is walked. The
// entries themselves are packed in the run's index as they are met; a
// slot holds a record's id, whether it is a directory and its file
// waiting to be hashed. Paths are found by a hash of their bytes that
// points at the slot, and told apart by the record's key when hashes are
// equal, so no path is held twice: a /usr image's walk holds hundreds of
// thousands of entries, both trees of a diff at once. Every ancestor of a
// name is found in one pass over it, so a hostile archive of 4 KiB names
// of 2,000 levels is not quadratic in the name. The hash is seeded per
// container, so that names cannot be made to collide; paths that do
// collide are still told apart by their bytes.
type names struct {
	seed maphash.Seed
	mask uint64 // all ones; a test clears bits to make paths collide
	// slot is keyed by 32 bits of the hash: half the map of 64, and the
	// paths that share them are told apart all the same.
	slot  map[uint32]int32
	more  map[uint32][]int32 // further slots whose paths have the same hash
	slots []nameSlot
	// is reports whether the record id is the entry at path p.
	is func(id uint32, p string) bool
}

// nameSlot is one path's entry: its record and its file in the
// container's list of files to hash (-1 for none).
type nameSlot struct {
	id   uint32
	file int32
	dir  bool
}

func newNames(is func(id uint32, p string) bool) *names {
	return &names{seed: maphash.MakeSeed(), mask: ^uint64(0), slot: map[uint32]int32{}, is: is}
}

// lookup returns the slot of the entry at path p.
func (n *names) lookup(p string) (int, bool) {
	return n.find(uint32(maphash.String(n.seed, p)&n.mask), p, false)
}

// find returns the slot of the entry at p whose path hashes to h; with
// notDir, only an entry that is not a directory, whose path alone is then
// compared.
func (n *names) find(h uint32, p string, notDir bool) (int, bool) {
	i, ok := n.slot[h]
	if !ok {
		return 0, false
	}
	match := func(i int32) bool {
		s := n.slots[i]
		return !(notDir && s.dir) && n.is(s.id, p)
	}
	if match(i) {
		return int(i), true
	}
	for _, i := range n.more[h] {
		if match(i) {
			return int(i), true
		}
	}
	return 0, false
}

// add puts the entry at path p in a new slot. Its path must not be in n yet.
func (n *names) add(p string, s nameSlot) {
	i := int32(len(n.slots))
	n.slots = append(n.slots, s)
	h := uint32(maphash.String(n.seed, p) & n.mask)
	if _, taken := n.slot[h]; !taken {
		n.slot[h] = i
		return
	}
	if n.more == nil {
		n.more = map[uint32][]int32{}
	}
	n.more[h] = append(n.more[h], i)
}

// replace puts s at slot i, in place of the entry at its path.
func (n *names) replace(i int, s nameSlot) { n.slots[i] = s }

// ancestor returns the slot of the outermost proper ancestor of the
// clean, rooted path p that is in n and is not a directory.
func (n *names) ancestor(p string) (nameSlot, bool) {
	if len(n.slots) == 0 {
		return nameSlot{}, false
	}
	var h maphash.Hash
	h.SetSeed(n.seed)
	for i := 0; i < len(p); i++ {
		// A hash's sum depends only on the bytes written so far, and is
		// the sum maphash.String gives for them.
		if p[i] == '/' && i > 0 {
			if j, ok := n.find(uint32(h.Sum64()&n.mask), p[:i], true); ok {
				return n.slots[j], true
			}
		}
		h.WriteByte(p[i])
	}
	return nameSlot{}, false
}

// release drops the slots, once no more names are added or looked up.
func (n *names) release() {
	n.slots, n.slot, n.more = nil, nil, nil
}
