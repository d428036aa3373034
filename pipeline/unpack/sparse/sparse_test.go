package sparse_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash/crc32"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/fixture"
	"github.com/fwvet/fwvet/pipeline/unpack/sparse"
)

func sha(t *testing.T, r io.Reader) (string, int64) {
	t.Helper()
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		t.Fatalf("after %d bytes: %v", n, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n
}

func shaFile(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, _ := sha(t, f)
	return s
}

// simg2img expands an image with the reference tool.
func simg2img(t *testing.T, path string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "raw.img")
	if b, err := exec.Command("simg2img", path, out).CombinedOutput(); err != nil {
		t.Fatalf("simg2img %s: %v\n%s", path, err, b)
	}
	return shaFile(t, out)
}

func expand(t *testing.T, path string) (string, int64) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rc, err := sparse.Format{}.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	return sha(t, rc)
}

// TestImages: every image made by img2simg and simg2simg expands to the
// bytes simg2img gives, and to the ext4 image it was made from.
func TestImages(t *testing.T) {
	raw := shaFile(t, fixture.Path(t, "fw/sparse-rootfs.ext4"))
	for _, tc := range []struct {
		img    string
		sameAs bool // expands to sparse-rootfs.ext4
		size   int64
	}{
		{"fw/sparse-rootfs.simg", true, 32 << 20},
		{"fw/sparse-rootfs-1k.simg", true, 32 << 20},
		{"fw/sparse-rootfs-crc.simg", true, 32 << 20},
		{"fw/sparse-rootfs-part1.simg", false, 32 << 20}, // DONT_CARE chunks
		{"fw/sparse-tiny.simg", false, 128 << 10},
		{"fw/sparse-tiny-crc.simg", false, 128 << 10},
	} {
		t.Run(tc.img, func(t *testing.T) {
			path := fixture.Path(t, tc.img)
			head := make([]byte, pipeline.MatchSize)
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			n, _ := io.ReadFull(f, head)
			if !(sparse.Format{}).Match(head[:n]) {
				t.Error("Match rejects the image")
			}
			st, _ := f.Stat()
			if span, err := (sparse.Format{}).Span(f, st.Size()+1000); err != nil || span != st.Size() {
				t.Errorf("Span = %d, %v; want %d", span, err, st.Size())
			}
			got, size := expand(t, path)
			if size != tc.size {
				t.Errorf("expanded to %d bytes, want %d", size, tc.size)
			}
			if want := simg2img(t, path); got != want {
				t.Errorf("SHA-256 %s, simg2img gives %s", got, want)
			}
			if tc.sameAs && got != raw {
				t.Errorf("SHA-256 %s, the ext4 image is %s", got, raw)
			}
		})
	}
}

// TestDamaged: a damaged image ends its stream in an error that says what
// is wrong.
func TestDamaged(t *testing.T) {
	for _, tc := range []struct{ img, want string }{
		{"fw/sparse-rootfs-badcrc.simg", "(crc32): the 33554432 bytes before it have CRC32"},
		{"fw/sparse-rootfs-liar.simg", "total_sz"},
		{"fw/sparse-rootfs-trunc.simg", "unexpected EOF"},
	} {
		t.Run(tc.img, func(t *testing.T) {
			f, err := os.Open(fixture.Path(t, tc.img))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			rc, err := sparse.Format{}.NewReader(f)
			if err == nil {
				_, err = io.Copy(io.Discard, rc)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			st, _ := f.Stat()
			if _, err := (sparse.Format{}).Span(f, st.Size()); err == nil && tc.img != "fw/sparse-rootfs-badcrc.simg" {
				t.Error("Span accepts the damaged image")
			}
		})
	}
}

// image builds a sparse image from chunks.
type image struct {
	fileHdr, chunkHdr uint16
	blkSz, totalBlks  uint32
	chunks            [][]byte
	totalChunks       int // -1: len(chunks)
}

func (im image) chunk(typ uint16, blocks uint32, data []byte) []byte {
	b := make([]byte, int(im.chunkHdr)+len(data))
	binary.LittleEndian.PutUint16(b, typ)
	binary.LittleEndian.PutUint32(b[4:], blocks)
	binary.LittleEndian.PutUint32(b[8:], uint32(len(b)))
	copy(b[im.chunkHdr:], data)
	return b
}

func (im image) bytes() []byte {
	h := make([]byte, im.fileHdr)
	le := binary.LittleEndian
	le.PutUint32(h, 0xED26FF3A)
	le.PutUint16(h[4:], 1)
	le.PutUint16(h[8:], im.fileHdr)
	le.PutUint16(h[10:], im.chunkHdr)
	le.PutUint32(h[12:], im.blkSz)
	le.PutUint32(h[16:], im.totalBlks)
	n := im.totalChunks
	if n < 0 {
		n = len(im.chunks)
	}
	le.PutUint32(h[20:], uint32(n))
	return append(h, bytes.Join(im.chunks, nil)...)
}

func u32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }

