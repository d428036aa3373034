package squashfs3

import (
	"context"
	"fmt"
	"path"

	"github.com/fwvet/fwvet/pipeline"
)

// Inode types of squashfs 3.x; only directories and regular files have a
// long form.
const (
	typeDir     = 1
	typeFile    = 2
	typeSymlink = 3
	typeBlock   = 4
	typeChar    = 5
	typeFIFO    = 6
	typeSocket  = 7
	typeLDir    = 8
	typeLFile   = 9
)

var entryTypes = map[uint64]pipeline.EntryType{
	typeDir: pipeline.TypeDir, typeLDir: pipeline.TypeDir, typeFile: pipeline.TypeFile, typeLFile: pipeline.TypeFile,
	typeSymlink: pipeline.TypeSymlink, typeBlock: pipeline.TypeBlock, typeChar: pipeline.TypeChar,
	typeFIFO: pipeline.TypeFIFO, typeSocket: pipeline.TypeSocket,
}

// inodeSize is each type's fixed part, in bytes, from squashfs_compat.h.
var inodeSize = map[uint64]int{
	typeDir: 28, typeLDir: 31, typeFile: 32, typeLFile: 40,
	typeSymlink: 18, typeBlock: 18, typeChar: 18, typeFIFO: 16, typeSocket: 16,
}

type inode struct {
	ref    uint64
	typ    pipeline.EntryType
	mode   uint32
	uid    uint32
	gid    uint32
	number uint32

	// directories
	dirBlock  uint32
	dirOffset uint32
	dirSize   uint32

	// regular files; the block size list follows the inode at blockList.
	// links is 1 for a basic file inode, which has no count of its own.
	links       uint32
	blocksStart uint64
	size        uint64
	frag        uint32
	fragOffset  uint32
	blockList   *metaReader

	target       string
	major, minor uint32
}

// inode reads the inode that ref (metadata block << 16 | offset) points to.
func (img *Image) inode(ref uint64) (*inode, error) {
	block, off := int64(ref>>16), int(ref&0xffff)
	if off >= metaBlockSize || block >= int64(img.sb.dirTableStart-img.sb.inodeTableStart) {
		return nil, corrupt("inode reference %#x lies outside the inode table", ref)
	}
	mr := img.meta.reader(int64(img.sb.inodeTableStart)+block, off, int64(img.sb.dirTableStart))
	var b [48]byte
	if err := mr.read(b[:12]); err != nil {
		return nil, err
	}
	o := img.o
	t := o.bits(b[:], 0, 4)
	in := &inode{ref: ref, mode: uint32(o.bits(b[:], 4, 12)), number: o.u32(b[8:])}
	typ, ok := entryTypes[t]
	if !ok {
		return nil, corrupt("inode %d has unknown type %d", in.number, t)
	}
	in.typ = typ
	uidx, gidx := o.bits(b[:], 16, 8), o.bits(b[:], 24, 8)
	if uidx >= uint64(len(img.uids)) {
		return nil, corrupt("inode %d has uid index %d, the uid table holds %d", in.number, uidx, len(img.uids))
	}
	in.uid = img.uids[uidx]
	switch {
	case gidx == guidSameAsUID:
		in.gid = in.uid
	case gidx >= uint64(len(img.guids)):
		return nil, corrupt("inode %d has gid index %d, the gid table holds %d", in.number, gidx, len(img.guids))
	default:
		in.gid = img.guids[gidx]
	}
	n := inodeSize[t]
	if err := mr.read(b[12:n]); err != nil {
		return nil, err
	}
	switch t {
	case typeDir:
		in.dirSize, in.dirOffset, in.dirBlock = uint32(o.bits(b[:], 128, 19)), uint32(o.bits(b[:], 147, 13)), o.u32(b[20:])
	case typeLDir:
		in.dirSize, in.dirOffset, in.dirBlock = uint32(o.bits(b[:], 128, 27)), uint32(o.bits(b[:], 155, 13)), o.u32(b[21:])
	case typeFile:
		in.blocksStart, in.frag, in.fragOffset, in.size = o.u64(b[12:]), o.u32(b[20:]), o.u32(b[24:]), uint64(o.u32(b[28:]))
		in.blockList, in.links = mr, 1
	case typeLFile:
		in.blocksStart, in.frag, in.fragOffset, in.size = o.u64(b[16:]), o.u32(b[24:]), o.u32(b[28:]), o.u64(b[32:])
		in.blockList, in.links = mr, o.u32(b[12:])
	case typeSymlink:
		target := make([]byte, o.u16(b[16:]))
		if err := mr.read(target); err != nil {
			return nil, err
		}
		in.target = string(target)
	case typeBlock, typeChar:
		rdev := o.u16(b[16:])
		in.major, in.minor = uint32(rdev>>8), uint32(rdev&0xff)
	}
	if in.typ == pipeline.TypeFile && (in.size > 1<<62 || in.blocksStart > 1<<62) {
		return nil, corrupt("file inode %d declares %d bytes at %d", in.number, in.size, in.blocksStart)
	}
	return in, nil
}

