package squashfs_test

import (
	"testing"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/fixture"
	"github.com/fwvet/fwvet/pipeline/unpack/squashfs"
)

// FuzzWalk: a squashfs reader meets only hostile images. Whatever the bytes,
// Walk and reading every file end in data or an error, never a panic, an
// endless loop or an allocation the image does not justify.
func FuzzWalk(f *testing.F) {
	for _, seed := range []string{"fw/tiny-gzip.sqfs", "fw/tiny-xz.sqfs", "fw/tiny-zstd.sqfs", "fw/tiny-lzo.sqfs", "fw/tiny-lz4.sqfs"} {
		f.Add(fixture.ReadFile(f, seed))
	}
	lim := pipeline.DefaultLimits()
	lim.MaxEntries = 5000
	lim.MaxFileSize = 8 << 20
	f.Fuzz(func(t *testing.T, data []byte) {
		fixture.WalkAndRead(t, squashfs.Format{}, data, lim, 16<<20)
	})
}
