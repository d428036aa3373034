package archive

import (
	"archive/zip"
	"encoding/binary"
	"fmt"
	"io"
)

// A zip's central directory is read one record at a time, never held:
// archive/zip keeps a *zip.File of some 300 bytes for every record, and a
// hostile zip of a million empty entries (106 MB) held 437 MiB live. A
// record is found again by its offset, which is the entry's locator.

const (
	eocdLen     = 22
	eocd64Len   = 56
	locatorLen  = 20
	cdHeaderLen = 46
	localLen    = 30
	eocdSig     = 0x06054b50
	eocd64Sig   = 0x06064b50
	locatorSig  = 0x07064b50
	cdSig       = 0x02014b50
	localSig    = 0x04034b50
	zip64Extra  = 0x0001
	maxComment  = 1<<16 - 1
)

var le = binary.LittleEndian

// zipDir is where a zip's central directory lies. base is what precedes
// the archive proper (a self-extracting stub): the offsets in the
// directory count from it.
type zipDir struct {
	off, size, count, base int64
	end                    int64 // where records must end: the archive's end
}

// findDir reads the end of central directory record, and its zip64
// form when the archive needs one.
func findDir(r io.ReaderAt, size int64) (zipDir, error) {
	n := min(size, eocdLen+maxComment)
	buf := make([]byte, n)
	if _, err := r.ReadAt(buf, size-n); err != nil && err != io.EOF {
		return zipDir{}, err
	}
	at := -1
	for i := len(buf) - eocdLen; i >= 0; i-- {
		if le.Uint32(buf[i:]) == eocdSig {
			// A comment that runs past the end is a truncated archive, as
			// archive/zip takes it, not a cue to search further back.
			if i+eocdLen+int(le.Uint16(buf[i+20:])) <= len(buf) {
				at = i
			}
			break
		}
	}
	if at < 0 {
		return zipDir{}, zip.ErrFormat
	}
	e := buf[at:]
	end := size - n + int64(at) // where the end record lies
	if le.Uint16(e[4:]) != 0 || le.Uint16(e[6:]) != 0 {
		return zipDir{}, fmt.Errorf("%w: an archive of several disks", zip.ErrFormat)
	}
	d := zipDir{count: int64(le.Uint16(e[10:])), size: int64(le.Uint32(e[12:])), off: int64(le.Uint32(e[16:]))}
	if d.count == 0xffff || d.size == 0xffffffff || d.off == 0xffffffff {
		var err error
		if d, end, err = findDir64(r, end); err != nil {
			return zipDir{}, err
		}
	}
	if d.off < 0 || d.size < 0 || d.count < 0 || d.off > end || d.size > end-d.off {
		return zipDir{}, fmt.Errorf("%w: the central directory lies outside the archive", zip.ErrFormat)
	}
	// Bytes before the archive (a stub) shift every offset by as much;
	// unless a record lies where the directory says without the shift, as
	// archive/zip also takes it: some archives give a wrong end record.
	d.base = end - d.size - d.off
	if d.base > 0 {
		var sig [4]byte
		if _, err := r.ReadAt(sig[:], d.off); err == nil && le.Uint32(sig[:]) == cdSig {
			d.base = 0
		}
	}
	d.off += d.base
	// Records are read on to the archive's end, as archive/zip reads them,
	// whatever size the end record gives the directory; the count bounds
	// the walk by the archive's size.
	if d.count > size/cdHeaderLen {
		return zipDir{}, fmt.Errorf("%w: %d records in an archive of %d bytes", zip.ErrFormat, d.count, size)
	}
	d.end = size
	return d, nil
}

func findDir64(r io.ReaderAt, end int64) (zipDir, int64, error) {
	var loc [locatorLen]byte
	if end < locatorLen {
		return zipDir{}, 0, zip.ErrFormat
	}
	if _, err := r.ReadAt(loc[:], end-locatorLen); err != nil {
		return zipDir{}, 0, err
	}
	if le.Uint32(loc[:]) != locatorSig {
		return zipDir{}, 0, fmt.Errorf("%w: no zip64 end record locator", zip.ErrFormat)
	}
	at := int64(le.Uint64(loc[8:]))
	if at < 0 || at > end-locatorLen-eocd64Len {
		return zipDir{}, 0, fmt.Errorf("%w: the zip64 end record lies outside the archive", zip.ErrFormat)
	}
	var e [eocd64Len]byte
	if _, err := r.ReadAt(e[:], at); err != nil {
		return zipDir{}, 0, err
	}
	if le.Uint32(e[:]) != eocd64Sig {
		return zipDir{}, 0, fmt.Errorf("%w: no zip64 end record", zip.ErrFormat)
	}
	d := zipDir{count: int64(le.Uint64(e[32:])), size: int64(le.Uint64(e[40:])), off: int64(le.Uint64(e[48:]))}
	return d, at, nil
}