// Walk visits every entry under the root directory.
func (img *Image) Walk(ctx context.Context, lim pipeline.Limits, visit func(*pipeline.Header, pipeline.OpenFunc) error) error {
	root, err := img.inode(img.sb.rootInode)
	if err != nil {
		return fmt.Errorf("%s: reading root inode: %w", img.Describe(), err)
	}
	if root.typ != pipeline.TypeDir {
		return corrupt("root inode is a %s, not a directory", root.typ)
	}
	w := &walker{img: img, lim: lim, visit: visit, seen: map[uint64]bool{img.sb.rootInode: true}, checked: map[uint64]bool{}, openAt: img.openAt}
	if err := visit(img.header(".", root), nil); err != nil {
		return err
	}
	if err := w.dir(ctx, "", root); err != nil {
		return fmt.Errorf("%s: %w", img.Describe(), err)
	}
	return nil
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
	// list once.
	checked map[uint64]bool
	// openAt opens a file by its inode reference: one function for the
	// walk, so that no file holds a closure and a block list of its own.
	openAt pipeline.OpenAt
}

// longList is the block count past which a checked list is remembered.
const longList = 64

type dirent struct {
	name string
	ref  uint64
}

func (w *walker) dir(ctx context.Context, dirPath string, d *inode) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(dirPath) > w.lim.MaxPathLen {
		// The unpacker refuses this directory for its path length and
		// would refuse all beneath it; not descending also bounds the
		// recursion.
		return nil
	}
	ents, err := w.img.readDir(d, w.lim)
	if err != nil {
		return fmt.Errorf("listing /%s: %w", dirPath, err)
	}
	for _, de := range ents {
		p := path.Join(dirPath, de.name)
		in, err := w.img.inode(de.ref)
		if err != nil {
			return fmt.Errorf("reading inode of /%s: %w", p, err)
		}
		h := w.img.header(p, in)
		if in.typ == pipeline.TypeFile && int64(in.size) <= w.lim.MaxFileSize {
			if !w.checked[de.ref] {
				f, err := w.img.fileData(in)
				if err != nil {
					return fmt.Errorf("/%s: %w", p, err)
				}
				if len(f.blocks) > longList {
					w.checked[de.ref] = true
				}
			}
			h.OpenAt, h.Locator = w.openAt, de.ref
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

func (img *Image) header(name string, in *inode) *pipeline.Header {
	h := &pipeline.Header{Name: name, Type: in.typ, Mode: in.mode & pipeline.ModePerm, UID: in.uid, GID: in.gid,
		LinkName: in.target, Major: in.major, Minor: in.minor}
	if in.typ == pipeline.TypeFile {
		h.Size = int64(in.size)
		// The inode's place identifies it: an inode number is only what
		// the image claims, and two files sharing one would be read once.
		// Only an inode of further names needs one, as the unpacker keeps
		// a slot for each Identity while it walks; a basic inode that a
		// hostile image names twice is read twice, within the limits.
		if in.links != 1 {
			h.Identity = in.ref + 1
		}
	}
	return h
}

// readDir reads a directory listing, checking every count and name. The
// listing's size counts 3 bytes more than it holds, as in squashfs 4.
func (img *Image) readDir(d *inode, lim pipeline.Limits) ([]dirent, error) {
	if d.dirSize <= 3 {
		return nil, nil
	}
	if d.dirOffset >= metaBlockSize {
		return nil, corrupt("directory inode %d has listing offset %d", d.number, d.dirOffset)
	}
	remaining := int64(d.dirSize) - 3
	mr := img.meta.reader(int64(img.sb.dirTableStart)+int64(d.dirBlock), int(d.dirOffset), int64(img.sb.bytesUsed))
	var out []dirent
	var hdr [9]byte
	var ent [5]byte
	name := make([]byte, maxNameLen)
	o := img.o
	for remaining > 0 {
		if remaining < int64(len(hdr)) {
			return nil, corrupt("directory listing ends inside a header")
		}
		if err := mr.read(hdr[:]); err != nil {
			return nil, err
		}
		remaining -= int64(len(hdr))
		count := int64(o.bits(hdr[:], 0, 8)) + 1
		start := uint64(o.u32(hdr[1:]))
		if count*int64(len(ent)) > remaining {
			return nil, corrupt("directory header announces %d entries in %d bytes", count, remaining)
		}
		for range count {
			if remaining < int64(len(ent)) {
				return nil, corrupt("directory listing ends inside an entry")
			}
			if err := mr.read(ent[:]); err != nil {
				return nil, err
			}
			off := o.bits(ent[:], 0, 13)
			nlen := int(o.bits(ent[:], 16, 8)) + 1
			remaining -= int64(len(ent))
			if int64(nlen) > remaining {
				return nil, corrupt("directory entry name of %d bytes in %d", nlen, remaining)
			}
			if err := mr.read(name[:nlen]); err != nil {
				return nil, err
			}
			remaining -= int64(nlen)
			if err := checkName(name[:nlen]); err != nil {
				return nil, err
			}
			if int64(len(out)) >= lim.MaxEntries {
				return nil, &pipeline.LimitError{Limit: "max-entries", Value: lim.MaxEntries, Msg: "one directory lists more entries than an artifact may hold"}
			}
			out = append(out, dirent{name: string(name[:nlen]), ref: start<<16 | off})
		}
	}
	return out, nil
}
