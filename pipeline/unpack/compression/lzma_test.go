package compression_test

import (
	"bytes"
	"io"
	"os"
	"testing"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/fixture"
	"github.com/fwvet/fwvet/pipeline/unpack/compression"
)

// decompressCase: a file made by the real tool decompresses to the payload
// it was made from, and its first half fails with an error.
type decompressCase struct {
	file string
	d    pipeline.Decompressor
}

func testDecompress(t *testing.T, cases []decompressCase) {
	t.Helper()
	want, err := os.ReadFile(fixture.Path(t, "fw/uboot-payload"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			in, err := os.ReadFile(fixture.Path(t, "fw/"+c.file))
			if err != nil {
				t.Fatal(err)
			}
			if !c.d.Match(in[:min(len(in), pipeline.MatchSize)]) {
				t.Fatalf("%s does not match its own output", c.d.Name())
			}
			got, err := decompress(c.d, in)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("decompressed %d bytes differ from the %d byte original", len(got), len(want))
			}
			if _, err := decompress(c.d, in[:len(in)/2]); err == nil {
				t.Fatal("the first half decompressed without an error")
			} else {
				t.Logf("truncated: %v", err)
			}
			for _, n := range []int{0, 3, 12, 20} {
				if _, err := decompress(c.d, in[:n]); err == nil {
					t.Errorf("the first %d bytes decompressed without an error", n)
				}
			}
		})
	}
}

func decompress(d pipeline.Decompressor, in []byte) ([]byte, error) {
	r, err := d.NewReader(bytes.NewReader(in))
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

func TestLzma(t *testing.T) {
	testDecompress(t, []decompressCase{{"uboot-payload.lzma", compression.Lzma{}}})
}

func TestLzmaMatch(t *testing.T) {
	for _, c := range []struct {
		name string
		head []byte
		want bool
	}{
		{"xz default", []byte{0x5d, 0, 0, 0x80, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, true},
		{"known size", []byte{0x5d, 0, 0, 0, 1, 0x10, 0, 0, 0, 0, 0, 0, 0}, true},
		{"3 MiB dictionary", []byte{0x5d, 0, 0, 0x30, 0, 0x10, 0, 0, 0, 0, 0, 0, 0}, true},
		{"bad properties", []byte{0xe1, 0, 0, 0x80, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, false},
		{"odd dictionary", []byte{0x5d, 1, 0, 0x80, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, false},
		{"2 GiB dictionary", []byte{0x5d, 0, 0, 0, 0x80, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, false},
		{"huge size", []byte{0x5d, 0, 0, 0x80, 0, 0, 0, 0, 0, 0, 0x10, 0, 0}, false},
		{"short", []byte{0x5d, 0, 0, 0x80}, false},
		{"text", []byte("#!/bin/sh\necho hi\n"), false},
	} {
		if got := (compression.Lzma{}).Match(c.head); got != c.want {
			t.Errorf("%s: Match = %v, want %v", c.name, got, c.want)
		}
	}
}

// A header that declares a 1 GiB dictionary and no size is refused before
// the decoder allocates it.
func TestLzmaDictBound(t *testing.T) {
	in := []byte{0x5d, 0, 0, 0, 0x40, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}
	if _, err := (compression.Lzma{}).NewReader(bytes.NewReader(in)); err == nil {
		t.Fatal("a 1 GiB dictionary was accepted")
	} else {
		t.Log(err)
	}
}
