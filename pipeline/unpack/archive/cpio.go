package archive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/fwvet/fwvet/pipeline"
)

// Cpio reads cpio archives in the newc ("070701"), newc-with-CRC ("070702")
// and portable ASCII odc ("070707") forms, as made by cpio -H newc|odc and
// used by Linux initramfs.
type Cpio struct{}

var (
	_ pipeline.Container = Cpio{}
	_ pipeline.Carvable  = Cpio{}
	_ pipeline.Spanner   = Cpio{}
)

// Name implements pipeline.Format.
func (Cpio) Name() string { return "cpio" }

// Match implements pipeline.Format.
func (Cpio) Match(head []byte) bool {
	return bytes.HasPrefix(head, []byte("070701")) || bytes.HasPrefix(head, []byte("070702")) || bytes.HasPrefix(head, []byte("070707"))
}

const cpioTrailer = "TRAILER!!!"

type cpioEntry struct {
	h       pipeline.Header
	dataOff int64
	linkKey [2]uint64 // device and inode, for hard links
	nlink   uint64
}

// Walk implements pipeline.Container. Hard links, which newc stores as entries
// of one inode with the data on one of them only, all get that data.
func (Cpio) Walk(ctx context.Context, r io.ReaderAt, size int64, lim pipeline.Limits, visit func(*pipeline.Header, pipeline.OpenFunc) error) error {
	var (
		off     int64
		links   = map[[2]uint64]*cpioEntry{} // inode -> entry that holds the data
		waiting []*cpioEntry                 // hard links seen before their data
		ids     = map[[2]uint64]uint64{}     // inode -> Identity
		hdr     = make([]byte, 110)
		// Each file is its offset, not a closure: an initramfs of a
		// million entries would hold a million.
		at = pipeline.SectionAt(r)
	)
	emit := func(e *cpioEntry, data *cpioEntry) error {
		h := e.h
		if h.Type == pipeline.TypeFile {
			h.Size = data.h.Size
			h.OpenAt, h.Locator = at, uint64(data.dataOff)
			if e.nlink > 1 {
				if ids[e.linkKey] == 0 {
					ids[e.linkKey] = uint64(len(ids) + 1)
				}
				h.Identity = ids[e.linkKey]
			}
		}
		return visit(&h, nil)
	}
	for index := 0; ; index++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		e, next, err := readCpioHeader(r, size, off, hdr, lim)
		if err != nil {
			return fmt.Errorf("cpio entry %d at offset %d: %w", index, off, err)
		}
		if e == nil {
			break
		}
		off = next
		switch {
		case e.h.Type == pipeline.TypeSymlink:
			if e.h.Size > int64(lim.MaxPathLen) {
				return fmt.Errorf("cpio entry %d: symlink target of %d bytes", index, e.h.Size)
			}
			target := make([]byte, e.h.Size)
			if _, err := r.ReadAt(target, e.dataOff); err != nil {
				return fmt.Errorf("cpio entry %d: reading symlink target: %w", index, err)
			}
			e.h.LinkName, e.h.Size = string(target), 0
		case e.h.Type == pipeline.TypeFile && e.nlink > 1:
			if e.h.Size == 0 {
				waiting = append(waiting, e)
				continue
			}
			links[e.linkKey] = e
		}
		if err := emit(e, e); err != nil {
			return err
		}
	}
	for _, e := range waiting {
		data := e
		if d, ok := links[e.linkKey]; ok {
			data = d
		}
		if err := emit(e, data); err != nil {
			return err
		}
	}
	return nil
}

// Signatures implements pipeline.Carvable.
func (Cpio) Signatures() []pipeline.Signature {
	return []pipeline.Signature{{Magic: []byte("070701"), Align: 4}, {Magic: []byte("070702"), Align: 4}, {Magic: []byte("070707"), Align: 2}}
}

// Span implements pipeline.Spanner: up to the end of the trailer entry.
func (Cpio) Span(r io.ReaderAt, size int64) (int64, error) {
	lim := pipeline.DefaultLimits()
	hdr := make([]byte, 110)
	var off int64
	for index := int64(0); index < lim.MaxEntries; index++ {
		e, next, err := readCpioHeader(r, size, off, hdr, lim)
		if err != nil {
			return 0, fmt.Errorf("cpio entry %d at offset %d: %w", index, off, err)
		}
		off = next
		if e == nil {
			return off, nil
		}
	}
	return 0, fmt.Errorf("cpio archive of more than %d entries", lim.MaxEntries)
}

