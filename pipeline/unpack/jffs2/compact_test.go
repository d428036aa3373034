package jffs2

import (
	"bytes"
	"hash/maphash"
	"slices"
	"testing"

	"github.com/fwvet/fwvet/pipeline"
)

// TestCompactCollisions: dirents whose names share a hash are told apart
// by their names, so a collision neither merges two names nor lets an
// older dirent of a name survive.
func TestCompactCollisions(t *testing.T) {
	img := make([]byte, 64*64)
	var ds []direntRef
	put := func(slot int, pino, ino, version uint32, name string) {
		copy(img[slot*64+direntSize:], name)
		// One hash for all: as if every name collided.
		ds = append(ds, direntRef{pino: pino, ino: ino, version: version, hash: 7, off4: uint32(slot * 16), nlen: uint8(len(name))})
	}
	put(0, 1, 10, 5, "a")
	put(1, 1, 11, 3, "b")
	put(2, 1, 12, 9, "a") // newest "a"
	put(3, 1, 13, 3, "b") // "b" at an equal version, found later: wins
	put(4, 2, 14, 1, "a") // another directory
	put(5, 1, 0, 2, "c")  // a deletion, kept until the scan ends
	put(6, 1, 15, 1, "c")
	ix := &index{r: bytes.NewReader(img), seed: maphash.MakeSeed(), dirents: slices.Clone(ds)}
	lim := pipeline.DefaultLimits()
	if err := ix.compact(lim); err != nil {
		t.Fatal(err)
	}
	var got []uint32
	for _, d := range ix.dirents {
		got = append(got, d.ino)
	}
	slices.Sort(got)
	if want := []uint32{0, 12, 13, 14}; !slices.Equal(got, want) {
		t.Errorf("inodes kept %v, want %v", got, want)
	}
	lim.MaxEntries = 3
	ix.dirents = ds
	if err := ix.compact(lim); err == nil {
		t.Error("4 names kept under a limit of 3 entries, want a limit error")
	}
}
