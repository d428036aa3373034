package jffs2_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
	"testing"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/fixture"
	"github.com/fwvet/fwvet/pipeline/unpack/jffs2"
)

// builder writes JFFS2 nodes the way the kernel does after years of use,
// for the histories mkfs.jffs2 never writes: overwrites, truncations,
// deletions, renames.
type builder struct {
	o   byteOrder
	buf bytes.Buffer
}

type byteOrder interface {
	binary.ByteOrder
	binary.AppendByteOrder
}

func kcrc(b []byte) uint32 { return ^crc32.Update(0xffffffff, crc32.IEEETable, b) }

func (b *builder) node(typ uint16, body []byte) int {
	off := b.buf.Len()
	h := make([]byte, 12)
	b.o.PutUint16(h, 0x1985)
	b.o.PutUint16(h[2:], typ)
	b.o.PutUint32(h[4:], uint32(12+len(body)))
	b.o.PutUint32(h[8:], kcrc(h[:8]))
	b.buf.Write(h)
	b.buf.Write(body)
	for b.buf.Len()%4 != 0 {
		b.buf.WriteByte(0xff)
	}
	return off
}

func (b *builder) dirent(pino, version, ino uint32, dtype uint8, name string) int {
	body := make([]byte, 20)
	b.o.PutUint32(body[0:], pino)
	b.o.PutUint32(body[4:], version)
	b.o.PutUint32(body[8:], ino)
	body[16], body[17] = byte(len(name)), dtype
	crcd := append(b.hdr(0xe001, 40+len(name)), body...)
	body = b.o.AppendUint32(body, kcrc(crcd))
	body = b.o.AppendUint32(body, kcrc([]byte(name)))
	return b.node(0xe001, append(body, name...))
}

// hdr is a node header as it enters the node CRC.
func (b *builder) hdr(typ uint16, totlen int) []byte {
	h := make([]byte, 12)
	b.o.PutUint16(h, 0x1985)
	b.o.PutUint16(h[2:], typ)
	b.o.PutUint32(h[4:], uint32(totlen))
	b.o.PutUint32(h[8:], kcrc(h[:8]))
	return h
}

type inode struct {
	ino, version, mode uint32
	uid, gid           uint16
	isize, offset      uint32
	data               []byte // stored uncompressed
	zero               uint32 // dsize of a hole node (compression "zero")
}

func (b *builder) inode(n inode) int {
	body := make([]byte, 48)
	o := b.o
	o.PutUint32(body[0:], n.ino)
	o.PutUint32(body[4:], n.version)
	o.PutUint32(body[8:], n.mode)
	o.PutUint16(body[12:], n.uid)
	o.PutUint16(body[14:], n.gid)
	o.PutUint32(body[16:], n.isize)
	o.PutUint32(body[32:], n.offset)
	o.PutUint32(body[36:], uint32(len(n.data)))
	o.PutUint32(body[40:], uint32(len(n.data)))
	if n.zero > 0 {
		o.PutUint32(body[40:], n.zero)
		body[44] = 1
	}
	crcd := append(b.hdr(0xe002, 68+len(n.data)), body...)
	body = o.AppendUint32(body, kcrc(n.data))
	body = o.AppendUint32(body, kcrc(crcd))
	return b.node(0xe002, append(body, n.data...))
}

// obsolete clears the accurate bit of the node at off, as the kernel does
// in place, leaving the header CRC as it was.
func (b *builder) obsolete(off int) {
	p := b.buf.Bytes()[off+2:]
	b.o.PutUint16(p, b.o.Uint16(p)&^0x2000)
}

func walkBytes(t *testing.T, img []byte) (map[string]pipeline.Header, map[string]string, error) {
	t.Helper()
	return walkLimited(t, img, pipeline.DefaultLimits())
}

func walkLimited(t *testing.T, img []byte, lim pipeline.Limits) (map[string]pipeline.Header, map[string]string, error) {
	t.Helper()
	hs := map[string]pipeline.Header{}
	data := map[string]string{}
	err := jffs2.Format{}.Walk(context.Background(), bytes.NewReader(img), int64(len(img)), lim, func(h *pipeline.Header, open pipeline.OpenFunc) error {
		hs[h.Name] = *h
		if open := h.Opener(open); open != nil {
			rc, err := open(context.Background())
			if err != nil {
				return err
			}
			b, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				return err
			}
			data[h.Name] = string(b)
		}
		return nil
	})
	return hs, data, err
}

