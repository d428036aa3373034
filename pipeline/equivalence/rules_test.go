package equivalence

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"debug/elf"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fwvet/fwvet/pipeline"
)

func in(path string, b []byte) *Input {
	return &Input{Path: path, Data: b, Head: b[:min(len(b), HeadSize)], Size: int64(len(b))}
}

func explain(t *testing.T, r Rule, a, b []byte) Result {
	t.Helper()
	res, err := r.Explain(context.Background(), in("/f", a), in("/f", b))
	if err != nil {
		t.Fatal(err)
	}
	if res.Explained && (res.NormalizedShipped == "" || res.NormalizedShipped != res.NormalizedRebuilt) {
		t.Errorf("%s explained with normalized digests %q and %q", r.ID(), res.NormalizedShipped, res.NormalizedRebuilt)
	}
	return res
}

// selfELF is this test binary: a Go ELF file with a .note.go.buildid.
func selfELF(t *testing.T) []byte {
	exe, err := os.Executable()
	if err != nil {
		t.Skip(err)
	}
	b, err := os.ReadFile(exe)
	if err != nil || !isELF(b) {
		t.Skip("the test binary is not ELF")
	}
	return b
}

func TestELFBuildID(t *testing.T) {
	a := selfELF(t)
	masks, f, err := elfMasks(a)
	if err != nil {
		t.Fatal(err)
	}
	var goID *elfMask
	for i := range masks {
		if masks[i].section == ".note.go.buildid" {
			goID = &masks[i]
		}
	}
	if goID == nil {
		t.Skip("no .note.go.buildid in the test binary")
	}
	b := bytes.Clone(a)
	for i := goID.r[0]; i < goID.r[1]; i++ {
		b[i] ^= 0x20
	}
	res := explain(t, elfBuildID{}, a, b)
	if !res.Explained || len(res.Applied) != 1 || !strings.HasPrefix(res.Applied[0].Before[0], ".note.go.buildid") {
		t.Fatalf("a changed Go build id: %+v", res)
	}
	// One byte of a function's code as well: not explained, and named.
	var fn elf.Symbol
	syms, _ := f.Symbols()
	for _, s := range syms {
		if elf.ST_TYPE(s.Info) == elf.STT_FUNC && s.Size > 16 && strings.HasSuffix(s.Name, "equivalence.diffRanges") {
			fn = s
		}
	}
	text := f.Section(".text")
	off := int64(text.Offset + text.Size/2)
	if fn.Name != "" { // go test strips the symbol table; go test -c keeps it
		s := f.Sections[fn.Section]
		off = int64(s.Offset + fn.Value - s.Addr + 4)
	}
	b[off] ^= 1
	res = explain(t, elfBuildID{}, a, b)
	if res.Explained || !strings.Contains(res.Reason, "outside") {
		t.Fatalf("a changed instruction explained: %+v", res)
	}
	diff, _, _ := diffRanges(a, b, 1<<20)
	secs, fns := elfWhere(a, diff)
	if !slices.Equal(secs, []string{".text"}) {
		t.Errorf("sections %v, want .text only", secs)
	}
	if fn.Name != "" && !slices.Equal(fns, []string{fn.Name}) {
		t.Errorf("functions %v, want %s", fns, fn.Name)
	}
	// Another length: not explained.
	if res := explain(t, elfBuildID{}, a, append(bytes.Clone(a), 0)); res.Explained {
		t.Error("a longer file explained")
	}
	// Not ELF: the rule does not apply.
	if res := explain(t, elfBuildID{}, []byte("abc"), []byte("abd")); res.Explained || res.Reason != "" {
		t.Errorf("text: %+v", res)
	}
}

func gz(t *testing.T, level int, mtime time.Time, name, data string) []byte {
	var b bytes.Buffer
	w, err := gzip.NewWriterLevel(&b, level)
	if err != nil {
		t.Fatal(err)
	}
	w.ModTime, w.Name = mtime, name
	w.Write([]byte(data))
	w.Close()
	return b.Bytes()
}

