package ubifs_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/fixture"
	"github.com/fwvet/fwvet/pipeline/unpack/ubifs"
)

// entry is what the test compares of a tree entry, from the image or from
// the source tree.
type entry struct {
	Type         pipeline.EntryType
	Mode         uint32
	UID, GID     uint32
	Size         int64
	Link         string
	Major, Minor uint32
	SHA          string
}

// sourceTree walks dir with Lstat, as mkfs.ubifs did; the second map
// groups paths by inode for hard links.
func sourceTree(t *testing.T, dir string) (map[string]entry, map[uint64][]string) {
	t.Helper()
	out := map[string]entry{}
	links := map[uint64][]string{}
	err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		e := entry{Mode: st.Mode & pipeline.ModePerm, UID: st.Uid, GID: st.Gid}
		switch st.Mode & syscall.S_IFMT {
		case syscall.S_IFREG:
			e.Type, e.Size = pipeline.TypeFile, st.Size
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(b)
			e.SHA = hex.EncodeToString(sum[:])
			if st.Nlink > 1 {
				links[st.Ino] = append(links[st.Ino], rel)
			}
		case syscall.S_IFDIR:
			e.Type = pipeline.TypeDir
		case syscall.S_IFLNK:
			e.Type = pipeline.TypeSymlink
			if e.Link, err = os.Readlink(p); err != nil {
				return err
			}
		case syscall.S_IFCHR, syscall.S_IFBLK:
			e.Type = pipeline.TypeChar
			if st.Mode&syscall.S_IFMT == syscall.S_IFBLK {
				e.Type = pipeline.TypeBlock
			}
			e.Major = uint32((st.Rdev>>8)&0xfff) | uint32(st.Rdev>>32)&^0xfff
			e.Minor = uint32(st.Rdev&0xff) | uint32(st.Rdev>>12)&^0xff
		case syscall.S_IFIFO:
			e.Type = pipeline.TypeFIFO
		case syscall.S_IFSOCK:
			e.Type = pipeline.TypeSocket
		}
		out[rel] = e
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out, links
}

