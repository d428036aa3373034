// Package squashfs reads SquashFS 4.0 images from an io.ReaderAt: the
// superblock, the id, fragment, inode and directory tables, and file data,
// with every offset, size and count checked against the image before use.
//
// It keeps the full Unix mode (setuid, setgid and sticky included) as the
// inode stores it, never passing through fs.FileMode, and reads file data
// block by block so that many files can be hashed at once from one image.
package squashfs

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"path"
	"sync"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/unpack/blockcache"
)

// Format is the SquashFS 4.0 little-endian image format.
type Format struct{}

var (
	_ pipeline.Container = Format{}
	_ pipeline.Carvable  = Format{}
	_ pipeline.Spanner   = Format{}
)

// Name implements pipeline.Format.
func (Format) Name() string { return "squashfs" }

// Match implements pipeline.Format.
func (Format) Match(head []byte) bool {
	return len(head) >= superblockSize && bytes.HasPrefix(head, []byte("hsqs")) &&
		binary.LittleEndian.Uint16(head[28:]) == 4
}

// Signatures implements pipeline.Carvable.
func (Format) Signatures() []pipeline.Signature {
	return []pipeline.Signature{{Magic: []byte("hsqs"), Align: 4}}
}

// Span implements pipeline.Spanner: the bytes used, padded to 4 KiB as
// mksquashfs pads them.
func (Format) Span(r io.ReaderAt, size int64) (int64, error) {
	buf := make([]byte, superblockSize)
	if size < superblockSize {
		return 0, corrupt("image of %d bytes is shorter than a superblock", size)
	}
	if _, err := r.ReadAt(buf, 0); err != nil {
		return 0, fmt.Errorf("reading superblock: %w", err)
	}
	used := binary.LittleEndian.Uint64(buf[40:])
	if used < superblockSize || used > 1<<62 {
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

// ErrCorrupt is wrapped by every error about malformed image contents.
var ErrCorrupt = errors.New("corrupt squashfs")

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

const (
	superblockSize = 96
	metaBlockSize  = 8192
	noFragment     = 0xFFFFFFFF
	noTable        = 0xFFFFFFFFFFFFFFFF
	blockUncomp    = 1 << 24
	metaUncomp     = 1 << 15
	maxNameLen     = 256
)

// Compression ids of the superblock.
const (
	compGzip = 1
	compLZMA = 2
	compLZO  = 3
	compXZ   = 4
	compLZ4  = 5
	compZstd = 6
)

var compNames = map[uint16]string{compGzip: "gzip", compLZO: "lzo", compLZMA: "lzma", compXZ: "xz", compLZ4: "lz4", compZstd: "zstd"}

type superblock struct {
	Magic               uint32
	Inodes              uint32
	ModTime             uint32
	BlockSize           uint32
	Fragments           uint32
	Compression         uint16
	BlockLog            uint16
	Flags               uint16
	IDCount             uint16
	Major               uint16
	Minor               uint16
	RootInode           uint64
	BytesUsed           uint64
	IDTableStart        uint64
	XattrTableStart     uint64
	InodeTableStart     uint64
	DirectoryTableStart uint64
	FragmentTableStart  uint64
	ExportTableStart    uint64
}

// Image is an open SquashFS image.
type Image struct {
	r     io.ReaderAt
	size  int64
	sb    superblock
	codec codec
	ids   []uint32
	frags []fragment
	meta  *metaCache
	// cache holds fragments and the data blocks of files read in place.
	cache   *blockcache.Cache[blockcache.Key]
	bufPool sync.Pool
}

type fragment struct {
	start int64
	size  uint32
}

// Open reads and checks the superblock and the id and fragment tables.
func Open(r io.ReaderAt, size int64) (*Image, error) {
	if size < superblockSize {
		return nil, corrupt("image of %d bytes is shorter than a superblock", size)
	}
	buf := make([]byte, superblockSize)
	if _, err := r.ReadAt(buf, 0); err != nil {
		return nil, fmt.Errorf("reading superblock: %w", err)
	}
	img := &Image{r: r, size: size}
	sb := &img.sb
	if err := binary.Read(bytes.NewReader(buf), binary.LittleEndian, sb); err != nil {
		return nil, fmt.Errorf("decoding superblock: %w", err)
	}
	if sb.Magic != 0x73717368 {
		return nil, corrupt("bad magic %#x", sb.Magic)
	}
	if sb.Major != 4 || sb.Minor != 0 {
		return nil, fmt.Errorf("squashfs version %d.%d is not supported (only 4.0)", sb.Major, sb.Minor)
	}
	if sb.BlockSize < 4096 || sb.BlockSize > 1<<20 || sb.BlockSize&(sb.BlockSize-1) != 0 || 1<<sb.BlockLog != sb.BlockSize {
		return nil, corrupt("block size %d and block log %d disagree or are out of range", sb.BlockSize, sb.BlockLog)
	}
	if sb.BytesUsed > uint64(size) {
		return nil, corrupt("superblock says %d bytes are used but the image has %d: truncated", sb.BytesUsed, size)
	}
	used := sb.BytesUsed
	for _, t := range []struct {
		name string
		off  uint64
	}{{"inode", sb.InodeTableStart}, {"directory", sb.DirectoryTableStart}, {"id", sb.IDTableStart}} {
		if t.off < superblockSize || t.off >= used {
			return nil, corrupt("%s table at %d lies outside the %d used bytes", t.name, t.off, used)
		}
	}
	if sb.InodeTableStart >= sb.DirectoryTableStart {
		return nil, corrupt("inode table at %d does not precede the directory table at %d", sb.InodeTableStart, sb.DirectoryTableStart)
	}
	codec, err := newCodec(sb.Compression, sb.BlockSize)
	if err != nil {
		return nil, err
	}
	img.codec = codec
	img.meta = newMetaCache(img)
	img.cache = blockcache.New[blockcache.Key](cacheBytes, cacheMinBlocks)
	bs := int(sb.BlockSize)
	img.bufPool.New = func() any { return &blockBufs{comp: make([]byte, bs), plain: make([]byte, bs)} }
	if err := img.readIDs(); err != nil {
		return nil, err
	}
	if err := img.readFragments(); err != nil {
		return nil, err
	}
	return img, nil
}

// Compression names the image's compressor.
func (img *Image) Compression() string { return compNames[img.sb.Compression] }

// readTable reads a lookup table of count entries of entrySize bytes whose
// metadata block locations are listed at start.
func (img *Image) readTable(name string, start uint64, count, entrySize int) ([]byte, error) {
	if count == 0 {
		return nil, nil
	}
	total := count * entrySize
	nblocks := (total + metaBlockSize - 1) / metaBlockSize
	if start >= img.sb.BytesUsed || uint64(nblocks*8) > img.sb.BytesUsed-start {
		return nil, corrupt("%s table index at %d with %d blocks lies outside the image", name, start, nblocks)
	}
	locs := make([]byte, nblocks*8)
	if _, err := img.r.ReadAt(locs, int64(start)); err != nil {
		return nil, fmt.Errorf("reading %s table index: %w", name, err)
	}
	out := make([]byte, 0, total)
	for i := 0; i < nblocks; i++ {
		loc := binary.LittleEndian.Uint64(locs[i*8:])
		b, _, err := img.readMetaBlock(int64(loc))
		if err != nil {
			return nil, fmt.Errorf("reading %s table block %d: %w", name, i, err)
		}
		out = append(out, b...)
	}
	if len(out) < total {
		return nil, corrupt("%s table holds %d bytes, %d expected", name, len(out), total)
	}
	return out[:total], nil
}

func (img *Image) readIDs() error {
	b, err := img.readTable("id", img.sb.IDTableStart, int(img.sb.IDCount), 4)
	if err != nil {
		return err
	}
	img.ids = make([]uint32, img.sb.IDCount)
	for i := range img.ids {
		img.ids[i] = binary.LittleEndian.Uint32(b[i*4:])
	}
	return nil
}

func (img *Image) readFragments() error {
	if img.sb.Fragments == 0 || img.sb.FragmentTableStart == noTable {
		return nil
	}
	// Each entry takes 16 bytes of some metadata block, so a count larger
	// than the image could hold is a lie; refuse it before allocating.
	if uint64(img.sb.Fragments) > img.sb.BytesUsed/16*metaBlockSize {
		return corrupt("%d fragments cannot fit in %d bytes", img.sb.Fragments, img.sb.BytesUsed)
	}
	b, err := img.readTable("fragment", img.sb.FragmentTableStart, int(img.sb.Fragments), 16)
	if err != nil {
		return err
	}
	img.frags = make([]fragment, img.sb.Fragments)
	for i := range img.frags {
		img.frags[i] = fragment{start: int64(binary.LittleEndian.Uint64(b[i*16:])), size: binary.LittleEndian.Uint32(b[i*16+8:])}
	}
	return nil
}

// readMetaBlock reads the metadata block at the absolute offset off and
// returns its bytes and the offset of the next block.
func (img *Image) readMetaBlock(off int64) ([]byte, int64, error) {
	if off < 0 || off+2 > int64(img.sb.BytesUsed) {
		return nil, 0, corrupt("metadata block at %d lies outside the image", off)
	}
	var hdr [2]byte
	if _, err := img.r.ReadAt(hdr[:], off); err != nil {
		return nil, 0, err
	}
	h := binary.LittleEndian.Uint16(hdr[:])
	n := int64(h &^ metaUncomp)
	if n == 0 || n > metaBlockSize || off+2+n > int64(img.sb.BytesUsed) {
		return nil, 0, corrupt("metadata block at %d has bad size %d", off, n)
	}
	raw := make([]byte, n)
	if _, err := img.r.ReadAt(raw, off+2); err != nil {
		return nil, 0, err
	}
	if h&metaUncomp != 0 {
		return raw, off + 2 + n, nil
	}
	out, err := img.codec.decompress(make([]byte, 0, metaBlockSize), raw, metaBlockSize)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: metadata block at %d: %v", ErrCorrupt, off, err)
	}
	return out, off + 2 + n, nil
}

// Walk visits every entry under the root directory.
func (img *Image) Walk(ctx context.Context, lim pipeline.Limits, visit func(*pipeline.Header, pipeline.OpenFunc) error) error {
	root, err := img.inode(img.sb.RootInode)
	if err != nil {
		return fmt.Errorf("reading root inode: %w", err)
	}
	if root.typ != pipeline.TypeDir {
		return corrupt("root inode is a %s, not a directory", root.typ)
	}
	w := &walker{img: img, lim: lim, visit: visit, seen: map[uint64]bool{img.sb.RootInode: true}, checked: map[uint64]bool{}, openAt: img.openAt}
	if err := visit(img.header(".", root), nil); err != nil {
		return err
	}
	return w.dir(ctx, "", root)
}

type walker struct {
	img   *Image
	lim   pipeline.Limits
	visit func(*pipeline.Header, pipeline.OpenFunc) error
	// seen holds directory inode references, so a directory that lists one
	// of its ancestors cannot send the walk round in circles.
	seen map[uint64]bool
	// checked holds the file inodes with a long block list, by reference,
	// once checked: the entries naming one inode (hard links) check its
	// list once. Its size is bounded by the entries, each of which costs
	// more than its slot here.
	checked map[uint64]bool
	// openAt opens a file by its inode reference: one function for the
	// walk, so that no file holds a closure of its own.
	openAt pipeline.OpenAt
}

type dirent struct {
	name string
	ref  uint64
}

func (w *walker) dir(ctx context.Context, dirPath string, d *inode) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(dirPath) > w.lim.MaxPathLen {
		// The unpacker refused this directory for its path length and would
		// refuse all beneath it; not descending also bounds the recursion.
		return nil
	}
	ents, err := w.img.readDir(d, w.lim)
	if err != nil {
		return fmt.Errorf("listing %s: %w", displayDir(dirPath), err)
	}
	for _, de := range ents {
		p := path.Join(dirPath, de.name)
		in, err := w.img.inode(de.ref)
		if err != nil {
			return fmt.Errorf("reading inode of %s: %w", "/"+p, err)
		}
		h := w.img.header(p, in)
		if in.typ == pipeline.TypeFile && int64(in.size) <= w.lim.MaxFileSize {
			if err := w.check(de.ref, in); err != nil {
				return fmt.Errorf("%s: %w", "/"+p, err)
			}
			h.OpenAt, h.Locator = w.openAt, de.ref
			// The inode's place, not the number it claims, which a hostile
			// image can give two inodes of different bytes. Only an inode
			// of further names needs one: the unpacker keeps a slot for
			// each Identity while it walks, a million at the entry limit. A
			// basic inode has one name; one that a hostile image names
			// twice is read twice, within the byte limits.
			if in.links != 1 {
				h.Identity = de.ref + 1
			}
		}
		if err := w.visit(h, nil); err != nil {
			return err
		}
		if in.typ == pipeline.TypeDir {
			if w.seen[de.ref] {
				return corrupt("directory /%s lists an ancestor or an already listed directory", p)
			}
			w.seen[de.ref] = true
			if err := w.dir(ctx, p, in); err != nil {
				return err
			}
		}
	}
	return nil
}