func TestGzipHeader(t *testing.T) {
	text := strings.Repeat("the quick brown fox jumps over the lazy dog, again and again ", 200)
	t1, t2 := time.Unix(1700000000, 0), time.Unix(1700090000, 0)
	a := gz(t, gzip.BestCompression, t1, "README", text)
	for _, tc := range []struct {
		name string
		b    []byte
		ok   bool
	}{
		{"mtime", gz(t, gzip.BestCompression, t2, "README", text), true},
		{"level", gz(t, gzip.BestSpeed, t2, "README", text), true},
		{"name", gz(t, gzip.BestCompression, t1, "README.old", text), true},
		{"content", gz(t, gzip.BestCompression, t1, "README", text+"!"), false},
		{"truncated", a[:len(a)-20], false},
		{"not gzip", []byte("plain"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := explain(t, gzipHeader{}, a, tc.b)
			if res.Explained != tc.ok {
				t.Fatalf("explained %v, want %v: %+v", res.Explained, tc.ok, res)
			}
			if tc.ok && (len(res.Applied) != 1 || len(res.Applied[0].Before) != len(res.Applied[0].Ranges)) {
				t.Errorf("applied %+v", res.Applied)
			}
		})
	}
	res := explain(t, gzipHeader{}, a, gz(t, gzip.BestCompression, t2, "README", text))
	if !strings.Contains(res.Applied[0].Before[0], "mtime=1700000000") || !strings.Contains(res.Applied[0].After[0], "mtime=1700090000") {
		t.Errorf("decoded %v → %v", res.Applied[0].Before, res.Applied[0].After)
	}
}

func signed(body, sig string) []byte {
	b := []byte(body + sig)
	info := []byte{0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, byte(len(sig))}
	return append(append(b, info...), moduleSigMagic...)
}

func TestModuleSignature(t *testing.T) {
	a := signed("\x7fELF module body", "signature-one")
	if res := explain(t, moduleSignature{}, a, signed("\x7fELF module body", "signature-two!")); !res.Explained {
		t.Errorf("another signature: %+v", res)
	} else if r := res.Applied[0]; r.Ranges[0][0] != int64(len("\x7fELF module body")) || !strings.Contains(r.Before[0], "PKCS#7") {
		t.Errorf("applied %+v", r)
	}
	if res := explain(t, moduleSignature{}, a, signed("\x7fELF module bodY", "signature-one")); res.Explained {
		t.Error("another module explained")
	}
	if res := explain(t, moduleSignature{}, a, []byte("\x7fELF module body")); res.Explained || res.Reason == "" {
		t.Errorf("unsigned: %+v", res)
	}
	// A signature length beyond the file is not a signature.
	bad := append([]byte("x"), 0, 0, 2, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff)
	if _, ok := parseModuleSig(append(bad, moduleSigMagic...)); ok {
		t.Error("a signature longer than the file parsed")
	}
}

func TestBuildDate(t *testing.T) {
	for _, tc := range []struct {
		name, a, b string
		ok         bool
	}{
		{"iso", "BUILD_DATE=2023-11-14T22:13:20Z\n", "BUILD_DATE=2023-11-15T23:13:20Z\n", true},
		{"epoch", "SOURCE_DATE_EPOCH=1700000000\n", "SOURCE_DATE_EPOCH=1700090000\n", true},
		{"date(1)", "Built Tue Nov 14 22:13:20 UTC 2023 ok", "Built Wed Nov 15 23:13:20 UTC 2023 ok", true},
		{"__DATE__ __TIME__", "v1 Nov 14 2023 22:13:20", "v1 Nov 15 2023 09:01:02", true},
		{"rfc2822", "Date: Tue, 14 Nov 2023 22:13:20 +0000", "Date: Wed, 15 Nov 2023 23:13:20 +0000", true},
		{"longer", "at 2023-11-14 then", "at 2023-11-14T10:00:00Z then", false},
		{"text too", "BUILD_DATE=2023-11-14 a\n", "BUILD_DATE=2023-11-15 b\n", false},
		{"outside window", "BUILD_DATE=2023-11-14\n", "BUILD_DATE=1971-01-01\n", false},
		{"in the future", "BUILD_DATE=2023-11-14\n", "BUILD_DATE=2999-01-01\n", false},
		{"a number", "port=1700000000\n", "port=1700000001\n", false},
		{"build time epoch", "build_time: 1700000000\n", "build_time: 1700090000\n", true},
		{"timeout epoch", "timeout: 1700000000\n", "timeout: 1700090000\n", false},
		{"not a date", "limit=4096\n", "limit=8192\n", false},
		{"a duration", "timeout=00:00:30\n", "timeout=00:10:00\n", false},
		{"build time", "BUILD_TIME=22:13:20\n", "BUILD_TIME=23:13:20\n", true},
		{"binary", "2023-11-14\x00", "2023-11-15\x00", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := explain(t, buildDate{}, []byte(tc.a), []byte(tc.b))
			if res.Explained != tc.ok {
				t.Fatalf("explained %v, want %v: %+v", res.Explained, tc.ok, res)
			}
			if tc.ok && len(res.Applied[0].Before) == 0 {
				t.Errorf("no decoded dates: %+v", res.Applied)
			}
		})
	}
}

