// Package squashfs3 reads SquashFS 3.0 and 3.1 images, the format of
// Linux 2.4 and 2.6 routers before squashfs 4 (2009): little or big endian,
// bit-field packed inodes and directory entries, zlib blocks, or the LZMA
// blocks that vendor builds (sqlzma, DD-WRT) put in their place, under the
// standard magics and the modified ones those builds use.
//
// It recognises squashfs 1.x and 2.x, and squashfs 4 under a vendor magic,
// so that such a region is reported as a squashfs of a version not read,
// never as an unknown format.
package squashfs3

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/unpack/blockcache"
)

// Format is the SquashFS 3.x image format, with the vendor magics.
type Format struct{}

var (
	_ pipeline.Container = Format{}
	_ pipeline.Carvable  = Format{}
	_ pipeline.Spanner   = Format{}
)

// Name implements pipeline.Format.
func (Format) Name() string { return "squashfs3" }

// ErrCorrupt is wrapped by every error about malformed image contents.
var ErrCorrupt = errors.New("corrupt squashfs")

// ErrUnsupported is wrapped by the error for a squashfs version or
// compression this package recognises but does not read.
var ErrUnsupported = errors.New("unsupported squashfs")

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

// magic is one superblock magic: its bytes on disk and the byte order of
// the image it starts.
type magic struct {
	bytes string
	be    bool
	// std is false for a vendor's modified magic.
	std bool
}

// magics are those sasquatch and the vendors' kernels accept: the standard
// pair, sqlzma's LZMA pair and DD-WRT's.
var magics = []magic{
	{"hsqs", false, true}, {"sqsh", true, true},
	{"shsq", false, false}, {"qshs", true, false},
	{"hsqt", false, false}, {"tqsh", true, false},
}

func findMagic(head []byte) (magic, bool) {
	if len(head) < 4 {
		return magic{}, false
	}
	for _, m := range magics {
		if string(head[:4]) == m.bytes {
			return m, true
		}
	}
	return magic{}, false
}

// order reads the image's integers and bit fields in its byte order.
type order struct{ be bool }

func (o order) bo() binary.ByteOrder {
	if o.be {
		return binary.BigEndian
	}
	return binary.LittleEndian
}

func (o order) u16(b []byte) uint16 { return o.bo().Uint16(b) }
func (o order) u32(b []byte) uint32 { return o.bo().Uint32(b) }
func (o order) u64(b []byte) uint64 { return o.bo().Uint64(b) }

// bits reads the width-bit field at bit pos of a packed structure in b, as
// GCC lays out bit fields: from the least significant bit of each byte on
// a little-endian machine, from the most significant on a big-endian one
// (squashfs-tools' SQUASHFS_SWAP macros read them the same way). width+pos%8
// must not pass 64.
func (o order) bits(b []byte, pos, width int) uint64 {
	var w [8]byte
	if i := pos / 8; i < len(b) {
		copy(w[:], b[i:])
	}
	mask := uint64(1)<<width - 1
	if o.be {
		return binary.BigEndian.Uint64(w[:]) >> (64 - width - pos%8) & mask
	}
	return binary.LittleEndian.Uint64(w[:]) >> (pos % 8) & mask
}

const (
	// superblockSize is the 3.x superblock; 1.x and 2.x use its first
	// fields.
	superblockSize = 119
	// headSize is what Match needs to tell the version.
	headSize       = 32
	metaBlockSize  = 8192
	metaUncomp     = 1 << 15
	blockUncomp    = 1 << 24
	noFragment     = 0xFFFFFFFF
	maxNameLen     = 256
	maxBlockSize   = 1 << 20
	minBlockSize   = 4096
	flagCheck      = 1 << 2
	guidSameAsUID  = 255
	maxSymlinkSize = 0xFFFF
)

// header is what the first bytes say, for every version.
type header struct {
	m            magic
	o            order
	major, minor uint16
}

func readHeader(head []byte) (header, bool) {
	m, ok := findMagic(head)
	if !ok || len(head) < headSize {
		return header{}, false
	}
	o := order{m.be}
	return header{m: m, o: o, major: o.u16(head[28:]), minor: o.u16(head[30:])}, true
}

// describe names the image for errors: "squashfs version 3.0 (big-endian,
// magic tqsh)".
func (h header) describe(comp string) string {
	end := "little-endian"
	if h.m.be {
		end = "big-endian"
	}
	if comp != "" {
		end += ", " + comp
	}
	return fmt.Sprintf("squashfs version %d.%d (%s, magic %s)", h.major, h.minor, end, h.m.bytes)
}

// Match implements pipeline.Format: a squashfs magic and a version this
// package reads or reports. Version 4 under the standard little-endian
// magic is the squashfs package's.
func (Format) Match(head []byte) bool {
	h, ok := readHeader(head)
	if !ok || h.minor > 3 {
		return false
	}
	switch h.major {
	case 1, 2:
		return true
	case 3:
		if len(head) < superblockSize {
			return false
		}
		bs, blog := h.o.u32(head[51:]), h.o.u16(head[34:])
		return blockSizeOK(bs, blog) && h.o.u64(head[63:]) >= superblockSize
	case 4:
		return h.m.bytes != "hsqs"
	}
	return false
}

