package block

import (
	"bytes"
	"compress/flate"
	"compress/zlib"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/fwvet/fwvet/pipeline/fixture"
)

// decoder is one implementation of one format.
type decoder struct {
	name   string
	decode func(dst, src []byte) (int, error)
}

// decoders gives the Go decoders of a format, and the C ones when this
// build has them, so that both are held to the same table.
func decoders(format string) []decoder {
	var ds []decoder
	switch format {
	case "zlib":
		ds = append(ds, decoder{"go", goZlib})
	case "deflate":
		ds = append(ds, decoder{"go", goDeflate})
	case "xz":
		ds = append(ds, decoder{"go", goXZ})
	}
	if Native {
		ds = append(ds, decoder{"native", map[string]func(dst, src []byte) (int, error){"zlib": zlibImpl, "deflate": deflateImpl, "xz": xzImpl}[format]})
	}
	return ds
}

// plain is up to one squashfs block of real content: the head of a Debian
// busybox, whose code and strings compress as firmware does.
func plain(t testing.TB, n int) []byte {
	b := fixture.ReadFile(t, "stage/1.0.0/bin/busybox")
	if len(b) < n {
		t.Fatalf("busybox has %d bytes, %d wanted", len(b), n)
	}
	return b[:n]
}

func zlibOf(t testing.TB, p []byte, level int) []byte {
	return compress(t, p, func(w io.Writer) (io.WriteCloser, error) { return zlib.NewWriterLevel(w, level) })
}

func deflateOf(t testing.TB, p []byte, level int) []byte {
	return compress(t, p, func(w io.Writer) (io.WriteCloser, error) { return flate.NewWriter(w, level) })
}

