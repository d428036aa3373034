package ext4_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/fixture"
	"github.com/fwvet/fwvet/pipeline/unpack/ext4"
)

// entry is what the tests compare: an image's header and the digest of its
// bytes, or the same read from a directory tree.
type entry struct {
	typ          pipeline.EntryType
	mode         uint32
	uid, gid     uint32
	size         int64
	link         string
	major, minor uint32
	sha          string
	identity     uint64
}

func (e entry) String() string {
	return fmt.Sprintf("%s %04o %d:%d size=%d link=%q dev=%d,%d sha=%.12s", e.typ, e.mode, e.uid, e.gid, e.size, e.link, e.major, e.minor, e.sha)
}

func sum(r io.Reader) (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func open(t *testing.T, rel string) (*os.File, int64) {
	t.Helper()
	f, err := os.Open(fixture.Path(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return f, st.Size()
}

// walkImage lists an image and reads every file after Walk has returned,
// as the unpacker may.
func walkImage(t *testing.T, rel string) (map[string]entry, error) {
	t.Helper()
	f, size := open(t, rel)
	got := map[string]entry{}
	opens := map[string]pipeline.OpenFunc{}
	err := ext4.Format{}.Walk(context.Background(), f, size, pipeline.DefaultLimits(), func(h *pipeline.Header, open pipeline.OpenFunc) error {
		name := "/" + strings.TrimPrefix(h.Name, ".")
		name = filepath.Clean(name)
		if _, dup := got[name]; dup {
			t.Errorf("%s: %s listed twice", rel, name)
		}
		if h.Identity == 0 {
			t.Errorf("%s: %s has no identity", rel, name)
		}
		got[name] = entry{typ: h.Type, mode: h.Mode, uid: h.UID, gid: h.GID, size: h.Size, link: h.LinkName,
			major: h.Major, minor: h.Minor, identity: h.Identity}
		if h.Type == pipeline.TypeFile {
			if open == nil {
				t.Errorf("%s: file %s has no OpenFunc", rel, name)
			}
			opens[name] = open
		}
		return nil
	})
	if err != nil {
		return got, err
	}
	for name, open := range opens {
		rc, err := open(context.Background())
		if err != nil {
			return got, fmt.Errorf("opening %s: %w", name, err)
		}
		s, err := sum(rc)
		rc.Close()
		if err != nil {
			return got, fmt.Errorf("reading %s: %w", name, err)
		}
		e := got[name]
		e.sha = s
		got[name] = e
	}
	return got, nil
}

// sourceTree reads a directory tree as the image should hold it, with the
// inode of each file for hard links.
func sourceTree(t *testing.T, root string) (map[string]entry, map[string]uint64) {
	t.Helper()
	want := map[string]entry{}
	inos := map[string]uint64{}
	err := filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		name := filepath.Clean("/" + rel)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		e := entry{mode: st.Mode & pipeline.ModePerm, uid: st.Uid, gid: st.Gid}
		switch st.Mode & syscall.S_IFMT {
		case syscall.S_IFDIR:
			e.typ = pipeline.TypeDir
		case syscall.S_IFREG:
			e.typ, e.size = pipeline.TypeFile, st.Size
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			e.sha, err = sum(f)
			f.Close()
			if err != nil {
				return err
			}
			inos[name] = st.Ino
		case syscall.S_IFLNK:
			e.typ = pipeline.TypeSymlink
			if e.link, err = os.Readlink(p); err != nil {
				return err
			}
		case syscall.S_IFCHR, syscall.S_IFBLK:
			e.typ = pipeline.TypeChar
			if st.Mode&syscall.S_IFMT == syscall.S_IFBLK {
				e.typ = pipeline.TypeBlock
			}
			e.major, e.minor = uint32(st.Rdev>>8&0xfff), uint32(st.Rdev&0xff|st.Rdev>>12&0xfff00)
		case syscall.S_IFIFO:
			e.typ = pipeline.TypeFIFO
		case syscall.S_IFSOCK:
			e.typ = pipeline.TypeSocket
		}
		want[name] = e
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return want, inos
}

// withoutLostFound drops the directory mke2fs adds to every image.
func withoutLostFound(m map[string]entry) {
	for name := range m {
		if name == "/lost+found" || strings.HasPrefix(name, "/lost+found/") {
			delete(m, name)
		}
	}
}

func compareTrees(t *testing.T, img string, got, want map[string]entry) {
	t.Helper()
	for name, w := range want {
		g, ok := got[name]
		if !ok {
			t.Errorf("%s: %s is missing", img, name)
			continue
		}
		g.identity = 0
		if g != w {
			t.Errorf("%s: %s\n got %v\nwant %v", img, name, g, w)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("%s: %s is not in the source tree", img, name)
		}
	}
}

// TestWalkMatchesSource: every image of the source tree, whatever its
// block size, descriptor size, mapping or inline data, lists exactly the
// source tree, with modes, owners, sizes, targets, devices, contents and
// hard links.
func TestWalkMatchesSource(t *testing.T) {
	src := fixture.Path(t, "stage/formats")
	want, inos := sourceTree(t, src)
	if want["/usr/bin/passwd"].mode != 0o6755 {
		t.Fatalf("source /usr/bin/passwd has mode %04o, the fixture is not what this test expects", want["/usr/bin/passwd"].mode)
	}
	for _, img := range []string{"fw/ext4-ext2.img", "fw/ext4-ext3.img", "fw/ext4-ext4.img", "fw/ext4-ext4-1k.img", "fw/ext4-inline.img"} {
		t.Run(filepath.Base(img), func(t *testing.T) {
			got, err := walkImage(t, img)
			if err != nil {
				t.Fatal(err)
			}
			if lf, ok := got["/lost+found"]; !ok || lf.typ != pipeline.TypeDir {
				t.Errorf("lost+found is not listed as a directory: %v", lf)
			}
			withoutLostFound(got)
			compareTrees(t, img, got, want)
			// Files that share a source inode share an Identity, and only they.
			byIno := map[uint64]uint64{}
			byID := map[uint64]uint64{}
			links := 0
			for name, ino := range inos {
				id := got[name].identity
				if prev, ok := byIno[ino]; ok {
					links++
					if prev != id {
						t.Errorf("%s: hard link %s has identity %d, its other name %d", img, name, id, prev)
					}
				} else if other, ok := byID[id]; ok && other != ino {
					t.Errorf("%s: %s shares identity %d with a different file", img, name, id)
				}
				byIno[ino], byID[id] = id, ino
			}
			if links == 0 {
				t.Error("the source tree has no hard links to check")
			}
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
			dumped, _ := sourceTree(t, dir)
			n := 0
			for name, d := range dumped {
				if d.typ != pipeline.TypeFile && d.typ != pipeline.TypeSymlink {
					continue
				}
				n++
				g := got[name]
				if g.typ == pipeline.TypeFile && g.size < 60 && d.size == 60 {
					// debugfs 1.47.0 dumps all 60 bytes of i_block for a short
					// inline file; the file is its first size bytes.
					d = paddedInline(t, filepath.Join(dir, name), g.size)
				}
				if g.typ != d.typ || g.sha != d.sha || g.link != d.link || g.size != d.size {
					t.Errorf("%s: %s\n ours    %v\n debugfs %v", img, name, g, d)
				}
			}
			for name, g := range got {
				if (g.typ == pipeline.TypeFile || g.typ == pipeline.TypeSymlink) && dumped[name].typ != g.typ {
					t.Errorf("%s: %s is a %s debugfs did not dump", img, name, g.typ)
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
	p := got["/usr/bin/passwd"]
	mode, _ := strconv.ParseUint(string(m[1]), 8, 32)
	uid, _ := strconv.ParseUint(string(m[2]), 10, 32)
	gid, _ := strconv.ParseUint(string(m[3]), 10, 32)
	size, _ := strconv.ParseInt(string(m[4]), 10, 64)
	if p.mode != uint32(mode) || p.uid != uint32(uid) || p.gid != uint32(gid) || p.size != size || mode != 0o6755 {
		t.Errorf("/usr/bin/passwd: ours %v, debugfs mode %04o %d:%d size %d", p, mode, uid, gid, size)
	}
}

// paddedInline reads a file debugfs dumped from i_block as one of size
// bytes, when the rest are zeros.
func paddedInline(t *testing.T, p string, size int64) entry {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.ContainsFunc(b[size:], func(r rune) bool { return r != 0 }) {
		return entry{typ: pipeline.TypeFile, size: int64(len(b)), sha: "not zero-padded"}
	}
	s := sha256.Sum256(b[:size])
	return entry{typ: pipeline.TypeFile, mode: 0, size: size, sha: hex.EncodeToString(s[:])}
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
		names = append(names, fmt.Sprintf("/many/file-%04d-with-a-name-long-enough-to-fill-blocks", i))
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
				"/sparse":   hex.EncodeToString(sparse.Sum(nil)),
				"/prealloc": hex.EncodeToString(zeros[:]),
				"/holes":    hex.EncodeToString(holesSum[:]),
			}
			for _, n := range names {
				want[n] = hex.EncodeToString(empty[:])
			}
			want[names[42]] = hex.EncodeToString(hello[:])
			for name, sha := range want {
				if g := got[name]; g.typ != pipeline.TypeFile || g.sha != sha {
					t.Errorf("%s: %s: got %v, want a file with sha %.12s", img, name, g, sha)
				}
			}
			for name, g := range got {
				if _, ok := want[name]; !ok && name != "/" && name != "/many" {
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
			f, size := open(t, img)
			rng := rand.New(rand.NewSource(1))
			checked := 0
			err := ext4.Format{}.Walk(context.Background(), f, size, pipeline.DefaultLimits(), func(h *pipeline.Header, open pipeline.OpenFunc) error {
				if open == nil || h.Size == 0 || checked > 100 {
					return nil
				}
				rc, err := open(context.Background())
				if err != nil {
					return err
				}
				defer rc.Close()
				want, err := io.ReadAll(rc)
				if err != nil {
					return err
				}
				ra, ok := rc.(interface {
					io.ReaderAt
					Size() int64
				})
				if !ok {
					if h.Size > 160 {
						t.Errorf("%s: a file of %d bytes is not an io.ReaderAt with a Size", h.Name, h.Size)
					}
					return nil
				}
				if ra.Size() != int64(len(want)) {
					t.Errorf("%s: Size %d, read %d bytes", h.Name, ra.Size(), len(want))
				}
				for range 5 {
					off := rng.Int63n(int64(len(want)))
					buf := make([]byte, 1+rng.Intn(300000))
					n, err := ra.ReadAt(buf, off)
					end := min(off+int64(len(buf)), int64(len(want)))
					if int64(n) != end-off || !bytes.Equal(buf[:n], want[off:end]) {
						t.Errorf("%s: ReadAt(%d, %d) gave %d bytes (%v), not the streamed ones", h.Name, len(buf), off, n, err)
					}
					if end < off+int64(len(buf)) && err != io.EOF {
						t.Errorf("%s: ReadAt past the end returned %v, want io.EOF", h.Name, err)
					}
				}
				checked++
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if checked < 2 {
				t.Errorf("only %d files checked", checked)
			}
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
		f, size := open(t, img)
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
	f, size := open(t, "fw/ext4-truncated.img")
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
	for name, e := range want {
		e.identity = 0
		want[name] = e
	}
	if want["/bin/tool"].mode != 0o4755 || want["/etc/mid"].size != 100 || !strings.HasPrefix(want["/bin/slow"].link, "/a/symlink/") {
		t.Fatalf("the seed image is not what this test expects: %v %v %v", want["/bin/tool"], want["/etc/mid"], want["/bin/slow"])
	}
	for _, img := range []string{"fw/ext4-seed-ext2.img", "fw/ext4-seed-inline.img", "fw/ext4-64k.img"} {
		t.Run(filepath.Base(img), func(t *testing.T) {
			got, err := walkImage(t, img)
			if err != nil {
				t.Fatal(err)
			}
			compareTrees(t, img, got, want)
		})
	}
}

// TestConcurrentReads: one file opened from several goroutines at once,
// after Walk has returned, reads the same bytes in each (run with -race).
func TestConcurrentReads(t *testing.T) {
	f, size := open(t, "fw/ext4-ext4-1k.img")
	var opens []pipeline.OpenFunc
	err := ext4.Format{}.Walk(context.Background(), f, size, pipeline.DefaultLimits(), func(h *pipeline.Header, open pipeline.OpenFunc) error {
		if h.Size > 100000 && len(opens) < 3 {
			opens = append(opens, open)
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
