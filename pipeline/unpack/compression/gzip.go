package compression

import (
	"bufio"
	"bytes"
	"io"

	"github.com/klauspost/compress/gzip"

	"github.com/fwvet/fwvet/pipeline"
)

// Gzip reads gzip streams, including concatenated members. Bytes after the
// last member that do not start another one end the stream, as gzip -d
// ignores "trailing garbage": in a flash image a stream is followed by
// padding or the next partition.
type Gzip struct{}

var (
	_ pipeline.Decompressor = Gzip{}
	_ pipeline.Carvable     = Gzip{}
)

// Name implements pipeline.Format.
func (Gzip) Name() string { return "gzip" }

// Match implements pipeline.Format: the magic and the deflate method byte.
func (Gzip) Match(head []byte) bool { return bytes.HasPrefix(head, []byte{0x1f, 0x8b, 0x08}) }

// NewReader implements pipeline.Decompressor.
func (Gzip) NewReader(r io.Reader) (io.ReadCloser, error) {
	br := bufio.NewReader(r)
	zr, err := gzip.NewReader(br)
	if err != nil {
		return nil, err
	}
	zr.Multistream(false)
	return &gzipMembers{br: br, zr: zr}, nil
}

// gzipMembers reads members one by one; the gzip reader takes no byte past
// a member's end from a bufio.Reader, so the next one can be peeked at.
type gzipMembers struct {
	br *bufio.Reader
	zr *gzip.Reader
}

func (g *gzipMembers) Read(p []byte) (int, error) {
	for {
		n, err := g.zr.Read(p)
		if err != io.EOF {
			return n, err
		}
		if next, _ := g.br.Peek(3); !bytes.Equal(next, []byte{0x1f, 0x8b, 0x08}) {
			return n, io.EOF
		}
		if err := g.zr.Reset(g.br); err != nil {
			return n, err
		}
		g.zr.Multistream(false)
		if n > 0 {
			return n, nil
		}
	}
}

func (g *gzipMembers) Close() error { return g.zr.Close() }

// Signatures implements pipeline.Carvable.
func (Gzip) Signatures() []pipeline.Signature {
	return []pipeline.Signature{{Magic: []byte{0x1f, 0x8b, 0x08}}}
}
