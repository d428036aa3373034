package ubifs_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/fixture"
	"github.com/fwvet/fwvet/pipeline/unpack/ubifs"
)

// TestWalkMatchesSource: every image, whatever its compressor, holds
// exactly the tree mkfs.ubifs read, bytes, owners, modes and links alike.
func TestWalkMatchesSource(t *testing.T) {
	want := fixture.SourceTree(t, fixture.Path(t, "stage/formats"))
	for _, img := range []string{"fw/ubifs-rootfs-lzo.ubifs", "fw/ubifs-rootfs-zlib.ubifs", "fw/ubifs-rootfs-zstd.ubifs", "fw/ubifs-rootfs-none.ubifs"} {
		t.Run(filepath.Base(img), func(t *testing.T) {
			got, err := fixture.WalkArchive(t, ubifs.Format{}, img, pipeline.DefaultLimits())
			if err != nil {
				t.Fatal(err)
			}
			fixture.CompareTrees(t, got, want)
			fixture.CompareLinks(t, got, want)
			if got["usr/bin/passwd"].Mode != 0o6755 {
				t.Errorf("passwd mode %#o, want 06755", got["usr/bin/passwd"].Mode)
			}
		})
	}
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
			_, err := fixture.WalkArchive(t, ubifs.Format{}, tc.img, pipeline.DefaultLimits())
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
		f, size := fixture.Open(t, "fw/ubifs-baddata.ubifs")
		failed := map[string]error{}
		read := 0
		err := ubifs.Format{}.Walk(context.Background(), f, size, pipeline.DefaultLimits(), func(h *pipeline.Header, open pipeline.OpenFunc) error {
			open = h.Opener(open)
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
	got, err := fixture.WalkArchive(t, ubifs.Format{}, "fw/ubifs-tiny.ubifs", pipeline.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	tool := got["bin/tool"]
	if tool.Mode != 0o4755 || tool.Size != 9000 || got["bin/motd"].Link != "../etc/motd" || got["etc/empty"].Type != pipeline.TypeDir {
		t.Errorf("unexpected tree %+v", got)
	}
	sum := sha256.Sum256(bytes.Repeat([]byte("a"), 9000))
	if tool.SHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("bin/tool has the wrong bytes")
	}
	names := map[uint64]int{} // Identity -> files
	for _, e := range got {
		if e.Type == pipeline.TypeFile {
			names[e.Identity]++
		}
	}
	shared := false
	for _, n := range names {
		shared = shared || n == 2
	}
	if !shared {
		t.Errorf("etc/motd and etc/motd.link do not share an Identity: %v", got)
	}
}

// TestReadAtMatchesStream: a file read at random offsets gives the bytes
// of the file read front to back.
func TestReadAtMatchesStream(t *testing.T) {
	fixture.CheckArchiveReadAt(t, ubifs.Format{}, "fw/ubifs-rootfs-zstd.ubifs", fixture.ReadAtFiles{MaxFiles: 101, MinFiles: 5, MaxLen: 100000})
}

// TestMatchAndSpan: Match accepts a superblock, refuses short or damaged
// heads; Span is the LEBs the superblock counts.
func TestMatchAndSpan(t *testing.T) {
	f, size := fixture.Open(t, "fw/ubifs-rootfs-lzo.ubifs")
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
	tr, trSize := fixture.Open(t, "fw/ubifs-trunc.ubifs")
	if span, err := fm.Span(tr, trSize); err != nil || span != trSize {
		t.Errorf("Span of the truncated image = %d, %v; want %d", span, err, trSize)
	}
}

// TestLimits: the entry limit is reported by name, and files over the size
// limit come with no way to open them.
func TestLimits(t *testing.T) {
	f, size := fixture.Open(t, "fw/ubifs-rootfs-lzo.ubifs")
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
		if h.Opener(open) != nil && h.Size > 1000 {
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
	seed := fixture.ReadFile(t, "fw/ubifs-tiny.ubifs")
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

// TestOpenAt: every regular file opens through the walk's one OpenAt, at
// its inode number, and reads the bytes of the file mkfs.ubifs packed; only
// a file of several names has an Identity, which the unpacker keeps a slot
// for; and OpenAt refuses a number that is not a regular file of that
// size.
func TestOpenAt(t *testing.T) {
	want := fixture.SourceTree(t, fixture.Path(t, "stage/formats"))
	names := map[uint64]int{} // source inode -> names
	for _, e := range want {
		if e.Type == pipeline.TypeFile {
			names[e.Identity]++
		}
	}
	ctx := context.Background()
	for _, img := range []string{"fw/ubifs-rootfs-lzo.ubifs", "fw/ubifs-rootfs-zstd.ubifs"} {
		t.Run(filepath.Base(img), func(t *testing.T) {
			f, size := fixture.Open(t, img)
			var at pipeline.OpenAt
			type file struct {
				name string
				loc  uint64
				size int64
			}
			var files []file
			linked := 0
			err := ubifs.Format{}.Walk(ctx, f, size, pipeline.DefaultLimits(), func(h *pipeline.Header, open pipeline.OpenFunc) error {
				if open != nil {
					t.Errorf("%s has an OpenFunc of its own", h.Name)
				}
				if h.Type != pipeline.TypeFile {
					if h.OpenAt != nil || h.Identity != 0 {
						t.Errorf("%s, a %s, has an OpenAt or an Identity", h.Name, h.Type)
					}
					return nil
				}
				w, ok := want[fixture.Key(h.Name)]
				switch {
				case !ok:
					t.Errorf("%s is not in the source tree", h.Name)
					return nil
				case h.OpenAt == nil:
					t.Errorf("%s has no OpenAt", h.Name)
					return nil
				case at == nil:
					at = h.OpenAt
				}
				if n := names[w.Identity]; n > 1 {
					linked++
					if h.Identity == 0 {
						t.Errorf("%s, one of %d names of an inode, has no Identity", h.Name, n)
					}
				} else if h.Identity != 0 {
					t.Errorf("%s, of one name, has Identity %d", h.Name, h.Identity)
				}
				files = append(files, file{fixture.Key(h.Name), h.Locator, h.Size})
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(files) < 100 || linked < 2 {
				t.Fatalf("%d files, %d of them linked: not the fixture tree", len(files), linked)
			}
			for _, fl := range files {
				rc, err := at(ctx, fl.loc, fl.size)
				if err != nil {
					t.Errorf("%s: %v", fl.name, err)
					continue
				}
				b, err := io.ReadAll(rc)
				rc.Close()
				if err != nil {
					t.Errorf("%s: %v", fl.name, err)
					continue
				}
				sum := sha256.Sum256(b)
				if got := hex.EncodeToString(sum[:]); got != want[fl.name].SHA256 {
					t.Errorf("%s: OpenAt read %d bytes of SHA-256 %.12s, want %.12s", fl.name, len(b), got, want[fl.name].SHA256)
				}
			}
			fl := files[0]
			for _, bad := range []struct {
				name string
				loc  uint64
				size int64
				want string
			}{
				{"the root directory", 1, 0, "not a regular file"},
				{"a size it does not have", fl.loc, fl.size + 1, "bytes"},
				{"an inode not in the index", 1 << 31, 0, "not in the index"},
				{"a number past 32 bits", 1 << 32, fl.size, "out of range"},
			} {
				rc, err := at(ctx, bad.loc, bad.size)
				if err == nil {
					rc.Close()
					t.Errorf("OpenAt opens %s", bad.name)
				} else if !errors.Is(err, ubifs.ErrCorrupt) || !strings.Contains(err.Error(), bad.want) {
					t.Errorf("OpenAt of %s: error %q, want a corrupt ubifs error mentioning %q", bad.name, err, bad.want)
				}
			}
		})
	}
}
