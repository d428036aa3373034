package pipeline

import (
	"fmt"
	"os"
	"sync"
)

// coldStore holds the parts of records that sorting and searching by key
// do not read (path, chain, opener, attributes and digest), in chunks,
// and writes all but the newest to a file of the work directory once they
// pass a budget, so that both trees of a diff at the entry limit (a
// million entries a side) fit the memory bound. A chunk read back is kept
// in a small cache: the diff and the analyzers read entries in key order,
// which is close to the order a walk packed them in.
//
// A buffer read back is never reused: strings decoded from it stay valid
// for as long as they are held.
type coldStore struct {
	mu     sync.Mutex
	chunks [][]byte // nil once written to the file
	at     []int64  // where each written chunk lies in the file
	size   []int32  // each chunk's length
	mem    int      // bytes of chunks held
	next   int      // the oldest chunk not written yet
	dir    string   // where to spill; "" keeps every chunk in memory
	f      *os.File
	end    int64
	failed error // a spill that failed: chunks stay in memory from then on

	cache [coldCache]cachedChunk
	hand  int
}

type cachedChunk struct {
	i int
	b []byte
}

// coldBudget is the chunk bytes a store holds before it writes the older
// ones out; coldCache is how many chunks read back it keeps. Chunks are
// small, coldChunk, so that an image whose entries come in an order far
// from their keys' (a hostile tar) costs a read of 16 KiB an entry read
// back, not of a key chunk's 256.
const (
	coldBudget = 4 << 20
	coldChunk  = 16 << 10
	coldCache  = 64
)

// add appends a record and returns where it lies: chunk<<32 | offset.
func (c *coldStore) add(b []byte) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := len(c.chunks)
	if n == 0 || c.chunks[n-1] == nil || len(c.chunks[n-1])+len(b) > cap(c.chunks[n-1]) {
		c.chunks = append(c.chunks, make([]byte, 0, max(coldChunk, len(b))))
		c.at, c.size = append(c.at, 0), append(c.size, 0)
		n++
		c.spill()
	}
	ch := c.chunks[n-1]
	ref := uint64(n-1)<<32 | uint64(len(ch))
	c.chunks[n-1] = append(ch, b...)
	c.size[n-1] = int32(len(c.chunks[n-1]))
	c.mem += len(b)
	return ref
}

// spill writes the full chunks out while the store holds more than its
// budget. A failure to write keeps them in memory: the bound is lost, not
// the entries.
func (c *coldStore) spill() {
	if c.dir == "" || c.failed != nil {
		return
	}
	for c.mem > coldBudget && c.next < len(c.chunks)-1 {
		if c.f == nil {
			f, err := os.CreateTemp(c.dir, "index-*")
			if err != nil {
				c.failed = err
				return
			}
			// Unlinked at once: the file is gone with the process, whatever
			// way it ends, and its descriptor is closed when the tree is
			// collected (os.File's cleanup), not by Tree.Close: reports
			// read entries after the images are closed.
			os.Remove(f.Name())
			c.f = f
		}
		ch := c.chunks[c.next]
		if _, err := c.f.WriteAt(ch, c.end); err != nil {
			c.failed = err
			return
		}
		c.at[c.next], c.chunks[c.next] = c.end, nil
		c.end += int64(len(ch))
		c.mem -= len(ch)
		c.next++
	}
}

// get returns chunk i, reading it back if it was written out.
func (c *coldStore) get(i int) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.chunk(i)
}

func (c *coldStore) chunk(i int) []byte {
	if b := c.chunks[i]; b != nil {
		return b
	}
	for _, k := range c.cache {
		if k.b != nil && k.i == i {
			return k.b
		}
	}
	b := make([]byte, c.size[i])
	if _, err := c.f.ReadAt(b, c.at[i]); err != nil {
		// The index's own file, written by this process: a failure here is
		// the machine's, as a page fault would be.
		panic(fmt.Sprintf("pipeline: reading back index records: %v", err))
	}
	c.cache[c.hand] = cachedChunk{i, b}
	c.hand = (c.hand + 1) % coldCache
	return b
}

// write writes b at offset off of chunk i, which already holds those
// bytes' place, and writes it through to the file if the chunk is there.
func (c *coldStore) write(i, off int, b []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	copy(c.chunk(i)[off:], b)
	if c.chunks[i] == nil {
		if _, err := c.f.WriteAt(b, c.at[i]+int64(off)); err != nil {
			panic(fmt.Sprintf("pipeline: writing index records: %v", err))
		}
	}
}
