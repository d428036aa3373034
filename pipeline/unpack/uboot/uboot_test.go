package uboot_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/fixture"
	"github.com/fwvet/fwvet/pipeline/unpack/compression"
	"github.com/fwvet/fwvet/pipeline/unpack/uboot"
)

// entry is what a test expects of one walked file: its contents, named by
// the fixture file that holds them, and a fragment of its damage ("" for
// none).
type entry struct {
	want   string
	damage []string
	// label is the name the header gives the entry; "-" for none.
	label string
}

// got is one walked file with its contents read through the OpenFunc.
type got struct {
	h    pipeline.Header
	data []byte
}

func walk(t *testing.T, a pipeline.Container, file string, lim pipeline.Limits) (map[string]got, []string, error) {
	t.Helper()
	f, size := fixture.Open(t, "fw/"+file)
	out := map[string]got{}
	var order []string
	err := a.Walk(context.Background(), f, size, lim, func(h *pipeline.Header, open pipeline.OpenFunc) error {
		if h.Type != pipeline.TypeFile || open == nil {
			t.Errorf("%s: entry %q is a %s with opener %v", file, h.Name, h.Type, open != nil)
			return nil
		}
		data := read(t, open)
		if int64(len(data)) != h.Size {
			t.Errorf("%s: entry %q declares %d bytes and reads %d", file, h.Name, h.Size, len(data))
		}
		// Opening again gives the same bytes (checked on small entries: the
		// codecs are slow enough already).
		if h.Size > 64<<10 {
		} else if again := read(t, open); !bytes.Equal(again, data) {
			t.Errorf("%s: entry %q reads differently the second time", file, h.Name)
		}
		out[h.Name] = got{*h, data}
		order = append(order, h.Name)
		return nil
	})
	return out, order, err
}

func read(t *testing.T, open pipeline.OpenFunc) []byte {
	t.Helper()
	rc, err := open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func fixtureBytes(t *testing.T, name string) []byte {
	t.Helper()
	return fixture.ReadFile(t, "fw/"+name)
}

// check compares walked entries with the expected ones, by name.
func check(t *testing.T, file string, gotEntries map[string]got, want map[string]entry) {
	t.Helper()
	var names []string
	for n := range gotEntries {
		names = append(names, n)
	}
	sort.Strings(names)
	for n, w := range want {
		g, ok := gotEntries[n]
		if !ok {
			t.Errorf("%s: no entry %q (have %q)", file, n, names)
			continue
		}
		if w.want != "" && !bytes.Equal(g.data, fixtureBytes(t, w.want)) {
			t.Errorf("%s: entry %q (%d bytes) differs from %s", file, n, len(g.data), w.want)
		}
		if w.label == "-" && g.h.Label != "" || w.label != "-" && w.label != "" && g.h.Label != w.label {
			t.Errorf("%s: entry %q has label %q, want %q", file, n, g.h.Label, w.label)
		}
		if len(w.damage) == 0 && g.h.Damage != "" {
			t.Errorf("%s: entry %q has damage %q", file, n, g.h.Damage)
		}
		for _, d := range w.damage {
			if !strings.Contains(g.h.Damage, d) {
				t.Errorf("%s: entry %q damage %q lacks %q", file, n, g.h.Damage, d)
			}
		}
		if g.h.Damage != "" {
			t.Logf("%s: %s: %s", file, n, g.h.Damage)
		}
	}
	if len(gotEntries) != len(want) {
		t.Errorf("%s: entries %q, want %d", file, names, len(want))
	}
}

const payload = "uboot-payload"

func TestUImage(t *testing.T) {
	// Entries are named by the image's type; the header's name is the label.
	kernel := map[string]entry{"kernel": {want: payload, label: "Linux-6.1.0"}}
	for _, c := range []struct {
		file string
		want map[string]entry
	}{
		{"uboot-kernel-gzip.uimg", kernel},
		{"uboot-kernel-none.uimg", kernel},
		{"uboot-kernel-bzip2.uimg", kernel},
		{"uboot-kernel-zstd.uimg", kernel},
		{"uboot-kernel-lzma.uimg", kernel},
		{"uboot-kernel-lzo.uimg", kernel},
		{"uboot-kernel-lz4.uimg", kernel},
		{"uboot-kernel-lz4frame.uimg", kernel},
		{"uboot-kernel-noname.uimg", map[string]entry{"kernel": {want: payload, label: "-"}}},
		// A name that would climb out of a path is only a label.
		{"uboot-kernel-odd-name.uimg", map[string]entry{"kernel": {want: payload, label: "My Kernel/../v1"}}},
		{"uboot-ramdisk.uimg", map[string]entry{"ramdisk": {want: "uboot-ramdisk.cpio", label: "initramfs"}}},
		// The second part of a multi-file image is the gzipped cpio as stored.
		{"uboot-multi.uimg", map[string]entry{"multi/0": {want: payload, label: "Linux-multi"}, "multi/1": {label: "Linux-multi"}}},
		{"uboot-script.uimg", map[string]entry{"script": {label: "boot script"}}},
		{"uboot-kernel-badcrc.uimg", map[string]entry{"kernel": {damage: []string{"uImage data CRC", "does not match the header's"}}}},
		{"uboot-tiny.uimg", map[string]entry{"multi/0": {}, "multi/1": {}}},
	} {
		t.Run(c.file, func(t *testing.T) {
			g, _, err := walk(t, uboot.UImage{}, c.file, pipeline.DefaultLimits())
			if err != nil {
				t.Fatal(err)
			}
			check(t, c.file, g, c.want)
			b := fixtureBytes(t, c.file)
			if !(uboot.UImage{}).Match(b[:min(len(b), pipeline.MatchSize)]) {
				t.Error("Match refuses it")
			}
			if n, err := (uboot.UImage{}).Span(bytes.NewReader(b), int64(len(b))); err != nil || n != int64(len(b)) {
				t.Errorf("Span = %d, %v; want %d", n, err, len(b))
			}
		})
	}
	g, _, _ := walk(t, uboot.UImage{}, "uboot-script.uimg", pipeline.DefaultLimits())
	if s := string(g["script"].data); !strings.HasPrefix(s, "setenv bootargs") {
		t.Errorf("script reads %q", s)
	}
}

func TestUImageDamaged(t *testing.T) {
	for _, c := range []struct{ file, err string }{
		{"uboot-kernel-trunc.uimg", "only 228654 follow the header"},
		{"uboot-kernel-badhdr.uimg", "uImage header CRC"},
	} {
		_, _, err := walk(t, uboot.UImage{}, c.file, pipeline.DefaultLimits())
		if err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%s: Walk = %v, want an error with %q", c.file, err, c.err)
		} else {
			t.Logf("%s: %v", c.file, err)
		}
	}
	if b := fixtureBytes(t, "uboot-kernel-badhdr.uimg"); (uboot.UImage{}).Match(b) {
		t.Error("Match accepts a header whose CRC fails")
	}
}

