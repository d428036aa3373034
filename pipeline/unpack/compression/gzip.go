package compression

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"sync"

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

// gzipReaders keeps readers for reuse: each holds a 32 KiB window and a
// buffer, and an image's compressed files are each peeked at and read
// once, so that readers made afresh were most of the bytes the collector
// handled (and, made while it marked, counted as live).
var gzipReaders sync.Pool

// NewReader implements pipeline.Decompressor.
func (Gzip) NewReader(r io.Reader) (io.ReadCloser, error) {
	g, _ := gzipReaders.Get().(*gzipMembers)
	if g == nil {
		g = &gzipMembers{br: bufio.NewReader(r)}
	} else {
		g.br.Reset(r)
	}
	var err error
	if g.zr == nil {
		g.zr, err = gzip.NewReader(g.br)
	} else {
		err = g.zr.Reset(g.br)
	}
	if err != nil {
		g.release()
		return nil, err
	}
	g.zr.Multistream(false)
	return &gzipHandle{g}, nil
}

// gzipHandle is one use of a pooled reader: Close gives it back, and any
// later Read fails rather than reading another stream.
type gzipHandle struct{ g *gzipMembers }

func (h *gzipHandle) Read(p []byte) (int, error) {
	if h.g == nil {
		return 0, os.ErrClosed
	}
	return h.g.Read(p)
}

func (h *gzipHandle) Close() error {
	if h.g == nil {
		return nil
	}
	err := h.g.zr.Close()
	h.g.release()
	h.g = nil
	return err
}

// release returns g to the pool, keeping nothing of the stream it read.
func (g *gzipMembers) release() {
	g.br.Reset(nil)
	if g.zr != nil {
		// A reader whose header failed holds no usable state; the next
		// Reset starts it afresh either way.
		gzipReaders.Put(g)
	}
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

// Signatures implements pipeline.Carvable.
func (Gzip) Signatures() []pipeline.Signature {
	return []pipeline.Signature{{Magic: []byte{0x1f, 0x8b, 0x08}}}
}
