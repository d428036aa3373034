package archive_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"testing"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/fixture"
	"github.com/fwvet/fwvet/pipeline/unpack/archive"
)

func fuzzArchive(f *testing.F, a pipeline.Container, seeds ...string) {
	for _, seed := range seeds {
		b, err := os.ReadFile(fixture.Path(f, seed))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	lim := pipeline.DefaultLimits()
	f.Fuzz(func(t *testing.T, data []byte) {
		var files []pipeline.OpenFunc
		n := 0
		_ = a.Walk(context.Background(), bytes.NewReader(data), int64(len(data)), lim, func(h *pipeline.Header, open pipeline.OpenFunc) error {
			if n++; n > 10000 {
				return io.EOF
			}
			if h.Size < 0 {
				t.Errorf("%s: negative size %d for %q", a.Name(), h.Size, h.Name)
			}
			if open != nil {
				files = append(files, open)
			}
			return nil
		})
		for _, open := range files {
			if rc, err := open(context.Background()); err == nil {
				io.Copy(io.Discard, io.LimitReader(rc, 16<<20))
				rc.Close()
			}
		}
	})
}

func FuzzTar(f *testing.F) {
	fuzzArchive(f, archive.Tar{}, "fw/tiny.tar", "hostile/dotdot.tar", "hostile/hardlink-out.tar")
}

func FuzzCpio(f *testing.F) { fuzzArchive(f, archive.Cpio{}, "fw/tiny.cpio", "fw/tiny-odc.cpio") }

func FuzzZip(f *testing.F) { fuzzArchive(f, archive.Zip{}, "fw/tiny.zip", "hostile/traversal.zip") }