func TestBuildPath(t *testing.T) {
	a := "builddir=/build/a-1.2.3\nCflags: -I/build/a-1.2.3/include\nLibs: -L/build/a-1.2.3/lib\n"
	for _, tc := range []struct {
		name, b string
		ok      bool
	}{
		{"moved", "builddir=/home/ci/work\nCflags: -I/home/ci/work/include\nLibs: -L/home/ci/work/lib\n", true},
		{"inconsistent", "builddir=/home/ci/work\nCflags: -I/home/ci/other/include\nLibs: -L/home/ci/work/lib\n", false},
		{"and more", "builddir=/home/ci/work\nCflags: -I/home/ci/work/include\nLibs: -L/home/ci/work/lib -lz\n", false},
		{"relative", "builddir=build/a-1.2.4\nCflags: -Ibuild/a-1.2.4/include\nLibs: -Lbuild/a-1.2.4/lib\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := explain(t, buildPath{}, []byte(a), []byte(tc.b))
			if res.Explained != tc.ok {
				t.Fatalf("explained %v, want %v: %+v", res.Explained, tc.ok, res)
			}
			if tc.ok && (len(res.Applied[0].Ranges) != 3 || res.Applied[0].Before[0] != "/build/a-1.2.3" || res.Applied[0].After[0] != "/home/ci/work") {
				t.Errorf("applied %+v", res.Applied[0])
			}
		})
	}
}

// TestComposedRules: a generated header that holds both a build date and a
// build path is explained by the two rules together, which neither does
// alone; one byte more that differs leaves it unexplained.
func TestComposedRules(t *testing.T) {
	a := "/* generated 2026-03-01 10:00:00 in /build/fw-1.0.1 */\n#define FW_SRC \"/build/fw-1.0.1/src\"\n#define FW_PORT 8080\n"
	for _, tc := range []struct {
		name, b string
		ok      bool
	}{
		{"date and path", "/* generated 2026-03-02 17:30:12 in /home/ci/fw */\n#define FW_SRC \"/home/ci/fw/src\"\n#define FW_PORT 8080\n", true},
		{"date, path and a constant", "/* generated 2026-03-02 17:30:12 in /home/ci/fw */\n#define FW_SRC \"/home/ci/fw/src\"\n#define FW_PORT 8081\n", false},
		{"date outside the window", "/* generated 1971-03-02 17:30:12 in /home/ci/fw */\n#define FW_SRC \"/home/ci/fw/src\"\n#define FW_PORT 8080\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, r := in("/include/fw/version.h", []byte(a)), in("/include/fw/version.h", []byte(tc.b))
			for _, rule := range []Rule{buildDate{}, buildPath{}} {
				if res := explain(t, rule, s.Data, r.Data); res.Explained {
					t.Fatalf("%s alone explains it: %+v", rule.ID(), res)
				}
			}
			res, ok := compose(Rules(), s, r)
			if ok != tc.ok {
				t.Fatalf("composed: explained %v, want %v: %+v", ok, tc.ok, res)
			}
			if !ok {
				return
			}
			if len(res.Applied) != 2 || res.Applied[0].ID != "build-date" || res.Applied[1].ID != "build-path" || res.NormalizedShipped != res.NormalizedRebuilt {
				t.Fatalf("applied %+v", res)
			}
			// The evidence is in the files' own offsets.
			for _, ap := range res.Applied {
				for i, rg := range ap.Ranges {
					if got := a[rg[0]:rg[1]]; got != ap.Before[i] {
						t.Errorf("%s range %v holds %q, evidence says %q", ap.ID, rg, got, ap.Before[i])
					}
				}
			}
			if d := res.Applied[0]; d.Before[0] != "2026-03-01 10:00:00" || d.After[0] != "2026-03-02 17:30:12" {
				t.Errorf("build-date evidence %+v", d)
			}
			if p := res.Applied[1]; len(p.Ranges) != 2 || p.Before[0] != "/build/fw-1.0.1" || p.After[0] != "/home/ci/fw" {
				t.Errorf("build-path evidence %+v", p)
			}
		})
	}
}

