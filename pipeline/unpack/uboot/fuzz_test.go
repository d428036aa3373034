package uboot_test

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"testing"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/fixture"
	"github.com/fwvet/fwvet/pipeline/unpack/uboot"
)

func seed(f *testing.F, files ...string) {
	for _, s := range files {
		f.Add(fixture.ReadFile(f, "fw/"+s))
	}
}

var fuzzLimits = func() pipeline.Limits {
	lim := pipeline.DefaultLimits()
	lim.MaxEntries = 5000
	lim.MaxFileSize = 8 << 20
	return lim
}()

func FuzzUImage(f *testing.F) {
	seed(f, "uboot-tiny.uimg", "uboot-tiny-none.uimg", "uboot-script.uimg")
	// Kernels in the codecs of the compression package, wrapped as mkimage would.
	for comp, file := range map[byte]string{3: "uboot-tiny.lzma", 4: "uboot-tiny.lzo", 5: "uboot-tiny-legacy.lz4"} {
		f.Add(uimage(comp, fixture.ReadFile(f, "fw/"+file)))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fixture.WalkAndRead(t, uboot.UImage{}, data, fuzzLimits, 16<<20)
		// Mutations rarely keep the header CRC right; fixing it lets the
		// fuzzer reach the sizes, the part list and the codecs.
		if len(data) >= 64 {
			b := bytes.Clone(data)
			clear(b[4:8])
			binary.BigEndian.PutUint32(b[4:], crc32.ChecksumIEEE(b[:64]))
			fixture.WalkAndRead(t, uboot.UImage{}, b, fuzzLimits, 16<<20)
		}
	})
}

func FuzzFIT(f *testing.F) {
	seed(f, "uboot-tiny.itb", "uboot-tiny-external.itb", "uboot-board.dtb")
	f.Fuzz(func(t *testing.T, data []byte) {
		fixture.WalkAndRead(t, uboot.FIT{}, data, fuzzLimits, 16<<20)
		fixture.WalkAndRead(t, uboot.DTB{}, data, fuzzLimits, 16<<20)
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
