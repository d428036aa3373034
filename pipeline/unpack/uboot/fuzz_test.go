package uboot_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"hash/crc32"
	"io"
	"os"
	"testing"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/fixture"
	"github.com/fwvet/fwvet/pipeline/unpack/uboot"
)

func seed(f *testing.F, files ...string) {
	for _, s := range files {
		b, err := os.ReadFile(fixture.Path(f, "fw/"+s))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

var fuzzLimits = func() pipeline.Limits {
	lim := pipeline.DefaultLimits()
	lim.MaxEntries = 5000
	lim.MaxFileSize = 8 << 20
	return lim
}()

// fuzzWalk runs Match, Span and Walk, then reads every file: whatever the
// bytes, each ends in data or an error, never a panic, an endless loop or
// an allocation the image does not justify.
func fuzzWalk(t *testing.T, a pipeline.Archive, data []byte) {
	a.Match(data[:min(len(data), pipeline.MatchSize)])
	r := bytes.NewReader(data)
	if s, ok := a.(pipeline.Spanner); ok {
		if n, err := s.Span(r, int64(len(data))); err == nil && (n < 0 || n > int64(len(data))) {
			t.Fatalf("Span = %d of a %d byte input", n, len(data))
		}
	}
	var files []pipeline.OpenFunc
	n := 0
	_ = a.Walk(context.Background(), r, int64(len(data)), fuzzLimits, func(h *pipeline.Header, open pipeline.OpenFunc) error {
		if n++; n > 5000 {
			return io.EOF
		}
		if h.Size < 0 {
			t.Fatalf("entry %q has size %d", h.Name, h.Size)
		}
		if open != nil && h.Size <= fuzzLimits.MaxFileSize {
			files = append(files, open)
		}
		return nil
	})
	for _, open := range files {
		rc, err := open(context.Background())
		if err != nil {
			continue
		}
		io.Copy(io.Discard, io.LimitReader(rc, 16<<20))
		rc.Close()
	}
}

func FuzzUImage(f *testing.F) {
	seed(f, "uboot-tiny.uimg", "uboot-tiny-none.uimg", "uboot-script.uimg")
	// Kernels in the codecs of the compression package, wrapped as mkimage would.
	for comp, file := range map[byte]string{3: "uboot-tiny.lzma", 4: "uboot-tiny.lzo", 5: "uboot-tiny-legacy.lz4"} {
		b, err := os.ReadFile(fixture.Path(f, "fw/"+file))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uimage(comp, b))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzWalk(t, uboot.UImage{}, data)
		// Mutations rarely keep the header CRC right; fixing it lets the
		// fuzzer reach the sizes, the part list and the codecs.
		if len(data) >= 64 {
			b := bytes.Clone(data)
			clear(b[4:8])
			binary.BigEndian.PutUint32(b[4:], crc32.ChecksumIEEE(b[:64]))
			fuzzWalk(t, uboot.UImage{}, b)
		}
	})
}

func FuzzFIT(f *testing.F) {
	seed(f, "uboot-tiny.itb", "uboot-tiny-external.itb", "uboot-board.dtb")
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzWalk(t, uboot.FIT{}, data)
		fuzzWalk(t, uboot.DTB{}, data)
	})
}

// uimage wraps data in a kernel uImage header with compression comp.
func uimage(comp byte, data []byte) []byte {
	h := make([]byte, 64, 64+len(data))
	copy(h, []byte{0x27, 0x05, 0x19, 0x56})
	binary.BigEndian.PutUint32(h[12:], uint32(len(data)))
	binary.BigEndian.PutUint32(h[24:], crc32.ChecksumIEEE(data))
	h[28], h[29], h[30], h[31] = 5, 2, 2, comp
	copy(h[32:], "seed")
	binary.BigEndian.PutUint32(h[4:], crc32.ChecksumIEEE(h))
	return append(h, data...)
}
