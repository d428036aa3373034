package squashfs3_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ulikunitz/xz/lzma"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/fixture"
	"github.com/fwvet/fwvet/pipeline/unpack"
)

// ddwrtImage is a DD-WRT style flash image: an LZMA-alone kernel at
// offset 0 (no magic, size unknown, an end marker), erased flash up to
// rootAt, a big-endian squashfs 3.0 under DD-WRT's magic with DD-WRT's
// LZMA blocks, then erased flash again.
func ddwrtImage(t *testing.T, rootAt int) (img, kernel []byte, tree *node) {
	t.Helper()
	plain := pseudoText(7, 200<<10)
	rng := rand.New(rand.NewSource(8))
	for i := 0; i < len(plain); i += 64 {
		plain[i] = byte(rng.Intn(256))
	}
	var buf bytes.Buffer
	lw, err := lzma.WriterConfig{DictCap: 1 << 23}.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	lw.Write(plain)
	if err := lw.Close(); err != nil {
		t.Fatal(err)
	}
	kernel = buf.Bytes()
	if len(kernel) >= rootAt {
		t.Fatalf("kernel of %d bytes does not fit before %#x", len(kernel), rootAt)
	}
	tree = testTree()
	fs := buildImage(t, tree, imageOpts{be: true, ddwrt: true, magic: "tqsh"})
	img = append(img, kernel...)
	img = append(img, bytes.Repeat([]byte{0xff}, rootAt-len(kernel))...)
	img = append(img, fs...)
	img = append(img, bytes.Repeat([]byte{0xff}, 64<<10)...)
	return img, kernel, tree
}

// TestDDWRTImage: the whole unpacker cuts a DD-WRT image into its kernel,
// its padding and its root file system, and unpacks every file of the
// squashfs 3.0 inside, where a compressed stream at offset 0 used to claim
// the whole image and fail as holding no container.
func TestDDWRTImage(t *testing.T) {
	const rootAt = 0x40000
	img, kernel, tree := ddwrtImage(t, rootAt)
	path := filepath.Join(t.TempDir(), "dd-wrt.v24-sp2_mini.bin")
	if err := os.WriteFile(path, img, 0o644); err != nil {
		t.Fatal(err)
	}
	u, err := unpack.New(unpack.Options{Limits: pipeline.DefaultLimits(), WorkDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	art := &pipeline.Artifact{Name: filepath.Base(path), Path: path, Size: int64(len(img))}
	out, err := u.Unpack(context.Background(), art)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if len(out.Problems) > 0 {
		t.Errorf("problems: %+v", out.Problems)
	}
	// The kernel region is named lzma; it holds no container, so like any
	// compressed file that holds none it is not opened as one.
	for _, f := range []string{"raw", "squashfs3"} {
		if !slices.Contains(out.Formats, f) {
			t.Errorf("formats %v lack %s", out.Formats, f)
		}
	}
	var regions []string
	files := map[string]fixture.Entry{}
	for e := range out.All() {
		chain := strings.Join(e.Container, " ")
		switch {
		case chain == art.Name+" raw":
			regions = append(regions, e.Path)
			r := e.Region
			switch e.Path {
			case "/lzma-1":
				sum := sha256.Sum256(kernel)
				if r.Offset != 0 || r.Size != int64(len(kernel)) || e.SHA256 != hex.EncodeToString(sum[:]) {
					t.Errorf("kernel region %+v (sha %.12s), want the %d bytes of the LZMA stream", r, e.SHA256, len(kernel))
				}
			case "/padding-1":
				if r.Offset != int64(len(kernel)) || r.Size != rootAt-int64(len(kernel)) {
					t.Errorf("padding region %+v, want %#x to %#x", r, len(kernel), rootAt)
				}
			case "/squashfs3-1":
				if r.Offset != rootAt {
					t.Errorf("squashfs region at %#x, want %#x", r.Offset, rootAt)
				}
			}
		case chain == art.Name+" raw /squashfs3-1 squashfs3":
			fe := fixture.Entry{Type: e.Type, Mode: e.Mode, UID: e.UID, GID: e.GID, Size: e.Size,
				Major: e.Major, Minor: e.Minor, SHA256: e.SHA256}
			if e.Type == pipeline.TypeSymlink {
				fe.Link = e.LinkTarget
			}
			files[fixture.Key(e.Path)] = fe
		}
	}
	slices.Sort(regions)
	if got := strings.Join(regions, " "); got != "/lzma-1 /padding-1 /padding-2 /squashfs3-1" {
		t.Errorf("regions %s, want the kernel, padding, the squashfs and padding", got)
	}
	fixture.CompareTrees(t, files, want(tree))
}

// TestDDWRTTruncated: a DD-WRT image cut inside its root file system is
// still cut into regions; the squashfs region fails as truncated and
// says so, and the kernel region is there.
func TestDDWRTTruncated(t *testing.T) {
	const rootAt = 0x40000
	img, _, _ := ddwrtImage(t, rootAt)
	img = img[:rootAt+20000]
	path := filepath.Join(t.TempDir(), "cut.bin")
	if err := os.WriteFile(path, img, 0o644); err != nil {
		t.Fatal(err)
	}
	u, err := unpack.New(unpack.Options{Limits: pipeline.DefaultLimits(), WorkDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	out, err := u.Unpack(context.Background(), &pipeline.Artifact{Name: "cut.bin", Path: path, Size: int64(len(img))})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	found := false
	for _, p := range out.Problems {
		if strings.Contains(p.Reason, "squashfs") && strings.Contains(p.Reason, "truncated") {
			found = true
		}
	}
	if !found {
		t.Errorf("no problem reports the truncated squashfs: %+v", out.Problems)
	}
}

// TestUnpackOldVersions: through the whole unpacker, a squashfs of a
// version not read is named in the error, alone or carved out of a raw
// image, never an unknown format nor a clean image.
func TestUnpackOldVersions(t *testing.T) {
	le := buildImage(t, testTree(), imageOpts{})
	v2 := patch(le, false, 2, 1)
	const msg = "squashfs version 2.1 (little-endian, magic hsqs) is not supported"
	u, err := unpack.New(unpack.Options{Limits: pipeline.DefaultLimits(), WorkDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		img  []byte
	}{
		{"alone", v2},
		{"carved", append(append(bytes.Repeat([]byte("vendor header "), 4096), bytes.Repeat([]byte{0xff}, 8192)...), v2...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name+".bin")
			if err := os.WriteFile(path, tc.img, 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := u.Unpack(context.Background(), &pipeline.Artifact{Name: tc.name, Path: path, Size: int64(len(tc.img))})
			if err != nil {
				if !strings.Contains(err.Error(), msg) {
					t.Errorf("error %v, want %q", err, msg)
				}
				return
			}
			defer out.Close()
			found := false
			for _, p := range out.Problems {
				found = found || strings.Contains(p.Reason, msg)
			}
			if !found {
				t.Errorf("no problem says %q: %+v", msg, out.Problems)
			}
		})
	}
}
