package jffs2_test

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/fixture"
	"github.com/fwvet/fwvet/pipeline/unpack/jffs2"
)

// TestDamaged: a damaged image ends in a clear error or reports its damage
// on the entries it touches, and what survived still reads right.
func TestDamaged(t *testing.T) {
	want := fixture.SourceTree(t, fixture.Path(t, "stage/formats"))
	for _, tc := range []struct {
		img     string
		err     string            // part of Walk's error, "" for none
		damage  map[string]string // path -> part of its Damage
		missing []string
	}{
		{img: "fw/jffs2-trunc.img", err: "the image is truncated",
			damage: map[string]string{".": "hold no valid node"}},
		{img: "fw/jffs2-baddata.img",
			damage: map[string]string{"etc/passwd": "fails its data CRC"}},
		{img: "fw/jffs2-baddirent.img",
			damage:  map[string]string{".": "reachable from no directory"},
			missing: []string{"etc/passwd"}},
	} {
		t.Run(tc.img, func(t *testing.T) {
			got, err := fixture.WalkArchive(t, jffs2.Format{}, tc.img, pipeline.DefaultLimits())
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("Walk: %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("Walk error %v, want one saying %q", err, tc.err)
			}
			for p, d := range tc.damage {
				if !strings.Contains(got[p].Damage, d) {
					t.Errorf("%s: damage %q, want it to say %q", p, got[p].Damage, d)
				}
			}
			for _, p := range tc.missing {
				if _, ok := got[p]; ok {
					t.Errorf("%s listed though its dirent is broken", p)
				}
			}
			// Everything listed without damage is intact.
			intact := 0
			for p, g := range got {
				if p == "." || g.Damage != "" {
					continue
				}
				w, ok := want[p]
				if !ok {
					t.Errorf("%s listed but not in the source", p)
					continue
				}
				if g.Type == pipeline.TypeFile && g.SHA256 != w.SHA256 {
					t.Errorf("%s: contents differ from the source but no damage is reported", p)
				}
				intact++
			}
			if intact < 50 {
				t.Errorf("only %d intact entries", intact)
			}
		})
	}
}

func TestMatch(t *testing.T) {
	for _, img := range append(cleanImages, "fw/jffs2-tiny-le.img", "fw/jffs2-tiny-be-rtime.img") {
		b := make([]byte, pipeline.MatchSize)
		f, err := os.Open(fixture.Path(t, img))
		if err != nil {
			t.Fatal(err)
		}
		n, _ := f.Read(b)
		f.Close()
		if !(jffs2.Format{}).Match(b[:n]) {
			t.Errorf("%s: not matched", img)
		}
		for i := 0; i < 12; i++ {
			if (jffs2.Format{}).Match(b[:i]) {
				t.Errorf("%s: matched on %d bytes", img, i)
			}
		}
	}
	// The magic with a header CRC that does not hold.
	for _, head := range [][]byte{
		{0x85, 0x19, 0x03, 0x20, 12, 0, 0, 0, 1, 2, 3, 4},
		{0x19, 0x85, 0x20, 0x03, 0, 0, 0, 12, 0, 0, 0, 0},
		bytes.Repeat([]byte{0x85, 0x19}, 100),
	} {
		if (jffs2.Format{}).Match(head) {
			t.Errorf("matched % x", head)
		}
	}
}

// TestSpan: the span of an image alone is its size; inside a larger dump,
// it ends after the last erase block holding nodes, not in what follows.
func TestSpan(t *testing.T) {
	for _, img := range cleanImages {
		b, err := os.ReadFile(fixture.Path(t, img))
		if err != nil {
			t.Fatal(err)
		}
		n, err := jffs2.Format{}.Span(bytes.NewReader(b), int64(len(b)))
		if err != nil || n != int64(len(b)) {
			t.Errorf("%s: Span = %d, %v; want %d", img, n, err, len(b))
		}
	}
	tiny, err := os.ReadFile(fixture.Path(t, "fw/jffs2-tiny-le.img"))
	if err != nil {
		t.Fatal(err)
	}
	junk := bytes.Repeat([]byte("not a node, a kernel or so. "), 4096)
	const eb = 64 << 10 // mkfs.jffs2's default, assumed without a second cleanmarker
	for _, tc := range []struct {
		name string
		dump []byte
		want int64
	}{
		{"junk right after", cat(tiny, junk), int64(len(tiny))},
		{"erased, then junk", cat(tiny, bytes.Repeat([]byte{0xff}, eb-len(tiny)), junk), eb},
		{"erased block between", cat(tiny, bytes.Repeat([]byte{0xff}, 2*eb-len(tiny)), tiny, junk), 2*eb + int64(len(tiny))},
	} {
		n, err := jffs2.Format{}.Span(bytes.NewReader(tc.dump), int64(len(tc.dump)))
		if err != nil || n != tc.want {
			t.Errorf("%s: Span = %d, %v; want %d", tc.name, n, err, tc.want)
		}
	}
	if _, err := (jffs2.Format{}).Span(bytes.NewReader(junk), int64(len(junk))); err == nil {
		t.Error("Span of junk succeeded")
	}
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