// TestSynthetic covers what the tools never write: larger headers, fills
// with a pattern, CRC32 chunks mid-stream and every size lie.
func TestSynthetic(t *testing.T) {
	base := image{fileHdr: 32, chunkHdr: 16, blkSz: 8, totalBlks: 6, totalChunks: -1}
	raw := []byte("ABCDEFGH")
	want := append(append(append([]byte(nil), raw...), bytes.Repeat([]byte{1, 2, 3, 4}, 4)...), make([]byte, 24)...)
	crcOf := func(n int) []byte { return u32(crc32.ChecksumIEEE(want[:n])) }
	good := base
	good.chunks = [][]byte{
		base.chunk(0xCAC1, 1, raw),
		base.chunk(0xCAC4, 0, crcOf(8)),
		base.chunk(0xCAC2, 2, []byte{1, 2, 3, 4}),
		base.chunk(0xCAC3, 3, nil),
		base.chunk(0xCAC4, 0, crcOf(48)),
	}
	lie := func(f func(im *image)) []byte {
		im := good
		im.chunks = append([][]byte(nil), good.chunks...)
		f(&im)
		return im.bytes()
	}
	for _, tc := range []struct {
		name string
		img  []byte
		err  string // "" for success
	}{
		{"good", good.bytes(), ""},
		{"more blocks", lie(func(im *image) { im.totalBlks = 5 }), "ends at block 6, past the 5"},
		{"fewer blocks", lie(func(im *image) { im.totalBlks = 7 }), "expand to 6 blocks, the header declares 7"},
		{"missing chunk", lie(func(im *image) { im.totalChunks = 6 }), "chunk 5 of 6 header: unexpected EOF"},
		{"unknown type", lie(func(im *image) { im.chunks[3] = base.chunk(0xCAC5, 3, nil) }), "unknown chunk type 0xcac5"},
		{"raw size", lie(func(im *image) { im.chunks[0] = base.chunk(0xCAC1, 2, raw) }), "total_sz 24, want 32"},
		{"fill size", lie(func(im *image) { im.chunks[2] = base.chunk(0xCAC2, 2, []byte{1, 2, 3, 4, 5}) }), "total_sz 21, want 20"},
		{"bad crc", lie(func(im *image) { im.chunks[1] = base.chunk(0xCAC4, 0, crcOf(7)) }), "chunk 1 (crc32)"},
		{"block size", lie(func(im *image) { im.blkSz = 6 }), "block size 6"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc, err := sparse.Format{}.NewReader(bytes.NewReader(tc.img))
			var got []byte
			if err == nil {
				got, err = io.ReadAll(iotest.OneByteReader(rc)) // crosses every fill period
			}
			switch {
			case tc.err == "" && err != nil:
				t.Fatal(err)
			case tc.err == "" && !bytes.Equal(got, want):
				t.Fatalf("got %x, want %x", got, want)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("error %v, want one containing %q", err, tc.err)
			}
		})
	}
}

// TestHugeDontCare: a 4 GiB DONT_CARE chunk in a 60-byte file is expanded
// piecewise, without an allocation of its size.
func TestHugeDontCare(t *testing.T) {
	im := image{fileHdr: 28, chunkHdr: 12, blkSz: 4096, totalBlks: 1 << 20, totalChunks: -1}
	im.chunks = [][]byte{im.chunk(0xCAC3, 1<<20, nil)}
	rc, err := sparse.Format{}.NewReader(bytes.NewReader(im.bytes()))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	allocs := testing.AllocsPerRun(8, func() {
		if _, err := io.ReadFull(rc, buf); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 0 || !bytes.Equal(buf, make([]byte, len(buf))) {
		t.Errorf("%v allocations per MiB; zeros: %v", allocs, bytes.Equal(buf, make([]byte, len(buf))))
	}
}

// TestMatchShortHead: no prefix of a header panics Match, and only a whole
// sane header matches.
func TestMatchShortHead(t *testing.T) {
	im := image{fileHdr: 28, chunkHdr: 12, blkSz: 4096, totalBlks: 1, totalChunks: -1}
	im.chunks = [][]byte{im.chunk(0xCAC3, 1, nil)}
	b := im.bytes()
	for n := 0; n < len(b); n++ {
		if (sparse.Format{}).Match(b[:n]) != (n >= 28) {
			t.Errorf("Match of %d bytes = %v", n, !(n >= 28))
		}
	}
	b[28] = 0 // first chunk type
	if (sparse.Format{}).Match(b) {
		t.Error("Match accepts an unknown first chunk type")
	}
}
