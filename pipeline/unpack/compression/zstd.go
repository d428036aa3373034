package compression

import (
	"bytes"
	"io"

	"github.com/klauspost/compress/zstd"

	"github.com/fwvet/fwvet/pipeline"
)

// Zstd reads Zstandard frames.
type Zstd struct{}

var (
	_ pipeline.Decompressor = Zstd{}
	_ pipeline.Carvable     = Zstd{}
)

// MaxZstdWindow bounds the memory a hostile frame header can ask for.
const MaxZstdWindow = 128 << 20

// Name implements pipeline.Format.
func (Zstd) Name() string { return "zstd" }

// Match implements pipeline.Format.
func (Zstd) Match(head []byte) bool { return bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}) }

// NewReader implements pipeline.Decompressor.
func (Zstd) NewReader(r io.Reader) (io.ReadCloser, error) {
	d, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(MaxZstdWindow), zstd.WithDecoderLowmem(true))
	if err != nil {
		return nil, err
	}
	return d.IOReadCloser(), nil
}

// Signatures implements pipeline.Carvable.
func (Zstd) Signatures() []pipeline.Signature {
	return []pipeline.Signature{{Magic: []byte{0x28, 0xb5, 0x2f, 0xfd}}}
}