func blockSizeOK(bs uint32, blog uint16) bool {
	return bs >= minBlockSize && bs <= maxBlockSize && bs&(bs-1) == 0 && blog < 32 && 1<<blog == bs
}

// Signatures implements pipeline.Carvable.
func (Format) Signatures() []pipeline.Signature {
	sigs := make([]pipeline.Signature, 0, len(magics))
	for _, m := range magics {
		sigs = append(sigs, pipeline.Signature{Magic: []byte(m.bytes), Align: 4})
	}
	return sigs
}

// Span implements pipeline.Spanner: the bytes used, padded to 4 KiB as
// mksquashfs pads them.
func (Format) Span(r io.ReaderAt, size int64) (int64, error) {
	if size < headSize {
		return 0, corrupt("image of %d bytes is shorter than a superblock", size)
	}
	buf := make([]byte, superblockSize)
	n, err := r.ReadAt(buf[:min(int64(len(buf)), size)], 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, fmt.Errorf("reading superblock: %w", err)
	}
	buf = buf[:n]
	h, ok := readHeader(buf)
	if !ok {
		return 0, corrupt("no squashfs magic")
	}
	var used uint64
	switch {
	case h.major == 3 && len(buf) >= superblockSize:
		used = h.o.u64(buf[63:])
	case h.major == 4 && len(buf) >= 48:
		used = h.o.u64(buf[40:])
	case h.major == 1 || h.major == 2:
		used = uint64(h.o.u32(buf[8:]))
	default:
		return 0, corrupt("%s: no size in the superblock", h.describe(""))
	}
	if used < headSize || used > 1<<62 {
		return 0, corrupt("superblock says %d bytes are used", used)
	}
	return min(int64(used+4095)&^4095, size), nil
}

// Walk implements pipeline.Container: every directory, file, link and node, the
// root first and each directory before its entries.
func (Format) Walk(ctx context.Context, r io.ReaderAt, size int64, lim pipeline.Limits, visit func(*pipeline.Header, pipeline.OpenFunc) error) error {
	img, err := Open(r, size)
	if err != nil {
		return err
	}
	return img.Walk(ctx, lim, visit)
}

type superblock struct {
	inodes              uint32
	blockSize           uint32
	blockLog            uint16
	flags               uint8
	uids, guids         uint8
	rootInode           uint64
	fragments           uint32
	bytesUsed           uint64
	uidStart, guidStart uint64
	inodeTableStart     uint64
	dirTableStart       uint64
	fragTableStart      uint64
}

// Image is an open SquashFS 3.x image.
type Image struct {
	r     io.ReaderAt
	size  int64
	h     header
	o     order
	sb    superblock
	uids  []uint32
	guids []uint32
	// metaHdr is the size of a metadata block's header: 2 bytes, 3 when
	// the image has check data (a marker byte after the length).
	metaHdr int64
	meta    *metaCache
	// cache holds fragments and the data blocks of files read in place.
	cache *blockcache.Cache[blockcache.Key]
	codec codec
}

// Open reads and checks the superblock and the id tables.
func Open(r io.ReaderAt, size int64) (*Image, error) {
	if size < headSize {
		return nil, corrupt("image of %d bytes is shorter than a superblock", size)
	}
	buf := make([]byte, superblockSize)
	n, err := r.ReadAt(buf[:min(int64(len(buf)), size)], 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("reading superblock: %w", err)
	}
	buf = buf[:n]
	h, ok := readHeader(buf)
	if !ok {
		return nil, corrupt("no squashfs magic")
	}
	if h.major != 3 || h.minor > 1 {
		return nil, fmt.Errorf("%w: %s is not supported (only 3.0 and 3.1)", ErrUnsupported, h.describe(""))
	}
	if len(buf) < superblockSize {
		return nil, corrupt("image of %d bytes is shorter than a superblock", size)
	}
	o := h.o
	sb := superblock{
		inodes: o.u32(buf[4:]), blockLog: o.u16(buf[34:]), flags: buf[36], uids: buf[37], guids: buf[38],
		rootInode: o.u64(buf[43:]), blockSize: o.u32(buf[51:]), fragments: o.u32(buf[55:]),
		bytesUsed: o.u64(buf[63:]), uidStart: o.u64(buf[71:]), guidStart: o.u64(buf[79:]),
		inodeTableStart: o.u64(buf[87:]), dirTableStart: o.u64(buf[95:]), fragTableStart: o.u64(buf[103:]),
	}
	img := &Image{r: r, size: size, h: h, o: o, sb: sb, metaHdr: 2}
	if sb.flags&flagCheck != 0 {
		img.metaHdr = 3
	}
	if !blockSizeOK(sb.blockSize, sb.blockLog) {
		return nil, corrupt("block size %d and block log %d disagree or are out of range", sb.blockSize, sb.blockLog)
	}
	if sb.bytesUsed > uint64(size) {
		return nil, corrupt("superblock says %d bytes are used but the image has %d: truncated", sb.bytesUsed, size)
	}
	used := sb.bytesUsed
	for _, t := range []struct {
		name string
		off  uint64
	}{{"inode", sb.inodeTableStart}, {"directory", sb.dirTableStart}, {"uid", sb.uidStart}} {
		if t.off < superblockSize || t.off >= used {
			return nil, corrupt("%s table at %d lies outside the %d used bytes", t.name, t.off, used)
		}
	}
	if sb.inodeTableStart >= sb.dirTableStart {
		return nil, corrupt("inode table at %d does not precede the directory table at %d", sb.inodeTableStart, sb.dirTableStart)
	}
	if sb.uids == 0 {
		return nil, corrupt("no uids in the uid table")
	}
	if img.uids, err = img.readIDs("uid", sb.uidStart, int(sb.uids)); err != nil {
		return nil, err
	}
	if sb.guids > 0 {
		if img.guids, err = img.readIDs("gid", sb.guidStart, int(sb.guids)); err != nil {
			return nil, err
		}
	}
	if sb.fragments > 0 {
		idx := (uint64(sb.fragments)*16 + metaBlockSize - 1) / metaBlockSize
		if sb.fragTableStart < superblockSize || sb.fragTableStart >= used || idx*8 > used-sb.fragTableStart {
			return nil, corrupt("fragment index at %d for %d fragments lies outside the image", sb.fragTableStart, sb.fragments)
		}
	}
	img.meta = newMetaCache(img)
	img.cache = blockcache.New[blockcache.Key](cacheBytes, cacheMinBlocks)
	return img, nil
}

