package sparse_test

import (
	"bytes"
	"io"
	"os"
	"testing"

	"github.com/fwvet/fwvet/pipeline/fixture"
	"github.com/fwvet/fwvet/pipeline/unpack/sparse"
)

// FuzzSparse: whatever the bytes, Match, Span and reading the stream to a
// bound end in data or an error, never a panic, a hang or an allocation
// the input does not justify.
func FuzzSparse(f *testing.F) {
	for _, seed := range []string{"fw/sparse-tiny.simg", "fw/sparse-tiny-crc.simg", "fw/sparse-tiny-sqfs.simg"} {
		b, err := os.ReadFile(fixture.Path(f, seed))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var s sparse.Format
		s.Match(data)
		s.Span(bytes.NewReader(data), int64(len(data)))
		rc, err := s.NewReader(bytes.NewReader(data))
		if err != nil {
			return
		}
		io.Copy(io.Discard, io.LimitReader(rc, 8<<20))
		rc.Close()
	})
}
