package ext4

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
)

// ErrCorrupt is wrapped by every error about malformed image contents.
var ErrCorrupt = errors.New("corrupt ext4")

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

const (
	superOffset = 1024
	superSize   = 1024
	magicOffset = superOffset + 0x38
	magic       = 0xEF53
	maxLogBlock = 6 // 64 KiB blocks
	rootIno     = 2
)

// Feature bits the reader looks at.
const (
	compatSparseSuper2 = 0x200

	incompatCompression = 0x1
	incompatFiletype    = 0x2
	incompatRecover     = 0x4
	incompatJournalDev  = 0x8
	incompatMetaBG      = 0x10
	incompatExtents     = 0x40
	incompat64Bit       = 0x80
	incompatMMP         = 0x100
	incompatFlexBG      = 0x200
	incompatEAInode     = 0x400
	incompatDirData     = 0x1000
	incompatCsumSeed    = 0x2000
	incompatLargeDir    = 0x4000
	incompatInlineData  = 0x8000
	incompatEncrypt     = 0x10000
	incompatCasefold    = 0x20000

	// Features that change nothing this reader relies on, or that it handles.
	incompatKnown = incompatFiletype | incompatRecover | incompatMetaBG | incompatExtents | incompat64Bit |
		incompatMMP | incompatFlexBG | incompatEAInode | incompatDirData | incompatCsumSeed |
		incompatLargeDir | incompatInlineData | incompatEncrypt | incompatCasefold

	roSparseSuper = 0x1
	roHugeFile    = 0x8
	roGDTCsum     = 0x10
	roMetaCsum    = 0x400
)

// superblock holds the fields of the superblock the reader uses, already
// combined from their low and high halves.
type superblock struct {
	inodesCount    uint32
	blocksCount    uint64
	firstDataBlock uint32
	logBlockSize   uint32
	blocksPerGroup uint32
	inodesPerGroup uint32
	revLevel       uint32
	inodeSize      uint32
	compat         uint32
	incompat       uint32
	roCompat       uint32
	descSize       uint32
	firstMetaBG    uint32
	backupBGs      [2]uint32
}

// parseSuper decodes and checks the superblock in b, which holds the
// superblock from its first byte, possibly short of its end.
func parseSuper(b []byte) (*superblock, error) {
	if len(b) < 0x100 {
		return nil, corrupt("superblock of %d bytes is too short", len(b))
	}
	le := binary.LittleEndian
	if m := le.Uint16(b[0x38:]); m != magic {
		return nil, corrupt("bad magic %#x", m)
	}
	sb := &superblock{
		inodesCount:    le.Uint32(b[0x0:]),
		blocksCount:    uint64(le.Uint32(b[0x4:])),
		firstDataBlock: le.Uint32(b[0x14:]),
		logBlockSize:   le.Uint32(b[0x18:]),
		blocksPerGroup: le.Uint32(b[0x20:]),
		inodesPerGroup: le.Uint32(b[0x28:]),
		revLevel:       le.Uint32(b[0x4C:]),
		inodeSize:      128,
		descSize:       32,
	}
	if sb.logBlockSize > maxLogBlock {
		return nil, corrupt("block size log %d is above %d", sb.logBlockSize, maxLogBlock)
	}
	if sb.blocksPerGroup == 0 || sb.inodesPerGroup == 0 {
		return nil, corrupt("%d blocks and %d inodes per group", sb.blocksPerGroup, sb.inodesPerGroup)
	}
	if sb.revLevel > 1 {
		return nil, corrupt("revision %d is unknown", sb.revLevel)
	}
	if sb.revLevel == 0 {
		return sb, sb.check()
	}
	sb.inodeSize = uint32(le.Uint16(b[0x58:]))
	sb.compat = le.Uint32(b[0x5C:])
	sb.incompat = le.Uint32(b[0x60:])
	sb.roCompat = le.Uint32(b[0x64:])
	sb.firstMetaBG = le.Uint32(b[0x104:])
	if sb.incompat&incompat64Bit != 0 {
		if len(b) < 0x160 {
			return nil, corrupt("64-bit superblock of %d bytes is too short", len(b))
		}
		sb.descSize = uint32(le.Uint16(b[0xFE:]))
		sb.blocksCount |= uint64(le.Uint32(b[0x150:])) << 32
	}
	if len(b) >= 0x254 {
		sb.backupBGs = [2]uint32{le.Uint32(b[0x24C:]), le.Uint32(b[0x250:])}
	}
	return sb, sb.check()
}

func (sb *superblock) blockSize() int64 { return 1024 << sb.logBlockSize }

