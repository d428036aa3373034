package squashfs3_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/fixture"
	"github.com/fwvet/fwvet/pipeline/unpack/squashfs3"
)

// variants are the image shapes the reader is checked on.
var variants = []struct {
	name string
	opts imageOpts
}{
	{"le-gzip", imageOpts{}},
	{"be-gzip", imageOpts{be: true}},
	{"le-lzma", imageOpts{lzma: true}},
	{"be-lzma", imageOpts{be: true, lzma: true}},
	{"ddwrt-tqsh-be-lzma-3.0", imageOpts{be: true, ddwrt: true, magic: "tqsh"}},
	{"tqsh-be-sqlzma-3.0", imageOpts{be: true, lzma: true, magic: "tqsh"}},
	{"hsqt-le-ddwrt-3.1", imageOpts{ddwrt: true, magic: "hsqt", minor: 1}},
	{"hsqt-le-lzma", imageOpts{lzma: true, magic: "hsqt"}},
	{"qshs-be-lzma", imageOpts{be: true, lzma: true, magic: "qshs"}},
	{"le-gzip-3.1-check", imageOpts{minor: 1, check: true}},
	{"be-gzip-4k-blocks", imageOpts{be: true, blockSize: 4096, minor: 1}},
	{"le-lzma-1m-blocks", imageOpts{lzma: true, blockSize: 1 << 20, minor: 1}},
}

// want is what the walk of the test tree must give, keyed as fixture.Key.
func want(root *node) map[string]fixture.Entry {
	out := map[string]fixture.Entry{}
	var add func(dir string, n *node)
	add = func(p string, n *node) {
		in := n
		if n.link != nil {
			in = n.link
		}
		e := fixture.Entry{Type: in.typ, Mode: in.mode, UID: in.uid, GID: in.gid, Link: in.target, Major: in.major, Minor: in.minor}
		if in.typ == pipeline.TypeFile {
			e.Size = int64(len(in.data))
			s := sha256.Sum256(in.data)
			e.SHA256 = hex.EncodeToString(s[:])
		}
		out[fixture.Key(p)] = e
		for _, k := range n.children {
			add(path.Join(p, k.name), k)
		}
	}
	add(".", root)
	return out
}

// walk lists an image and reads every file after the walk, as the
// unpacker does.
func walk(t *testing.T, img []byte, lim pipeline.Limits) (map[string]fixture.Entry, error) {
	t.Helper()
	out := map[string]fixture.Entry{}
	opens := map[string]pipeline.OpenFunc{}
	err := squashfs3.Format{}.Walk(context.Background(), bytes.NewReader(img), int64(len(img)), lim, func(h *pipeline.Header, open pipeline.OpenFunc) error {
		k := fixture.Key(h.Name)
		if _, dup := out[k]; dup {
			t.Errorf("%s listed twice", k)
		}
		out[k] = fixture.Entry{Type: h.Type, Mode: h.Mode, UID: h.UID, GID: h.GID, Size: h.Size, Link: h.LinkName,
			Major: h.Major, Minor: h.Minor, Identity: h.Identity}
		if h.Type == pipeline.TypeFile {
			// A file is located, not given a closure and a block list
			// that would stay in memory until it is read.
			if open != nil || h.OpenAt == nil {
				t.Errorf("%s: the walk passes a file's OpenFunc rather than its OpenAt and Locator", k)
			}
			open := h.Opener(open)
			if open == nil {
				t.Errorf("%s: file without an OpenFunc", k)
				return nil
			}
			if (h.Identity == 0) != (k != "bin/busybox" && k != "bin/login") {
				t.Errorf("%s: Identity %d, want one for the hard links only", k, h.Identity)
			}
			opens[k] = open
		}
		return nil
	})
	for k, open := range opens {
		rc, err := open(context.Background())
		if err != nil {
			t.Fatalf("opening %s: %v", k, err)
		}
		h := sha256.New()
		if _, err := io.Copy(h, rc); err != nil {
			t.Errorf("reading %s: %v", k, err)
		}
		rc.Close()
		e := out[k]
		e.SHA256 = hex.EncodeToString(h.Sum(nil))
		out[k] = e
	}
	return out, err
}