// readIDs reads an id table: in 3.x, plain 32-bit words, not metadata.
func (img *Image) readIDs(name string, start uint64, n int) ([]uint32, error) {
	if start < superblockSize || start >= img.sb.bytesUsed || uint64(n*4) > img.sb.bytesUsed-start {
		return nil, corrupt("%s table at %d with %d ids lies outside the image", name, start, n)
	}
	b := make([]byte, n*4)
	if _, err := img.r.ReadAt(b, int64(start)); err != nil {
		return nil, fmt.Errorf("reading %s table: %w", name, err)
	}
	ids := make([]uint32, n)
	for i := range ids {
		ids[i] = img.o.u32(b[i*4:])
	}
	return ids, nil
}

// Describe names the image's version, byte order, compression and magic.
func (img *Image) Describe() string { return img.h.describe(img.codec.name()) }

// readMetaBlock reads the metadata block at the absolute offset off and
// returns its bytes and the offset of the next block.
func (img *Image) readMetaBlock(off int64) ([]byte, int64, error) {
	used := int64(img.sb.bytesUsed)
	if off < 0 || off+img.metaHdr > used {
		return nil, 0, corrupt("metadata block at %d lies outside the image", off)
	}
	var hdr [3]byte
	if _, err := img.r.ReadAt(hdr[:img.metaHdr], off); err != nil {
		return nil, 0, fmt.Errorf("reading metadata block header at %d: %w", off, err)
	}
	h := img.o.u16(hdr[:])
	n := int64(h &^ metaUncomp)
	start := off + img.metaHdr
	if n == 0 || n > metaBlockSize || start+n > used {
		return nil, 0, corrupt("metadata block at %d has bad size %d", off, n)
	}
	raw := make([]byte, n)
	if _, err := img.r.ReadAt(raw, start); err != nil {
		return nil, 0, fmt.Errorf("reading metadata block at %d: %w", off, err)
	}
	if h&metaUncomp != 0 {
		return raw, start + n, nil
	}
	out, err := img.codec.decompress(make([]byte, 0, metaBlockSize), raw, metaBlockSize)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: metadata block at %d: %w", ErrCorrupt, off, err)
	}
	return out, start + n, nil
}

// fragment returns fragment i's location from the fragment table, whose
// index lists the metadata blocks that hold 16-byte entries.
func (img *Image) fragmentEntry(i uint32) (start int64, size uint32, err error) {
	if i >= img.sb.fragments {
		return 0, 0, corrupt("fragment %d of %d", i, img.sb.fragments)
	}
	pos := int64(i) * 16
	var loc [8]byte
	if _, err := img.r.ReadAt(loc[:], int64(img.sb.fragTableStart)+pos/metaBlockSize*8); err != nil {
		return 0, 0, fmt.Errorf("reading fragment index: %w", err)
	}
	mr := img.meta.reader(int64(img.o.u64(loc[:])), int(pos%metaBlockSize), int64(img.sb.bytesUsed))
	var e [16]byte
	if err := mr.read(e[:]); err != nil {
		return 0, 0, fmt.Errorf("reading fragment %d entry: %w", i, err)
	}
	s := img.o.u64(e[0:])
	if s > 1<<62 {
		return 0, 0, corrupt("fragment %d at %d", i, s)
	}
	return int64(s), img.o.u32(e[8:]), nil
}

// checkName refuses a directory entry name a path cannot hold.
func checkName(name []byte) error {
	n := string(name)
	if n == "." || n == ".." || bytes.ContainsAny(name, "/\x00") {
		return corrupt("directory entry name %q", n)
	}
	return nil
}
