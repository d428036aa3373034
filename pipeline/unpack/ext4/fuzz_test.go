package ext4_test

import (
	"bytes"
	"testing"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/fixture"
	"github.com/fwvet/fwvet/pipeline/unpack/ext4"
)

// The fuzzer works on images with their zero runs packed (packZeros): a
// 64 KiB seed holds under 6 KiB of non-zero bytes, and the fuzzer's cost
// per input, minimisation above all, grows with the input's length.
const (
	fuzzImageSize = 64 << 10
	fuzzMaxImage  = 1 << 20
)

// packZeros writes each run of zeros as 0x00 and a big-endian 16-bit count.
func packZeros(b []byte) []byte {
	var out []byte
	for i := 0; i < len(b); {
		if b[i] != 0 {
			out = append(out, b[i])
			i++
			continue
		}
		n := 0
		for i+n < len(b) && b[i+n] == 0 && n < 0xFFFF {
			n++
		}
		out = append(out, 0, byte(n>>8), byte(n))
		i += n
	}
	return out
}

// unpackZeros reverses packZeros for any input, padding the image to the
// seeds' size and stopping at fuzzMaxImage.
func unpackZeros(p []byte) []byte {
	out := make([]byte, 0, fuzzImageSize)
	for i := 0; i < len(p) && len(out) < fuzzMaxImage; i++ {
		if p[i] != 0 {
			out = append(out, p[i])
			continue
		}
		n := 1
		if i+2 < len(p) {
			n = max(1, int(p[i+1])<<8|int(p[i+2]))
			i += 2
		}
		out = append(out, make([]byte, min(n, fuzzMaxImage-len(out)))...)
	}
	if len(out) < fuzzImageSize {
		out = append(out, make([]byte, fuzzImageSize-len(out))...)
	}
	return out
}

// FuzzExt4: an ext4 reader meets only hostile images. Whatever the bytes,
// Walk and reading every file end in data or an error, never a panic, an
// endless loop or an allocation the image does not justify.
func FuzzExt4(f *testing.F) {
	for _, seed := range []string{"fw/ext4-seed.img", "fw/ext4-seed-ext2.img", "fw/ext4-seed-inline.img"} {
		b := fixture.ReadFile(f, seed)
		if p := packZeros(b); !bytes.Equal(unpackZeros(p), b) {
			f.Fatalf("%s does not survive packing its zeros", seed)
		} else {
			f.Add(p)
		}
	}
	lim := pipeline.DefaultLimits()
	lim.MaxEntries = 5000
	lim.MaxFileSize = 256 << 10
	f.Fuzz(func(t *testing.T, packed []byte) {
		fixture.WalkAndRead(t, ext4.Format{}, unpackZeros(packed), lim, 1<<20)
	})
}