func TestContainerMetadata(t *testing.T) {
	sq := func(mkfs uint32) *Input {
		h := make([]byte, 4096)
		copy(h, "hsqs")
		binary.LittleEndian.PutUint32(h[8:], mkfs)
		binary.LittleEndian.PutUint64(h[40:], 3000)
		in := streamed(h)
		in.Path, in.Container, in.ChildrenMatch, in.ChildrenDigest = "/rootfs.sqfs", "squashfs", true, "sha256:x"
		return in
	}
	a, b := sq(1700000000), sq(1700090000)
	res, _ := containerMetadata{}.Explain(context.Background(), a, b)
	if !res.Explained || !strings.Contains(res.Applied[0].Before[0], "mkfs_time 2023-11-14") {
		t.Fatalf("%+v", res)
	}
	// Data after the file system's end is no metadata.
	c := sq(1700090000)
	img := make([]byte, 4096)
	c.Open(context.Background())
	copy(img, c.Head)
	copy(img[3500:], "payload")
	c = streamed(img)
	c.Path, c.Container, c.ChildrenMatch, c.ChildrenDigest = "/rootfs.sqfs", "squashfs", true, "sha256:x"
	if res, _ := (containerMetadata{}).Explain(context.Background(), a, c); res.Explained || !strings.Contains(res.Reason, "end of the squashfs") {
		t.Errorf("appended data: %+v", res)
	}
	b.ChildrenMatch, b.ChildrenReason = false, "1 entries in it are not identical or explained"
	if res, _ := (containerMetadata{}).Explain(context.Background(), a, b); res.Explained {
		t.Error("explained with a child that differs")
	}
	b = sq(1)
	b.Container = "cpio"
	if res, _ := (containerMetadata{}).Explain(context.Background(), a, b); res.Explained {
		t.Error("explained another format")
	}
	if res, _ := (containerMetadata{}).Explain(context.Background(), in("/a", []byte("a")), in("/a", []byte("b"))); res.Explained || res.Reason != "" {
		t.Error("applied to a plain file")
	}
}

// TestVerifyExtent: what follows an archive's or a stream's end must be padding.
func TestVerifyExtent(t *testing.T) {
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	tw.WriteHeader(&tar.Header{Name: "x", Mode: 0o644, Size: 2})
	tw.Write([]byte("hi"))
	tw.Close()
	tarb := tb.Bytes()
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	zw.Write(tarb)
	zw.Close()
	cpio := []byte("070701" + strings.Repeat("0", 8*11) + "0000000B" + "00000000" + "TRAILER!!!\x00" + "\x00\x00\x00")
	for _, tc := range []struct {
		name, formats string
		b             []byte
		ok            bool
	}{
		{"tar", "tar", tarb, true},
		{"tar padded", "tar", append(bytes.Clone(tarb), make([]byte, 10240)...), true},
		{"tar payload", "tar", append(bytes.Clone(tarb), "EVIL"...), false},
		{"gzip tar", "gzip tar", zb.Bytes(), true},
		{"gzip tar payload", "gzip tar", append(bytes.Clone(zb.Bytes()), "EVIL"...), false},
		{"gzip twice", "gzip tar", append(bytes.Clone(zb.Bytes()), zb.Bytes()...), false},
		{"cpio", "cpio", cpio, true},
		{"cpio payload", "cpio", append(bytes.Clone(cpio), "EVIL"...), false},
		{"zip", "zip", []byte("PK"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := verifyExtent(context.Background(), streamed(tc.b).Open, tc.formats)
			if (err == nil) != tc.ok {
				t.Errorf("err %v, want ok %v", err, tc.ok)
			}
		})
	}
}

