package ubi_test

import (
	"testing"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/fixture"
	"github.com/fwvet/fwvet/pipeline/unpack/ubi"
)

// FuzzUBI: a UBI reader meets only hostile images. Whatever the bytes,
// Match, Span, Walk and reading every volume at random and in sequence end
// in data or an error, never a panic, an endless loop or an allocation the
// image does not justify.
func FuzzUBI(f *testing.F) {
	for _, seed := range []string{"fw/ubi-tiny-nor.ubi", "fw/ubi-tiny-static.ubi", "fw/ubi-tiny.ubi"} {
		f.Add(fixture.ReadFile(f, seed))
	}
	lim := pipeline.DefaultLimits()
	lim.MaxEntries = 5000
	// Up to 128 volumes of mostly unmapped LEBs: each is kept small so that
	// an execution stays quick.
	lim.MaxFileSize = 1 << 20
	f.Fuzz(func(t *testing.T, data []byte) {
		fixture.WalkAndRead(t, ubi.Format{}, data, lim, 1<<20)
	})
}
