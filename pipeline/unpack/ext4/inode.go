package ext4

import (
	"encoding/binary"
	"fmt"

	"github.com/fwvet/fwvet/pipeline"
)

// Inode flags the reader looks at.
const (
	flagIndex      = 0x1000
	flagHugeFile   = 0x40000
	flagExtents    = 0x80000
	flagInlineData = 0x10000000
)

const iBlockSize = 60 // bytes of i_block

type inode struct {
	num      uint32
	typ      pipeline.EntryType
	mode     uint16
	uid, gid uint32
	size     uint64
	flags    uint32
	fileACL  uint64
	// sectors is i_blocks in 512-byte units: every block the inode owns,
	// data and mapping blocks alike, which bounds the walk of its map.
	sectors uint64
	links   uint16
	iblock  [iBlockSize]byte
	// xattrs is the in-inode extended attribute area, after its magic.
	xattrs []byte
}

// inode reads inode number n.
func (img *Image) inode(n uint32) (*inode, error) {
	sb := img.sb
	if n == 0 || n > sb.inodesCount {
		return nil, corrupt("inode %d is outside 1..%d", n, sb.inodesCount)
	}
	g := uint64(n-1) / uint64(sb.inodesPerGroup)
	idx := uint64(n-1) % uint64(sb.inodesPerGroup)
	table, err := img.inodeTable(g)
	if err != nil {
		return nil, fmt.Errorf("inode %d: %w", n, err)
	}
	b := make([]byte, sb.inodeSize)
	if _, err := img.r.ReadAt(b, int64(table)*img.bs+int64(idx)*int64(sb.inodeSize)); err != nil {
		return nil, fmt.Errorf("ext4: reading inode %d: %w", n, err)
	}
	le := binary.LittleEndian
	in := &inode{
		num:     n,
		mode:    le.Uint16(b[0x0:]),
		uid:     uint32(le.Uint16(b[0x2:])) | uint32(le.Uint16(b[0x78:]))<<16,
		gid:     uint32(le.Uint16(b[0x18:])) | uint32(le.Uint16(b[0x7A:]))<<16,
		size:    uint64(le.Uint32(b[0x4:])),
		flags:   le.Uint32(b[0x20:]),
		fileACL: uint64(le.Uint32(b[0x68:])) | uint64(le.Uint16(b[0x76:]))<<32,
		sectors: uint64(le.Uint32(b[0x1C:])),
	}
	copy(in.iblock[:], b[0x28:])
	typ, ok := pipeline.ModeType(uint32(in.mode))
	if !ok {
		return nil, corrupt("inode %d has mode %#o of no known type", n, in.mode)
	}
	in.typ = typ
	if in.links = le.Uint16(b[0x1A:]); in.links == 0 {
		return nil, corrupt("inode %d has no links: it was deleted", n)
	}
	// Directories keep the high size word for other uses unless large
	// directories are enabled.
	if typ != pipeline.TypeDir || sb.incompat&incompatLargeDir != 0 {
		in.size |= uint64(le.Uint32(b[0x6C:])) << 32
	}
	if sb.roCompat&roHugeFile != 0 {
		in.sectors |= uint64(le.Uint16(b[0x74:])) << 32
		if in.flags&flagHugeFile != 0 {
			in.sectors <<= sb.logBlockSize + 1 // counted in blocks
		}
	}
	if sb.inodeSize > 128 {
		extra := uint32(le.Uint16(b[0x80:]))
		if start := 128 + extra; extra%4 == 0 && start+4 <= sb.inodeSize && le.Uint32(b[start:]) == xattrMagic {
			in.xattrs = b[start+4:]
		}
	}
	return in, nil
}

// blocks is the number of blocks of size bs the inode owns, as it says.
func (in *inode) blocks(bs int64) uint64 { return in.sectors / uint64(bs/512) }

// device decodes the device number of a char or block node: the old
// 8+8-bit encoding in i_block[0], else the new 12+20-bit one in i_block[1].
func (in *inode) device() (major, minor uint32) {
	le := binary.LittleEndian
	if d := le.Uint32(in.iblock[0:]); d != 0 {
		return d >> 8 & 0xff, d & 0xff
	}
	d := le.Uint32(in.iblock[4:])
	return (d & 0xfff00) >> 8, d&0xff | d>>12&0xfff00
}
