package unpack_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/fixture"
	"github.com/fwvet/fwvet/pipeline/unpack"
)

// FuzzUnpack feeds arbitrary bytes to the whole unpacker, every format and
// the recursion included. Whatever the input: no panic, no entry outside
// the tree's root, nothing left in the work directory after Close.
func FuzzUnpack(f *testing.F) {
	for _, seed := range []string{"fw/tiny-gzip.sqfs", "fw/tiny-xz.sqfs", "fw/tiny-zstd.sqfs", "fw/tiny.cpio", "fw/tiny-odc.cpio",
		"fw/tiny.tar", "fw/tiny.tar.gz", "fw/tiny.zip", "hostile/dotdot.tar", "hostile/symlink-write.tar", "hostile/hardlink-out.tar",
		"hostile/traversal.zip", "hostile/nest50.tar.gz"} {
		b, err := os.ReadFile(fixture.Path(f, seed))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	lim := pipeline.DefaultLimits()
	lim.MaxTotalBytes, lim.MaxFileSize, lim.MaxEntries, lim.RatioMinBytes = 64<<20, 16<<20, 10000, 1<<20
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		in := filepath.Join(dir, "input.bin")
		if err := os.WriteFile(in, data, 0o600); err != nil {
			t.Fatal(err)
		}
		work := filepath.Join(dir, "work")
		if err := os.Mkdir(work, 0o700); err != nil {
			t.Fatal(err)
		}
		u, err := unpack.New(unpack.Options{Limits: lim, WorkDir: work, Jobs: 2})
		if err != nil {
			t.Fatal(err)
		}
		tree, err := u.Unpack(context.Background(), &pipeline.Artifact{Name: "input.bin", Path: in, Size: int64(len(data))})
		if err != nil {
			return
		}
		for e := range tree.All() {
			if !strings.HasPrefix(e.Path, "/") || strings.Contains(e.Path, "/../") || strings.HasSuffix(e.Path, "/..") {
				t.Errorf("entry path %q escapes the root", e.Path)
			}
			if e.Type == pipeline.TypeFile && e.SHA256 != "" {
				if rc, err := e.Open(context.Background()); err == nil {
					rc.Close()
				}
			}
		}
		if err := tree.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		if ents, _ := os.ReadDir(work); len(ents) != 0 {
			t.Errorf("work directory holds %d files after Close", len(ents))
		}
	})
}
