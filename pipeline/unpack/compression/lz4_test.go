package compression_test

import (
	"testing"

	"github.com/fwvet/fwvet/pipeline/unpack/compression"
)

func TestLz4(t *testing.T) {
	testDecompress(t, []decompressCase{
		{"uboot-payload.lz4", compression.Lz4{}},
		{"uboot-payload-legacy.lz4", compression.Lz4{}},
	})
}

// The kernel appends its uncompressed size to a legacy stream; the word
// ends the stream rather than failing it.
func TestLz4LegacyTrailer(t *testing.T) {
	in := []byte{0x02, 0x21, 0x4c, 0x18, 6, 0, 0, 0, 0x50, 'h', 'e', 'l', 'l', 'o', 5, 0, 0, 0}
	got, err := decompress(compression.Lz4{}, in)
	if err != nil || string(got) != "hello" {
		t.Fatalf("got %q, %v", got, err)
	}
}
