package ihex_test

import (
	"bytes"
	"io"
	"os"
	"testing"

	"github.com/fwvet/fwvet/pipeline/fixture"
	"github.com/fwvet/fwvet/pipeline/unpack/ihex"
)

// FuzzIHex: whatever the text, Match and reading the image to a bound end
// in data or an error, never a panic, a hang or an allocation the input
// does not justify.
func FuzzIHex(f *testing.F) {
	for _, seed := range []string{"fw/ihex-tiny.hex", "fw/ihex-gaps.hex"} {
		b, err := os.ReadFile(fixture.Path(f, seed))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(":020000021000EC\n:0400000001020304F2\n:020000040002F8\n:03000000050607EB\n:00000001FF\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var h ihex.Format
		h.Match(data)
		rc, err := h.NewReader(bytes.NewReader(data))
		if err != nil {
			return
		}
		io.Copy(io.Discard, io.LimitReader(rc, 8<<20))
		rc.Close()
	})
}