// compress writes p through the standard library's encoder, a third
// implementation beside the two decoders.
func compress(t testing.TB, p []byte, newWriter func(io.Writer) (io.WriteCloser, error)) []byte {
	var b bytes.Buffer
	w, err := newWriter(&b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(p); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// xzOf compresses p with the xz tool, as mksquashfs's xz compressor does
// with liblzma: one stream, one block.
func xzOf(t testing.TB, p []byte, opts ...string) []byte {
	in := filepath.Join(t.TempDir(), "in")
	if err := os.WriteFile(in, p, 0o644); err != nil {
		t.Fatal(err)
	}
	fixture.Run(t, fixture.Tool(t, "xz"), append(append([]string{"-k", "-q"}, opts...), in)...)
	out, err := os.ReadFile(in + ".xz")
	if err != nil {
		t.Fatal(err)
	}
	return out
}

type blockCase struct {
	name   string
	format string
	plain  []byte
	comp   []byte
}

func cases(t *testing.T) []blockCase {
	full, small := plain(t, 128<<10), plain(t, 3000)
	var cs []blockCase
	for _, lv := range []struct {
		name  string
		level int
	}{{"stored", flate.NoCompression}, {"fast", flate.BestSpeed}, {"default", flate.DefaultCompression}, {"best", flate.BestCompression}, {"huffman", flate.HuffmanOnly}} {
		cs = append(cs, blockCase{"zlib-" + lv.name, "zlib", full, zlibOf(t, full, lv.level)},
			blockCase{"deflate-" + lv.name, "deflate", full, deflateOf(t, full, lv.level)})
	}
	cs = append(cs, blockCase{"zlib-small", "zlib", small, zlibOf(t, small, 9)}, blockCase{"deflate-empty", "deflate", []byte{}, deflateOf(t, nil, 9)})
	for _, x := range []struct {
		name string
		opts []string
	}{
		{"crc32", []string{"--check=crc32", "--lzma2=dict=128KiB"}},
		{"crc64", []string{"--check=crc64", "--lzma2=dict=1MiB"}},
		{"sha256", []string{"--check=sha256", "--lzma2=dict=64KiB"}},
		{"nocheck", []string{"--check=none", "--lzma2=dict=128KiB"}},
		{"x86", []string{"--check=crc32", "--x86", "--lzma2=dict=128KiB"}},
		{"arm", []string{"--check=crc32", "--arm", "--lzma2=dict=128KiB"}},
		{"armthumb", []string{"--check=crc32", "--armthumb", "--lzma2=dict=128KiB"}},
		{"powerpc", []string{"--check=crc32", "--powerpc", "--lzma2=dict=128KiB"}},
		{"sparc", []string{"--check=crc32", "--sparc", "--lzma2=dict=128KiB"}},
		{"ia64", []string{"--check=crc32", "--ia64", "--lzma2=dict=128KiB"}},
	} {
		cs = append(cs, blockCase{"xz-" + x.name, "xz", full, xzOf(t, full, x.opts...)})
	}
	return cs
}

// TestDecode: each decoder gives back the block exactly, in a buffer of its
// exact size or larger, and refuses a buffer one byte short.
func TestDecode(t *testing.T) {
	for _, c := range cases(t) {
		for _, d := range decoders(c.format) {
			t.Run(c.name+"/"+d.name, func(t *testing.T) {
				for _, room := range []int{len(c.plain), len(c.plain) + 1, 1 << 20} {
					dst := make([]byte, room)
					n, err := d.decode(dst, c.comp)
					if err != nil {
						t.Fatalf("into %d bytes: %v", room, err)
					}
					if !bytes.Equal(dst[:n], c.plain) {
						t.Fatalf("into %d bytes: %d bytes differ from the %d compressed", room, n, len(c.plain))
					}
				}
				if len(c.plain) == 0 {
					return
				}
				if _, err := d.decode(make([]byte, len(c.plain)-1), c.comp); !errors.Is(err, ErrTooLong) {
					t.Errorf("into one byte less: %v, want ErrTooLong", err)
				}
			})
		}
	}
}

// TestDamage: truncated, corrupted and checksum-broken blocks, empty input
// and a dictionary over XZDictMax are errors, never short output.
func TestDamage(t *testing.T) {
	var bad []blockCase
	for _, c := range cases(t) {
		if c.name != "zlib-default" && c.name != "deflate-default" && c.name != "xz-crc32" && c.name != "xz-x86" {
			continue
		}
		bad = append(bad,
			blockCase{c.name + "-truncated", c.format, nil, c.comp[:len(c.comp)/2]},
			blockCase{c.name + "-empty", c.format, nil, nil})
		// Raw deflate has no check: a changed byte may decode to other bytes.
		if c.format != "deflate" {
			bad = append(bad, blockCase{c.name + "-corrupt", c.format, nil, flip(c.comp, len(c.comp)/3)})
			// zlib ends in the Adler-32; xz in the index, its CRC32 and a
			// footer of 12 bytes.
			at := len(c.comp) - 1
			if c.format == "xz" {
				at = len(c.comp) - 12 - 4 - 1
			}
			bad = append(bad, blockCase{c.name + "-tail", c.format, nil, flip(c.comp, at)})
		}
	}
	p := plain(t, 4096)
	bad = append(bad, blockCase{"xz-dict-4MiB", "xz", nil, xzOf(t, p, "--lzma2=dict=4MiB")},
		blockCase{"xz-garbage-head", "xz", nil, append([]byte("garbage"), xzOf(t, p)...)})
	for _, c := range bad {
		for _, d := range decoders(c.format) {
			t.Run(c.name+"/"+d.name, func(t *testing.T) {
				n, err := d.decode(make([]byte, 1<<20), c.comp)
				if err == nil {
					t.Fatalf("decoded %d bytes without an error", n)
				}
				if errors.Is(err, ErrTooLong) {
					t.Fatalf("damage reported as too long: %v", err)
				}
			})
		}
	}
}

func flip(b []byte, at int) []byte {
	c := bytes.Clone(b)
	c[at] ^= 0x55
	return c
}
