package unpack_test

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/fixture"
	"github.com/fwvet/fwvet/pipeline/unpack"
)

// unpackFile unpacks a fixture with the given limits and returns its tree and
// the work directory the unpacker was given.
func unpackFile(t testing.TB, path string, lim pipeline.Limits) (*pipeline.Tree, string, error) {
	t.Helper()
	return unpackJobs(t, path, lim, 0)
}

// unpackJobs is unpackFile with jobs files hashed and containers opened at
// once (0: one per CPU).
func unpackJobs(t testing.TB, path string, lim pipeline.Limits, jobs int) (*pipeline.Tree, string, error) {
	t.Helper()
	work := t.TempDir()
	u, err := unpack.New(unpack.Options{Limits: lim, WorkDir: work, Jobs: jobs})
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	art := &pipeline.Artifact{Name: filepath.Base(path), Path: path, Size: st.Size(), IsDir: st.IsDir()}
	tree, err := u.Unpack(context.Background(), art)
	if tree != nil {
		t.Cleanup(func() { tree.Close() })
	}
	return tree, work, err
}

// want is what an entry should look like.
type want struct {
	typ        pipeline.EntryType
	mode       uint32
	uid, gid   uint32
	sha256     string
	linkTarget string
}

// stagingTree reads the tree scripts/mkfixtures packed into every baseline
// format, straight from the file system: the oracle the unpacker is held to.
func stagingTree(t *testing.T) map[string]want {
	t.Helper()
	root := fixture.Path(t, "stage/1.0.0")
	out := map[string]want{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			return err
		}
		w := want{mode: st.Mode & 0o7777}
		switch st.Mode & syscall.S_IFMT {
		case syscall.S_IFDIR:
			w.typ = pipeline.TypeDir
		case syscall.S_IFLNK:
			w.typ = pipeline.TypeSymlink
			w.linkTarget, _ = os.Readlink(p)
		case syscall.S_IFREG:
			w.typ = pipeline.TypeFile
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(b)
			w.sha256 = hex.EncodeToString(sum[:])
		default:
			return fmt.Errorf("unexpected file type in staging tree: %s", p)
		}
		out["/"+rel] = w
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func entryWant(e *pipeline.Entry) want {
	return want{typ: e.Type, mode: e.Mode, uid: e.UID, gid: e.GID, sha256: e.SHA256, linkTarget: e.LinkTarget}
}

// TestFormatsMatchTheirSource unpacks the same root file system packed in
// every supported format and compares each entry with the files it was made
// from: type, mode (setuid, setgid and sticky included), owner, contents and
// link targets.
func TestFormatsMatchTheirSource(t *testing.T) {
	src := stagingTree(t)
	// mksquashfs was given pseudo definitions the other formats do not carry.
	squashExtra := map[string]want{
		"/":            {typ: pipeline.TypeDir, mode: 0o755},
		"/dev/console": {typ: pipeline.TypeChar, mode: 0o600},
		"/dev/null":    {typ: pipeline.TypeChar, mode: 0o666},
		"/dev/initctl": {typ: pipeline.TypeFIFO, mode: 0o600},
	}
	squashChanged := map[string]want{"/home/admin": {typ: pipeline.TypeDir, mode: 0o700}}
	tarRoot := map[string]want{"/": {typ: pipeline.TypeDir, mode: src["/etc"].mode}}
	cases := []struct {
		file    string
		formats []string
		extra   map[string]want
		changed map[string]want
	}{
		{"fw/rootfs-1.0.0.sqfs", []string{"squashfs"}, squashExtra, squashChanged},
		{"fw/rootfs-1.0.0-xz.sqfs", []string{"squashfs"}, squashExtra, squashChanged},
		{"fw/rootfs-1.0.0-zstd.sqfs", []string{"squashfs"}, squashExtra, squashChanged},
		{"fw/rootfs-1.0.0-lzo.sqfs", []string{"squashfs"}, squashExtra, squashChanged},
		{"fw/rootfs-1.0.0-lz4.sqfs", []string{"squashfs"}, squashExtra, squashChanged},
		{"fw/rootfs-1.0.0-lzma.sqfs", []string{"squashfs"}, squashExtra, squashChanged},
		{"fw/rootfs-1.0.0-noncomp.sqfs", []string{"squashfs"}, squashExtra, squashChanged},
		{"fw/rootfs-1.0.0-nofrag.sqfs", []string{"squashfs"}, squashExtra, squashChanged},
		{"fw/rootfs-1.0.0.tar", []string{"tar"}, tarRoot, nil},
		{"fw/rootfs-1.0.0.tar.gz", []string{"gzip", "tar"}, tarRoot, nil},
		{"fw/rootfs-1.0.0.tar.xz", []string{"xz", "tar"}, tarRoot, nil},
		{"fw/rootfs-1.0.0.tar.zst", []string{"zstd", "tar"}, tarRoot, nil},
		{"fw/rootfs-1.0.0.tar.bz2", []string{"bzip2", "tar"}, tarRoot, nil},
		{"fw/rootfs-1.0.0.cpio", []string{"cpio"}, tarRoot, nil},
		{"fw/rootfs-1.0.0-odc.cpio", []string{"cpio"}, tarRoot, nil},
		{"fw/rootfs-1.0.0.cpio.gz", []string{"gzip", "cpio"}, tarRoot, nil},
		{"fw/rootfs-1.0.0.zip", []string{"zip"}, nil, nil},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			tree, _, err := unpackFile(t, fixture.Path(t, tc.file), pipeline.DefaultLimits())
			if err != nil {
				t.Fatal(err)
			}
			if len(tree.Problems) > 0 || tree.Incomplete {
				t.Fatalf("problems unpacking a clean image: %+v", tree.Problems)
			}
			if got := tree.Formats[:len(tc.formats)]; fmt.Sprint(got) != fmt.Sprint(tc.formats) {
				t.Errorf("formats = %v, want %v first", tree.Formats, tc.formats)
			}
			expect := map[string]want{}
			for p, w := range src {
				expect[p] = w
			}
			for p, w := range tc.extra {
				expect[p] = w
			}
			for p, w := range tc.changed {
				expect[p] = w
			}
			got := map[string]want{}
			for e := range tree.All() {
				if len(e.Container) != len(tc.formats)+1 {
					continue // inside a nested container (a .gz doc file never is one)
				}
				if _, dup := got[e.Path]; dup {
					t.Errorf("%s listed twice", e.Path)
				}
				got[e.Path] = entryWant(e)
			}
			for p, w := range expect {
				g, ok := got[p]
				switch {
				case !ok:
					t.Errorf("%s missing", p)
				case g != w:
					t.Errorf("%s = %+v, want %+v", p, g, w)
				}
			}
			for p := range got {
				if _, ok := expect[p]; !ok {
					t.Errorf("%s unpacked but not in the source", p)
				}
			}
			// The setuid and sticky bits are the ones pure-Go readers lose.
			if w := got["/usr/bin/passwd"]; w.mode != 0o4755 {
				t.Errorf("/usr/bin/passwd mode %04o, want 4755", w.mode)
			}
			if w := got["/tmp"]; w.mode != 0o1777 {
				t.Errorf("/tmp mode %04o, want 1777", w.mode)
			}
		})
	}
}

