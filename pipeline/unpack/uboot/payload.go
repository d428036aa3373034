package uboot

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/unpack/compression"
)

// codecs maps the compression names of FIT and uImage to decompressors;
// "lzo" is the lzop file format, as U-Boot's lzop_decompress reads it.
var codecs = map[string]pipeline.Decompressor{
	"gzip":  compression.Gzip{},
	"bzip2": compression.Bzip2{},
	"lzma":  compression.Lzma{},
	"lzo":   compression.Lzop{},
	"lz4":   compression.Lz4{},
	"zstd":  compression.Zstd{},
}

// payload is the bytes of one image: a region of the container as stored,
// decoded by codec ("none" or a key of codecs).
type payload struct {
	r      io.ReaderAt
	off, n int64
	codec  string
}

func (p payload) stored() *io.SectionReader { return io.NewSectionReader(p.r, p.off, p.n) }

// measure reads the stored bytes once, feeding them to the writers (hashes,
// a CRC) and through the decompressor to count the decoded size, up to
// limit+1 bytes. A payload that does not decode is reported in bad; the
// stored bytes are still fed to the writers in full.
func (p payload) measure(ctx context.Context, limit int64, ws ...io.Writer) (size int64, bad error, err error) {
	src := io.TeeReader(pipeline.ContextReader(ctx, p.stored()), io.MultiWriter(ws...))
	if p.codec == "none" {
		if _, err := io.Copy(io.Discard, src); err != nil {
			return 0, nil, err
		}
		return p.n, nil, nil
	}
	d := codecs[p.codec]
	if d == nil {
		bad = fmt.Errorf("compression %q is not supported", p.codec)
	} else if dr, derr := d.NewReader(src); derr != nil {
		bad = derr
	} else {
		size, bad = io.Copy(io.Discard, io.LimitReader(dr, limit+1))
		dr.Close()
	}
	if err := ctx.Err(); err != nil {
		return 0, nil, err
	}
	// Bytes past the end of the compressed stream (a size trailer, padding)
	// still belong to the stored image and its checksums.
	if _, err := io.Copy(io.Discard, src); err != nil {
		return 0, nil, err
	}
	return size, bad, nil
}

// opener returns the payload's bytes, decoded by codec unless codec is
// "none", cut to size.
func (p payload) opener(codec string, size int64) pipeline.OpenFunc {
	if codec == "none" {
		sr := p.stored()
		return pipeline.OpenSection(sr, 0, sr.Size())
	}
	d := codecs[codec]
	return func(context.Context) (io.ReadCloser, error) {
		dr, err := d.NewReader(p.stored())
		if err != nil {
			return nil, err
		}
		return limited{io.LimitReader(dr, size), dr}, nil
	}
}

// entry measures a payload and builds its header and opener. A payload that
// does not decompress is emitted as stored, with the failure as damage.
func (p payload) entry(ctx context.Context, name string, lim pipeline.Limits, ws ...io.Writer) (*pipeline.Header, pipeline.OpenFunc, error) {
	// Counting is bounded by the ratio limit too, so that a bomb costs no
	// more to measure than it would to read.
	bomb := max(lim.RatioMinBytes, int64(lim.MaxRatio*float64(max(p.n, 1))))
	size, bad, err := p.measure(ctx, min(lim.MaxFileSize, bomb), ws...)
	if err != nil {
		return nil, nil, err
	}
	h := &pipeline.Header{Name: name, Type: pipeline.TypeFile, Mode: 0o644, Size: size}
	codec := p.codec
	if bomb < lim.MaxFileSize && size > bomb {
		h.Damage = fmt.Sprintf("%s payload of %d bytes decompresses to more than %d (over %.0f:1): a decompression bomb; not read", p.codec, p.n, bomb, lim.MaxRatio)
		h.Size = lim.MaxFileSize + 1
	}
	if bad != nil {
		h.Damage = fmt.Sprintf("%s payload does not decompress (%v); the entry holds the %d bytes as stored", p.codec, bad, p.n)
		codec, h.Size = "none", p.n
	}
	// Past the limit the size is only known to exceed it, which is all the
	// unpacker needs to refuse reading the entry.
	return h, p.opener(codec, h.Size), nil
}

type limited struct {
	io.Reader
	c io.Closer
}

func (l limited) Close() error { return l.c.Close() }

// cleanName keeps the characters of an image name that are safe and
// readable in a path component and replaces the others with '_'; it returns
// fallback when nothing readable is left.
func cleanName(s, fallback string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', strings.IndexByte("._,+@-", c) >= 0:
			b.WriteByte(c)
		default:
			b.WriteByte('_')
		}
	}
	out := strings.Trim(b.String(), "_")
	if strings.Trim(out, ".") == "" {
		return fallback
	}
	return out
}
