package compression_test

import (
	"os"
	"testing"

	"github.com/fwvet/fwvet/pipeline/fixture"
	"github.com/fwvet/fwvet/pipeline/unpack/compression"
)

func TestLzop(t *testing.T) {
	testDecompress(t, []decompressCase{
		{"uboot-payload.lzo", compression.Lzop{}},
		{"uboot-payload-crc32.lzo", compression.Lzop{}},
	})
}

// A flipped byte in the data of a block fails its checksum or its decoding;
// a flipped byte in the header fails the header checksum.
func TestLzopDamage(t *testing.T) {
	for _, file := range []string{"uboot-payload.lzo", "uboot-payload-crc32.lzo"} {
		in, err := os.ReadFile(fixture.Path(t, "fw/"+file))
		if err != nil {
			t.Fatal(err)
		}
		for _, off := range []int{20, 5000, len(in) - 100} {
			bad := append([]byte(nil), in...)
			bad[off] ^= 0x55
			if _, err := decompress(compression.Lzop{}, bad); err == nil {
				t.Errorf("%s with byte %d flipped decompressed without an error", file, off)
			} else {
				t.Logf("%s byte %d: %v", file, off, err)
			}
		}
	}
}
