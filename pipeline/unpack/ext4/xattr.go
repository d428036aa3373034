package ext4

import (
	"encoding/binary"
	"fmt"
)

const (
	xattrMagic       = 0xEA020000
	xattrIndexSystem = 7
	xattrEntrySize   = 16
)

// inlineData returns the bytes of an inline_data inode: i_block, then the
// value of its system.data attribute, size bytes in all.
func (in *inode) inlineData() ([]byte, error) {
	if in.size > iBlockSize+uint64(len(in.xattrs)) {
		return nil, corrupt("inode %d holds %d bytes inline, more than it has room for", in.num, in.size)
	}
	out := make([]byte, 0, in.size)
	out = append(out, in.iblock[:min(in.size, iBlockSize)]...)
	if in.size <= iBlockSize {
		return out, nil
	}
	rest, err := in.systemData()
	if err != nil {
		return nil, err
	}
	if uint64(len(rest)) < in.size-iBlockSize {
		return nil, corrupt("inode %d holds %d inline bytes, its size is %d", in.num, iBlockSize+len(rest), in.size)
	}
	return append(out, rest[:in.size-iBlockSize]...), nil
}

// systemData finds the value of the system.data attribute among the
// in-inode attributes, where inline_data keeps what i_block cannot hold.
func (in *inode) systemData() ([]byte, error) {
	le := binary.LittleEndian
	area := in.xattrs
	// Each entry advances by at least its 16-byte header, which bounds the loop.
	for off := 0; off+4 <= len(area) && le.Uint32(area[off:]) != 0; {
		if off+xattrEntrySize > len(area) {
			return nil, corrupt("inode %d: attribute entry at %d runs past the inode", in.num, off)
		}
		e := area[off:]
		nameLen := int(e[0])
		if off+xattrEntrySize+nameLen > len(area) {
			return nil, corrupt("inode %d: attribute name at %d runs past the inode", in.num, off)
		}
		if e[1] == xattrIndexSystem && string(e[xattrEntrySize:xattrEntrySize+nameLen]) == "data" {
			if le.Uint32(e[4:]) != 0 {
				return nil, fmt.Errorf("ext4: inode %d: inline data kept in an attribute inode is not supported", in.num)
			}
			voff, vsize := int(le.Uint16(e[2:])), int(le.Uint32(e[8:]))
			if voff > len(area) || vsize > len(area)-voff {
				return nil, corrupt("inode %d: inline data attribute of %d bytes at %d lies outside the inode", in.num, vsize, voff)
			}
			return area[voff : voff+vsize], nil
		}
		off += (xattrEntrySize + nameLen + 3) &^ 3
	}
	return nil, nil
}
