package ext4

import (
	"context"
	"encoding/binary"
	"fmt"
)

const (
	extentMagic    = 0xF30A
	maxExtentDepth = 5
	extentInitMax  = 32768 // ee_len above this marks an uninitialised extent
	directBlocks   = 12
)

// run maps n logical blocks from logical onwards to the physical blocks
// from phys onwards. An unwritten run reads as zeros, like a hole.
type run struct {
	logical, phys, n uint64
	unwritten        bool
}

// mapper builds the sorted run list of one inode's first nblocks logical
// blocks. budget is how many mapping blocks it may still read: the blocks
// the inode says it owns, at most the blocks of the image.
type mapper struct {
	ctx     context.Context
	img     *Image
	in      *inode
	nblocks uint64
	budget  uint64
	// mapped counts the data blocks mapped so far: one file cannot own
	// more blocks than the image has, which bounds the run list.
	mapped uint64
	runs   []run
}

// blockMap returns the runs that hold the first nblocks logical blocks of
// in, from its extent tree or its classic block map.
func (img *Image) blockMap(ctx context.Context, in *inode, nblocks uint64) ([]run, error) {
	m := &mapper{ctx: ctx, img: img, in: in, nblocks: nblocks, budget: min(in.blocks(img.bs), img.sb.blocksCount)}
	var err error
	if in.flags&flagExtents != 0 {
		err = m.extents(in.iblock[:], -1)
	} else {
		err = m.indirect()
	}
	if err != nil {
		return nil, fmt.Errorf("inode %d: %w", in.num, err)
	}
	return m.runs, nil
}

// readBlock reads mapping block b, charging it to the budget.
func (m *mapper) readBlock(b uint64, what string) ([]byte, error) {
	if err := m.ctx.Err(); err != nil {
		return nil, err
	}
	if m.budget == 0 {
		return nil, corrupt("%s needs more blocks than the inode owns", what)
	}
	m.budget--
	if b <= superOffset/uint64(m.img.bs) || b >= m.img.sb.blocksCount {
		return nil, corrupt("%s at block %d lies outside the file system", what, b)
	}
	buf := make([]byte, m.img.bs)
	if _, err := m.img.r.ReadAt(buf, int64(b)*m.img.bs); err != nil {
		return nil, fmt.Errorf("ext4: reading %s at block %d: %w", what, b, err)
	}
	return buf, nil
}

// add appends a run of data blocks, clipped to the file, merging it with
// the previous run when they continue each other.
func (m *mapper) add(logical, phys, n uint64, unwritten bool) error {
	if logical >= m.nblocks || n == 0 {
		return nil
	}
	n = min(n, m.nblocks-logical)
	if phys == 0 || phys >= m.img.sb.blocksCount || m.img.sb.blocksCount-phys < n {
		return corrupt("%d data blocks at block %d lie outside the file system", n, phys)
	}
	if m.mapped += n; m.mapped > m.img.sb.blocksCount {
		return corrupt("maps more data blocks than the file system has")
	}
	if k := len(m.runs); k > 0 {
		last := &m.runs[k-1]
		if logical < last.logical+last.n {
			return corrupt("logical block %d is mapped twice", logical)
		}
		if last.logical+last.n == logical && last.phys+last.n == phys && last.unwritten == unwritten {
			last.n += n
			return nil
		}
	}
	m.runs = append(m.runs, run{logical: logical, phys: phys, n: n, unwritten: unwritten})
	return nil
}

// extents walks one extent tree node; depth is the depth its parent
// expects, -1 for the root in i_block.
func (m *mapper) extents(node []byte, depth int) error {
	le := binary.LittleEndian
	if len(node) < 12 || le.Uint16(node) != extentMagic {
		return corrupt("extent node without its magic")
	}
	entries, max, d := int(le.Uint16(node[2:])), int(le.Uint16(node[4:])), int(le.Uint16(node[6:]))
	if d > maxExtentDepth {
		return corrupt("extent tree depth %d exceeds %d", d, maxExtentDepth)
	}
	if depth >= 0 && d != depth {
		return corrupt("extent node of depth %d where %d was expected", d, depth)
	}
	if entries > max || 12+12*max > len(node) {
		return corrupt("extent node of %d bytes with %d of %d entries", len(node), entries, max)
	}
	for i := range entries {
		e := node[12+12*i:]
		logical := uint64(le.Uint32(e))
		if logical >= m.nblocks {
			break // past the end of the file: preallocated blocks, not data
		}
		if d == 0 {
			n := uint64(le.Uint16(e[4:]))
			unwritten := n > extentInitMax
			if unwritten {
				n -= extentInitMax
			}
			phys := uint64(le.Uint16(e[6:]))<<32 | uint64(le.Uint32(e[8:]))
			if err := m.add(logical, phys, n, unwritten); err != nil {
				return err
			}
			continue
		}
		child := uint64(le.Uint16(e[8:]))<<32 | uint64(le.Uint32(e[4:]))
		b, err := m.readBlock(child, "extent node")
		if err != nil {
			return err
		}
		if err := m.extents(b, d-1); err != nil {
			return err
		}
	}
	return nil
}

// indirect walks a classic map: 12 direct blocks, then a single, a double
// and a triple indirect block.
func (m *mapper) indirect() error {
	le := binary.LittleEndian
	for i := range directBlocks {
		p := uint64(le.Uint32(m.in.iblock[4*i:]))
		if p == 0 {
			continue
		}
		if err := m.add(uint64(i), p, 1, false); err != nil {
			return err
		}
	}
	per := uint64(m.img.bs / 4)
	start, span := uint64(directBlocks), per
	for level := 1; level <= 3; level++ {
		ptr := uint64(le.Uint32(m.in.iblock[4*(directBlocks+level-1):]))
		if start >= m.nblocks {
			return nil
		}
		if err := m.indirectBlock(ptr, level, start); err != nil {
			return err
		}
		start += span
		span *= per
	}
	return nil
}

// indirectBlock maps the blocks under the level-deep indirect block ptr,
// whose first logical block is start. A zero pointer is a hole.
func (m *mapper) indirectBlock(ptr uint64, level int, start uint64) error {
	if ptr == 0 {
		return nil
	}
	b, err := m.readBlock(ptr, "indirect block")
	if err != nil {
		return err
	}
	le := binary.LittleEndian
	per := uint64(m.img.bs / 4)
	span := uint64(1)
	for range level - 1 {
		span *= per
	}
	for i := range per {
		logical := start + i*span
		if logical >= m.nblocks {
			break
		}
		p := uint64(le.Uint32(b[4*i:]))
		if level == 1 {
			if p == 0 {
				continue
			}
			if err := m.add(logical, p, 1, false); err != nil {
				return err
			}
			continue
		}
		if err := m.indirectBlock(p, level-1, logical); err != nil {
			return err
		}
	}
	return nil
}
