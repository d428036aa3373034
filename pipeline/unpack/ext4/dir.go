package ext4

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"

	"github.com/fwvet/fwvet/pipeline"
)

const direntHeader = 8

type dirent struct {
	name string
	ino  uint32
}

// readDir lists a directory, its entries in on-disk order without "." and
// "..". Hash-indexed directories are read as linear ones: their index
// blocks look like blocks of deleted entries, which are skipped.
//
// budget counts the directory blocks the walk may still read: in a sound
// image each block belongs to one directory, so all of them together hold
// no more blocks than the image, however their maps overlap.
func (img *Image) readDir(ctx context.Context, d *inode, lim pipeline.Limits, budget *uint64) ([]dirent, error) {
	var out []dirent
	if d.flags&flagInlineData != 0 {
		data, err := d.inlineData()
		if err != nil {
			return nil, err
		}
		// i_block starts with the parent's inode number instead of "..".
		if len(data) < 4 {
			return nil, corrupt("inline directory inode %d of %d bytes", d.num, len(data))
		}
		head := data[4:min(len(data), iBlockSize)]
		if out, err = img.parseDirBlock(d, out, head, 0, lim); err != nil {
			return nil, err
		}
		if len(data) > iBlockSize {
			if out, err = img.parseDirBlock(d, out, data[iBlockSize:], 1, lim); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	f, err := img.fileData(d)
	if err != nil {
		return nil, err
	}
	if err := f.load(ctx); err != nil {
		return nil, err
	}
	buf := make([]byte, img.bs)
	for _, rn := range f.runs {
		if rn.unwritten {
			continue
		}
		for i := range rn.n {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			if *budget == 0 {
				return nil, corrupt("directories span more blocks than the image holds")
			}
			*budget--
			b := rn.phys + i
			if _, err := img.r.ReadAt(buf, int64(b)*img.bs); err != nil {
				return nil, fmt.Errorf("ext4: reading directory inode %d block %d: %w", d.num, b, err)
			}
			if out, err = img.parseDirBlock(d, out, buf, rn.logical+i, lim); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// parseDirBlock appends the live entries of one directory block to out.
func (img *Image) parseDirBlock(d *inode, out []dirent, b []byte, logical uint64, lim pipeline.Limits) ([]dirent, error) {
	le := binary.LittleEndian
	fileType := img.sb.incompat&incompatFiletype != 0
	for off := 0; off+direntHeader <= len(b); {
		ino := le.Uint32(b[off:])
		rec := int(le.Uint16(b[off+4:]))
		if len(b) == 1<<16 && (rec == 0 || rec == 0xFFFF) {
			rec = 1 << 16 // a 64 KiB block's only entry
		}
		nameLen := int(b[off+6])
		if !fileType {
			nameLen = int(le.Uint16(b[off+6:]))
		}
		if rec < direntHeader || rec%4 != 0 || rec > len(b)-off {
			return nil, corrupt("directory inode %d block %d: entry at %d has record length %d", d.num, logical, off, rec)
		}
		if ino != 0 {
			if nameLen == 0 || direntHeader+nameLen > rec {
				return nil, corrupt("directory inode %d block %d: entry at %d has a name of %d bytes in a record of %d", d.num, logical, off, nameLen, rec)
			}
			name := b[off+direntHeader : off+direntHeader+nameLen]
			if bytes.ContainsAny(name, "/\x00") {
				return nil, corrupt("directory inode %d: entry name %q", d.num, name)
			}
			if s := string(name); s != "." && s != ".." {
				if int64(len(out)) >= lim.MaxEntries {
					return nil, &pipeline.LimitError{Limit: "max-entries", Value: lim.MaxEntries, Msg: "one directory lists more entries than an artifact may hold"}
				}
				out = append(out, dirent{name: s, ino: ino})
			}
		}
		off += rec
	}
	return out, nil
}
