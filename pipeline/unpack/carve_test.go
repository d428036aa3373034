package unpack_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/ulikunitz/xz/lzma"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/fixture"
	"github.com/fwvet/fwvet/pipeline/unpack"
)

// regionsOf returns the carved regions of one raw container, in offset order.
func regionsOf(tree *pipeline.Tree, chain ...string) []*pipeline.Entry {
	var out []*pipeline.Entry
	for e := range tree.All() {
		if e.Region != nil && strings.Join(e.Container, "\x00") == strings.Join(chain, "\x00") {
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Region.Offset < out[j].Region.Offset })
	return out
}

// checkCoverage asserts that the regions account for every byte of an image
// of size bytes, once, in order.
func checkCoverage(t *testing.T, regions []*pipeline.Entry, size int64) {
	t.Helper()
	var next int64
	for _, e := range regions {
		if e.Region.Offset != next {
			t.Errorf("%s starts at %#x, want %#x: bytes unaccounted for or claimed twice", e.Path, e.Region.Offset, next)
		}
		if e.Region.Size != e.Size || e.Size <= 0 {
			t.Errorf("%s: region of %d bytes, entry of %d", e.Path, e.Region.Size, e.Size)
		}
		next = e.Region.Offset + e.Region.Size
	}
	if next != size {
		t.Errorf("regions end at %#x, the image at %#x", next, size)
	}
}

func formatsOf(regions []*pipeline.Entry) string {
	var f []string
	for _, e := range regions {
		f = append(f, e.Region.Format)
	}
	return strings.Join(f, " ")
}

// TestCarveFlash: a raw flash dump (vendor header, uImage kernel, erased
// flash, squashfs at an erase block) is cut into regions that cover every
// byte, each container is unpacked in place, and what no format claims is
// a blob with its entropy.
func TestCarveFlash(t *testing.T) {
	cases := []struct {
		file    string
		formats string
		// blob is the region expected to hold random bytes, by path.
		blob string
	}{
		// The vendor header is 36 bytes of fields, then zeros to 512.
		{"fw/flash-1.0.0.bin", "blob padding uimage padding squashfs", ""},
		{"fw/flash-1.0.1-blob.bin", "blob padding uimage padding blob padding squashfs", "/blob-2"},
		// The squashfs ends on an erase block, so the tail follows it at once.
		{"fw/flash-1.0.1-tail.bin", "blob padding uimage padding squashfs blob", "/blob-2"},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			path := fixture.Path(t, tc.file)
			tree, _, err := unpackFile(t, path, pipeline.DefaultLimits())
			if err != nil {
				t.Fatal(err)
			}
			if len(tree.Problems) > 0 {
				t.Errorf("problems: %+v", tree.Problems)
			}
			st, _ := os.Stat(path)
			name := filepath.Base(path)
			regions := regionsOf(tree, name, "raw")
			checkCoverage(t, regions, st.Size())
			if got := formatsOf(regions); got != tc.formats {
				t.Errorf("regions %q, want %q", got, tc.formats)
			}
			for _, e := range regions {
				if e.Region.Format == pipeline.RegionBlob && e.Path == tc.blob && e.Region.Entropy < 7.9 {
					t.Errorf("%s: entropy %.2f, want random bytes near 8", e.Path, e.Region.Entropy)
				}
				if e.Region.Format == pipeline.RegionBlob && e.Path != tc.blob && e.Region.Entropy > 4 {
					t.Errorf("%s: the vendor header has entropy %.2f", e.Path, e.Region.Entropy)
				}
			}
			// The root file system inside is the squashfs itself, entry for entry.
			version := "1.0.0"
			if !strings.Contains(name, "1.0.0") {
				version = "1.0.1"
			}
			bare, _, err := unpackFile(t, fixture.Path(t, "fw/rootfs-"+version+".sqfs"), pipeline.DefaultLimits())
			if err != nil {
				t.Fatal(err)
			}
			inner := map[string]*pipeline.Entry{}
			for e := range tree.All() {
				if strings.Join(e.Container, " ") == name+" raw /squashfs-1 squashfs" {
					inner[e.Path] = e
				}
			}
			if len(inner) != bare.Len() {
				t.Errorf("%d entries in the carved squashfs, %d in the image itself", len(inner), bare.Len())
			}
			for b := range bare.All() {
				e := inner[b.Path]
				if e == nil || e.SHA256 != b.SHA256 || e.Mode != b.Mode || e.Type != b.Type {
					t.Errorf("%s: carved %+v, bare %+v", b.Path, e, b)
				}
			}
			// The kernel inside the uImage is the busybox the script packed.
			busybox := fixture.Path(t, "stage/formats/bin/busybox")
			want, _ := os.ReadFile(busybox)
			found := false
			for e := range tree.All() {
				if len(e.Container) > 2 && e.Container[2] == "/uimage-1" && e.Type == pipeline.TypeFile {
					found = true
					if e.Size != int64(len(want)) {
						t.Errorf("kernel %s: %d bytes, busybox has %d", e.Where(), e.Size, len(want))
					}
				}
			}
			if !found {
				t.Error("no kernel found inside the uImage region")
			}
		})
	}
}