// readCpioHeader reads the header at off. It returns a nil entry at the
// trailer, with the offset past it.
func readCpioHeader(r io.ReaderAt, size, off int64, hdr []byte, lim pipeline.Limits) (*cpioEntry, int64, error) {
	if off+6 > size {
		return nil, 0, errors.New("archive ends without a TRAILER!!! entry")
	}
	if _, err := r.ReadAt(hdr[:6], off); err != nil {
		return nil, 0, err
	}
	var (
		e        = &cpioEntry{}
		namesize uint64
		hlen     int64
		align    int64 = 1
		mode     uint64
		fields   []uint64
	)
	switch string(hdr[:6]) {
	case "070701", "070702":
		hlen, align = 110, 4
		if err := readFull(r, hdr[:110], off, size); err != nil {
			return nil, 0, err
		}
		for i := 0; i < 13; i++ {
			v, err := strconv.ParseUint(string(hdr[6+8*i:14+8*i]), 16, 64)
			if err != nil {
				return nil, 0, fmt.Errorf("bad hex field %q", hdr[6+8*i:14+8*i])
			}
			fields = append(fields, v)
		}
		// ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor rdevminor namesize check
		mode, namesize = fields[1], fields[11]
		e.h.UID, e.h.GID, e.nlink = uint32(fields[2]), uint32(fields[3]), fields[4]
		e.h.Size = int64(fields[6])
		e.linkKey = [2]uint64{fields[7]<<32 | fields[8], fields[0]}
		e.h.Major, e.h.Minor = uint32(fields[9]), uint32(fields[10])
	case "070707":
		hlen = 76
		if err := readFull(r, hdr[:76], off, size); err != nil {
			return nil, 0, err
		}
		// dev ino mode uid gid nlink rdev mtime namesize filesize
		widths := []int{6, 6, 6, 6, 6, 6, 6, 11, 6, 11}
		p := 6
		for _, w := range widths {
			v, err := strconv.ParseUint(string(hdr[p:p+w]), 8, 64)
			if err != nil {
				return nil, 0, fmt.Errorf("bad octal field %q", hdr[p:p+w])
			}
			fields = append(fields, v)
			p += w
		}
		mode, namesize = fields[2], fields[8]
		e.h.UID, e.h.GID, e.nlink = uint32(fields[3]), uint32(fields[4]), fields[5]
		e.h.Size = int64(fields[9])
		e.linkKey = [2]uint64{fields[0], fields[1]}
		e.h.Major, e.h.Minor = uint32(fields[6]>>8), uint32(fields[6]&0xff)
	default:
		return nil, 0, fmt.Errorf("bad magic %q", hdr[:6])
	}
	if namesize == 0 || namesize > uint64(lim.MaxPathLen)+1 {
		return nil, 0, fmt.Errorf("name size %d out of range", namesize)
	}
	name := make([]byte, namesize)
	if err := readFull(r, name, off+hlen, size); err != nil {
		return nil, 0, fmt.Errorf("reading name: %w", err)
	}
	e.h.Name = string(bytes.TrimSuffix(name, []byte{0}))
	if e.h.Name == cpioTrailer {
		return nil, alignUp(off+hlen+int64(namesize), align), nil
	}
	e.dataOff = alignUp(off+hlen+int64(namesize), align)
	if e.h.Size < 0 || e.h.Size > size-e.dataOff {
		return nil, 0, fmt.Errorf("entry %q declares %d bytes, past the end of the archive", e.h.Name, e.h.Size)
	}
	e.h.Mode = uint32(mode) & pipeline.ModePerm
	var ok bool
	if e.h.Type, ok = pipeline.ModeType(uint32(mode)); !ok {
		e.h.Type = pipeline.EntryType(fmt.Sprintf("cpio-mode-%o", mode&0o170000))
	}
	next := alignUp(e.dataOff+e.h.Size, align)
	if e.h.Type != pipeline.TypeFile && e.h.Type != pipeline.TypeSymlink {
		// Data on a directory or a node is meaningless; it is skipped.
		e.h.Size = 0
	}
	return e, next, nil
}

func readFull(r io.ReaderAt, b []byte, off, size int64) error {
	if off+int64(len(b)) > size {
		return io.ErrUnexpectedEOF
	}
	_, err := r.ReadAt(b, off)
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

func alignUp(n, a int64) int64 { return (n + a - 1) / a * a }