// Past lim.MaxFileSize the size is reported as just over the limit, so the
// unpacker refuses the entry without decompressing the rest.
func TestUImageLimit(t *testing.T) {
	lim := pipeline.DefaultLimits()
	lim.MaxFileSize = 1000
	f, size := fixture.Open(t, "fw/uboot-kernel-gzip.uimg")
	err := uboot.UImage{}.Walk(context.Background(), f, size, lim, func(h *pipeline.Header, _ pipeline.OpenFunc) error {
		if h.Size != 1001 {
			t.Errorf("size %d, want 1001", h.Size)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// decoders name the decompressor of each compression the fixtures use.
var decoders = map[string]pipeline.Decompressor{
	"gzip": compression.Gzip{}, "bzip2": compression.Bzip2{}, "zstd": compression.Zstd{},
	"lzma": compression.Lzma{}, "lzo": compression.Lzop{}, "lz4": compression.Lz4{},
}

// dumpimage extracts part p of an image with U-Boot's own tool.
func dumpimage(t *testing.T, typ, file string, p int) []byte {
	t.Helper()
	if _, err := exec.LookPath("dumpimage"); err != nil {
		t.Skip("dumpimage (u-boot-tools) is not installed")
	}
	out := filepath.Join(t.TempDir(), "part")
	cmd := exec.Command("dumpimage", "-T", typ, "-p", strconv.Itoa(p), "-o", out, fixture.Path(t, "fw/"+file))
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("dumpimage %s -p %d: %v\n%s", file, p, err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func decode(t *testing.T, codec string, b []byte) []byte {
	t.Helper()
	d := decoders[codec]
	if codec == "none" || d == nil {
		return b
	}
	r, err := d.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// The parts U-Boot's dumpimage extracts, decompressed, are the entries.
func TestUImageDumpimage(t *testing.T) {
	for _, c := range []struct {
		file  string
		codec string
		parts []string
		skip  int // bytes of size list dumpimage keeps before a script
	}{
		{"uboot-kernel-gzip.uimg", "gzip", []string{"kernel"}, 0},
		{"uboot-kernel-lzma.uimg", "lzma", []string{"kernel"}, 0},
		{"uboot-kernel-lzo.uimg", "lzo", []string{"kernel"}, 0},
		{"uboot-kernel-lz4.uimg", "lz4", []string{"kernel"}, 0},
		{"uboot-ramdisk.uimg", "gzip", []string{"ramdisk"}, 0},
		{"uboot-multi.uimg", "gzip", []string{"multi/0", "multi/1"}, 0},
		{"uboot-script.uimg", "none", []string{"script"}, 8},
	} {
		g, _, err := walk(t, uboot.UImage{}, c.file, pipeline.DefaultLimits())
		if err != nil {
			t.Fatal(err)
		}
		for i, name := range c.parts {
			codec := c.codec
			if i > 0 {
				codec = "none"
			}
			want := decode(t, codec, dumpimage(t, "kernel", c.file, i)[c.skip:])
			if !bytes.Equal(g[name].data, want) {
				t.Errorf("%s: %s (%d bytes) differs from dumpimage's part %d (%d bytes)", c.file, name, len(g[name].data), i, len(want))
			}
		}
	}
}

// TestUImageBomb: a gzip payload that expands past the ratio limit is not
// decompressed to the end to learn its size: it is reported as a bomb and
// refused, at the cost of reading what the ratio allows.
func TestUImageBomb(t *testing.T) {
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(make([]byte, 64<<20))
	zw.Close()
	img := uimage(1, z.Bytes())
	lim := pipeline.DefaultLimits()
	var got []*pipeline.Header
	err := uboot.UImage{}.Walk(context.Background(), bytes.NewReader(img), int64(len(img)), lim, func(h *pipeline.Header, _ pipeline.OpenFunc) error {
		got = append(got, h)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Size <= lim.MaxFileSize || !strings.Contains(got[0].Damage, "decompression bomb") {
		t.Fatalf("headers %+v: want one refused as a bomb", got)
	}
}
