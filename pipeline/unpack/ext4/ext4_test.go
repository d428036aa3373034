package ext4_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/fixture"
	"github.com/fwvet/fwvet/pipeline/unpack/ext4"
)

// walkImage lists an image and reads every file after Walk has returned,
// as the unpacker may. Only an inode of several names has an Identity
// (CompareLinks checks them).
func walkImage(t *testing.T, rel string) (map[string]fixture.Entry, error) {
	t.Helper()
	return fixture.WalkArchive(t, ext4.Format{}, rel, pipeline.DefaultLimits())
}

func sum(r io.Reader) (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// withoutLostFound drops the directory mke2fs adds to every image.
func withoutLostFound(m map[string]fixture.Entry) {
	for name := range m {
		if name == "lost+found" || strings.HasPrefix(name, "lost+found/") {
			delete(m, name)
		}
	}
}

// TestWalkMatchesSource: every image of the source tree, whatever its
// block size, descriptor size, mapping or inline data, lists exactly the
// source tree, with modes, owners, sizes, targets, devices, contents and
// hard links.
func TestWalkMatchesSource(t *testing.T) {
	want := fixture.SourceTree(t, fixture.Path(t, "stage/formats"))
	if want["usr/bin/passwd"].Mode != 0o6755 {
		t.Fatalf("source /usr/bin/passwd has mode %04o, the fixture is not what this test expects", want["usr/bin/passwd"].Mode)
	}
	for _, img := range []string{"fw/ext4-ext2.img", "fw/ext4-ext3.img", "fw/ext4-ext4.img", "fw/ext4-ext4-1k.img", "fw/ext4-inline.img"} {
		t.Run(filepath.Base(img), func(t *testing.T) {
			got, err := walkImage(t, img)
			if err != nil {
				t.Fatal(err)
			}
			if lf, ok := got["lost+found"]; !ok || lf.Type != pipeline.TypeDir {
				t.Errorf("lost+found is not listed as a directory: %v", lf)
			}
			withoutLostFound(got)
			fixture.CompareTrees(t, got, want)
			fixture.CompareLinks(t, got, want)
		})
	}
}

// TestDebugfsAgrees: e2fsprogs' own reader dumps the same files and
// symlinks from the ext4 image, and stats /usr/bin/passwd as setuid and
// setgid root.
func TestDebugfsAgrees(t *testing.T) {
	debugfs := lookDebugfs(t)
	for _, img := range []string{"fw/ext4-ext4.img", "fw/ext4-inline.img", "fw/ext4-misc-ext4.img", "fw/ext4-misc-ext2.img"} {
		t.Run(filepath.Base(img), func(t *testing.T) {
			got, err := walkImage(t, img)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			out, err := exec.Command(debugfs, "-R", "rdump / "+dir, fixture.Path(t, img)).CombinedOutput()
			if err != nil {
				t.Fatalf("debugfs rdump: %v\n%s", err, out)
			}
			dumped := fixture.SourceTree(t, dir)
			n := 0
			for name, d := range dumped {
				if d.Type != pipeline.TypeFile && d.Type != pipeline.TypeSymlink {
					continue
				}
				n++
				g := got[name]
				if g.Type == pipeline.TypeFile && g.Size < 60 && d.Size == 60 {
					// debugfs 1.47.0 dumps all 60 bytes of i_block for a short
					// inline file; the file is its first size bytes.
					d = paddedInline(t, filepath.Join(dir, name), g.Size)
				}
				if g.Type != d.Type || g.SHA256 != d.SHA256 || g.Link != d.Link || g.Size != d.Size {
					t.Errorf("%s: %s\n ours    %v\n debugfs %v", img, name, g, d)
				}
			}
			for name, g := range got {
				if (g.Type == pipeline.TypeFile || g.Type == pipeline.TypeSymlink) && dumped[name].Type != g.Type {
					t.Errorf("%s: %s is a %s debugfs did not dump", img, name, g.Type)
				}
			}
			if n < 3 {
				t.Errorf("debugfs dumped only %d files", n)
			}
		})
	}

	out, err := exec.Command(debugfs, "-R", "stat /usr/bin/passwd", fixture.Path(t, "fw/ext4-ext4.img")).Output()
	if err != nil {
		t.Fatalf("debugfs stat: %v", err)
	}
	m := regexp.MustCompile(`Mode:\s+0?([0-7]+).*\n.*\nUser:\s+(\d+)\s+Group:\s+(\d+).*Size:\s+(\d+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("cannot parse debugfs stat output:\n%s", out)
	}
	got, err := walkImage(t, "fw/ext4-ext4.img")
	if err != nil {
		t.Fatal(err)
	}
	p := got["usr/bin/passwd"]
	mode, _ := strconv.ParseUint(string(m[1]), 8, 32)
	uid, _ := strconv.ParseUint(string(m[2]), 10, 32)
	gid, _ := strconv.ParseUint(string(m[3]), 10, 32)
	size, _ := strconv.ParseInt(string(m[4]), 10, 64)
	if p.Mode != uint32(mode) || p.UID != uint32(uid) || p.GID != uint32(gid) || p.Size != size || mode != 0o6755 {
		t.Errorf("/usr/bin/passwd: ours %v, debugfs mode %04o %d:%d size %d", p, mode, uid, gid, size)
	}
}

// paddedInline reads a file debugfs dumped from i_block as one of size
// bytes, when the rest are zeros.
func paddedInline(t *testing.T, p string, size int64) fixture.Entry {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.ContainsFunc(b[size:], func(r rune) bool { return r != 0 }) {
		return fixture.Entry{Type: pipeline.TypeFile, Size: int64(len(b)), SHA256: "not zero-padded"}
	}
	s := sha256.Sum256(b[:size])
	return fixture.Entry{Type: pipeline.TypeFile, Mode: 0, Size: size, SHA256: hex.EncodeToString(s[:])}
}

func lookDebugfs(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("debugfs"); err == nil {
		return p
	}
	for _, p := range []string{"/usr/sbin/debugfs", "/sbin/debugfs"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatal("debugfs (Debian package e2fsprogs) is not installed")
	return ""
}

// TestHashedDirAndSparse: a directory with a two-level hash index lists its
// 3000 names and nothing from the index blocks; a sparse file reached
// through a triple indirect block, or extents with holes, and a file of 16
// runs (an extent tree with an index level) read back exactly; unwritten
// extents read as zeros.
func TestHashedDirAndSparse(t *testing.T) {
	var names []string
	for i := range 3000 {
		names = append(names, fmt.Sprintf("many/file-%04d-with-a-name-long-enough-to-fill-blocks", i))
	}
	sparse := sha256.New()
	chunk := make([]byte, 1<<20)
	for i := range 80 {
		clear(chunk)
		switch i {
		case 0:
			copy(chunk, "head")
		case 1:
			copy(chunk, "middle")
		case 79:
			copy(chunk[len(chunk)-4:], "tail")
		}
		sparse.Write(chunk)
	}
	holes := make([]byte, 1<<20)
	for i := range 16 {
		copy(holes[i*64<<10:], bytes.Repeat([]byte{byte('A' + i)}, 4096))
	}
	holesSum := sha256.Sum256(holes)
	zeros := sha256.Sum256(make([]byte, 64<<10))
	hello := sha256.Sum256([]byte("hello\n"))
	empty := sha256.Sum256(nil)
	for _, img := range []string{"fw/ext4-misc-ext2.img", "fw/ext4-misc-ext4.img"} {
		t.Run(filepath.Base(img), func(t *testing.T) {
			// The fixture must have what this test is about.
			debugfs := lookDebugfs(t)
			type check struct{ cmd, want string }
			checks := []check{{"htree /many", "Indirect levels: 1"}}
			if strings.HasSuffix(img, "ext4.img") {
				checks = append(checks, check{"ex /holes", " 0/ 1 "}, check{"ex /prealloc", "Uninit"})
			}
			for _, c := range checks {
				out, _ := exec.Command(debugfs, "-R", c.cmd, fixture.Path(t, img)).Output()
				if !strings.Contains(string(out), c.want) {
					t.Fatalf("debugfs %s on %s does not show %q: the fixture lacks what this test checks\n%s", c.cmd, img, c.want, out)
				}
			}
			got, err := walkImage(t, img)
			if err != nil {
				t.Fatal(err)
			}
			withoutLostFound(got)
			want := map[string]string{
				"sparse":   hex.EncodeToString(sparse.Sum(nil)),
				"prealloc": hex.EncodeToString(zeros[:]),
				"holes":    hex.EncodeToString(holesSum[:]),
			}
			for _, n := range names {
				want[n] = hex.EncodeToString(empty[:])
			}
			want[names[42]] = hex.EncodeToString(hello[:])
			for name, sha := range want {
				if g := got[name]; g.Type != pipeline.TypeFile || g.SHA256 != sha {
					t.Errorf("%s: %s: got %v, want a file with sha %.12s", img, name, g, sha)
				}
			}
			for name, g := range got {
				if _, ok := want[name]; !ok && name != "." && name != "many" {
					t.Errorf("%s: unexpected entry %s: %v", img, name, g)
				}
			}
		})
	}
}

// TestReadAtMatchesStream: random reads of a file give the bytes of a
// front-to-back read, across holes, block maps and extents.
func TestReadAtMatchesStream(t *testing.T) {
	for _, img := range []string{"fw/ext4-ext2.img", "fw/ext4-ext4.img", "fw/ext4-inline.img", "fw/ext4-misc-ext2.img", "fw/ext4-misc-ext4.img"} {
		t.Run(filepath.Base(img), func(t *testing.T) {
			fixture.CheckArchiveReadAt(t, ext4.Format{}, img, fixture.ReadAtFiles{MaxFiles: 101, MinFiles: 2, MaxLen: 300000})
		})
	}
}

// TestDamaged: a truncated image, a zeroed group descriptor table and an
// overwritten inode table block end in an error that says what broke.
func TestDamaged(t *testing.T) {
	for _, c := range []struct{ img, want string }{
		{"fw/ext4-truncated.img", "truncated"},
		{"fw/ext4-badgdt.img", "inode table at block 0"},
		{"fw/ext4-badinode.img", "inode"},
	} {
		t.Run(filepath.Base(c.img), func(t *testing.T) {
			_, err := walkImage(t, c.img)
			if err == nil {
				t.Fatal("damaged image read without an error")
			}
			if !errors.Is(err, ext4.ErrCorrupt) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not wrap ErrCorrupt or does not mention %q", err, c.want)
			}
			t.Log(err)
		})
	}
}

// TestSpanAndMatch: the superblock tells the carver where the image ends,
// and Match accepts every image and rejects a short or foreign head.
func TestSpanAndMatch(t *testing.T) {
	for _, img := range []string{"fw/ext4-ext2.img", "fw/ext4-ext3.img", "fw/ext4-ext4.img", "fw/ext4-ext4-1k.img", "fw/ext4-seed.img"} {
		f, size := fixture.Open(t, img)
		// Trailing bytes after the file system, as in a flash dump.
		r := io.MultiReader(io.NewSectionReader(f, 0, size), bytes.NewReader(make([]byte, 4096)))
		all, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		n, err := ext4.Format{}.Span(bytes.NewReader(all), int64(len(all)))
		if err != nil || n != size {
			t.Errorf("%s: Span = %d, %v; want %d", img, n, err, size)
		}
		if !(ext4.Format{}).Match(all[:pipeline.MatchSize]) {
			t.Errorf("%s: Match refuses the image", img)
		}
		if (ext4.Format{}).Match(all[:1100]) {
			t.Errorf("%s: Match accepts a head cut inside the superblock", img)
		}
	}
	if (ext4.Format{}).Match(make([]byte, pipeline.MatchSize)) {
		t.Error("Match accepts zeros")
	}
	f, size := fixture.Open(t, "fw/ext4-truncated.img")
	if _, err := (ext4.Format{}).Span(f, size); err == nil {
		t.Error("Span of a truncated image has no error")
	}
}

// TestSeedImagesAgree: the small tree in extents, a block map, inline data
// and 64 KiB blocks lists the same entries with the same bytes, including a
// setuid file, a fast and a slow symlink and a file partly kept in an
// inline data attribute.
func TestSeedImagesAgree(t *testing.T) {
	want, err := walkImage(t, "fw/ext4-seed.img")
	if err != nil {
		t.Fatal(err)
	}
	if want["bin/tool"].Mode != 0o4755 || want["etc/mid"].Size != 100 || !strings.HasPrefix(want["bin/slow"].Link, "/a/symlink/") {
		t.Fatalf("the seed image is not what this test expects: %v %v %v", want["bin/tool"], want["etc/mid"], want["bin/slow"])
	}
	for _, img := range []string{"fw/ext4-seed-ext2.img", "fw/ext4-seed-inline.img", "fw/ext4-64k.img"} {
		t.Run(filepath.Base(img), func(t *testing.T) {
			got, err := walkImage(t, img)
			if err != nil {
				t.Fatal(err)
			}
			fixture.CompareTrees(t, got, want)
		})
	}
}

// TestConcurrentReads: one file opened from several goroutines at once,
// after Walk has returned, reads the same bytes in each (run with -race).
func TestConcurrentReads(t *testing.T) {
	f, size := fixture.Open(t, "fw/ext4-ext4-1k.img")
	var opens []pipeline.OpenFunc
	err := ext4.Format{}.Walk(context.Background(), f, size, pipeline.DefaultLimits(), func(h *pipeline.Header, open pipeline.OpenFunc) error {
		if h.Size > 100000 && len(opens) < 3 {
			opens = append(opens, h.Opener(open))
		}
		return nil
	})
	if err != nil || len(opens) == 0 {
		t.Fatalf("walk: %v, %d large files", err, len(opens))
	}
	for _, open := range opens {
		sums := make(chan string, 4)
		for range 4 {
			go func() {
				rc, err := open(context.Background())
				if err != nil {
					sums <- err.Error()
					return
				}
				defer rc.Close()
				s, err := sum(rc)
				if err != nil {
					s = err.Error()
				}
				sums <- s
			}()
		}
		first := <-sums
		for range 3 {
			if s := <-sums; s != first {
				t.Errorf("concurrent reads disagree: %s and %s", first, s)
			}
		}
	}
}
