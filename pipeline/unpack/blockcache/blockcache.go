// Package blockcache keeps the decompressed blocks of one image that
// readers ask for again: squashfs fragments, which many small files share,
// and the data blocks of files read in place (a zip in a squashfs, a
// binary an analyzer parses).
//
// The cache belongs to the image, not to a reader, and is bounded in
// bytes: an index keeps a reader open for every container nested in the
// image until the tree is closed, thousands of them in a large image, so a
// block kept per reader would hold memory that the number of containers
// decides (half a gigabyte on a /usr-sized image).
package blockcache

import (
	"container/list"
	"sync"
)

// Key names a decoded block of a squashfs image (3.x or 4): a data block
// by where it lies, its size word and the bytes the file takes of it (two
// files may share a block yet end differently in a hostile image), a
// fragment by its index in Off.
type Key struct {
	Off  int64
	Word uint32
	Want int32
	Frag bool
}

// Cache is an LRU of decoded blocks under K, bounded by their total size.
// Callers that miss the same block at once share one load: the workers
// hashing consecutive small files ask for the same fragment together.
type Cache[K comparable] struct {
	mu       sync.Mutex
	maxBytes int
	minItems int
	bytes    int
	order    *list.List
	items    map[K]*list.Element
}

type item[K comparable] struct {
	key   K
	ready chan struct{} // closed when data and err are set
	data  []byte
	err   error
	size  int // charged to the cache once loaded
}

// New returns a cache that keeps at most maxBytes of blocks, but never
// fewer than minItems, so that a reader hopping between a few blocks of a
// large block size still finds them.
func New[K comparable](maxBytes, minItems int) *Cache[K] {
	return &Cache[K]{maxBytes: maxBytes, minItems: minItems, order: list.New(), items: map[K]*list.Element{}}
}

// Get returns the block under k, calling load once for all the callers
// that miss it together. A failed load is not kept. The returned bytes are
// shared: callers must not modify them.
func (c *Cache[K]) Get(k K, load func() ([]byte, error)) ([]byte, error) {
	c.mu.Lock()
	if e, ok := c.items[k]; ok {
		c.order.MoveToFront(e)
		it := e.Value.(*item[K])
		c.mu.Unlock()
		<-it.ready
		return it.data, it.err
	}
	it := &item[K]{key: k, ready: make(chan struct{})}
	c.items[k] = c.order.PushFront(it)
	c.mu.Unlock()

	it.data, it.err = load()
	close(it.ready)

	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[k]
	if !ok || e.Value.(*item[K]) != it {
		// Evicted while it loaded.
		return it.data, it.err
	}
	if it.err != nil {
		c.order.Remove(e)
		delete(c.items, k)
		return it.data, it.err
	}
	it.size = cap(it.data)
	c.bytes += it.size
	c.evict()
	return it.data, it.err
}

// evict drops the least recently used blocks past the bound. A block still
// loading is charged nothing until it is loaded.
func (c *Cache[K]) evict() {
	for c.bytes > c.maxBytes && c.order.Len() > c.minItems {
		last := c.order.Back()
		it := last.Value.(*item[K])
		c.order.Remove(last)
		delete(c.items, it.key)
		c.bytes -= it.size
	}
}

// Len reports how many blocks the cache holds or is loading.
func (c *Cache[K]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}

// Bytes reports the size of the blocks the cache holds.
func (c *Cache[K]) Bytes() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes
}
