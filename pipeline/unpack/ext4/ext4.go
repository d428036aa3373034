package ext4

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"path"

	"github.com/fwvet/fwvet/pipeline"
)

// Format is the ext2/ext3/ext4 file system image format.
type Format struct{}

var (
	_ pipeline.Container = Format{}
	_ pipeline.Carvable  = Format{}
	_ pipeline.Spanner   = Format{}
)

// Name implements pipeline.Format. The one name covers ext2 and ext3,
// which ext4 reads as subsets of itself.
func (Format) Name() string { return "ext4" }

// Match implements pipeline.Format: the magic and superblock fields that
// make the layout computable.
func (Format) Match(head []byte) bool {
	if len(head) < superOffset+0x100 || binary.LittleEndian.Uint16(head[magicOffset:]) != magic {
		return false
	}
	_, err := parseSuper(head[superOffset:min(len(head), superOffset+superSize)])
	return err == nil
}

// Signatures implements pipeline.Carvable. File systems start on sector
// boundaries of the devices they were written to.
func (Format) Signatures() []pipeline.Signature {
	return []pipeline.Signature{{Offset: magicOffset, Magic: []byte{0x53, 0xEF}, Align: 512}}
}

// Span implements pipeline.Spanner: the block count times the block size.
func (Format) Span(r io.ReaderAt, size int64) (int64, error) {
	if size < superOffset+superSize {
		return 0, corrupt("image of %d bytes is shorter than a superblock", size)
	}
	buf := make([]byte, superSize)
	if _, err := r.ReadAt(buf, superOffset); err != nil {
		return 0, fmt.Errorf("ext4: reading superblock: %w", err)
	}
	sb, err := parseSuper(buf)
	if err != nil {
		return 0, err
	}
	if sb.span() > uint64(size) {
		return 0, corrupt("superblock spans %d bytes but only %d remain: truncated", sb.span(), size)
	}
	return int64(sb.span()), nil
}

// Walk implements pipeline.Container: the root first, then every directory
// before its entries, in on-disk order.
func (Format) Walk(ctx context.Context, r io.ReaderAt, size int64, lim pipeline.Limits, visit func(*pipeline.Header, pipeline.OpenFunc) error) error {
	img, err := Open(r, size)
	if err != nil {
		return err
	}
	return img.Walk(ctx, lim, visit)
}

// Walk visits every entry under the root directory.
func (img *Image) Walk(ctx context.Context, lim pipeline.Limits, visit func(*pipeline.Header, pipeline.OpenFunc) error) error {
	root, err := img.inode(rootIno)
	if err != nil {
		return fmt.Errorf("reading root directory: %w", err)
	}
	if root.typ != pipeline.TypeDir {
		return corrupt("root inode is a %s, not a directory", root.typ)
	}
	w := &walker{img: img, lim: lim, visit: visit, seen: map[uint32]bool{rootIno: true}, dirBlocks: img.sb.blocksCount}
	if err := visit(header(".", root), nil); err != nil {
		return err
	}
	return w.dir(ctx, "", root)
}

type walker struct {
	img   *Image
	lim   pipeline.Limits
	visit func(*pipeline.Header, pipeline.OpenFunc) error
	// seen holds directory inodes, so a directory listed twice (a loop
	// back to an ancestor) cannot send the walk round in circles.
	seen map[uint32]bool
	// dirBlocks is how many more directory blocks the walk may read.
	dirBlocks uint64
}

func (w *walker) dir(ctx context.Context, dirPath string, d *inode) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(dirPath) > w.lim.MaxPathLen {
		// The unpacker refuses this path and all beneath it; not
		// descending also bounds the recursion.
		return nil
	}
	ents, err := w.img.readDir(ctx, d, w.lim, &w.dirBlocks)
	if err != nil {
		return fmt.Errorf("listing /%s: %w", dirPath, err)
	}
	for _, de := range ents {
		p := path.Join(dirPath, de.name)
		in, err := w.img.inode(de.ino)
		if err != nil {
			return fmt.Errorf("reading /%s: %w", p, err)
		}
		h := header(p, in)
		switch in.typ {
		case pipeline.TypeFile:
			if int64(in.size) > w.lim.MaxFileSize || in.size > 1<<62 {
				break // the unpacker reports the limit from the size
			}
			// A number, not a closure over the inode: the inode and its map
			// are read again when the file is opened, and an error in them
			// is the open's.
			h.OpenAt, h.Locator = w.img.openAt, uint64(de.ino)
		case pipeline.TypeSymlink:
			if h.LinkName, err = w.img.symlink(ctx, in); err != nil {
				return fmt.Errorf("/%s: %w", p, err)
			}
		}
		if err := w.visit(h, nil); err != nil {
			return err
		}
		if in.typ == pipeline.TypeDir {
			if w.seen[de.ino] {
				return corrupt("directory /%s is listed twice: a loop", p)
			}
			w.seen[de.ino] = true
			if err := w.dir(ctx, p, in); err != nil {
				return err
			}
		}
	}
	return nil
}

func header(name string, in *inode) *pipeline.Header {
	h := &pipeline.Header{Name: name, Type: in.typ, Mode: uint32(in.mode) & pipeline.ModePerm,
		UID: in.uid, GID: in.gid}
	// Only an inode of further names needs one: the unpacker keeps a slot
	// for each while it walks.
	if in.links > 1 {
		h.Identity = uint64(in.num)
	}
	switch in.typ {
	case pipeline.TypeFile:
		h.Size = int64(in.size)
	case pipeline.TypeChar, pipeline.TypeBlock:
		h.Major, h.Minor = in.device()
	}
	return h
}

// maxSymlink bounds a symlink target before it is read: Linux allows one
// block's worth, at most 64 KiB.
const maxSymlink = 64 << 10

// symlink reads a symlink's target: from i_block for a fast symlink, else
// from its data block or inline data.
func (img *Image) symlink(ctx context.Context, in *inode) (string, error) {
	if in.size == 0 || in.size > maxSymlink || int64(in.size) > img.bs {
		return "", corrupt("symlink inode %d has a target of %d bytes", in.num, in.size)
	}
	aclSectors := uint64(0)
	if in.fileACL != 0 {
		aclSectors = uint64(img.bs / 512)
	}
	if in.flags&(flagInlineData|flagExtents) == 0 && in.size < iBlockSize && in.sectors <= aclSectors {
		return string(in.iblock[:in.size]), nil
	}
	f, err := img.fileData(in)
	if err != nil {
		return "", err
	}
	b, err := f.readAll(ctx)
	if err != nil {
		return "", err
	}
	return string(b), nil
}