// TestWalk: every variant gives the tree it was built from, entry for
// entry, with the hard link sharing its file's Identity.
func TestWalk(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			tree := testTree()
			img := buildImage(t, tree, v.opts)
			f := squashfs3.Format{}
			if !f.Match(img[:pipeline.MatchSize]) {
				t.Fatal("Match refuses the image")
			}
			span, err := f.Span(bytes.NewReader(img), int64(len(img)))
			if err != nil || span != int64(len(img)) {
				t.Errorf("Span = %d, %v; want %d", span, err, len(img))
			}
			got, err := walk(t, img, pipeline.DefaultLimits())
			if err != nil {
				t.Fatal(err)
			}
			fixture.CompareTrees(t, got, want(tree))
			if a, b := got["bin/busybox"].Identity, got["bin/login"].Identity; a != b || a == 0 {
				t.Errorf("hard link identities %d and %d, want one", a, b)
			}
			if a, b := got["bin/busybox"].Identity, got["etc/passwd"].Identity; a == b {
				t.Errorf("two inodes share identity %d", a)
			}
			comp := "gzip"
			switch {
			case v.opts.lzma:
				comp = "lzma"
			case v.opts.ddwrt:
				comp = "lzma (dd-wrt)"
			}
			si, err := squashfs3.Open(bytes.NewReader(img), int64(len(img)))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := walkImage(si); err != nil {
				t.Fatal(err)
			}
			if d := si.Describe(); !strings.Contains(d, comp) {
				t.Errorf("Describe() = %q, want it to name %s", d, comp)
			}
		})
	}
}

func walkImage(img *squashfs3.Image) (int, error) {
	n := 0
	err := img.Walk(context.Background(), pipeline.DefaultLimits(), func(*pipeline.Header, pipeline.OpenFunc) error { n++; return nil })
	return n, err
}

// TestReadAt: files read at random offsets give the bytes read front to
// back, across blocks, holes and fragment tails.
func TestReadAt(t *testing.T) {
	tree := testTree()
	img := buildImage(t, tree, imageOpts{be: true, ddwrt: true, magic: "tqsh"})
	files := map[string][]byte{"bin/busybox": tree.children[0].children[0].data, "usr/sparse.img": tree.children[4].children[0].data}
	err := squashfs3.Format{}.Walk(context.Background(), bytes.NewReader(img), int64(len(img)), pipeline.DefaultLimits(), func(h *pipeline.Header, open pipeline.OpenFunc) error {
		data, ok := files[fixture.Key(h.Name)]
		if !ok {
			return nil
		}
		rc, err := h.Opener(open)(context.Background())
		if err != nil {
			return err
		}
		defer rc.Close()
		ra := rc.(fixture.SizedReaderAt)
		fixture.CheckReadAt(t, h.Name, ra, data, newRand(), 200, 100000)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestUnsquashfs: Debian's unsquashfs reads standard 3.x images, so the
// gzip images of either byte order must unpack to what Walk lists: every
// path, type, mode, owner, size, target, device and SHA-256.
func TestUnsquashfs(t *testing.T) {
	bin, err := exec.LookPath("unsquashfs")
	if err != nil {
		t.Skip("unsquashfs is not installed")
	}
	for _, v := range variants {
		if v.opts.lzma || v.opts.ddwrt || v.opts.magic != "" {
			continue // Debian's unsquashfs reads only zlib under the standard magics
		}
		t.Run(v.name, func(t *testing.T) {
			dir := t.TempDir()
			img := filepath.Join(dir, "img.sqfs")
			data := buildImage(t, testTree(), v.opts)
			if err := os.WriteFile(img, data, 0o644); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(dir, "root")
			cmd := exec.Command(bin, "-d", out, "-no-xattrs", img)
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("unsquashfs: %v\n%s", err, b)
			}
			ref := fixture.SourceTree(t, out)
			got, err := walk(t, data, pipeline.DefaultLimits())
			if err != nil {
				t.Fatal(err)
			}
			if os.Geteuid() != 0 {
				// Without root unsquashfs neither makes nodes nor gives files away.
				for k, e := range got {
					switch e.Type {
					case pipeline.TypeBlock, pipeline.TypeChar:
						delete(got, k)
					default:
						e.UID, e.GID = ref[k].UID, ref[k].GID
						got[k] = e
					}
				}
			}
			fixture.CompareTrees(t, got, ref)
			if got["bin/busybox"].Identity != got["bin/login"].Identity || ref["bin/busybox"].Identity != ref["bin/login"].Identity {
				t.Error("bin/login is not a hard link of bin/busybox on both sides")
			}
		})
	}
}

// patch returns a copy of img with its 16-bit version fields set.
func patch(img []byte, be bool, major, minor uint16) []byte {
	b := bytes.Clone(img)
	var o binary.ByteOrder = binary.LittleEndian
	if be {
		o = binary.BigEndian
	}
	o.PutUint16(b[28:], major)
	o.PutUint16(b[30:], minor)
	return b
}

// TestUnsupported: a squashfs of another version is recognised, and its
// walk fails naming the version, byte order and magic, never as an
// unknown format or a clean empty image.
func TestUnsupported(t *testing.T) {
	le := buildImage(t, testTree(), imageOpts{})
	be := buildImage(t, testTree(), imageOpts{be: true, ddwrt: true, magic: "tqsh"})
	cases := []struct {
		name  string
		img   []byte
		match bool
		err   string
	}{
		{"2.1 le", patch(le, false, 2, 1), true, "squashfs version 2.1 (little-endian, magic hsqs) is not supported"},
		{"1.0 be", patch(be, true, 1, 0), true, "squashfs version 1.0 (big-endian, magic tqsh) is not supported"},
		{"3.2 le", patch(le, false, 3, 2), true, "squashfs version 3.2 (little-endian, magic hsqs) is not supported"},
		{"4.0 tqsh", patch(be, true, 4, 0), true, "squashfs version 4.0 (big-endian, magic tqsh) is not supported"},
		// The squashfs package reads standard little-endian 4.0.
		{"4.0 hsqs", patch(le, false, 4, 0), false, ""},
		{"5.0 le", patch(le, false, 5, 0), false, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := squashfs3.Format{}
			if got := f.Match(tc.img[:pipeline.MatchSize]); got != tc.match {
				t.Fatalf("Match = %v, want %v", got, tc.match)
			}
			if !tc.match {
				return
			}
			if _, err := f.Span(bytes.NewReader(tc.img), int64(len(tc.img))); err != nil {
				t.Errorf("Span: %v", err)
			}
			_, err := walk(t, tc.img, pipeline.DefaultLimits())
			if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, squashfs3.ErrUnsupported) {
				t.Errorf("Walk error %v, want %q", err, tc.err)
			}
		})
	}
}