const (
	sIFDIR = 0o040000
	sIFREG = 0o100000
	sIFCHR = 0o020000
)

// TestHistory: the newest version of each name and byte range wins, a
// truncation hides older data past it, a deletion removes a name, and
// obsolete nodes and directory cycles are ignored.
func TestHistory(t *testing.T) {
	for _, o := range []byteOrder{binary.LittleEndian, binary.BigEndian} {
		b := &builder{o: o}
		b.node(0x2003, nil) // cleanmarker
		b.dirent(1, 1, 2, 4, "etc")
		b.inode(inode{ino: 2, version: 1, mode: sIFDIR | 0o755})
		// /etc/f: written, partly overwritten, truncated, then extended
		// by a write past the end: the truncated bytes must not return.
		b.dirent(2, 2, 3, 8, "f")
		b.inode(inode{ino: 3, version: 1, mode: sIFREG | 0o644, isize: 8, data: []byte("AAAAAAAA")})
		b.inode(inode{ino: 3, version: 2, mode: sIFREG | 0o644, isize: 8, offset: 2, data: []byte("BB")})
		b.inode(inode{ino: 3, version: 3, mode: sIFREG | 0o600, uid: 7, isize: 5})
		b.inode(inode{ino: 3, version: 4, mode: sIFREG | 0o600, uid: 7, isize: 10, offset: 8, data: []byte("CC")})
		// A newer version written first on flash still wins.
		b.inode(inode{ino: 4, version: 9, mode: sIFREG | 0o644, isize: 3, data: []byte("new")})
		b.inode(inode{ino: 4, version: 8, mode: sIFREG | 0o644, isize: 3, data: []byte("old")})
		b.dirent(2, 3, 4, 8, "g")
		// A hole node reads as zeros.
		b.dirent(2, 4, 5, 8, "h")
		b.inode(inode{ino: 5, version: 1, mode: sIFREG | 0o644, isize: 6, zero: 4})
		b.inode(inode{ino: 5, version: 2, mode: sIFREG | 0o644, isize: 6, offset: 4, data: []byte("hi")})
		// Deleted: the newer dirent names inode 0.
		b.dirent(2, 5, 6, 8, "gone")
		b.inode(inode{ino: 6, version: 1, mode: sIFREG | 0o644, isize: 1, data: []byte("x")})
		b.dirent(2, 6, 0, 8, "gone")
		// Renamed over: the older dirent of one name loses.
		b.dirent(2, 7, 6, 8, "g2")
		b.dirent(2, 8, 4, 8, "g2")
		// An obsolete node is ignored though its data is intact.
		off := b.inode(inode{ino: 4, version: 10, mode: sIFREG | 0o644, isize: 3, data: []byte("bad")})
		b.obsolete(off)
		// A directory that lists its ancestor.
		b.dirent(2, 9, 1, 4, "loop")
		// A device in the kernel's 4-byte encoding: major 300, minor 5.
		b.dirent(2, 10, 7, 2, "dev")
		dev := o.AppendUint32(nil, (300<<8)|5)
		b.inode(inode{ino: 7, version: 1, mode: sIFCHR | 0o600, data: dev})

		hs, data, err := walkBytes(t, b.buf.Bytes())
		if err != nil {
			t.Fatalf("%v: %v", o, err)
		}
		for name, want := range map[string]string{"etc/f": "AABBA\x00\x00\x00CC", "etc/g": "new", "etc/h": "\x00\x00\x00\x00hi", "etc/g2": "new"} {
			if data[name] != want {
				t.Errorf("%v: %s = %q, want %q", o, name, data[name], want)
			}
		}
		if h := hs["etc/f"]; h.Mode != 0o600 || h.UID != 7 || h.Size != 10 || h.Damage != "" {
			t.Errorf("%v: etc/f header %+v", o, h)
		}
		if _, ok := hs["etc/gone"]; ok {
			t.Errorf("%v: deleted etc/gone listed", o)
		}
		if hs["etc/g"].Identity != hs["etc/g2"].Identity {
			t.Errorf("%v: two names of inode 4 differ in Identity", o)
		}
		if h := hs["etc/loop"]; !strings.Contains(h.Damage, "cycle") {
			t.Errorf("%v: etc/loop: %+v, want a cycle reported", o, h)
		}
		if h := hs["etc/dev"]; h.Type != pipeline.TypeChar || h.Major != 300 || h.Minor != 5 {
			t.Errorf("%v: etc/dev %+v", o, h)
		}
		if len(hs) != 8 {
			t.Errorf("%v: %d entries: %v", o, len(hs), hs)
		}
	}
}

