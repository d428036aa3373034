package jffs2

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/fwvet/fwvet/pipeline"
)

// Format is the JFFS2 image format, in either byte order.
type Format struct{}

var (
	_ pipeline.Container = Format{}
	_ pipeline.Carvable  = Format{}
	_ pipeline.Spanner   = Format{}
)

// ErrCorrupt is wrapped by every error about malformed image contents.
var ErrCorrupt = errors.New("corrupt jffs2")

// Name implements pipeline.Format.
func (Format) Name() string { return "jffs2" }

// Match implements pipeline.Format: a node header whose CRC holds, which a
// stray 0x1985 in other data almost never has.
func (Format) Match(head []byte) bool {
	_, _, ok := detectOrder(head)
	return ok
}

// Signatures implements pipeline.Carvable: the node magic in both byte
// orders, at any 4-byte boundary since nodes are 4-byte aligned.
func (Format) Signatures() []pipeline.Signature {
	return []pipeline.Signature{
		{Offset: 0, Magic: []byte{0x85, 0x19}, Align: 4},
		{Offset: 0, Magic: []byte{0x19, 0x85}, Align: 4},
	}
}

// Walk implements pipeline.Container: the root ("."), then every entry
// reachable from it, each directory before its entries.
func (Format) Walk(ctx context.Context, r io.ReaderAt, size int64, lim pipeline.Limits, visit func(*pipeline.Header, pipeline.OpenFunc) error) error {
	ix, err := scan(ctx, r, size, lim)
	if err != nil {
		return fmt.Errorf("jffs2: scanning nodes: %w", err)
	}
	t := newTree(ix, lim)
	err = t.walk(ctx, visit)
	t.release()
	if err != nil {
		return fmt.Errorf("jffs2: %w", err)
	}
	if ix.truncated != nil {
		return fmt.Errorf("jffs2: %w: %w", ErrCorrupt, ix.truncated)
	}
	return nil
}