// lsEntry is one line of `unsquashfs -lln`.
var lsLine = regexp.MustCompile(`^(\S{10}) (\d+)/(\d+) +(\d+|\d+, *\d+) \S+ \S+ squashfs-root(\S*)(?: -> (.*))?$`)

// TestSquashfsAgreesWithUnsquashfs holds the reader to squashfs-tools: the
// listing of unsquashfs -lln (modes, owners, sizes, devices, link targets)
// and the bytes unsquashfs extracts.
func TestSquashfsAgreesWithUnsquashfs(t *testing.T) {
	for _, img := range []string{"fw/rootfs-1.0.0.sqfs", "fw/rootfs-1.0.0-xz.sqfs", "fw/rootfs-1.0.0-zstd.sqfs", "fw/rootfs-1.0.0-lzo.sqfs",
		"fw/rootfs-1.0.0-lz4.sqfs", "fw/rootfs-1.0.0-lzma.sqfs", "fw/rootfs-1.0.1-setuid.sqfs"} {
		t.Run(img, func(t *testing.T) {
			path := fixture.Path(t, img)
			tree, _, err := unpackFile(t, path, pipeline.DefaultLimits())
			if err != nil {
				t.Fatal(err)
			}
			ours := map[string]*pipeline.Entry{}
			for e := range tree.All() {
				if len(e.Container) == 2 {
					ours[e.Path] = e
				}
			}
			out, err := exec.Command("unsquashfs", "-lln", path).Output()
			if err != nil {
				t.Fatalf("unsquashfs -lln: %v", err)
			}
			n := 0
			sc := bufio.NewScanner(bytes.NewReader(out))
			for sc.Scan() {
				m := lsLine.FindStringSubmatch(sc.Text())
				if m == nil {
					continue
				}
				n++
				p := m[5]
				if p == "" {
					p = "/"
				}
				e := ours[p]
				if e == nil {
					t.Errorf("unsquashfs lists %s, we do not", p)
					continue
				}
				if got := lsMode(e); got != m[1] {
					t.Errorf("%s: mode %s, unsquashfs says %s", p, got, m[1])
				}
				if fmt.Sprintf("%d/%d", e.UID, e.GID) != m[2]+"/"+m[3] {
					t.Errorf("%s: owner %d/%d, unsquashfs says %s/%s", p, e.UID, e.GID, m[2], m[3])
				}
				switch e.Type {
				case pipeline.TypeFile:
					if strconv.FormatInt(e.Size, 10) != m[4] {
						t.Errorf("%s: size %d, unsquashfs says %s", p, e.Size, m[4])
					}
				case pipeline.TypeChar, pipeline.TypeBlock:
					if d := strings.ReplaceAll(m[4], " ", ""); d != fmt.Sprintf("%d,%d", e.Major, e.Minor) {
						t.Errorf("%s: device %d,%d, unsquashfs says %s", p, e.Major, e.Minor, d)
					}
				case pipeline.TypeSymlink:
					if e.LinkTarget != m[6] {
						t.Errorf("%s: target %q, unsquashfs says %q", p, e.LinkTarget, m[6])
					}
				}
			}
			if n == 0 || n != len(ours) {
				t.Errorf("unsquashfs lists %d entries, we have %d", n, len(ours))
			}

			// Contents: extract with unsquashfs and hash every file.
			dir := filepath.Join(t.TempDir(), "x")
			if out, err := exec.Command("unsquashfs", "-no-progress", "-quiet", "-n", "-d", dir, path).CombinedOutput(); err != nil {
				t.Fatalf("unsquashfs: %v\n%s", err, out)
			}
			files := 0
			for p, e := range ours {
				if e.Type != pipeline.TypeFile {
					continue
				}
				b, err := os.ReadFile(filepath.Join(dir, p))
				if err != nil {
					t.Errorf("%s: %v", p, err)
					continue
				}
				sum := sha256.Sum256(b)
				if hex.EncodeToString(sum[:]) != e.SHA256 {
					t.Errorf("%s: sha256 differs from what unsquashfs extracts", p)
				}
				files++
			}
			if files < 100 {
				t.Errorf("only %d files compared", files)
			}
		})
	}
}