// TestCorrupt: damaged images end in an error that says so.
func TestCorrupt(t *testing.T) {
	img := buildImage(t, testTree(), imageOpts{be: true})
	used := int64(binary.BigEndian.Uint64(img[63:]))
	cases := []struct {
		name string
		img  []byte
	}{
		{"truncated", img[:used/2]},
		{"bad block size", func() []byte { b := bytes.Clone(img); binary.BigEndian.PutUint32(b[51:], 3000); return b }()},
		{"inode table past end", func() []byte { b := bytes.Clone(img); binary.BigEndian.PutUint64(b[87:], uint64(used)); return b }()},
		{"root inode outside", func() []byte { b := bytes.Clone(img); binary.BigEndian.PutUint64(b[43:], 1<<40); return b }()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := walk(t, tc.img, pipeline.DefaultLimits())
			if !errors.Is(err, squashfs3.ErrCorrupt) {
				t.Errorf("Walk error %v, want a corrupt squashfs", err)
			}
		})
	}
}

// TestHeaderlessLZMA: blocks that are neither zlib nor LZMA with its
// 13-byte header (a vendor's headerless LZMA) fail as unsupported, naming
// the image.
func TestHeaderlessLZMA(t *testing.T) {
	img := buildImage(t, testTree(), imageOpts{be: true, lzma: true, magic: "tqsh"})
	inodes := binary.BigEndian.Uint64(img[87:])
	if binary.BigEndian.Uint16(img[inodes:])&0x8000 != 0 {
		t.Fatal("the first inode block is stored uncompressed")
	}
	img[inodes+2] = 0xff // no properties byte is this large, no zlib header starts so
	_, err := walk(t, img, pipeline.DefaultLimits())
	const msg = "squashfs version 3.0 (big-endian, magic tqsh)"
	if !errors.Is(err, squashfs3.ErrUnsupported) || !strings.Contains(err.Error(), msg) || !strings.Contains(err.Error(), "headerless") {
		t.Errorf("Walk error %v, want an unsupported %s", err, msg)
	}
}