func TestDiffRanges(t *testing.T) {
	rs, trunc, n := diffRanges([]byte("abcdefgh"), []byte("aXcdYYgh!!"), 8)
	want := [][2]int64{{1, 2}, {4, 6}, {8, 10}}
	if !slices.Equal(rs, want) || trunc || n != 3 {
		t.Errorf("ranges %v truncated %v n %d", rs, trunc, n)
	}
	if rs, trunc, _ := diffRanges([]byte("aaaa"), []byte("abab"), 1); len(rs) != 1 || !trunc {
		t.Errorf("capped: %v %v", rs, trunc)
	}
}

func TestRulesDigest(t *testing.T) {
	rs := Rules()
	d := RulesDigest(rs)
	slices.Reverse(rs)
	if RulesDigest(rs) != d || !strings.HasPrefix(d, "sha256:") {
		t.Errorf("digest depends on order: %s", d)
	}
	seen := map[string]bool{}
	for _, r := range Rules() {
		if seen[r.ID()] || r.Version() == "" || r.Description() == "" {
			t.Errorf("rule %q: duplicate or undescribed", r.ID())
		}
		seen[r.ID()] = true
	}
}

// FuzzRules runs every rule over arbitrary pairs: no panics, and an
// explanation always comes with equal normalized digests.
func FuzzRules(f *testing.F) {
	// Bounded work, but a gzip bomb up to the default bound is slow to fuzz.
	defer func(n int64) { MaxGzipBytes = n }(MaxGzipBytes)
	MaxGzipBytes = 1 << 20
	f.Add([]byte("BUILD_DATE=2023-11-14\n"), []byte("BUILD_DATE=2023-11-15\n"))
	f.Add(signed("\x7fELF", "a"), signed("\x7fELF", "bb"))
	var g bytes.Buffer
	w := gzip.NewWriter(&g)
	w.Write([]byte("hello"))
	w.Close()
	f.Add(g.Bytes(), append(bytes.Clone(g.Bytes()[:4]), g.Bytes()[4:]...))
	f.Add([]byte("\x7fELF\x01\x01\x01\x00"), []byte("\x7fELF\x02\x01\x01\x00"))
	f.Add([]byte("dir=/build/a/x /build/a"), []byte("dir=/home/b/x /home/b"))
	f.Add([]byte("070701"+strings.Repeat("0", 88)+"0000000B00000000TRAILER!!!\x00"), []byte("hsqs"))
	mkzip := func(mod time.Time) []byte {
		var z bytes.Buffer
		zw := zip.NewWriter(&z)
		w, _ := zw.CreateHeader(&zip.FileHeader{Name: "www/index.html", Method: zip.Deflate, Modified: mod})
		w.Write([]byte("<html></html>"))
		zw.Close()
		return z.Bytes()
	}
	f.Add(mkzip(time.Unix(1700000000, 0)), mkzip(time.Unix(1700090000, 0)))
	e4 := make([]byte, 8192) // a superblock and one group of 16 inodes
	le := binary.LittleEndian
	le.PutUint32(e4[1024+0x04:], 8)    // blocks
	le.PutUint32(e4[1024+0x14:], 1)    // first data block
	le.PutUint32(e4[1024+0x20:], 8192) // blocks per group
	le.PutUint32(e4[1024+0x28:], 16)   // inodes per group
	le.PutUint16(e4[1024+0x38:], 0xef53)
	le.PutUint32(e4[1024+0x4c:], 1)   // dynamic revision
	le.PutUint16(e4[1024+0x58:], 128) // inode size
	le.PutUint32(e4[1024+0x64:], ext4MetadataCsum)
	le.PutUint32(e4[2048+0x08:], 3) // the inode table's block
	e4b := bytes.Clone(e4)
	le.PutUint32(e4b[1024+0x108:], 1700000000)
	f.Add(e4, e4b)
	f.Fuzz(func(t *testing.T, a, b []byte) {
		zipTimes(a)
		if img, err := parseExt4(a); err == nil {
			diffs, _, _ := diffRanges(a, b, 64)
			if fs, ok := img.changedFields(a, diffs); ok && len(a) == len(b) {
				img.checksumsHold(b, fs)
			}
		}
		parseGzipHeader(a)
		parseModuleSig(a)
		findDates(a)
		elfMasks(a)
		prefixes(a, b)
		for _, f := range []string{"tar", "cpio", "gzip tar", "squashfs", "uimage", "xz cpio"} {
			verifyExtent(context.Background(), streamed(a).Open, f)
		}
		for _, r := range Rules() {
			res, err := r.Explain(context.Background(), in("/f", a), in("/f", b))
			if err != nil {
				continue
			}
			if res.Explained && res.NormalizedShipped != res.NormalizedRebuilt {
				t.Fatalf("%s explained with normalized digests %q and %q", r.ID(), res.NormalizedShipped, res.NormalizedRebuilt)
			}
		}
	})
}

