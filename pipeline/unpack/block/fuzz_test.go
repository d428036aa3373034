package block

import (
	"bytes"
	"compress/flate"
	"testing"
)

var formats = []string{"zlib", "deflate", "xz"}

// FuzzBlock runs the Go and (in a cgo build) the C decoders on the same
// input: neither may panic or write past the buffer it is given, and when
// both succeed they must give the same bytes.
func FuzzBlock(f *testing.F) {
	p := plain(f, 8192)
	f.Add(uint8(0), uint32(len(p)), zlibOf(f, p, flate.DefaultCompression))
	f.Add(uint8(0), uint32(100), zlibOf(f, p[:100], flate.NoCompression))
	f.Add(uint8(1), uint32(len(p)), deflateOf(f, p, flate.BestSpeed))
	f.Add(uint8(1), uint32(len(p)), deflateOf(f, p, flate.HuffmanOnly))
	f.Add(uint8(2), uint32(len(p)), xzOf(f, p, "--check=crc32", "--lzma2=dict=64KiB"))
	f.Add(uint8(2), uint32(len(p)), xzOf(f, p, "--check=crc64", "--x86", "--lzma2=dict=64KiB"))
	f.Fuzz(func(t *testing.T, format uint8, room uint32, src []byte) {
		const canary = 16
		room %= 1<<20 + 1
		var outs [][]byte
		for _, d := range decoders(formats[int(format)%len(formats)]) {
			buf := make([]byte, int(room)+canary)
			for i := range buf {
				buf[i] = 0xa5
			}
			n, err := d.decode(buf[:room:room], src)
			if !bytes.Equal(buf[room:], bytes.Repeat([]byte{0xa5}, canary)) {
				t.Fatalf("%s wrote past its %d-byte buffer", d.name, room)
			}
			if err != nil {
				continue
			}
			if n < 0 || n > int(room) {
				t.Fatalf("%s reports %d bytes in a %d-byte buffer", d.name, n, room)
			}
			outs = append(outs, buf[:n])
		}
		if len(outs) == 2 && !bytes.Equal(outs[0], outs[1]) {
			t.Fatalf("the decoders disagree: %d and %d bytes", len(outs[0]), len(outs[1]))
		}
	})
}