// lsMode renders an entry's type and mode as ls -l does.
func lsMode(e *pipeline.Entry) string {
	types := map[pipeline.EntryType]byte{pipeline.TypeFile: '-', pipeline.TypeDir: 'd', pipeline.TypeSymlink: 'l',
		pipeline.TypeChar: 'c', pipeline.TypeBlock: 'b', pipeline.TypeFIFO: 'p', pipeline.TypeSocket: 's'}
	b := []byte{types[e.Type]}
	const rwx = "rwxrwxrwx"
	for i := 0; i < 9; i++ {
		if e.Mode&(1<<(8-i)) != 0 {
			b = append(b, rwx[i])
		} else {
			b = append(b, '-')
		}
	}
	special := func(pos int, bit uint32, set, setNoX byte) {
		if e.Mode&bit != 0 {
			if b[pos] == '-' {
				b[pos] = setNoX
			} else {
				b[pos] = set
			}
		}
	}
	special(3, pipeline.ModeSetuid, 's', 'S')
	special(6, pipeline.ModeSetgid, 's', 'S')
	special(9, pipeline.ModeSticky, 't', 'T')
	return string(b)
}

// TestNestedContainers: a vendor bundle (tar.gz) holding a squashfs is
// unpacked through to the squashfs's files, each with its container chain
// and a key that leaves out the bundle's own name.
func TestNestedContainers(t *testing.T) {
	tree, _, err := unpackFile(t, fixture.Path(t, "fw/bundle-1.0.0.tar.gz"), pipeline.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	var passwd *pipeline.Entry
	for e := range tree.All() {
		if e.Path == "/etc/passwd" {
			passwd = e
		}
	}
	if passwd == nil {
		t.Fatal("/etc/passwd of the nested squashfs not found")
	}
	wantChain := []string{"bundle-1.0.0.tar.gz", "gzip", "tar", "/rootfs.sqfs", "squashfs"}
	if fmt.Sprint(passwd.Container) != fmt.Sprint(wantChain) {
		t.Errorf("container = %q, want %q", passwd.Container, wantChain)
	}
	if passwd.Key != "/rootfs.sqfs\x00/etc/passwd" {
		t.Errorf("key = %q", passwd.Key)
	}
	if tree.Lookup("/kernel.bin") == nil || tree.Lookup("/rootfs.sqfs") == nil {
		t.Error("the bundle's own files are missing")
	}
	// The same passwd as the bare squashfs holds.
	bare, _, err := unpackFile(t, fixture.Path(t, "fw/rootfs-1.0.0.sqfs"), pipeline.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	if got := bare.Lookup("/etc/passwd"); got == nil || got.SHA256 != passwd.SHA256 {
		t.Error("nested /etc/passwd differs from the bare image's")
	}
	// Bytes of a nested entry can be read back lazily.
	rc, err := passwd.Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.HasPrefix(b, []byte("root:x:0:0:")) {
		t.Errorf("reading nested /etc/passwd gave %q", b)
	}
}

// TestHostileInputs: each hostile archive ends in a recorded problem or a
// clear error, never a crash, and nothing is written outside the work
// directory.
func TestHostileInputs(t *testing.T) {
	cases := []struct {
		file string
		// problems: kind and a substring of the reason, per expected problem
		problems   [][2]string
		incomplete bool
		err        string
		// present lists paths that must still be indexed
		present []string
		absent  []string
	}{
		{file: "hostile/dotdot.tar", problems: [][2]string{{"unsafe", `climbs out with ".."`}}, present: []string{"/fine"}},
		{file: "hostile/absolute.tar", problems: [][2]string{{"unsafe", "is absolute"}}, present: []string{"/etc/passwd"}},
		{file: "hostile/symlink-write.tar", problems: [][2]string{{"unsafe", "link-then-write"}}, present: []string{"/link"}, absent: []string{"/link/passwd"}},
		{file: "hostile/hardlink-out.tar", problems: [][2]string{{"unsafe", `climbs out with ".."`}, {"unsafe", "not an earlier regular file"}}, present: []string{"/ok.txt"}, absent: []string{"/shadow", "/passwd"}},
		{file: "hostile/traversal.zip", problems: [][2]string{{"unsafe", `climbs out`}, {"unsafe", `climbs out`}}, present: []string{"/ok.txt"}},
		{file: "hostile/bomb.tar.gz", problems: [][2]string{{"limit", "decompression bomb"}}, incomplete: true},
		{file: "hostile/nest50.tar.gz", problems: [][2]string{{"limit", "nested more than 16 levels"}}},
		{file: "hostile/bomb.gz", problems: [][2]string{{"limit", "decompression bomb"}}, incomplete: true},
		{file: "hostile/unknown.bin", err: "unknown format"},
		{file: "hostile/truncated.sqfs", err: "truncated"},
		{file: "hostile/badtable.sqfs", err: "corrupt squashfs"},
		{file: "hostile/baddata.sqfs", err: "corrupt squashfs"},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			tree, work, err := unpackFile(t, fixture.Path(t, tc.file), pipeline.DefaultLimits())
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error = %v, want one containing %q", err, tc.err)
				}
				if !strings.Contains(err.Error(), filepath.Base(tc.file)) {
					t.Errorf("error %q does not name the input", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(tree.Problems) != len(tc.problems) {
				t.Fatalf("problems = %+v, want %d", tree.Problems, len(tc.problems))
			}
			for i, w := range tc.problems {
				p := tree.Problems[i]
				if string(p.Kind) != w[0] || !strings.Contains(p.Reason, w[1]) {
					t.Errorf("problem %d = %s %q, want %s containing %q", i, p.Kind, p.Reason, w[0], w[1])
				}
			}
			if tree.Incomplete != tc.incomplete {
				t.Errorf("incomplete = %v, want %v", tree.Incomplete, tc.incomplete)
			}
			for _, p := range tc.present {
				if tree.Lookup(p) == nil {
					t.Errorf("%s should still be indexed", p)
				}
			}
			for _, p := range tc.absent {
				if tree.Lookup(p) != nil {
					t.Errorf("%s should have been refused", p)
				}
			}
			// The unpacker writes nothing but spills, all inside its work dir.
			tree.Close()
			if ents, _ := os.ReadDir(work); len(ents) != 0 {
				t.Errorf("work directory still holds %d files after Close", len(ents))
			}
		})
	}
	if _, err := os.Stat("/tmp/fwvet-zip-escape"); err == nil {
		t.Error("/tmp/fwvet-zip-escape exists: something wrote outside the work directory")
	}
}

// TestLimits: every named limit stops what it bounds and says which limit.
func TestLimits(t *testing.T) {
	img := fixture.Path(t, "fw/rootfs-1.0.0.sqfs")
	cases := []struct {
		name, spec string
		file       string
		incomplete bool
	}{
		{"entries", "max-entries=50", img, true},
		{"total bytes", "max-total-bytes=1MiB", img, true},
		{"file size", "max-file-size=64KiB", img, false},
		{"path length", "max-path-length=20", img, false},
		{"depth", "max-depth=1", fixture.Path(t, "fw/bundle-1.0.0.tar.gz"), false},
		{"ratio", "max-ratio=2", fixture.Path(t, "fw/rootfs-1.0.0.tar.gz"), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			lim := pipeline.DefaultLimits()
			lim.RatioMinBytes = 1 << 20
			if err := lim.Set(tc.spec); err != nil {
				t.Fatal(err)
			}
			name, _, _ := strings.Cut(tc.spec, "=")
			tree, _, err := unpackFile(t, tc.file, lim)
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, p := range tree.Problems {
				if p.Kind == pipeline.ProblemLimit && p.Limit == name {
					found = true
				}
			}
			if !found {
				t.Errorf("no %s problem among %+v", name, tree.Problems)
			}
			if tree.Incomplete != tc.incomplete {
				t.Errorf("incomplete = %v, want %v", tree.Incomplete, tc.incomplete)
			}
		})
	}
}