func streamed(b []byte) *Input {
	return &Input{Path: "/big", Head: b[:min(len(b), HeadSize)], Size: int64(len(b)),
		Open: func(context.Context) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }}
}

// TestLargeELF: an ELF file over the per-file limit is compared as it
// streams, with the same outcome as in memory.
func TestLargeELF(t *testing.T) {
	a := selfELF(t)
	masks, f, err := elfMasks(a)
	if err != nil || len(masks) == 0 {
		t.Skip("no build id in the test binary")
	}
	b := bytes.Clone(a)
	for _, m := range masks {
		for i := m.r[0]; i < m.r[1]; i++ {
			b[i] ^= 0x11
		}
	}
	ctx := context.Background()
	res, diffs, err := largeELF(ctx, streamed(a), streamed(b))
	if err != nil || !res.Explained || diffs != nil {
		t.Fatalf("build ids: %+v %+v %v", res, diffs, err)
	}
	mem := explainELF(a, b)
	if mem.NormalizedShipped != res.NormalizedShipped || len(mem.Applied[0].Ranges) != len(res.Applied[0].Ranges) ||
		mem.Applied[0].After[0] != res.Applied[0].After[0] {
		t.Errorf("streamed %+v, in memory %+v", res, mem)
	}
	text := f.Section(".text")
	b[text.Offset+text.Size/3] ^= 1
	res, diffs, err = largeELF(ctx, streamed(a), streamed(b))
	if err != nil || res.Explained || diffs == nil || !slices.Contains(diffs.Sections, ".text") {
		t.Fatalf("code: %+v %+v %v", res, diffs, err)
	}
	if res, _, _ := largeELF(ctx, streamed(a), streamed(append(bytes.Clone(a), 0))); res.Explained {
		t.Error("another length explained")
	}
}

func TestSparse(t *testing.T) {
	s := &sparse{size: 10, regions: []region{{2, []byte("ab")}, {8, []byte("yz")}}}
	p := make([]byte, 12)
	n, err := s.ReadAt(p, 0)
	if n != 10 || err != io.EOF || string(p[:10]) != "\x00\x00ab\x00\x00\x00\x00yz" {
		t.Errorf("%d %v %q", n, err, p)
	}
}

func TestPaddingRegion(t *testing.T) {
	pad := func(b []byte, format string) *Input {
		x := in("/padding-1", b)
		x.Region = &pipeline.Region{Offset: 0x1000, Size: int64(len(b)), Format: format}
		return x
	}
	ff, zero := bytes.Repeat([]byte{0xff}, 64), make([]byte, 32)
	if res, _ := (paddingRegion{}).Explain(context.Background(), pad(ff, pipeline.RegionPadding), pad(zero, pipeline.RegionPadding)); !res.Explained {
		t.Errorf("0xff and 0x00 padding: %+v", res)
	}
	mixed := append(bytes.Clone(zero), 1)
	if res, _ := (paddingRegion{}).Explain(context.Background(), pad(ff, pipeline.RegionPadding), pad(mixed, pipeline.RegionPadding)); res.Explained {
		t.Error("padding with data explained")
	}
	if res, _ := (paddingRegion{}).Explain(context.Background(), pad(ff, pipeline.RegionBlob), pad(zero, pipeline.RegionBlob)); res.Explained || res.Reason != "" {
		t.Error("a blob explained")
	}
}