// TestCarveDamage: a dump cut short inside its root file system keeps its
// other regions and reports the broken one as a problem of that region.
func TestCarveDamage(t *testing.T) {
	path := fixture.Path(t, "fw/flash-truncated.bin")
	tree, _, err := unpackFile(t, path, pipeline.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path)
	regions := regionsOf(tree, "flash-truncated.bin", "raw")
	checkCoverage(t, regions, st.Size())
	if got := formatsOf(regions); !strings.HasPrefix(got, "blob padding uimage padding squashfs") {
		t.Errorf("regions %q", got)
	}
	var broken bool
	for _, p := range tree.Problems {
		if p.Kind == pipeline.ProblemCorrupt && strings.Join(p.Container, " ") == "flash-truncated.bin raw /squashfs-1 squashfs" {
			broken = true
		}
	}
	if !broken {
		t.Errorf("problems %+v: none for the truncated squashfs region", tree.Problems)
	}
}

// TestCarveAppended: bytes appended after a file system are not hidden
// behind it, and a dump inside a vendor's tar is carved like a bare one.
func TestCarveAppended(t *testing.T) {
	sqfs, err := os.ReadFile(fixture.Path(t, "fw/rootfs-1.0.0.sqfs"))
	if err != nil {
		t.Fatal(err)
	}
	extra := make([]byte, 8192)
	rand.Read(extra)
	dir := t.TempDir()
	appended := filepath.Join(dir, "rootfs-appended.sqfs")
	if err := os.WriteFile(appended, append(append([]byte(nil), sqfs...), extra...), 0o644); err != nil {
		t.Fatal(err)
	}
	tree, _, err := unpackFile(t, appended, pipeline.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	regions := regionsOf(tree, "rootfs-appended.sqfs", "raw")
	checkCoverage(t, regions, int64(len(sqfs)+len(extra)))
	if got := formatsOf(regions); got != "squashfs blob" {
		t.Errorf("regions %q, want the squashfs then the appended blob", got)
	}

	flash, err := os.ReadFile(fixture.Path(t, "fw/flash-1.0.0.bin"))
	if err != nil {
		t.Fatal(err)
	}
	vendor := fixture.Tar(t, map[string]string{"firmware.bin": string(flash), "md5sum.txt": "0123456789abcdef  firmware.bin\n"})
	tree, _, err = unpackFile(t, vendor, pipeline.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	regions = regionsOf(tree, "layer.tar", "tar", "/firmware.bin", "raw")
	checkCoverage(t, regions, int64(len(flash)))
	if got := formatsOf(regions); got != "blob padding uimage padding squashfs" {
		t.Errorf("regions of the tar's firmware.bin %q", got)
	}
}

// TestCarveLeavesPlainFiles: files of a root file system that hold no
// embedded container are not cut into regions.
func TestCarveLeavesPlainFiles(t *testing.T) {
	big := bytes.Repeat([]byte("configuration line without any magic\n"), 4096)
	tarPath := fixture.Tar(t, map[string]string{"etc/big.conf": string(big)})
	tree, _, err := unpackFile(t, tarPath, pipeline.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	for e := range tree.All() {
		if e.Region != nil {
			t.Errorf("%s was carved", e.Where())
		}
	}
}

// FuzzCarve: whatever bytes a raw image holds, its regions cover it exactly
// and unpacking ends without a panic.
func FuzzCarve(f *testing.F) {
	seed, err := os.ReadFile(fixture.Path(f, "fw/flash-seed.bin"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add(append([]byte("HDR0"), seed[512:]...))
	lim := pipeline.DefaultLimits()
	lim.MaxTotalBytes, lim.MaxFileSize, lim.MaxEntries, lim.RatioMinBytes = 16<<20, 4<<20, 2000, 1<<20
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		in := filepath.Join(dir, "dump.bin")
		if err := os.WriteFile(in, data, 0o600); err != nil {
			t.Fatal(err)
		}
		work := filepath.Join(dir, "work")
		if err := os.Mkdir(work, 0o700); err != nil {
			t.Fatal(err)
		}
		u, err := unpack.New(unpack.Options{Limits: lim, WorkDir: work, Jobs: 1})
		if err != nil {
			t.Fatal(err)
		}
		tree, err := u.Unpack(context.Background(), &pipeline.Artifact{Name: "dump.bin", Path: in, Size: int64(len(data))})
		if err != nil {
			return
		}
		defer tree.Close()
		if regions := regionsOf(tree, "dump.bin", "raw"); len(regions) > 0 && !tree.Incomplete {
			checkCoverage(t, regions, int64(len(data)))
		}
	})
}

// TestCarveBudget: an image packed with cpio headers that never reach a
// trailer makes every candidate's length check read to the end. The scan
// stops at its budget with a limit problem instead of reading the image
// once per header.
func TestCarveBudget(t *testing.T) {
	var b bytes.Buffer
	b.WriteString("VNDR")
	for b.Len() < 4<<20 {
		// newc header: magic, 13 fields of 8 hex digits, name "a\0", padded to 4.
		fmt.Fprintf(&b, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X", 1, 0o100644, 0, 0, 1, 0, 0, 0, 0, 0, 0, 2, 0)
		b.WriteString("a\x00")
	}
	p := filepath.Join(t.TempDir(), "headers.bin")
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	tree, _, err := unpackFile(t, p, pipeline.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	if !tree.Incomplete || len(tree.Problems) != 1 || tree.Problems[0].Kind != pipeline.ProblemLimit || !strings.Contains(tree.Problems[0].Reason, "too many false signatures") {
		t.Errorf("incomplete %v, problems %+v: want the scan's budget hit", tree.Incomplete, tree.Problems)
	}
}

// compressFor compresses b as gzip or as LZMA alone (size unknown, an end
// marker), the two shapes of kernel found at the start of flash images.
func compressFor(t *testing.T, format string, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	switch format {
	case "gzip":
		zw := gzip.NewWriter(&buf)
		zw.Write(b)
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
	case "lzma":
		lw, err := lzma.WriterConfig{DictCap: 1 << 23}.NewWriter(&buf)
		if err != nil {
			t.Fatal(err)
		}
		lw.Write(b)
		if err := lw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// TestCarveLeadingStream: a compressed stream at offset 0 that ends before
// the image does is its first region, cut at the stream's last byte, and
// what follows is carved as in any raw image, whichever the compressor; a
// stream followed by padding alone is the whole input, as before.
func TestCarveLeadingStream(t *testing.T) {
	kernel := bytes.Repeat([]byte("vmlinux: decompressing the kernel ... "), 4000)
	random := make([]byte, 96<<10)
	rand.Read(random)
	sqfs := fixture.ReadFile(t, "fw/rootfs-1.0.0.sqfs")
	cases := []struct {
		name, comp string
		after      []byte
		inTar      bool
		regions    string
		err        string
	}{
		{"gzip kernel, squashfs", "gzip", sqfs, false, "gzip padding squashfs", ""},
		{"lzma kernel, squashfs", "lzma", sqfs, false, "lzma padding squashfs", ""},
		{"lzma kernel, blob", "lzma", random, false, "lzma padding blob", ""},
		{"lzma kernel, squashfs, in a tar", "lzma", sqfs, true, "lzma padding squashfs", ""},
		{"lzma kernel, padding only", "lzma", nil, false, "", "the lzma stream holds no supported container format"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			stream := compressFor(t, tc.comp, kernel)
			const at = 0x10000
			if len(stream) >= at {
				t.Fatalf("kernel stream of %d bytes", len(stream))
			}
			img := append(append(bytes.Clone(stream), bytes.Repeat([]byte{0xff}, at-len(stream))...), tc.after...)
			path := filepath.Join(t.TempDir(), "fw.bin")
			chain := []string{"fw.bin", "raw"}
			if err := os.WriteFile(path, img, 0o644); err != nil {
				t.Fatal(err)
			}
			if tc.inTar {
				path = fixture.Tar(t, map[string]string{"fw.bin": string(img)})
				chain = []string{"layer.tar", "tar", "/fw.bin", "raw"}
			}
			tree, _, err := unpackFile(t, path, pipeline.DefaultLimits())
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(tree.Problems) > 0 {
				t.Errorf("problems: %+v", tree.Problems)
			}
			regions := regionsOf(tree, chain...)
			checkCoverage(t, regions, int64(len(img)))
			if got := formatsOf(regions); got != tc.regions {
				t.Fatalf("regions %q, want %q", got, tc.regions)
			}
			if r := regions[0].Region; r.Offset != 0 || r.Size != int64(len(stream)) {
				t.Errorf("stream region %+v, want the %d bytes of the stream", r, len(stream))
			}
			if tc.regions == "lzma padding squashfs" || tc.regions == "gzip padding squashfs" {
				n := 0
				for e := range tree.All() {
					if len(e.Container) > len(chain) && e.Container[len(chain)] == "/squashfs-1" {
						n++
					}
				}
				if n == 0 {
					t.Error("no entries unpacked from the squashfs after the kernel")
				}
			}
		})
	}
}
