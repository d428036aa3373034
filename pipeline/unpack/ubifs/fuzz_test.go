package ubifs_test

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"testing"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/fixture"
	"github.com/fwvet/fwvet/pipeline/unpack/ubifs"
)

// fuzzLEB is the LEB size of the seed image (mkfs.ubifs -e 16384).
const fuzzLEB = 16384

// packLEBs drops the erased (0xFF) tail of every LEB and prefixes each with
// its length. Even the smallest UBIFS image is ~200 KiB, nearly all of it
// erased flash, and the fuzzer minimizes each new input: at that size it
// spends its time there instead of running the reader.
func packLEBs(img []byte) []byte {
	var out []byte
	for off := 0; off < len(img); off += fuzzLEB {
		leb := bytes.TrimRight(img[off:min(off+fuzzLEB, len(img))], "\xff")
		out = binary.LittleEndian.AppendUint16(out, uint16(len(leb)))
		out = append(out, leb...)
	}
	return out
}

// unpackLEBs undoes packLEBs, for at most 64 LEBs, whatever the bytes.
func unpackLEBs(data []byte) []byte {
	var img []byte
	for n := 0; len(data) >= 2 && n < 64; n++ {
		k := min(int(binary.LittleEndian.Uint16(data)), len(data)-2, fuzzLEB)
		leb := bytes.Repeat([]byte{0xff}, fuzzLEB)
		copy(leb, data[2:2+k])
		img = append(img, leb...)
		data = data[2+k:]
	}
	return img
}

// FuzzUBIFS: a UBIFS reader meets only hostile images. Whatever the bytes,
// Walk and reading every file end in data or an error, never a panic, an
// endless loop or an allocation the image does not justify.
func FuzzUBIFS(f *testing.F) {
	f.Add(packLEBs(fixture.ReadFile(f, "fw/ubifs-tiny.ubifs")))
	lim := pipeline.DefaultLimits()
	lim.MaxEntries = 5000
	lim.MaxFileSize = 8 << 20
	f.Fuzz(func(t *testing.T, packed []byte) {
		data := unpackLEBs(packed)
		fixture.WalkAndRead(t, ubifs.Format{}, data, lim, 16<<20)
		// Most mutations only break a CRC; with the CRCs made right again
		// the fuzzer reaches the parsing behind them.
		fixture.WalkAndRead(t, ubifs.Format{}, fixCRCs(data), lim, 16<<20)
	})
}

// fixCRCs sets the CRC of every node whose header fits in its LEB.
func fixCRCs(img []byte) []byte {
	for off := 0; off+24 <= len(img); off += 8 {
		if binary.LittleEndian.Uint32(img[off:]) != 0x06101831 {
			continue
		}
		n := int(binary.LittleEndian.Uint32(img[off+16:]))
		if n >= 24 && off%fuzzLEB+n <= fuzzLEB && off+n <= len(img) {
			binary.LittleEndian.PutUint32(img[off+4:], ^crc32.ChecksumIEEE(img[off+8:off+n]))
		}
	}
	return img
}

// TestPackLEBs: the fuzz seed, unpacked, is the image it came from.
func TestPackLEBs(t *testing.T) {
	b := fixture.ReadFile(t, "fw/ubifs-tiny.ubifs")
	if !bytes.Equal(unpackLEBs(packLEBs(b)), b) {
		t.Fatal("unpackLEBs(packLEBs(image)) is not the image")
	}
	t.Logf("seed: %d bytes packed from %d", len(packLEBs(b)), len(b))
}
