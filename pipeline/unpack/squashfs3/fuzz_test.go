package squashfs3_test

import (
	"testing"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/fixture"
	"github.com/fwvet/fwvet/pipeline/unpack/squashfs3"
)

// smallTree keeps the seeds small, so the fuzzer mutates tables rather
// than spending its time in file data.
func smallTree() *node {
	return &node{typ: pipeline.TypeDir, mode: 0755, children: []*node{
		{name: "bin", typ: pipeline.TypeDir, mode: 0755, children: []*node{
			{name: "busybox", typ: pipeline.TypeFile, mode: 04755, data: pseudoText(1, 5000), long: true},
			{name: "sh", typ: pipeline.TypeSymlink, mode: 0777, target: "busybox"},
		}},
		{name: "dev", typ: pipeline.TypeDir, mode: 0755, long: true, children: []*node{
			{name: "console", typ: pipeline.TypeChar, mode: 0600, major: 5, minor: 1},
			{name: "log", typ: pipeline.TypeSocket, mode: 0666},
		}},
		{name: "etc", typ: pipeline.TypeDir, mode: 0755, children: []*node{
			{name: "passwd", typ: pipeline.TypeFile, mode: 0644, gid: 5, data: []byte("root:x:0:0::/:/bin/sh\n")},
			{name: "empty", typ: pipeline.TypeFile, mode: 0644},
		}},
	}}
}

// FuzzSquashfs3: a squashfs reader meets only hostile images. Whatever the
// bytes, Match, Span, Walk and reading every file end in data or an error,
// never a panic, an endless loop or an allocation the image does not
// justify.
func FuzzSquashfs3(f *testing.F) {
	for _, o := range []imageOpts{
		{blockSize: 4096},
		{be: true, blockSize: 4096},
		{be: true, lzma: true, magic: "tqsh", blockSize: 4096},
		{be: true, ddwrt: true, magic: "tqsh", blockSize: 4096},
		{lzma: true, magic: "hsqt", blockSize: 4096, minor: 1, check: true},
	} {
		f.Add(buildImage(f, smallTree(), o))
	}
	lim := pipeline.DefaultLimits()
	lim.MaxEntries = 5000
	lim.MaxFileSize = 8 << 20
	f.Fuzz(func(t *testing.T, data []byte) {
		fixture.WalkAndRead(t, squashfs3.Format{}, data, lim, 16<<20)
	})
}
