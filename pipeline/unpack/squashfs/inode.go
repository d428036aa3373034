package squashfs

import (
	"encoding/binary"

	"github.com/fwvet/fwvet/pipeline"
)

// maxSymlinkTarget bounds a symlink target before it is allocated; the
// unpacker applies the path length limit afterwards.
const maxSymlinkTarget = 64 << 10

type inode struct {
	typ    pipeline.EntryType
	mode   uint16
	uid    uint32
	gid    uint32
	number uint32

	// directories
	dirBlock  uint32
	dirOffset uint16
	dirSize   uint32

	// regular files; the block size list follows the inode in the inode
	// table, in the metadata block at listBlock from listOff
	blocksStart uint64
	size        uint64
	frag        uint32
	fragOffset  uint32
	listBlock   int64
	listOff     int
	// links is an extended file inode's link count; a basic one has one.
	links uint32

	target       string
	major, minor uint32
}

var basicTypes = map[uint16]pipeline.EntryType{
	1: pipeline.TypeDir, 2: pipeline.TypeFile, 3: pipeline.TypeSymlink, 4: pipeline.TypeBlock,
	5: pipeline.TypeChar, 6: pipeline.TypeFIFO, 7: pipeline.TypeSocket,
}

// inode reads the inode that ref points to.
func (img *Image) inode(ref uint64) (*inode, error) {
	block, off := int64(ref>>16), int(ref&0xffff)
	if off >= metaBlockSize || block >= int64(img.sb.DirectoryTableStart-img.sb.InodeTableStart) {
		return nil, corrupt("inode reference %#x lies outside the inode table", ref)
	}
	mr := img.meta.reader(int64(img.sb.InodeTableStart)+block, off, int64(img.sb.DirectoryTableStart))
	var b [40]byte
	if err := mr.read(b[:16]); err != nil {
		return nil, err
	}
	le := binary.LittleEndian
	t := le.Uint16(b[0:])
	in := &inode{mode: le.Uint16(b[2:]), number: le.Uint32(b[12:])}
	uidx, gidx := le.Uint16(b[4:]), le.Uint16(b[6:])
	if int(uidx) >= len(img.ids) || int(gidx) >= len(img.ids) {
		return nil, corrupt("inode %d has owner index %d/%d, the id table holds %d", in.number, uidx, gidx, len(img.ids))
	}
	in.uid, in.gid = img.ids[uidx], img.ids[gidx]
	basic := t
	if t > 7 {
		basic = t - 7
	}
	typ, ok := basicTypes[basic]
	if !ok || t == 0 || t > 14 {
		return nil, corrupt("inode %d has unknown type %d", in.number, t)
	}
	in.typ = typ
	ext := t > 7
	read := func(n int) ([]byte, error) { return b[:n], mr.read(b[:n]) }
	switch typ {
	case pipeline.TypeDir:
		if !ext {
			d, err := read(16)
			if err != nil {
				return nil, err
			}
			in.dirBlock, in.dirSize, in.dirOffset = le.Uint32(d[0:]), uint32(le.Uint16(d[8:])), le.Uint16(d[10:])
		} else {
			d, err := read(24)
			if err != nil {
				return nil, err
			}
			in.dirSize, in.dirBlock, in.dirOffset = le.Uint32(d[4:]), le.Uint32(d[8:]), le.Uint16(d[18:])
		}
		if in.dirOffset >= metaBlockSize {
			return nil, corrupt("directory inode %d has listing offset %d", in.number, in.dirOffset)
		}
	case pipeline.TypeFile:
		if !ext {
			d, err := read(16)
			if err != nil {
				return nil, err
			}
			in.blocksStart, in.frag, in.fragOffset, in.size = uint64(le.Uint32(d[0:])), le.Uint32(d[4:]), le.Uint32(d[8:]), uint64(le.Uint32(d[12:]))
			in.links = 1
		} else {
			d, err := read(40)
			if err != nil {
				return nil, err
			}
			in.blocksStart, in.size, in.frag, in.fragOffset = le.Uint64(d[0:]), le.Uint64(d[8:]), le.Uint32(d[28:]), le.Uint32(d[32:])
			in.links = le.Uint32(d[24:])
		}
		if in.size > 1<<62 {
			return nil, corrupt("file inode %d declares %d bytes", in.number, in.size)
		}
		in.listBlock, in.listOff = mr.pos()
	case pipeline.TypeSymlink:
		d, err := read(8)
		if err != nil {
			return nil, err
		}
		n := le.Uint32(d[4:])
		if n > maxSymlinkTarget {
			return nil, corrupt("symlink inode %d has a target of %d bytes", in.number, n)
		}
		target := make([]byte, n)
		if err := mr.read(target); err != nil {
			return nil, err
		}
		in.target = string(target)
	case pipeline.TypeBlock, pipeline.TypeChar:
		d, err := read(8)
		if err != nil {
			return nil, err
		}
		dev := le.Uint32(d[4:])
		in.major, in.minor = (dev&0xfff00)>>8, (dev&0xff)|((dev>>12)&0xfff00)
	}
	return in, nil
}