// cdEntry is what a central directory record says of its entry.
type cdEntry struct {
	name     string
	creator  uint16
	flags    uint16
	method   uint16
	crc      uint32
	csize    int64
	usize    int64
	extAttrs uint32
	local    int64 // the local header, counted from zipDir.base
}

// readRecord reads the record at off, which ends at or before end, and
// returns it and where the next one starts. buf is scratch space.
func readRecord(r io.ReaderAt, off, end int64, buf []byte) (cdEntry, int64, []byte, error) {
	if off+cdHeaderLen > end {
		return cdEntry{}, 0, buf, fmt.Errorf("%w: a directory record runs past the archive", zip.ErrFormat)
	}
	var h [cdHeaderLen]byte
	if _, err := r.ReadAt(h[:], off); err != nil {
		return cdEntry{}, 0, buf, err
	}
	if le.Uint32(h[:]) != cdSig {
		return cdEntry{}, 0, buf, fmt.Errorf("%w: no directory record at offset %d", zip.ErrFormat, off)
	}
	nameLen, extraLen, commentLen := int64(le.Uint16(h[28:])), int64(le.Uint16(h[30:])), int64(le.Uint16(h[32:]))
	next := off + cdHeaderLen + nameLen + extraLen + commentLen
	if next > end {
		return cdEntry{}, 0, buf, fmt.Errorf("%w: a directory record runs past the archive", zip.ErrFormat)
	}
	if need := int(nameLen + extraLen); cap(buf) < need {
		buf = make([]byte, need)
	}
	b := buf[:nameLen+extraLen]
	if _, err := r.ReadAt(b, off+cdHeaderLen); err != nil {
		return cdEntry{}, 0, buf, err
	}
	e := cdEntry{
		name: string(b[:nameLen]), creator: le.Uint16(h[4:]), flags: le.Uint16(h[8:]), method: le.Uint16(h[10:]),
		crc: le.Uint32(h[16:]), csize: int64(le.Uint32(h[20:])), usize: int64(le.Uint32(h[24:])),
		extAttrs: le.Uint32(h[38:]), local: int64(le.Uint32(h[42:])),
	}
	// A zip64 extra field holds, in this order, each of the sizes and the
	// offset that the record leaves at all ones.
	extra := b[nameLen:]
	for len(extra) >= 4 {
		id, n := le.Uint16(extra), int(le.Uint16(extra[2:]))
		if 4+n > len(extra) {
			break
		}
		if id == zip64Extra {
			f := extra[4 : 4+n]
			for _, p := range []*int64{&e.usize, &e.csize, &e.local} {
				if *p != 0xffffffff {
					continue
				}
				if len(f) < 8 {
					return cdEntry{}, 0, buf, fmt.Errorf("%w: a short zip64 extra field", zip.ErrFormat)
				}
				*p = int64(le.Uint64(f))
				f = f[8:]
			}
		}
		extra = extra[4+n:]
	}
	if e.usize < 0 || e.csize < 0 || e.local < 0 {
		return cdEntry{}, 0, buf, fmt.Errorf("%w: entry %q declares an impossible size or offset", zip.ErrFormat, e.name)
	}
	return e, next, buf, nil
}

// openRecord opens the entry whose directory record lies at loc.
func openRecord(r io.ReaderAt, d zipDir, loc int64) (io.ReadCloser, error) {
	e, _, _, err := readRecord(r, loc, d.end, nil)
	if err != nil {
		return nil, err
	}
	return openEntry(r, d, e)
}

// dataOffset reads the entry's local header and returns where its data
// starts.
func dataOffset(r io.ReaderAt, d zipDir, e cdEntry) (int64, error) {
	var h [localLen]byte
	at := d.base + e.local
	if _, err := r.ReadAt(h[:], at); err != nil {
		return 0, err
	}
	if le.Uint32(h[:]) != localSig {
		return 0, fmt.Errorf("%w: no local header at offset %d", zip.ErrFormat, at)
	}
	return at + localLen + int64(le.Uint16(h[26:])) + int64(le.Uint16(h[28:])), nil
}
