package jffs2_test

import (
	"bytes"
	"context"
	"io"
	"os"
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
		if n, err := (jffs2.Format{}).Span(r, int64(len(data))); err == nil && (n <= 0 || n > int64(len(data))) {
			t.Fatalf("Span %d of %d bytes", n, len(data))
		}
		(jffs2.Format{}).Match(data)
		var files []pipeline.OpenFunc
		_ = jffs2.Format{}.Walk(context.Background(), r, int64(len(data)), lim, func(h *pipeline.Header, open pipeline.OpenFunc) error {
			if open != nil {
				files = append(files, open)
			}
			return nil
		})
		for _, open := range files {
			rc, err := open(context.Background())
			if err != nil {
				continue
			}
			io.Copy(io.Discard, io.LimitReader(rc, 16<<20))
			if ra, ok := rc.(io.ReaderAt); ok {
				buf := make([]byte, 100)
				ra.ReadAt(buf, 3)
			}
			rc.Close()
		}
	})
}
