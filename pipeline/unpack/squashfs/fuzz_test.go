package squashfs_test

import (
	"bytes"
	"context"
	"io"
	"os"
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
		b, err := os.ReadFile(fixture.Path(f, seed))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	lim := pipeline.DefaultLimits()
	lim.MaxEntries = 5000
	lim.MaxFileSize = 8 << 20
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		var files []pipeline.OpenFunc
		n := 0
		err := squashfs.Format{}.Walk(context.Background(), r, int64(len(data)), lim, func(h *pipeline.Header, open pipeline.OpenFunc) error {
			n++
			if n > 5000 {
				return io.EOF
			}
			if open != nil {
				files = append(files, open)
			}
			return nil
		})
		_ = err
		for _, open := range files {
			rc, err := open(context.Background())
			if err != nil {
				continue
			}
			io.Copy(io.Discard, io.LimitReader(rc, 16<<20))
			rc.Close()
		}
	})
}
