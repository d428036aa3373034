package jffs2

import (
	"errors"
	"fmt"
	"io"
)

const (
	defaultEraseSize = 64 << 10
	minEraseSize     = 4 << 10
	maxEraseSize     = 16 << 20
)

// Span implements pipeline.Spanner. JFFS2 has no superblock to say how long
// it is, so the span is found erase block by erase block: a block belongs to
// the file system while it holds a valid node or is erased (all 0xFF), and
// the first block holding neither ends it. The span ends after the last
// node, or at the end of its erase block when the rest of that is erased.
func (Format) Span(r io.ReaderAt, size int64) (int64, error) {
	if size < headerSize {
		return 0, fmt.Errorf("jffs2: %w: %d bytes hold no node", ErrCorrupt, size)
	}
	w := newWindow(r, size)
	b, err := w.bytes(0, headerSize)
	if err != nil {
		return 0, fmt.Errorf("jffs2: %w", err)
	}
	order, _, ok := detectOrder(b)
	if !ok {
		return 0, fmt.Errorf("jffs2: %w: no valid node header at the start", ErrCorrupt)
	}
	s := spanner{w: w, size: size, parse: func(b []byte) (nodeHeader, bool) { return parseHeader(b, order) }}
	eb, err := s.eraseSize()
	if err != nil {
		return 0, fmt.Errorf("jffs2: %w", err)
	}
	end, err := s.span(eb)
	if err != nil {
		return 0, fmt.Errorf("jffs2: %w", err)
	}
	return end, nil
}

type spanner struct {
	w     *window
	size  int64
	parse func([]byte) (nodeHeader, bool)
}

// node returns the valid node at off, if any, whose bytes lie in the image.
func (s *spanner) node(off int64) (nodeHeader, bool, error) {
	if off+headerSize > s.size {
		return nodeHeader{}, false, nil
	}
	b, err := s.w.bytes(off, headerSize)
	if err != nil {
		return nodeHeader{}, false, err
	}
	h, ok := s.parse(b)
	return h, ok && off+int64(h.totlen) <= s.size, nil
}

// eraseSize guesses the erase block size from where the second cleanmarker
// sits, as mkfs.jffs2 and the kernel write one at the start of each erased
// block; without one, the common 64 KiB of NOR flash is assumed.
func (s *spanner) eraseSize() (int64, error) {
	off := int64(0)
	for off+headerSize <= s.size && off < maxEraseSize+headerSize {
		h, ok, err := s.node(off)
		if err != nil {
			return 0, err
		}
		if !ok {
			break
		}
		if h.nodetype == typeCleanmarker && off > 0 {
			if off >= minEraseSize && off <= maxEraseSize && off&(off-1) == 0 {
				return off, nil
			}
			break
		}
		off += pad4(int64(h.totlen))
		// mkfs.jffs2 fills the end of a block with 0xFF.
		if off, err = s.w.skipErased(off, s.size); err != nil {
			return 0, err
		}
	}
	return defaultEraseSize, nil
}

func (s *spanner) span(eb int64) (int64, error) {
	var lastEnd int64
	for block := int64(0); block < s.size; block += eb {
		blockEnd := min(block+eb, s.size)
		off := max(block, lastEnd)
		if off >= blockEnd {
			continue // covered by a node begun in an earlier block
		}
		hasNode, junk := false, false
		for off+4 <= blockEnd {
			next, err := s.w.skipErased(off, blockEnd)
			if err != nil {
				return 0, err
			}
			if off = next; off+4 > blockEnd {
				break
			}
			h, ok, err := s.node(off)
			if err != nil {
				return 0, err
			}
			if !ok {
				junk = true
				off += 4
				continue
			}
			hasNode = true
			off += pad4(int64(h.totlen))
			lastEnd = min(off, s.size)
		}
		if !hasNode && junk {
			break
		}
	}
	if lastEnd == 0 {
		return 0, errors.New("no valid node")
	}
	if rem := lastEnd % eb; rem != 0 {
		blockEnd := min(lastEnd-rem+eb, s.size)
		next, err := s.w.skipErased(lastEnd, blockEnd&^3)
		if err != nil {
			return 0, err
		}
		if next >= blockEnd&^3 {
			return blockEnd, nil
		}
	}
	return lastEnd, nil
}
