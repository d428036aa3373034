package ubi_test

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/unpack/ubi"
)

// FuzzUBI: a UBI reader meets only hostile images. Whatever the bytes,
// Match, Span, Walk and reading every volume at random and in sequence end
// in data or an error, never a panic, an endless loop or an allocation the
// image does not justify.
func FuzzUBI(f *testing.F) {
	for _, seed := range []string{"fw/ubi-tiny-nor.ubi", "fw/ubi-tiny-static.ubi", "fw/ubi-tiny.ubi"} {
		f.Add(readFixture(f, seed))
	}
	lim := pipeline.DefaultLimits()
	lim.MaxEntries = 5000
	// Up to 128 volumes of mostly unmapped LEBs: each is kept small so that
	// an execution stays quick.
	lim.MaxFileSize = 1 << 20
	f.Fuzz(func(t *testing.T, data []byte) {
		u := ubi.Format{}
		r := bytes.NewReader(data)
		u.Match(data[:min(len(data), pipeline.MatchSize)])
		if n, err := u.Span(r, int64(len(data))); err == nil && (n <= 0 || n > int64(len(data))) {
			t.Fatalf("span %d of %d bytes", n, len(data))
		}
		var files []pipeline.OpenFunc
		err := u.Walk(context.Background(), r, int64(len(data)), lim, func(h *pipeline.Header, open pipeline.OpenFunc) error {
			if h.Size < 0 {
				t.Fatalf("%s: size %d", h.Name, h.Size)
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
			if ra, ok := rc.(io.ReaderAt); ok {
				var b [4096]byte
				ra.ReadAt(b[:], 5000)
			}
			io.Copy(io.Discard, io.LimitReader(rc, 1<<20))
			rc.Close()
		}
	})
}
