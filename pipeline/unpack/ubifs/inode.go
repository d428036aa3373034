package ubifs

import (
	"bytes"
	"fmt"

	"github.com/fwvet/fwvet/pipeline"
)

const (
	rootIno = 1

	// Inode flags.
	flagXattr = 0x20
	flagCrypt = 0x40
)

type inode struct {
	inum     uint32
	typ      pipeline.EntryType
	mode     uint32
	uid, gid uint32
	size     uint64
	nlink    uint32
	flags    uint32
	// data is the inline data: a symlink's target or a device number.
	data []byte
}

// checkKey refuses a node whose key is not the one its index branch gave.
func checkKey(b []byte, inum uint32, typ uint8) error {
	if got, kt := le.Uint32(b[24:]), uint8(le.Uint32(b[28:])>>29); got != inum || kt != typ {
		return corrupt("node keyed inode %d type %d found where the index has inode %d type %d", got, kt, inum, typ)
	}
	return nil
}

// inode reads inode inum through the index.
func (v *volume) inode(inum uint32) (*inode, error) {
	p, ok := v.idx.inode(inum)
	if !ok {
		return nil, corrupt("inode %d is not in the index", inum)
	}
	b, err := v.readNode(p, nodeIno)
	if err != nil {
		return nil, fmt.Errorf("inode %d: %w", inum, err)
	}
	if err := checkKey(b, inum, keyIno); err != nil {
		return nil, err
	}
	in := &inode{
		inum: inum, size: le.Uint64(b[48:]), nlink: le.Uint32(b[92:]),
		uid: le.Uint32(b[96:]), gid: le.Uint32(b[100:]), mode: le.Uint32(b[104:]), flags: le.Uint32(b[108:]),
	}
	dlen := le.Uint32(b[112:])
	if uint64(dlen) > uint64(len(b)-inoHdrSize) {
		return nil, corrupt("inode %d has %d bytes of inline data in a node of %d", inum, dlen, len(b))
	}
	in.data = b[inoHdrSize : inoHdrSize+dlen]
	typ, ok := pipeline.ModeType(in.mode)
	if !ok {
		return nil, corrupt("inode %d has mode %#o of no known file type", inum, in.mode)
	}
	in.typ = typ
	if in.size > 1<<62 {
		return nil, corrupt("inode %d declares %d bytes", inum, in.size)
	}
	return in, nil
}

// device decodes an inline device number: 4 bytes in the kernel's "new"
// encoding, or 8 in glibc's makedev encoding (mkfs.ubifs writes these), of
// which the 4-byte one is the low half.
func (in *inode) device() (major, minor uint32, err error) {
	var dev uint64
	switch len(in.data) {
	case 4:
		dev = uint64(le.Uint32(in.data))
	case 8:
		dev = le.Uint64(in.data)
	default:
		return 0, 0, corrupt("device inode %d has %d bytes of device number", in.inum, len(in.data))
	}
	major = uint32((dev>>8)&0xfff) | uint32(dev>>32)&^0xfff
	minor = uint32(dev&0xff) | uint32(dev>>12)&^0xff
	return major, minor, nil
}

type dirent struct {
	name string
	inum uint32
}

// dirents reads the entries of directory inum, whose nodes lie at refs.
func (v *volume) dirents(inum uint32, refs []pos) ([]dirent, error) {
	out := make([]dirent, 0, len(refs))
	for _, p := range refs {
		b, err := v.readNode(p, nodeDent)
		if err != nil {
			return nil, fmt.Errorf("directory entry: %w", err)
		}
		if err := checkKey(b, inum, keyDent); err != nil {
			return nil, err
		}
		target, nlen := le.Uint64(b[40:]), int(le.Uint16(b[50:]))
		if nlen == 0 || nlen > maxNameLen || dentHdrSize+nlen > len(b) {
			return nil, corrupt("directory entry at %s has a name of %d bytes in a node of %d", p, nlen, len(b))
		}
		name := b[dentHdrSize : dentHdrSize+nlen]
		if bytes.ContainsAny(name, "/\x00") || string(name) == "." || string(name) == ".." {
			return nil, corrupt("directory entry at %s has name %q", p, name)
		}
		if target == 0 || target > 0xFFFFFFFF {
			return nil, corrupt("directory entry %q points to inode %d", name, target)
		}
		out = append(out, dirent{string(name), uint32(target)})
	}
	return out, nil
}
