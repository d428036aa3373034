package ubi_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/fixture"
	"github.com/fwvet/fwvet/pipeline/unpack/ubi"
)

// The geometry ubi.sh gives ubinize for the rootfs image.
const (
	peb     = 128 << 10
	dataOff = 4096
	leb     = peb - dataOff
)

type vol struct {
	h    pipeline.Header
	data []byte
	err  error // from reading through the OpenFunc
}

// walk lists an image's volumes and reads each through its OpenFunc.
func walk(t *testing.T, r io.ReaderAt, size int64) ([]vol, error) {
	t.Helper()
	var out []vol
	err := ubi.Format{}.Walk(context.Background(), r, size, pipeline.DefaultLimits(), func(h *pipeline.Header, open pipeline.OpenFunc) error {
		v := vol{h: *h}
		if open == nil {
			t.Errorf("%s: no OpenFunc", h.Name)
		} else {
			rc, err := open(context.Background())
			if err != nil {
				return err
			}
			v.data, v.err = io.ReadAll(rc)
			rc.Close()
		}
		out = append(out, v)
		return nil
	})
	return out, err
}

func walkFile(t *testing.T, rel string) []vol {
	t.Helper()
	b := fixture.ReadFile(t, rel)
	vols, err := walk(t, bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	return vols
}

func busybox(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixture.Path(t, "stage/formats"), "bin", "busybox"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func byName(t *testing.T, vols []vol, name string) vol {
	t.Helper()
	for _, v := range vols {
		if v.h.Label == name || v.h.Label == "" && v.h.Name == name {
			return v
		}
	}
	var names []string
	for _, v := range vols {
		names = append(names, v.h.Name+" "+v.h.Label)
	}
	t.Fatalf("no volume %q among %q", name, names)
	return vol{}
}

// checkHeader: a volume is a plain 0644 root-owned file whose size is what
// its reader gives.
func checkHeader(t *testing.T, v vol) {
	t.Helper()
	h := v.h
	if h.Type != pipeline.TypeFile || h.Mode != 0o644 || h.UID != 0 || h.GID != 0 || h.Identity == 0 {
		t.Errorf("%s: header %+v, want a 0644 root file with an identity", h.Name, h)
	}
	if v.err == nil && int64(len(v.data)) != h.Size {
		t.Errorf("%s: header says %d bytes, read %d", h.Name, h.Size, len(v.data))
	}
}

// checkRootfs: the rootfs volume holds the mkfs.ubifs image LEB by LEB.
// A LEB the image has but the volume lacks must be erased in the image,
// and a LEB listed in skip must read as 0xFF (one whose PEB was damaged).
func checkRootfs(t *testing.T, v vol, ubifs []byte, wantLEBs int, skip map[int]bool) {
	t.Helper()
	if v.err != nil {
		t.Fatalf("rootfs: %v", v.err)
	}
	if len(v.data)%leb != 0 {
		t.Errorf("rootfs: %d bytes, not whole LEBs of %d", len(v.data), leb)
	}
	if got := len(v.data) / leb; got != wantLEBs {
		t.Errorf("rootfs: %d LEBs, want %d", got, wantLEBs)
	}
	for i := 0; i*leb < max(len(ubifs), len(v.data)); i++ {
		lo := i * leb
		var want, got []byte
		if lo < len(ubifs) {
			want = ubifs[lo:min(lo+leb, len(ubifs))]
		}
		if lo < len(v.data) {
			got = v.data[lo : lo+leb]
		}
		switch {
		case skip[i]:
			if !allFF(got) {
				t.Errorf("rootfs LEB %d: a LEB without a sound VID header does not read as 0xFF", i)
			}
		case got == nil:
			if !allFF(want) {
				t.Errorf("rootfs LEB %d: missing from the volume but not erased in the UBIFS image", i)
			}
		case !bytes.Equal(got[:len(want)], want) || !allFF(got[len(want):]):
			t.Errorf("rootfs LEB %d differs from the UBIFS image", i)
		}
	}
}

func allFF(b []byte) bool {
	return len(bytes.Trim(b, "\xff")) == 0
}

func sum(b []byte) [32]byte { return sha256.Sum256(b) }

// TestRootfs: the rootfs image from mtd-utils yields its two volumes, the
// dynamic one holding the mkfs.ubifs output and the static one busybox.
func TestRootfs(t *testing.T) {
	vols := walkFile(t, "fw/ubi-rootfs.ubi")
	// Volumes are named by id; the table's names are labels.
	if len(vols) != 2 || vols[0].h.Name != "volume-0" || vols[0].h.Label != "rootfs" || vols[1].h.Name != "volume-1" || vols[1].h.Label != "kernel" {
		t.Fatalf("volumes %v, want volume-0 (rootfs) and volume-1 (kernel)", vols)
	}
	ubifs := fixture.ReadFile(t, "fw/ubi-rootfs.ubifs")
	for _, v := range vols {
		checkHeader(t, v)
		if v.h.Damage != "" {
			t.Errorf("%s: damage %q in a sound image", v.h.Name, v.h.Damage)
		}
	}
	checkRootfs(t, vols[0], ubifs, len(ubifs)/leb, nil)
	bb := busybox(t)
	if k := vols[1]; k.err != nil || k.h.Size != int64(len(bb)) || sum(k.data) != sum(bb) {
		t.Errorf("kernel: %d bytes (%v), not busybox's %d", len(k.data), k.err, len(bb))
	}
}

// TestSeeds: the small images hold the small files, a static volume exactly
// and a dynamic one as whole LEBs padded with 0xFF.
func TestSeeds(t *testing.T) {
	vols := walkFile(t, "fw/ubi-tiny-static.ubi")
	if len(vols) != 1 || vols[0].h.Label != "kernel" || !bytes.Equal(vols[0].data, bytes.Repeat([]byte("s"), 20000)) || vols[0].h.Damage != "" {
		t.Errorf("tiny-static: %+v", vols)
	}
	vols = walkFile(t, "fw/ubi-tiny.ubi")
	if len(vols) != 2 {
		t.Fatalf("tiny: %d volumes", len(vols))
	}
	d, k := byName(t, vols, "data"), byName(t, vols, "kernel")
	checkHeader(t, d)
	checkHeader(t, k)
	if !bytes.HasPrefix(d.data, []byte("dynamic data\n")) || !allFF(d.data[13:]) || d.h.Size != 16384-1024 {
		t.Errorf("tiny: data volume of %d bytes does not hold the file then 0xFF", d.h.Size)
	}
	if !bytes.Equal(k.data, bytes.Repeat([]byte("k"), 9000)) {
		t.Errorf("tiny: kernel volume of %d bytes is not the file", len(k.data))
	}
	// 2 KiB blocks, headers at 0 and 64, data from 128: the PEB size is
	// found from the headers alone.
	vols = walkFile(t, "fw/ubi-tiny-nor.ubi")
	if len(vols) != 2 || string(vols[0].data) != "small kernel\n" || vols[1].h.Size != 2048-128 || !bytes.HasPrefix(vols[1].data, []byte("dynamic data\n")) {
		t.Errorf("tiny-nor: %+v", vols)
	}
}

// TestDamaged: each damaged image either fails with a message or reports the
// damage on the volume it hurts, and what is still sound reads right.
func TestDamaged(t *testing.T) {
	ubifs := fixture.ReadFile(t, "fw/ubi-rootfs.ubifs")
	bb := busybox(t)
	fullLEBs := len(ubifs) / leb
	t.Run("trunc", func(t *testing.T) {
		// Half of 98 PEBs: the layout volume and rootfs LEBs 0 to 46 remain;
		// the kernel's PEBs are all gone, which only the volume table's
		// reservation betrays.
		vols := walkFile(t, "fw/ubi-trunc.ubi")
		checkRootfs(t, byName(t, vols, "rootfs"), ubifs[:47*leb], 47, nil)
		k := byName(t, vols, "kernel")
		if k.h.Size != 0 || !strings.Contains(k.h.Damage, "truncated") {
			t.Errorf("kernel: %d bytes, damage %q; want none and a truncation", k.h.Size, k.h.Damage)
		}
	})
	t.Run("badvtbl", func(t *testing.T) {
		vols := walkFile(t, "fw/ubi-badvtbl.ubi")
		k := byName(t, vols, "kernel")
		if sum(k.data) != sum(bb) {
			t.Error("kernel: not busybox")
		}
		if !strings.Contains(k.h.Damage, "volume table record 1: copy 0: CRC") {
			t.Errorf("kernel: damage %q, want the bad record of copy 0", k.h.Damage)
		}
		if r := byName(t, vols, "rootfs"); r.h.Damage != "" {
			t.Errorf("rootfs: damage %q", r.h.Damage)
		}
	})
	t.Run("badvtbl2", func(t *testing.T) {
		// Neither copy tells the volume's name: it is shown by id, its
		// type and data pad from its VID headers.
		vols := walkFile(t, "fw/ubi-badvtbl2.ubi")
		k := byName(t, vols, "volume-1")
		if sum(k.data) != sum(bb) {
			t.Error("volume-1: not busybox")
		}
		for _, c := range []string{"copy 0: CRC", "copy 1: CRC"} {
			if !strings.Contains(k.h.Damage, c) {
				t.Errorf("volume-1: damage %q lacks %q", k.h.Damage, c)
			}
		}
	})
	t.Run("badvid", func(t *testing.T) {
		vols := walkFile(t, "fw/ubi-badvid.ubi")
		r := byName(t, vols, "rootfs")
		checkRootfs(t, r, ubifs, fullLEBs, map[int]bool{1: true})
		if !strings.Contains(r.h.Damage, "PEB 3, which claims LEB 1, has a damaged VID header") {
			t.Errorf("rootfs: damage %q", r.h.Damage)
		}
		if k := byName(t, vols, "kernel"); sum(k.data) != sum(bb) || k.h.Damage != "" {
			t.Errorf("kernel: damage %q or not busybox", k.h.Damage)
		}
	})
}

// ubiCRC is UBI's CRC-32, for headers the tests forge.
func ubiCRC(b []byte) uint32 { return ^crc32.ChecksumIEEE(b) }

// Geometry of the seeds: 16 KiB PEBs, VID header at 512, data at 1024.
const (
	tinyPEB  = 16 << 10
	tinyVID  = 512
	tinyData = 1024
)

// setVID rewrites fields of the VID header of PEB n and fixes its CRC.
func setVID(img []byte, n int, edit func(h []byte)) {
	h := img[n*tinyPEB+tinyVID : n*tinyPEB+tinyVID+64]
	edit(h)
	binary.BigEndian.PutUint32(h[60:], ubiCRC(h[:60]))
}

// TestStaticCRC: a static volume whose data no longer matches its CRC is
// still read, with the damage told.
func TestStaticCRC(t *testing.T) {
	img := fixture.ReadFile(t, "fw/ubi-tiny-static.ubi")
	img[2*tinyPEB+tinyData+100] = 'X'
	vols, err := walk(t, bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	if len(vols) != 1 || !strings.Contains(vols[0].h.Damage, "LEB 0 in PEB 2 fails its data CRC") || vols[0].data[100] != 'X' {
		t.Errorf("%+v", vols[0].h)
	}
}

// TestNewestCopy: of two PEBs holding one LEB, the higher sequence number
// wins, unless it is a wear-levelling copy whose data CRC fails.
func TestNewestCopy(t *testing.T) {
	base := fixture.ReadFile(t, "fw/ubi-tiny-static.ubi")
	// A fifth PEB: LEB 0 of the kernel again, newer, with other data.
	img := append(append([]byte(nil), base...), base[2*tinyPEB:3*tinyPEB]...)
	newer := bytes.Repeat([]byte("n"), 16384-1024)
	copy(img[4*tinyPEB+tinyData:], newer)
	setVID(img, 4, func(h []byte) {
		binary.BigEndian.PutUint64(h[40:], 7)
		binary.BigEndian.PutUint32(h[32:], ubiCRC(newer))
	})
	cases := []struct {
		name     string
		copyFlag byte
		crc      uint32
		want     byte
		damage   string
	}{
		{"newer", 0, ubiCRC(newer), 'n', ""},
		{"copy", 1, ubiCRC(newer), 'n', ""},
		{"broken copy", 1, 0xdeadbeef, 's', "LEB 0: the copy in PEB 4 fails its data CRC"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			img := append([]byte(nil), img...)
			setVID(img, 4, func(h []byte) { h[6] = c.copyFlag; binary.BigEndian.PutUint32(h[32:], c.crc) })
			vols, err := walk(t, bytes.NewReader(img), int64(len(img)))
			if err != nil {
				t.Fatal(err)
			}
			k := vols[0]
			if k.data[0] != c.want || k.h.Size != 20000 {
				t.Errorf("LEB 0 starts %q, size %d; want %q", k.data[0], k.h.Size, c.want)
			}
			if c.damage != "" && !strings.Contains(k.h.Damage, c.damage) {
				t.Errorf("damage %q, want %q", k.h.Damage, c.damage)
			}
		})
	}
}

// TestReadAt: the rootfs volume read at random offsets gives the bytes read
// in sequence, so a UBIFS reader can work in place.
func TestReadAt(t *testing.T) {
	f, size := fixture.Open(t, "fw/ubi-badvid.ubi")
	var open pipeline.OpenFunc
	err := ubi.Format{}.Walk(context.Background(), f, size, pipeline.DefaultLimits(), func(h *pipeline.Header, o pipeline.OpenFunc) error {
		if h.Label == "rootfs" {
			open = o
		}
		return nil
	})
	if err != nil || open == nil {
		t.Fatal(err, open)
	}
	rc, _ := open(context.Background())
	want, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	ra, ok := rc.(fixture.SizedReaderAt)
	if !ok {
		t.Fatal("the volume reader is not an io.ReaderAt with its Size")
	}
	fixture.CheckReadAt(t, "rootfs", ra, want, rand.New(rand.NewSource(1)), 200, 3*leb)
}

// TestMissingStaticLEB: reading a static volume that lost a LEB fails
// there, as UBI refuses it, and the header says which.
func TestMissingStaticLEB(t *testing.T) {
	img := fixture.ReadFile(t, "fw/ubi-tiny-static.ubi")
	img[3*tinyPEB+tinyVID+61] ^= 1 // LEB 1's VID header CRC
	vols, err := walk(t, bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	k := vols[0]
	if !errors.Is(k.err, ubi.ErrCorrupt) || !strings.Contains(k.err.Error(), "LEB 1 of the static volume is missing") {
		t.Errorf("reading: %v", k.err)
	}
	if !strings.Contains(k.h.Damage, "lacks LEBs 1") || !strings.Contains(k.h.Damage, "PEB 3, which claims LEB 1") {
		t.Errorf("damage %q", k.h.Damage)
	}
}

// TestCarve: Match, the signature and Span find the image inside a larger
// blob and cut it exactly, whatever follows it.
func TestCarve(t *testing.T) {
	f := ubi.Format{}
	for rel, pebSize := range map[string]int{"fw/ubi-rootfs.ubi": peb, "fw/ubi-tiny.ubi": tinyPEB, "fw/ubi-tiny-static.ubi": tinyPEB, "fw/ubi-tiny-nor.ubi": 2048} {
		img := fixture.ReadFile(t, rel)
		blob := append(append(bytes.Repeat([]byte{0}, 3*512), img...), bytes.Repeat([]byte("junk"), 100000)...)
		sig := f.Signatures()[0]
		at := bytes.Index(blob, sig.Magic)
		if at%sig.Align != 0 || !f.Match(blob[at:min(at+pipeline.MatchSize, len(blob))]) {
			t.Errorf("%s: not matched at %d", rel, at)
		}
		n, err := f.Span(bytes.NewReader(blob[at:]), int64(len(blob)-at))
		if err != nil || n != int64(len(img)) {
			t.Errorf("%s: span %d (%v), want %d", rel, n, err, len(img))
		}
		// A PEB whose EC header is damaged is still part of the image.
		worn := append([]byte(nil), img...)
		worn[len(img)-2*pebSize+8] ^= 0x40
		if n, err := f.Span(bytes.NewReader(worn), int64(len(worn))); err != nil || n != int64(len(img)) {
			t.Errorf("%s with a worn EC header: span %d (%v), want %d", rel, n, err, len(img))
		}
		// Erased PEBs at the end are not part of it.
		ff := append(append([]byte(nil), img...), bytes.Repeat([]byte{0xFF}, 1<<20)...)
		if n, err := f.Span(bytes.NewReader(ff), int64(len(ff))); err != nil || n != int64(len(img)) {
			t.Errorf("%s followed by erased flash: span %d (%v), want %d", rel, n, err, len(img))
		}
	}
	for _, head := range [][]byte{nil, []byte("UBI#"), bytes.Repeat([]byte("UBI#"), 16)} {
		if f.Match(head) {
			t.Errorf("Match(%q) is true", head)
		}
	}
	bad := fixture.ReadFile(t, "fw/ubi-tiny.ubi")[:4096]
	bad[30] ^= 1
	if f.Match(bad) {
		t.Error("Match accepts an EC header with a bad CRC")
	}
}

// TestErrors: what is not a UBI image fails with a message.
func TestErrors(t *testing.T) {
	one := fixture.ReadFile(t, "fw/ubi-tiny.ubi")[:tinyPEB]
	cases := map[string]struct {
		img  []byte
		want string
	}{
		"empty":      {nil, "PEB 0"},
		"no ec":      {bytes.Repeat([]byte{0xFF}, 4096), "no UBI# erase-counter header"},
		"single peb": {one, "cannot tell the PEB size"},
	}
	for name, c := range cases {
		_, err := walk(t, bytes.NewReader(c.img), int64(len(c.img)))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
}