// check refuses the combinations that would make the layout arithmetic
// meaningless or that describe something other than a plain file system.
func (sb *superblock) check() error {
	bs := sb.blockSize()
	if sb.incompat&incompatJournalDev != 0 {
		return corrupt("image is an external journal device, not a file system")
	}
	if sb.incompat&incompatCompression != 0 {
		return fmt.Errorf("ext4: compressed ext2 (feature %#x) is not supported", incompatCompression)
	}
	if u := sb.incompat &^ incompatKnown; u != 0 {
		return fmt.Errorf("ext4: unknown incompatible features %#x", u)
	}
	if sb.inodeSize < 128 || int64(sb.inodeSize) > bs || sb.inodeSize&(sb.inodeSize-1) != 0 {
		return corrupt("inode size %d with %d-byte blocks", sb.inodeSize, bs)
	}
	if sb.incompat&incompat64Bit != 0 && (sb.descSize < 64 || sb.descSize > 1024 || sb.descSize&(sb.descSize-1) != 0) {
		return corrupt("group descriptor size %d", sb.descSize)
	}
	if int64(sb.inodesPerGroup) > bs*8 {
		return corrupt("%d inodes per group do not fit one %d-byte bitmap block", sb.inodesPerGroup, bs)
	}
	if uint64(sb.firstDataBlock) >= sb.blocksCount {
		return corrupt("first data block %d of %d blocks", sb.firstDataBlock, sb.blocksCount)
	}
	if sb.blocksCount >= 1<<(63-10-sb.logBlockSize) {
		return corrupt("%d blocks of %d bytes", sb.blocksCount, bs)
	}
	if (uint64(sb.inodesCount)+uint64(sb.inodesPerGroup)-1)/uint64(sb.inodesPerGroup) > sb.groups() {
		return corrupt("%d inodes do not fit %d groups of %d", sb.inodesCount, sb.groups(), sb.inodesPerGroup)
	}
	return nil
}

// groups is the number of block groups.
func (sb *superblock) groups() uint64 {
	n := sb.blocksCount - uint64(sb.firstDataBlock)
	return (n + uint64(sb.blocksPerGroup) - 1) / uint64(sb.blocksPerGroup)
}

// span is the number of bytes the file system takes.
func (sb *superblock) span() uint64 { return sb.blocksCount << (10 + sb.logBlockSize) }

// hasSuper reports whether group g holds a superblock backup, and so a
// descriptor block after it under meta_bg.
func (sb *superblock) hasSuper(g uint64) bool {
	switch {
	case g == 0:
		return true
	case sb.compat&compatSparseSuper2 != 0:
		return g == uint64(sb.backupBGs[0]) || g == uint64(sb.backupBGs[1])
	case sb.roCompat&roSparseSuper == 0, g == 1:
		return true
	}
	for _, base := range []uint64{3, 5, 7} {
		p := base
		for p < g {
			p *= base
		}
		if p == g {
			return true
		}
	}
	return false
}

// descOffset is the byte offset of group g's descriptor.
func (sb *superblock) descOffset(g uint64) uint64 {
	bs := uint64(sb.blockSize())
	perBlock := bs / uint64(sb.descSize)
	b := g / perBlock
	// The group descriptor table follows the block holding the superblock.
	block := superOffset/bs + 1 + b
	if sb.incompat&incompatMetaBG != 0 && b >= uint64(sb.firstMetaBG) {
		first := b * perBlock
		block = uint64(sb.firstDataBlock) + first*uint64(sb.blocksPerGroup)
		if sb.hasSuper(first) {
			block++
		}
	}
	return block*bs + g%perBlock*uint64(sb.descSize)
}

// Image is an open ext2/3/4 file system.
type Image struct {
	r    io.ReaderAt
	size int64
	sb   *superblock
	bs   int64

	mu     sync.Mutex
	tables map[uint64]uint64 // group -> first block of its inode table
}

// Open reads and checks the superblock.
func Open(r io.ReaderAt, size int64) (*Image, error) {
	if size < superOffset+superSize {
		return nil, corrupt("image of %d bytes is shorter than a superblock", size)
	}
	buf := make([]byte, superSize)
	if _, err := r.ReadAt(buf, superOffset); err != nil {
		return nil, fmt.Errorf("ext4: reading superblock: %w", err)
	}
	sb, err := parseSuper(buf)
	if err != nil {
		return nil, err
	}
	if sb.span() > uint64(size) {
		return nil, corrupt("superblock spans %d bytes (%d blocks of %d) but the image has %d: truncated",
			sb.span(), sb.blocksCount, sb.blockSize(), size)
	}
	return &Image{r: r, size: size, sb: sb, bs: sb.blockSize(), tables: map[uint64]uint64{}}, nil
}

// inodeTable returns the first block of group g's inode table, checked to
// lie inside the file system clear of the superblock.
func (img *Image) inodeTable(g uint64) (uint64, error) {
	img.mu.Lock()
	t, ok := img.tables[g]
	img.mu.Unlock()
	if ok {
		return t, nil
	}
	sb := img.sb
	off := sb.descOffset(g)
	if off+uint64(sb.descSize) > sb.span() {
		return 0, corrupt("descriptor of group %d at %d lies outside the file system", g, off)
	}
	d := make([]byte, sb.descSize)
	if _, err := img.r.ReadAt(d, int64(off)); err != nil {
		return 0, fmt.Errorf("ext4: reading descriptor of group %d: %w", g, err)
	}
	le := binary.LittleEndian
	t = uint64(le.Uint32(d[0x8:]))
	if sb.descSize >= 64 {
		t |= uint64(le.Uint32(d[0x28:])) << 32
	}
	flags := le.Uint16(d[0x12:])
	if flags&1 != 0 && sb.roCompat&(roGDTCsum|roMetaCsum) != 0 {
		return 0, corrupt("group %d has an uninitialised inode table but holds a used inode", g)
	}
	tableBlocks := (uint64(sb.inodesPerGroup)*uint64(sb.inodeSize) + uint64(img.bs) - 1) / uint64(img.bs)
	if t <= superOffset/uint64(img.bs) || t > sb.blocksCount || sb.blocksCount-t < tableBlocks {
		return 0, corrupt("group %d has its inode table at block %d, outside blocks %d..%d", g, t, superOffset/img.bs+1, sb.blocksCount)
	}
	img.mu.Lock()
	img.tables[g] = t
	img.mu.Unlock()
	return t, nil
}