// TestDirectoryTree indexes an unpacked tree on disk, and never follows a
// symlink out of it.
func TestDirectoryTree(t *testing.T) {
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "etc"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "etc", "passwd"), []byte("root:x:0:0::/root:/bin/sh\n"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "su"), []byte("binary"), 0o755))
	must(syscall.Chmod(filepath.Join(dir, "su"), 0o4755))
	must(os.Symlink("/etc/shadow", filepath.Join(dir, "escape")))
	tree, _, err := unpackFile(t, dir, pipeline.DefaultLimits())
	must(err)
	if e := tree.Lookup("/su"); e == nil || e.Mode != 0o4755 {
		t.Errorf("/su = %+v, want mode 4755", e)
	}
	if e := tree.Lookup("/escape"); e == nil || e.Type != pipeline.TypeSymlink || e.LinkTarget != "/etc/shadow" {
		t.Errorf("/escape = %+v, want a symlink to /etc/shadow, recorded not followed", e)
	}
	if e := tree.Lookup("/etc/passwd"); e == nil || e.SHA256 == "" {
		t.Errorf("/etc/passwd = %+v", e)
	}
	if !strings.HasPrefix(tree.Digest(), "sha256:") {
		t.Errorf("digest %q", tree.Digest())
	}
}

// TestExtract writes a tree to disk without setuid bits, device nodes or
// anything outside the target, and refuses a non-empty target.
func TestExtract(t *testing.T) {
	tree, _, err := unpackFile(t, fixture.Path(t, "fw/bundle-1.0.1.tar.gz"), pipeline.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	st, err := unpack.Extract(context.Background(), tree, out)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(filepath.Join(out, "rootfs.sqfs.d", "usr", "bin", "passwd"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&(fs.ModeSetuid|fs.ModeSetgid) != 0 {
		t.Errorf("extracted passwd has mode %v: setuid must not be applied", fi.Mode())
	}
	if len(st.Stripped) == 0 || len(st.Nodes) != 3 {
		t.Errorf("stripped %v, nodes %v", st.Stripped, st.Nodes)
	}
	if target, err := os.Readlink(filepath.Join(out, "rootfs.sqfs.d", "bin", "sh")); err != nil || target != "busybox" {
		t.Errorf("bin/sh -> %q (%v)", target, err)
	}
	if _, err := os.Lstat(filepath.Join(out, "rootfs.sqfs.d", "dev", "console")); err == nil {
		t.Error("a device node was created")
	}
	if _, err := unpack.Extract(context.Background(), tree, out); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("extracting into a non-empty directory: %v", err)
	}
}

// TestExtractWhileReading: files written as they are read (Options.Sink,
// without hashing, as fwvet unpack does) give the tree unsquashfs extracts:
// the same files, bytes and symlinks, and a hard link of one inode is a
// hard link again, not a second read.
func TestExtractWhileReading(t *testing.T) {
	for _, img := range []string{"fw/tiny-gzip.sqfs", "fw/rootfs-1.0.0.sqfs"} {
		t.Run(img, func(t *testing.T) {
			path := fixture.Path(t, img)
			dir := t.TempDir()
			tree := extractWhileReading(t, path, filepath.Join(dir, "ours"))
			for e := range tree.All() {
				if e.Type == pipeline.TypeFile && (e.SHA256 != "" || !e.Readable()) {
					t.Fatalf("%s: sha256 %q, readable %v: NoHash reads every file and hashes none", e.Path, e.SHA256, e.Readable())
				}
			}
			if out, err := exec.Command("unsquashfs", "-q", "-n", "-d", filepath.Join(dir, "ref"), path).CombinedOutput(); err != nil {
				t.Fatalf("unsquashfs: %v\n%s", err, out)
			}
			ref := map[string]string{}
			filepath.WalkDir(filepath.Join(dir, "ref"), func(p string, d fs.DirEntry, err error) error {
				if err != nil || !(d.Type().IsRegular() || d.Type()&fs.ModeSymlink != 0) {
					return err
				}
				rel, _ := filepath.Rel(filepath.Join(dir, "ref"), p)
				ref[rel] = describeFile(t, p)
				return nil
			})
			var got int
			filepath.WalkDir(filepath.Join(dir, "ours"), func(p string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return err
				}
				rel, _ := filepath.Rel(filepath.Join(dir, "ours"), p)
				got++
				if want, ok := ref[rel]; !ok || want != describeFile(t, p) {
					t.Errorf("%s: %s, unsquashfs: %s", rel, describeFile(t, p), want)
				}
				return nil
			})
			if got != len(ref) {
				t.Errorf("%d files and symlinks written, unsquashfs wrote %d", got, len(ref))
			}
			if img == "fw/tiny-gzip.sqfs" {
				a, _ := os.Stat(filepath.Join(dir, "ours", "etc", "motd"))
				b, _ := os.Stat(filepath.Join(dir, "ours", "etc", "motd.hard"))
				if a == nil || b == nil || !os.SameFile(a, b) {
					t.Error("etc/motd.hard is not a hard link of etc/motd")
				}
			}
		})
	}
}

// extractWhileReading unpacks path into out as fwvet unpack does: each file
// written as it is read, none hashed. The tree stays open for the test.
func extractWhileReading(t *testing.T, path, out string) *pipeline.Tree {
	t.Helper()
	x, err := unpack.NewExtractor(out)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	u, err := unpack.New(unpack.Options{Limits: pipeline.DefaultLimits(), WorkDir: t.TempDir(), Sink: x, NoHash: true})
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	tree, err := u.Unpack(context.Background(), &pipeline.Artifact{Name: filepath.Base(path), Path: path, Size: st.Size()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tree.Close() })
	if _, err := x.Finish(context.Background(), tree); err != nil {
		t.Fatal(err)
	}
	return tree
}

// describeFile is a regular file's SHA-256 or a symlink's target.
func describeFile(t *testing.T, p string) string {
	t.Helper()
	if target, err := os.Readlink(p); err == nil {
		return "-> " + target
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", sha256.Sum256(b))
}

// TestNestedChain: a tar holding a FIT holding a squashfs holding a cpio is
// opened to the bottom, and each file's container chain says where it came
// from, outermost first.
func TestNestedChain(t *testing.T) {
	tree, _, err := unpackFile(t, fixture.Path(t, "fw/nested-update.tar"), pipeline.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	if len(tree.Problems) > 0 {
		t.Errorf("problems: %+v", tree.Problems)
	}
	busybox := fixture.ReadFile(t, "stage/formats/bin/busybox")
	want := map[string]struct {
		chain string
		mode  uint32
	}{
		"/firmware.itb":        {"nested-update.tar tar", 0o644},
		"/images/ramdisk-1":    {"nested-update.tar tar /firmware.itb fit", 0o644},
		"/boot/initramfs.cpio": {"nested-update.tar tar /firmware.itb fit /images/ramdisk-1 squashfs", 0o644},
		"/bin/su":              {"nested-update.tar tar /firmware.itb fit /images/ramdisk-1 squashfs /boot/initramfs.cpio cpio", 0o4755},
	}
	for p, w := range want {
		found := tree.Find(p)
		if len(found) != 1 {
			t.Errorf("%s: %d entries", p, len(found))
			continue
		}
		e := found[0]
		if got := strings.Join(e.Container, " "); got != w.chain || e.Mode != w.mode {
			t.Errorf("%s: chain %q mode %o, want %q %o", p, got, e.Mode, w.chain, w.mode)
		}
	}
	if su := tree.Find("/bin/su"); len(su) == 1 && su[0].SHA256 != fmt.Sprintf("%x", sha256.Sum256(busybox)) {
		t.Error("/bin/su inside the cpio is not the busybox that went in")
	}
	if got := strings.Join(tree.Formats, " "); got != "tar fit squashfs cpio" {
		t.Errorf("formats %q", got)
	}
}

// TestExtractManyDirectories: more directories than the extractor keeps
// open at once are all written, each file in its own.
func TestExtractManyDirectories(t *testing.T) {
	files := map[string]string{}
	for i := range 700 {
		files[fmt.Sprintf("d%03d/sub/f", i)] = fmt.Sprint(i)
	}
	out := filepath.Join(t.TempDir(), "out")
	extractWhileReading(t, fixture.Tar(t, files), out)
	for name, want := range files {
		if got, err := os.ReadFile(filepath.Join(out, name)); err != nil || string(got) != want {
			t.Fatalf("%s: %q, %v", name, got, err)
		}
	}
}

// TestNestedOrderIsStable: damaged and sound containers nested side by side
// are opened concurrently, yet every run gives the same problems in the
// same order (by container, then as met) and the same formats, outer
// first.
func TestNestedOrderIsStable(t *testing.T) {
	sqfs := fixture.ReadFile(t, "fw/rootfs-1.0.0.sqfs")
	files := map[string]string{
		"a/ext4-truncated.img": string(fixture.ReadFile(t, "fw/ext4-truncated.img")),
		"a/jffs2-trunc.img":    string(fixture.ReadFile(t, "fw/jffs2-trunc.img")),
		"b/rootfs.sqfs":        string(sqfs),
		"b/rootfs-cut.sqfs":    string(sqfs[:len(sqfs)*2/3]),
		"c/jffs2-baddata.img":  string(fixture.ReadFile(t, "fw/jffs2-baddata.img")),
		"c/ext4-badinode.img":  string(fixture.ReadFile(t, "fw/ext4-badinode.img")),
		"d/tiny.tar.xz":        string(fixture.ReadFile(t, "fw/tiny.tar.xz")),
	}
	path := fixture.Tar(t, files)
	var first string
	for run := range 8 {
		// More jobs than cores, so that the containers finish in varying order.
		tree, _, err := unpackJobs(t, path, pipeline.DefaultLimits(), 8)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		fmt.Fprintf(&b, "formats %v\n", tree.Formats)
		for i, p := range tree.Problems {
			if i > 0 && slices.Compare(tree.Problems[i-1].Container, p.Container) > 0 {
				t.Errorf("problem %d (%v) comes after one of a later container (%v)", i, p.Container, tree.Problems[i-1].Container)
			}
			fmt.Fprintf(&b, "%s %v %s: %s\n", p.Kind, p.Container, p.Path, p.Reason)
		}
		if run == 0 {
			first = b.String()
			if len(tree.Problems) < 4 || tree.Formats[0] != "tar" {
				t.Fatalf("want a problem per damaged image and tar first:\n%s", first)
			}
			continue
		}
		if got := b.String(); got != first {
			t.Fatalf("run %d differs from run 0:\n%s\nrun 0:\n%s", run, got, first)
		}
	}
}

// TestLimitKeepsEarlierProblems: when a limit on the whole artifact stops
// unpacking, the problems of the nested containers opened before it are
// still in the tree.
func TestLimitKeepsEarlierProblems(t *testing.T) {
	var inner bytes.Buffer
	tw := tar.NewWriter(&inner)
	zeros := make([]byte, 12<<20)
	tw.WriteHeader(&tar.Header{Name: "zeros", Mode: 0o644, Size: int64(len(zeros))})
	tw.Write(zeros)
	tw.Close()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(inner.Bytes())
	zw.Close()
	sqfs := fixture.ReadFile(t, "fw/rootfs-1.0.0.sqfs")
	path := fixture.Tar(t, map[string]string{"a/big.tar.gz": gz.String(), "b/rootfs.sqfs": string(sqfs)})
	lim := pipeline.DefaultLimits()
	// The gzip spills 8 MiB before it is refused; the squashfs's 16 MB of
	// files then pass the total.
	lim.MaxFileSize = 8 << 20
	lim.MaxTotalBytes = int64(len(sqfs)) + 12<<20
	// One job: with more, the squashfs may stop the gzip's spill before it
	// fails on its own.
	tree, _, err := unpackJobs(t, path, lim, 1)
	if err != nil {
		t.Fatal(err)
	}
	var limits []string
	for _, p := range tree.Problems {
		limits = append(limits, p.Limit+" "+p.Path)
	}
	if !tree.Incomplete || !slices.Contains(limits, "max-file-size /a/big.tar.gz") || !slices.Contains(limits, "max-total-bytes /") {
		t.Errorf("incomplete %v, problems %q: want the nested gzip's max-file-size and the artifact's max-total-bytes", tree.Incomplete, limits)
	}
}
