package compression

import (
	"bytes"
	"io"

	"github.com/klauspost/compress/gzip"

	"github.com/fwvet/fwvet/pipeline"
)

// Gzip reads gzip streams, including concatenated members.
type Gzip struct{}

var _ pipeline.Decompressor = Gzip{}

// Name implements pipeline.Format.
func (Gzip) Name() string { return "gzip" }

// Match implements pipeline.Format: the magic and the deflate method byte.
func (Gzip) Match(head []byte) bool { return bytes.HasPrefix(head, []byte{0x1f, 0x8b, 0x08}) }

// NewReader implements pipeline.Decompressor.
func (Gzip) NewReader(r io.Reader) (io.ReadCloser, error) { return gzip.NewReader(r) }
