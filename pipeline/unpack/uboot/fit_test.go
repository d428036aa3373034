package uboot_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/unpack/uboot"
)

func TestFIT(t *testing.T) {
	fit := map[string]entry{
		"images/kernel-1":  {want: payload},
		"images/fdt-1":     {want: "uboot-board.dtb"},
		"images/ramdisk-1": {want: "uboot-ramdisk.cpio"},
	}
	for _, c := range []struct {
		file string
		want map[string]entry
	}{
		{"uboot-fit.itb", fit},
		{"uboot-fit-external.itb", fit},
		{"uboot-fit-position.itb", fit},
		// Images are named by type and place; the node's name is the label.
		{"uboot-fit-codecs.itb", map[string]entry{
			"images/kernel-1": {want: payload, label: "kernel-lzma"}, "images/kernel-2": {want: payload, label: "kernel-lzo"},
			"images/kernel-3": {want: payload, label: "kernel-lz4"}, "images/kernel-4": {want: payload, label: "kernel-bzip2"},
			"images/kernel-5": {want: payload, label: "kernel-zstd"},
		}},
		{"uboot-fit-badhash.itb", map[string]entry{
			"images/kernel-1": {want: payload},
			"images/fdt-1":    {want: "uboot-board.dtb"},
			"images/ramdisk-1": {damage: []string{
				`hash node "hash-1": md5 `,
				`hash node "hash-2": sha512 `, "does not match the stored",
			}},
		}},
		{"uboot-tiny.itb", map[string]entry{"images/kernel-1": {}, "images/fdt-1": {want: "uboot-board.dtb"}, "images/ramdisk-1": {}}},
		{"uboot-tiny-external.itb", map[string]entry{"images/kernel-1": {}, "images/fdt-1": {want: "uboot-board.dtb"}, "images/ramdisk-1": {}}},
	} {
		t.Run(c.file, func(t *testing.T) {
			g, _, err := walk(t, uboot.FIT{}, c.file, pipeline.DefaultLimits())
			if err != nil {
				t.Fatal(err)
			}
			check(t, c.file, g, c.want)
			b := fixtureBytes(t, c.file)
			head := b[:min(len(b), pipeline.MatchSize)]
			if !(uboot.FIT{}).Match(head) || (uboot.DTB{}).Match(head) {
				t.Errorf("FIT.Match = %v, DTB.Match = %v", (uboot.FIT{}).Match(head), (uboot.DTB{}).Match(head))
			}
			if n, err := (uboot.FIT{}).Span(bytes.NewReader(b), int64(len(b))); err != nil || n != int64(len(b)) {
				t.Errorf("Span = %d, %v; want %d", n, err, len(b))
			}
		})
	}
}

func TestFITDamaged(t *testing.T) {
	for _, c := range []struct{ file, err string }{
		{"uboot-fit-trunc.itb", "device tree of 1233840 bytes is cut short at 616920"},
		{"uboot-fit-external-trunc.itb", "runs past the end"},
		{"uboot-fit-badhdr.itb", "strings block"},
	} {
		_, _, err := walk(t, uboot.FIT{}, c.file, pipeline.DefaultLimits())
		if err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%s: Walk = %v, want an error with %q", c.file, err, c.err)
		} else {
			t.Logf("%s: %v", c.file, err)
		}
	}
}

// The images U-Boot's dumpimage extracts, as stored, decompress to the
// entries.
func TestFITDumpimage(t *testing.T) {
	for _, c := range []struct {
		file   string
		images []string
		codecs []string
	}{
		{"uboot-fit.itb", []string{"kernel-1", "fdt-1", "ramdisk-1"}, []string{"gzip", "none", "none"}},
		{"uboot-fit-external.itb", []string{"kernel-1", "fdt-1", "ramdisk-1"}, []string{"gzip", "none", "none"}},
		{"uboot-fit-position.itb", []string{"kernel-1", "fdt-1", "ramdisk-1"}, []string{"gzip", "none", "none"}},
		{"uboot-fit-codecs.itb", []string{"kernel-1", "kernel-2", "kernel-3", "kernel-4", "kernel-5"},
			[]string{"lzma", "lzo", "lz4", "bzip2", "zstd"}},
	} {
		g, order, err := walk(t, uboot.FIT{}, c.file, pipeline.DefaultLimits())
		if err != nil {
			t.Fatal(err)
		}
		for i, name := range c.images {
			if order[i] != "images/"+name {
				t.Errorf("%s: entry %d is %s, want images/%s", c.file, i, order[i], name)
			}
			want := decode(t, c.codecs[i], dumpimage(t, "flat_dt", c.file, i))
			if got := g["images/"+name].data; !bytes.Equal(got, want) {
				t.Errorf("%s: %s (%d bytes) differs from dumpimage's image %d (%d bytes)", c.file, name, len(got), i, len(want))
			}
		}
	}
}

// A plain device tree is a DTB, not a FIT, and holds no files.
func TestDTB(t *testing.T) {
	b := fixtureBytes(t, "uboot-board.dtb")
	if (uboot.FIT{}).Match(b) || !(uboot.DTB{}).Match(b) {
		t.Fatalf("FIT.Match = %v, DTB.Match = %v", (uboot.FIT{}).Match(b), (uboot.DTB{}).Match(b))
	}
	padded := append(append([]byte(nil), b...), make([]byte, 100)...)
	if n, err := (uboot.DTB{}).Span(bytes.NewReader(padded), int64(len(padded))); err != nil || n != int64(len(b)) {
		t.Errorf("Span = %d, %v; want %d", n, err, len(b))
	}
	err := uboot.DTB{}.Walk(context.Background(), bytes.NewReader(b), int64(len(b)), pipeline.DefaultLimits(), func(h *pipeline.Header, _ pipeline.OpenFunc) error {
		t.Errorf("entry %q", h.Name)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := walk(t, uboot.FIT{}, "uboot-board.dtb", pipeline.DefaultLimits()); err == nil || !strings.Contains(err.Error(), "no /images") {
		t.Errorf("FIT walk of a plain tree: %v", err)
	}
}