func openImage(t *testing.T, name string) (*os.File, int64) {
	t.Helper()
	f, err := os.Open(fixture.Path(t, name))
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

// imageTree walks an image and reads every file through its OpenFunc, after
// the walk has returned, as the unpacker may.
func imageTree(t *testing.T, name string) (map[string]entry, map[uint64][]string, error) {
	t.Helper()
	f, size := openImage(t, name)
	out := map[string]entry{}
	ids := map[uint64][]string{}
	opens := map[string]pipeline.OpenFunc{}
	err := ubifs.Format{}.Walk(context.Background(), f, size, pipeline.DefaultLimits(), func(h *pipeline.Header, open pipeline.OpenFunc) error {
		if _, dup := out[h.Name]; dup {
			t.Errorf("%s listed twice", h.Name)
		}
		out[h.Name] = entry{Type: h.Type, Mode: h.Mode, UID: h.UID, GID: h.GID, Size: h.Size, Link: h.LinkName, Major: h.Major, Minor: h.Minor}
		if h.Type == pipeline.TypeFile {
			if h.Identity == 0 {
				t.Errorf("%s has no Identity", h.Name)
			}
			ids[h.Identity] = append(ids[h.Identity], h.Name)
			if open == nil {
				t.Errorf("%s has no OpenFunc", h.Name)
			}
			opens[h.Name] = open
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	for n, open := range opens {
		rc, err := open(context.Background())
		if err != nil {
			return nil, nil, err
		}
		hs := sha256.New()
		_, err = io.Copy(hs, rc)
		rc.Close()
		if err != nil {
			return nil, nil, err
		}
		e := out[n]
		e.SHA = hex.EncodeToString(hs.Sum(nil))
		out[n] = e
	}
	return out, ids, nil
}

// TestWalkMatchesSource: every image, whatever its compressor, holds
// exactly the tree mkfs.ubifs read, bytes, owners, modes and links alike.
func TestWalkMatchesSource(t *testing.T) {
	want, wantLinks := sourceTree(t, fixture.Path(t, "stage/formats"))
	for _, img := range []string{"fw/ubifs-rootfs-lzo.ubifs", "fw/ubifs-rootfs-zlib.ubifs", "fw/ubifs-rootfs-zstd.ubifs", "fw/ubifs-rootfs-none.ubifs"} {
		t.Run(filepath.Base(img), func(t *testing.T) {
			got, ids, err := imageTree(t, img)
			if err != nil {
				t.Fatal(err)
			}
			for p, w := range want {
				g, ok := got[p]
				if !ok {
					t.Errorf("%s: missing from the image", p)
					continue
				}
				if g != w {
					t.Errorf("%s: image has %+v, source %+v", p, g, w)
				}
			}
			for p := range got {
				if _, ok := want[p]; !ok {
					t.Errorf("%s: in the image, not in the source", p)
				}
			}
			if len(wantLinks) == 0 {
				t.Fatal("the source tree has no hard links to check")
			}
			for _, group := range wantLinks {
				var id uint64
				for _, ps := range ids {
					if contains(ps, group[0]) {
						if len(ps) != len(group) {
							t.Errorf("hard links %v share an Identity with %v", group, ps)
						}
						id = 1
					}
				}
				if id == 0 {
					t.Errorf("hard link %s has no Identity group", group[0])
				}
			}
			if got["usr/bin/passwd"].Mode != 0o6755 {
				t.Errorf("passwd mode %#o, want 06755", got["usr/bin/passwd"].Mode)
			}
		})
	}
}

func contains(s []string, x string) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}

// TestDamaged: a damaged image ends in an error that says what is wrong,
// never a panic; a flipped data node fails only the file it belongs to.
func TestDamaged(t *testing.T) {
	for _, tc := range []struct {
		img, want string
	}{
		{"fw/ubifs-trunc.ubifs", "truncated"},
		{"fw/ubifs-badmaster.ubifs", "no valid master node"},
		{"fw/ubifs-badindex.ubifs", "index node"},
	} {
		t.Run(filepath.Base(tc.img), func(t *testing.T) {
			_, _, err := imageTree(t, tc.img)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
			if !errors.Is(err, ubifs.ErrCorrupt) {
				t.Errorf("error %q does not wrap ErrCorrupt", err)
			}
		})
	}
	t.Run("baddata", func(t *testing.T) {
		f, size := openImage(t, "fw/ubifs-baddata.ubifs")
		failed := map[string]error{}
		read := 0
		err := ubifs.Format{}.Walk(context.Background(), f, size, pipeline.DefaultLimits(), func(h *pipeline.Header, open pipeline.OpenFunc) error {
			if open == nil {
				return nil
			}
			rc, err := open(context.Background())
			if err != nil {
				return err
			}
			defer rc.Close()
			if _, err := io.Copy(io.Discard, rc); err != nil {
				failed[h.Name] = err
			}
			read++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(failed) != 1 || failed["etc/inittab"] == nil {
			t.Fatalf("want only etc/inittab to fail, got %v", failed)
		}
		if e := failed["etc/inittab"]; !strings.Contains(e.Error(), "CRC") || !errors.Is(e, ubifs.ErrCorrupt) {
			t.Errorf("etc/inittab: error %q is not a corrupt CRC", e)
		}
		if read < 100 {
			t.Errorf("only %d files read", read)
		}
	})
}

// TestTiny: the fuzzing seed is a valid image with the tree the fixture
// script made.
func TestTiny(t *testing.T) {
	got, ids, err := imageTree(t, "fw/ubifs-tiny.ubifs")
	if err != nil {
		t.Fatal(err)
	}
	tool := got["bin/tool"]
	if tool.Mode != 0o4755 || tool.Size != 9000 || got["bin/motd"].Link != "../etc/motd" || got["etc/empty"].Type != pipeline.TypeDir {
		t.Errorf("unexpected tree %+v", got)
	}
	sum := sha256.Sum256(bytes.Repeat([]byte("a"), 9000))
	if tool.SHA != hex.EncodeToString(sum[:]) {
		t.Errorf("bin/tool has the wrong bytes")
	}
	shared := false
	for _, ps := range ids {
		shared = shared || len(ps) == 2
	}
	if !shared {
		t.Errorf("etc/motd and etc/motd.link do not share an Identity: %v", ids)
	}
}

// TestReadAtMatchesStream: a file read at random offsets gives the bytes
// of the file read front to back.
func TestReadAtMatchesStream(t *testing.T) {
	f, size := openImage(t, "fw/ubifs-rootfs-zstd.ubifs")
	rng := rand.New(rand.NewSource(1))
	checked := 0
	err := ubifs.Format{}.Walk(context.Background(), f, size, pipeline.DefaultLimits(), func(h *pipeline.Header, open pipeline.OpenFunc) error {
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
			t.Fatal("a ubifs file is not an io.ReaderAt with a Size")
		}
		if ra.Size() != int64(len(want)) {
			t.Errorf("%s: Size %d, read %d bytes", h.Name, ra.Size(), len(want))
		}
		for range 5 {
			off := rng.Int63n(int64(len(want)))
			buf := make([]byte, 1+rng.Intn(100000))
			n, err := ra.ReadAt(buf, off)
			end := min(off+int64(len(buf)), int64(len(want)))
			if int64(n) != end-off || !bytes.Equal(buf[:n], want[off:end]) {
				t.Errorf("%s: ReadAt(%d, %d) gave %d bytes (%v), not the streamed ones", h.Name, len(buf), off, n, err)
			}
		}
		checked++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 5 {
		t.Errorf("only %d files checked", checked)
	}
}

// TestMatchAndSpan: Match accepts a superblock, refuses short or damaged
// heads; Span is the LEBs the superblock counts.
func TestMatchAndSpan(t *testing.T) {
	f, size := openImage(t, "fw/ubifs-rootfs-lzo.ubifs")
	head := make([]byte, pipeline.MatchSize)
	if _, err := f.ReadAt(head, 0); err != nil {
		t.Fatal(err)
	}
	var fm ubifs.Format
	if !fm.Match(head) {
		t.Error("Match refuses a real image")
	}
	for n := range 64 {
		if fm.Match(head[:n]) {
			t.Errorf("Match accepts %d bytes", n)
		}
	}
	bad := bytes.Clone(head)
	bad[40]++
	if fm.Match(bad) {
		t.Error("Match accepts a superblock with a bad CRC")
	}
	span, err := fm.Span(f, size)
	if err != nil || span != size {
		t.Errorf("Span = %d, %v; want %d", span, err, size)
	}
	tr, trSize := openImage(t, "fw/ubifs-trunc.ubifs")
	if span, err := fm.Span(tr, trSize); err != nil || span != trSize {
		t.Errorf("Span of the truncated image = %d, %v; want %d", span, err, trSize)
	}
}

// TestLimits: the entry limit is reported by name, and files over the size
// limit come without an OpenFunc.
func TestLimits(t *testing.T) {
	f, size := openImage(t, "fw/ubifs-rootfs-lzo.ubifs")
	lim := pipeline.DefaultLimits()
	lim.MaxEntries = 10
	err := ubifs.Format{}.Walk(context.Background(), f, size, lim, func(*pipeline.Header, pipeline.OpenFunc) error { return nil })
	var le *pipeline.LimitError
	if !errors.As(err, &le) || le.Limit != "max-entries" {
		t.Errorf("error %v is not a max-entries limit", err)
	}
	lim = pipeline.DefaultLimits()
	lim.MaxFileSize = 1000
	err = ubifs.Format{}.Walk(context.Background(), f, size, lim, func(h *pipeline.Header, open pipeline.OpenFunc) error {
		if open != nil && h.Size > 1000 {
			t.Errorf("%s of %d bytes has an OpenFunc", h.Name, h.Size)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestHostileIndex: an index that points outside the file system, claims
// too many levels or loops back on itself is refused, even with every CRC
// right.
func TestHostileIndex(t *testing.T) {
	seed, err := os.ReadFile(fixture.Path(t, "fw/ubifs-tiny.ubifs"))
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	rootLnum, rootOffs := le.Uint32(seed[fuzzLEB+48:]), le.Uint32(seed[fuzzLEB+52:])
	root := int(rootLnum)*fuzzLEB + int(rootOffs)
	branch := root + 28
	for _, tc := range []struct {
		name, want string
		edit       func(img []byte)
	}{
		{"branch past the LEBs", "past the", func(img []byte) { le.PutUint32(img[branch:], 0xFFFFFFF0) }},
		{"branch past its LEB", "outside its LEB", func(img []byte) { le.PutUint32(img[branch+4:], fuzzLEB-8) }},
		{"root too deep", "more than 32", func(img []byte) { le.PutUint16(img[root+26:], 40) }},
		{"branch to the root", "", func(img []byte) {
			le.PutUint32(img[branch:], rootLnum)
			le.PutUint32(img[branch+4:], rootOffs)
			le.PutUint32(img[branch+8:], le.Uint32(img[root+16:]))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := bytes.Clone(seed)
			tc.edit(img)
			fixCRCs(img)
			err := ubifs.Format{}.Walk(context.Background(), bytes.NewReader(img), int64(len(img)), pipeline.DefaultLimits(),
				func(*pipeline.Header, pipeline.OpenFunc) error { return nil })
			if err == nil || !errors.Is(err, ubifs.ErrCorrupt) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want a corrupt ubifs error mentioning %q", err, tc.want)
			}
		})
	}
}