// check checks the file inode in at ref and its block list, once for
// the entries naming one inode when its list is long.
func (w *walker) check(ref uint64, in *inode) error {
	if w.checked[ref] {
		return nil
	}
	f, err := w.img.fileData(in, true)
	if err != nil {
		return err
	}
	if f.nblocks > inlineBlocks {
		w.checked[ref] = true
	}
	return nil
}

func displayDir(p string) string { return "/" + p }

func (img *Image) header(name string, in *inode) *pipeline.Header {
	h := &pipeline.Header{Name: name, Type: in.typ, Mode: uint32(in.mode) & pipeline.ModePerm, UID: in.uid, GID: in.gid,
		LinkName: in.target, Major: in.major, Minor: in.minor}
	if in.typ == pipeline.TypeFile {
		h.Size = int64(in.size)
	}
	return h
}

// readDir reads a directory listing, checking every count and name.
func (img *Image) readDir(d *inode, lim pipeline.Limits) ([]dirent, error) {
	if d.dirSize < 4 {
		return nil, nil
	}
	remaining := int64(d.dirSize) - 3
	mr := img.meta.reader(int64(img.sb.DirectoryTableStart)+int64(d.dirBlock), int(d.dirOffset), int64(img.sb.BytesUsed))
	var out []dirent
	var hdr [12]byte
	var ent [8]byte
	name := make([]byte, maxNameLen)
	for remaining > 0 {
		if remaining < 12 {
			return nil, corrupt("directory listing ends inside a header")
		}
		if err := mr.read(hdr[:]); err != nil {
			return nil, err
		}
		remaining -= 12
		count := int64(binary.LittleEndian.Uint32(hdr[0:])) + 1
		start := uint64(binary.LittleEndian.Uint32(hdr[4:]))
		if count > 256 || count*8 > remaining {
			return nil, corrupt("directory header announces %d entries in %d bytes", count, remaining)
		}
		for i := int64(0); i < count; i++ {
			if remaining < 8 {
				return nil, corrupt("directory listing ends inside an entry")
			}
			if err := mr.read(ent[:]); err != nil {
				return nil, err
			}
			off := binary.LittleEndian.Uint16(ent[0:])
			nlen := int(binary.LittleEndian.Uint16(ent[6:])) + 1
			remaining -= 8
			if nlen > maxNameLen || int64(nlen) > remaining {
				return nil, corrupt("directory entry name of %d bytes", nlen)
			}
			if err := mr.read(name[:nlen]); err != nil {
				return nil, err
			}
			remaining -= int64(nlen)
			n := string(name[:nlen])
			if n == "." || n == ".." || bytes.ContainsAny(name[:nlen], "/\x00") {
				return nil, corrupt("directory entry name %q", n)
			}
			if int64(len(out)) >= lim.MaxEntries {
				return nil, &pipeline.LimitError{Limit: "max-entries", Value: lim.MaxEntries, Msg: "one directory lists more entries than an artifact may hold"}
			}
			out = append(out, dirent{name: n, ref: start<<16 | uint64(off)})
		}
	}
	return out, nil
}