// TestZipTimestamps: two builds' /www/ui.zip (Info-ZIP, same members in
// the same order, other mtimes) differ only in DOS times and UT extra
// fields, which the rule decodes; any other byte that differs, or another
// length, is not explained.
func TestZipTimestamps(t *testing.T) {
	dir := filepath.Join("..", "..", "testdata", "build", "fw", "equivalence")
	read := func(side string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, "ui-"+side+".zip"))
		if err != nil {
			t.Skipf("fixture missing: run scripts/fixtures/equivalence.sh: %v", err)
		}
		return b
	}
	a, b := read("shipped"), read("rebuilt")
	res := explain(t, zipTimestamps{}, a, b)
	if !res.Explained {
		t.Fatalf("not explained: %s", res.Reason)
	}
	ap := res.Applied[0]
	before, after := strings.Join(ap.Before, "\n"), strings.Join(ap.After, "\n")
	for _, want := range []string{"index.html: local DOS time and date 2023-11-14 22:13:20", "style.css: central UT mtime 2023-11-14T22:13:20Z"} {
		if !strings.Contains(before, want) {
			t.Errorf("before lacks %q:\n%s", want, before)
		}
	}
	if !strings.Contains(after, "index.html: local UT mtime 2023-11-15T23:13:20Z") {
		t.Errorf("after lacks the rebuild's UT mtime:\n%s", after)
	}
	// The central directory starts where the end record says.
	eocd := bytes.LastIndex(a, []byte("PK\x05\x06"))
	cd := int(binary.LittleEndian.Uint32(a[eocd+16:]))
	for _, tt := range []struct {
		name   string
		mutate func([]byte) []byte
	}{
		{"a data byte", func(c []byte) []byte {
			c[30+int(binary.LittleEndian.Uint16(c[26:]))+int(binary.LittleEndian.Uint16(c[28:]))+2] ^= 1
			return c
		}},
		{"a member's name", func(c []byte) []byte { c[30] ^= 0x20; return c }},
		{"a central record's attributes", func(c []byte) []byte { c[cd+38] ^= 1; return c }},
		{"the archive comment", func(c []byte) []byte {
			c = append(c, 'x')
			binary.LittleEndian.PutUint16(c[eocd+20:], 1)
			return c
		}},
		{"cut short", func(c []byte) []byte { return c[:len(c)-1] }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if res := explain(t, zipTimestamps{}, a, tt.mutate(bytes.Clone(b))); res.Explained || res.Reason == "" {
				t.Errorf("explained (%+v)", res)
			}
		})
	}
	if res := explain(t, zipTimestamps{}, []byte("plain"), []byte("plaiN")); res.Explained || res.Reason != "" {
		t.Errorf("applied to a file that is no zip: %+v", res)
	}
	// Padding after the end record (an aligner's, a flash writer's) may be
	// another fill byte; anything else there is not padding.
	pa, pb := append(bytes.Clone(a), make([]byte, 512)...), append(bytes.Clone(b), bytes.Repeat([]byte{0xff}, 512)...)
	if res := explain(t, zipTimestamps{}, pa, pb); !res.Explained || !strings.Contains(strings.Join(res.Applied[0].After, "\n"), "512 bytes of 0xff") {
		t.Errorf("padded: %+v", res)
	}
	pc := bytes.Clone(pb)
	copy(pc[len(b)+100:], "#!/bin/sh\n")
	if res := explain(t, zipTimestamps{}, pa, pc); res.Explained {
		t.Error("data after the end record explained as padding")
	}
}

