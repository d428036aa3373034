package archive

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"strings"
	"sync"

	"github.com/klauspost/compress/flate"

	"github.com/fwvet/fwvet/pipeline"
)

// Zip reads zip archives.
type Zip struct{}

var _ pipeline.Container = Zip{}

// Name implements pipeline.Format.
func (Zip) Name() string { return "zip" }

// Match implements pipeline.Format: a local file header, or the end record
// of an empty archive.
func (Zip) Match(head []byte) bool {
	return bytes.HasPrefix(head, []byte("PK\x03\x04")) || bytes.HasPrefix(head, []byte("PK\x05\x06"))
}

const creatorUnix = 3

// Walk implements pipeline.Container. Unix modes, setuid included, are read
// from the external attributes; names are taken as they are, with
// backslashes read as separators the way many extractors do, so that a
// "..\" traversal is caught like a "../" one.
func (Zip) Walk(ctx context.Context, r io.ReaderAt, size int64, lim pipeline.Limits, visit func(*pipeline.Header, pipeline.OpenFunc) error) error {
	zr, err := zip.NewReader(r, size)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return err
	}
	for i, f := range zr.File {
		if err := ctx.Err(); err != nil {
			return err
		}
		h := &pipeline.Header{Name: strings.ReplaceAll(f.Name, `\`, "/"), Size: int64(f.UncompressedSize64)}
		if f.UncompressedSize64 > 1<<62 {
			return fmt.Errorf("zip entry %d (%q) declares an impossible size", i, f.Name)
		}
		unixMode := f.ExternalAttrs >> 16
		if f.CreatorVersion>>8 == creatorUnix && unixMode != 0 {
			h.Mode = unixMode & pipeline.ModePerm
			switch unixMode & 0o170000 {
			case 0o040000:
				h.Type = pipeline.TypeDir
			case 0o120000:
				h.Type = pipeline.TypeSymlink
			case 0o100000, 0:
				h.Type = pipeline.TypeFile
			default:
				h.Type = pipeline.EntryType(fmt.Sprintf("zip-mode-%o", unixMode&0o170000))
			}
		} else {
			m := f.Mode()
			h.Mode = uint32(m.Perm())
			h.Type = pipeline.TypeFile
			if m&fs.ModeDir != 0 {
				h.Type = pipeline.TypeDir
			}
		}
		if strings.HasSuffix(h.Name, "/") {
			h.Type = pipeline.TypeDir
		}
		var open pipeline.OpenFunc
		switch h.Type {
		case pipeline.TypeDir:
			h.Size = 0
		case pipeline.TypeSymlink:
			if h.Size > int64(lim.MaxPathLen) {
				return fmt.Errorf("zip entry %q: symlink target of %d bytes", f.Name, h.Size)
			}
			target, err := readZipEntry(f, h.Size)
			if err != nil {
				return fmt.Errorf("zip entry %q: reading symlink target: %w", f.Name, err)
			}
			h.LinkName, h.Size = string(target), 0
		case pipeline.TypeFile:
			open = zipOpener(r, f)
		}
		if err := visit(h, open); err != nil {
			return err
		}
	}
	return nil
}

// zipOpener opens an entry from where its data lies, with nothing of the
// archive's directory: an index keeps the openers of every nested archive
// until the tree is closed, and a *zip.File would keep the whole central
// directory of each (a jar in /usr holds thousands of entries) alive with
// it. Nor does it keep the entry's name, which its reader's caller
// already gives with every error.
func zipOpener(r io.ReaderAt, f *zip.File) pipeline.OpenFunc {
	method := f.Method
	csize, usize, crc := int64(f.CompressedSize64), int64(f.UncompressedSize64), f.CRC32
	off, err := f.DataOffset()
	switch {
	case err != nil:
		return func(context.Context) (io.ReadCloser, error) {
			return nil, fmt.Errorf("zip entry: finding its data: %w", err)
		}
	case method == zip.Store && csize == usize:
		return pipeline.OpenSection(r, off, usize)
	case method == zip.Store, method == zip.Deflate:
	default:
		return func(context.Context) (io.ReadCloser, error) {
			return nil, fmt.Errorf("zip entry: %w (method %d)", zip.ErrAlgorithm, method)
		}
	}
	return func(context.Context) (io.ReadCloser, error) {
		z := &zipReader{src: io.NopCloser(io.NewSectionReader(r, off, csize)), left: usize, crc: crc, hash: crc32.NewIEEE()}
		if method == zip.Deflate {
			z.src, z.pooled = inflater(io.NewSectionReader(r, off, csize)), true
		}
		return z, nil
	}
}

// zipReader checks an entry's size and CRC-32 against its directory
// record, as archive/zip does.
type zipReader struct {
	src    io.ReadCloser
	pooled bool // src came from inflaters and goes back on Close
	left   int64
	crc    uint32
	hash   hash.Hash32
}

// inflaters keeps inflaters for reuse, as archive/zip does: each holds a
// 32 KiB window, and the jars of a /usr image hold 150,000 deflated
// entries, each read once to be hashed. Made afresh, they were most of the
// bytes the collector handled, and, allocated while it marked, counted as
// live.
var inflaters sync.Pool

func inflater(r io.Reader) io.ReadCloser {
	if fr, ok := inflaters.Get().(io.ReadCloser); ok {
		if err := fr.(flate.Resetter).Reset(r, nil); err == nil {
			return fr
		}
	}
	return flate.NewReader(r)
}

func (z *zipReader) Read(p []byte) (int, error) {
	if z.src == nil {
		return 0, os.ErrClosed
	}
	if z.left == 0 {
		// The entry must end here.
		var one [1]byte
		if n, _ := z.src.Read(one[:]); n > 0 {
			return 0, fmt.Errorf("zip entry: %w: more data than its directory record says", zip.ErrFormat)
		}
		if z.crc != 0 && z.hash.Sum32() != z.crc {
			return 0, fmt.Errorf("zip entry: %w", zip.ErrChecksum)
		}
		return 0, io.EOF
	}
	if int64(len(p)) > z.left {
		p = p[:z.left]
	}
	n, err := z.src.Read(p)
	z.hash.Write(p[:n])
	z.left -= int64(n)
	if err == io.EOF {
		if z.left > 0 {
			return n, fmt.Errorf("zip entry: %w: %w", zip.ErrFormat, io.ErrUnexpectedEOF)
		}
		err = nil
	}
	if err != nil {
		return n, fmt.Errorf("zip entry: %w", err)
	}
	return n, nil
}

func (z *zipReader) Close() error {
	if z.src == nil {
		return nil
	}
	err := z.src.Close()
	if z.pooled {
		inflaters.Put(z.src)
	}
	z.src = nil
	return err
}

func readZipEntry(f *zip.File, n int64) ([]byte, error) {
	rc, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b := make([]byte, n)
	if _, err := io.ReadFull(rc, b); err != nil {
		return nil, err
	}
	return b, nil
}
