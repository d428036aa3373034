package jffs2_test

import (
	"testing"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/fixture"
	"github.com/fwvet/fwvet/pipeline/unpack/jffs2"
)

// FuzzJFFS2: a JFFS2 reader meets only hostile images. Whatever the bytes,
// Walk, Span and reading every file end in data or an error, never a panic,
// an endless loop or an allocation the image does not justify.
func FuzzJFFS2(f *testing.F) {
	for _, seed := range []string{"fw/jffs2-tiny-le.img", "fw/jffs2-tiny-be-rtime.img", "fw/jffs2-tiny-le-lzo.img"} {
		f.Add(fixture.ReadFile(f, seed))
	}
	lim := pipeline.DefaultLimits()
	lim.MaxEntries = 5000
	// A mutated size field makes a file of holes up to 4 GiB: reading 16
	// MiB of zeros per file would leave the fuzzer a few inputs a second.
	lim.MaxFileSize = 1 << 20
	f.Fuzz(func(t *testing.T, data []byte) {
		(jffs2.Format{}).Match(data) // more than a head, too
		fixture.WalkAndRead(t, jffs2.Format{}, data, lim, 1<<20)
	})
}
