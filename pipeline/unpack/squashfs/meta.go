package squashfs

import (
	"sync"
)

// maxCachedMeta bounds the decompressed metadata blocks kept at once (4
// MiB): the cache lives as long as the tree, and a walk reads the tables
// nearly in order, so more saves little (a /usr image's tables are 6.5 MiB).
const maxCachedMeta = 512

type metaBlock struct {
	data []byte
	next int64
}

// metaCache keeps decompressed metadata blocks by offset, so that a walk
// reading inodes that share a block decompresses it once.
type metaCache struct {
	img    *Image
	mu     sync.Mutex
	blocks map[int64]*metaBlock
}

func newMetaCache(img *Image) *metaCache {
	return &metaCache{img: img, blocks: map[int64]*metaBlock{}}
}

func (c *metaCache) get(off int64) (*metaBlock, error) {
	c.mu.Lock()
	b, ok := c.blocks[off]
	c.mu.Unlock()
	if ok {
		return b, nil
	}
	data, next, err := c.img.readMetaBlock(off)
	if err != nil {
		return nil, err
	}
	b = &metaBlock{data: data, next: next}
	c.mu.Lock()
	if len(c.blocks) >= maxCachedMeta {
		c.blocks = map[int64]*metaBlock{}
	}
	c.blocks[off] = b
	c.mu.Unlock()
	return b, nil
}

// metaReader reads a run of metadata that may cross block boundaries.
type metaReader struct {
	c     *metaCache
	block int64
	off   int
	end   int64 // blocks must start before this offset
	cur   *metaBlock
}

func (c *metaCache) reader(block int64, off int, end int64) *metaReader {
	return &metaReader{c: c, block: block, off: off, end: end}
}

func (m *metaReader) read(p []byte) error {
	for len(p) > 0 {
		if m.cur == nil {
			if m.block >= m.end {
				return corrupt("metadata runs past the end of its table")
			}
			b, err := m.c.get(m.block)
			if err != nil {
				return err
			}
			if m.off > len(b.data) {
				return corrupt("metadata offset %d past a block of %d bytes", m.off, len(b.data))
			}
			m.cur = b
		}
		n := copy(p, m.cur.data[m.off:])
		p = p[n:]
		m.off += n
		if m.off == len(m.cur.data) {
			m.block, m.off, m.cur = m.cur.next, 0, nil
		}
	}
	return nil
}

// pos is where the next read starts: a metadata block and an offset in it.
func (m *metaReader) pos() (int64, int) { return m.block, m.off }
