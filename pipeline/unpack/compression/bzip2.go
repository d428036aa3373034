package compression

import (
	"bytes"
	"compress/bzip2"
	"io"

	"github.com/fwvet/fwvet/pipeline"
)

// Bzip2 reads bzip2 streams.
type Bzip2 struct{}

var (
	_ pipeline.Decompressor = Bzip2{}
	_ pipeline.Carvable     = Bzip2{}
)

// Name implements pipeline.Format.
func (Bzip2) Name() string { return "bzip2" }

// Match implements pipeline.Format: "BZh", a block size digit, then the
// magic of the first block (or of the end of an empty stream).
func (Bzip2) Match(head []byte) bool {
	if len(head) < 10 || !bytes.HasPrefix(head, []byte("BZh")) || head[3] < '1' || head[3] > '9' {
		return false
	}
	return bytes.Equal(head[4:10], []byte{0x31, 0x41, 0x59, 0x26, 0x53, 0x59}) ||
		bytes.Equal(head[4:10], []byte{0x17, 0x72, 0x45, 0x38, 0x50, 0x90})
}

// NewReader implements pipeline.Decompressor.
func (Bzip2) NewReader(r io.Reader) (io.ReadCloser, error) {
	return io.NopCloser(bzip2.NewReader(r)), nil
}

// Signatures implements pipeline.Carvable.
func (Bzip2) Signatures() []pipeline.Signature {
	return []pipeline.Signature{{Magic: []byte("BZh")}}
}