// TestReadAt: reading a file at random offsets gives the bytes of reading
// it front to back, across node boundaries.
func TestReadAt(t *testing.T) {
	fixture.CheckArchiveReadAt(t, jffs2.Format{}, "fw/jffs2-le-lzo.img", fixture.ReadAtFiles{MinSize: 10000, MaxFiles: 21, MinFiles: 5, MaxLen: 20000})
}

// TestRewrittenNames: a name written again and again, as a log rotated in
// place is, costs one entry however often it was written, so only distinct
// names count against the entry limit; the newest of each still wins.
func TestRewrittenNames(t *testing.T) {
	lim := pipeline.DefaultLimits()
	lim.MaxEntries = 8
	for _, distinct := range []int{7, 9} {
		b := &builder{o: binary.LittleEndian}
		for v := range uint32(40) {
			// The newest dirent of "log" is not the last one on flash.
			ino := 10 + v%2
			if v == 20 {
				ino = 12
			}
			b.dirent(1, 100-v/2*2+boolUint32(v == 20)*200, ino, 8, "log")
		}
		for ino := uint32(10); ino <= 12; ino++ {
			b.inode(inode{ino: ino, version: 1, mode: sIFREG | 0o644, isize: 1, data: []byte{byte('a' + ino - 10)}})
		}
		for i := range uint32(distinct - 1) {
			b.dirent(1, 1, 20+i, 8, fmt.Sprintf("f%d", i))
			b.inode(inode{ino: 20 + i, version: 1, mode: sIFREG | 0o644})
		}
		hs, data, err := walkLimited(t, b.buf.Bytes(), lim)
		if distinct > int(lim.MaxEntries) {
			var le *pipeline.LimitError
			if !errors.As(err, &le) || le.Limit != "max-entries" {
				t.Errorf("%d distinct names, limit %d: error %v, want max-entries", distinct, lim.MaxEntries, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%d distinct names in 46 dirents, limit %d: %v", distinct, lim.MaxEntries, err)
		}
		if len(hs) != distinct+1 || data["log"] != "c" {
			t.Errorf("%d entries (want %d with the root), log = %q (want the newest dirent's inode, c)", len(hs), distinct+1, data["log"])
		}
	}
}

func boolUint32(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}

// TestManyNames: every name of a file of several nodes gives its size,
// damage, Identity and bytes, though the file is laid out for its first
// name only.
func TestManyNames(t *testing.T) {
	b := &builder{o: binary.BigEndian}
	b.inode(inode{ino: 5, version: 1, mode: sIFREG | 0o644, isize: 8, data: []byte("abcd")})
	b.inode(inode{ino: 5, version: 2, mode: sIFREG | 0o644, isize: 8, offset: 4, data: []byte("efgh")})
	for i := range uint32(100) {
		b.dirent(1, 1, 5, 8, fmt.Sprintf("n%03d", i))
	}
	hs, data, err := walkBytes(t, b.buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if len(hs) != 101 {
		t.Fatalf("%d entries, want 100 names and the root", len(hs))
	}
	for i := range 100 {
		name := fmt.Sprintf("n%03d", i)
		if h := hs[name]; h.Identity != 5 || h.Size != 8 || h.Damage != "" || data[name] != "abcdefgh" {
			t.Errorf("%s: %+v, %q", name, h, data[name])
		}
	}
}
