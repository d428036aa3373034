package compression_test

import (
	"bytes"
	"io"
	"testing"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/fixture"
	"github.com/fwvet/fwvet/pipeline/unpack/compression"
)

// streams pairs each stream format with the tiny tar compressed by its own
// tool (scripts/mkfixtures).
var streams = []struct {
	seed string
	d    pipeline.Decompressor
}{
	{"fw/tiny.tar.gz", compression.Gzip{}}, {"fw/tiny.tar.xz", compression.Xz{}}, {"fw/tiny.tar.zst", compression.Zstd{}},
	{"fw/tiny.tar.bz2", compression.Bzip2{}}, {"fw/tiny.tar.lzma", compression.Lzma{}}, {"fw/tiny.tar.lzo", compression.Lzop{}},
	{"fw/tiny.tar.lz4", compression.Lz4{}}, {"fw/tiny-legacy.tar.lz4", compression.Lz4{}},
}

// TestStreamsGiveTheTar: every format's decompressor matches its tool's
// output and gives back the very tar that went in.
func TestStreamsGiveTheTar(t *testing.T) {
	want := fixture.ReadFile(t, "fw/tiny.tar")
	for _, s := range streams {
		in := fixture.ReadFile(t, s.seed)
		if !s.d.Match(in[:min(len(in), pipeline.MatchSize)]) {
			t.Errorf("%s: %s does not match", s.seed, s.d.Name())
			continue
		}
		rc, err := s.d.NewReader(bytes.NewReader(in))
		if err != nil {
			t.Errorf("%s: %v", s.seed, err)
			continue
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: %d bytes (%v), want the %d of tiny.tar", s.seed, len(got), err, len(want))
		}
	}
}

// FuzzDecompress: every stream format meets only hostile bytes. Whatever
// they are, Match and reading the stream end in data or an error, never a
// panic, an endless loop or an allocation the input does not justify. The
// first byte picks the format, so one corpus serves them all.
func FuzzDecompress(f *testing.F) {
	for i, s := range streams {
		f.Add(append([]byte{byte(i)}, fixture.ReadFile(f, s.seed)...))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		d := streams[int(data[0])%len(streams)].d
		in := data[1:]
		d.Match(in[:min(len(in), pipeline.MatchSize)])
		rc, err := d.NewReader(bytes.NewReader(in))
		if err != nil {
			return
		}
		defer rc.Close()
		io.Copy(io.Discard, io.LimitReader(rc, 8<<20))
	})
}