// TestExt4Timestamps: two builds' /www/ui.ext4 (mke2fs -d at each build's
// time, one UUID and hash seed) differ only in superblock and inode times
// and their checksums, which the rule decodes and checks; a changed data
// byte, a time whose checksum was not redone, or another size is not
// explained.
func TestExt4Timestamps(t *testing.T) {
	dir := filepath.Join("..", "..", "testdata", "build", "fw", "equivalence")
	read := func(side string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, "ui-"+side+".ext4"))
		if err != nil {
			t.Skipf("fixture missing: run scripts/fixtures/equivalence.sh: %v", err)
		}
		return b
	}
	a, b := read("shipped"), read("rebuilt")
	res := explain(t, ext4Timestamps{}, a, b)
	if !res.Explained {
		t.Fatalf("not explained: %s", res.Reason)
	}
	before, after := strings.Join(res.Applied[0].Before, "\n"), strings.Join(res.Applied[0].After, "\n")
	for _, want := range []string{"superblock: s_mkfs_time 2023-11-14T22:13:20Z", "i_mtime 2023-11-14T22:13:20Z", "i_checksum_lo"} {
		if !strings.Contains(before, want) {
			t.Errorf("before lacks %q:\n%s", want, before)
		}
	}
	if !strings.Contains(after, "superblock: s_mkfs_time 2023-11-15T23:13:20Z") {
		t.Errorf("after lacks the rebuild's mkfs time:\n%s", after)
	}
	img, err := parseExt4(b)
	if err != nil {
		t.Fatal(err)
	}
	// The first file's inode: the first non-reserved one, 11 or 12 after lost+found.
	var mtime int64 = -1
	for n := int64(12); n < 20 && mtime < 0; n++ {
		_, at, ok := img.inodeAt(img.tables[0] + (n-1)*img.size)
		if ok && binary.LittleEndian.Uint16(b[at:]) != 0 && binary.LittleEndian.Uint16(b[at:])&0xf000 == 0x8000 {
			mtime = at + 0x10
		}
	}
	if mtime < 0 {
		t.Fatal("no regular file's inode found")
	}
	for _, tt := range []struct {
		name   string
		mutate func([]byte) []byte
	}{
		{"a time without its checksum", func(c []byte) []byte { c[mtime] ^= 1; return c }},
		{"the superblock's time without its checksum", func(c []byte) []byte { c[1024+0x30] ^= 1; return c }},
		{"a data byte", func(c []byte) []byte {
			i := bytes.Index(c, []byte("<html><body>rt3200"))
			c[i+1] ^= 1
			return c
		}},
		{"a mode bit", func(c []byte) []byte { c[mtime-0x10] ^= 0o4; return c }},
		{"cut short", func(c []byte) []byte { return c[:len(c)-1024] }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if res := explain(t, ext4Timestamps{}, a, tt.mutate(bytes.Clone(b))); res.Explained || res.Reason == "" {
				t.Errorf("explained (%+v)", res)
			}
		})
	}
	// Padding past the last block (an image written to a larger partition)
	// may be another fill byte; anything else there is not padding.
	pa, pb := append(bytes.Clone(a), make([]byte, 4096)...), append(bytes.Clone(b), bytes.Repeat([]byte{0xff}, 4096)...)
	if res := explain(t, ext4Timestamps{}, pa, pb); !res.Explained || !strings.Contains(strings.Join(res.Applied[0].After, "\n"), "4096 bytes of 0xff") {
		t.Errorf("padded: %+v", res)
	}
	pc := bytes.Clone(pb)
	copy(pc[len(b)+100:], "#!/bin/sh\n")
	if res := explain(t, ext4Timestamps{}, pa, pc); res.Explained {
		t.Error("data past the last block explained as padding")
	}
}

// TestWithin: a range is inside when one allowed range holds all of it,
// whatever their order and overlaps.
func TestWithin(t *testing.T) {
	allowed := [][2]int64{{40, 44}, {0, 10}, {5, 30}, {12, 14}}
	for _, tt := range []struct {
		rs   [][2]int64
		want bool
	}{
		{nil, true},
		{[][2]int64{{0, 10}}, true},
		{[][2]int64{{6, 30}, {41, 44}}, true},
		{[][2]int64{{12, 14}}, true},
		{[][2]int64{{0, 11}}, false}, // spans two allowed ranges, inside neither
		{[][2]int64{{29, 31}}, false},
		{[][2]int64{{40, 45}}, false},
		{[][2]int64{{50, 51}}, false},
	} {
		if got := within(tt.rs, allowed); got != tt.want {
			t.Errorf("within(%v) = %v, want %v", tt.rs, got, tt.want)
		}
	}
}
