package archive

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
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
	d, err := findDir(r, size)
	if err != nil {
		return fmt.Errorf("reading the end of the central directory: %w", err)
	}
	at := func(_ context.Context, loc uint64, _ int64) (io.ReadCloser, error) {
		if loc < uint64(d.off) || loc >= uint64(d.end) {
			return nil, fmt.Errorf("zip directory record at %d lies outside the archive", loc)
		}
		return openRecord(r, d, int64(loc))
	}
	var buf []byte
	off, end := d.off, d.end
	for i := int64(0); i < d.count; i++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		var f cdEntry
		loc := off
		if f, off, buf, err = readRecord(r, off, end, buf); err != nil {
			return fmt.Errorf("zip entry %d: %w", i, err)
		}
		h := &pipeline.Header{Name: strings.ReplaceAll(f.name, `\`, "/"), Size: f.usize}
		if f.usize > 1<<62 {
			return fmt.Errorf("zip entry %d (%q) declares an impossible size", i, f.name)
		}
		h.Type, h.Mode = zipType(f)
		switch h.Type {
		case pipeline.TypeDir:
			h.Size = 0
		case pipeline.TypeSymlink:
			if h.Size > int64(lim.MaxPathLen) {
				return fmt.Errorf("zip entry %q: symlink target of %d bytes", f.name, h.Size)
			}
			target, err := readZipEntry(r, d, f, h.Size)
			if err != nil {
				return fmt.Errorf("zip entry %q: reading symlink target: %w", f.name, err)
			}
			h.LinkName, h.Size = string(target), 0
		case pipeline.TypeFile:
			h.OpenAt, h.Locator = at, uint64(loc)
		}
		if err := visit(h, nil); err != nil {
			return err
		}
	}
	return nil
}

// zipType is the entry's type and permission bits as archive/zip's
// FileHeader.Mode gives them, but that a Unix record's mode is kept whole,
// setuid included, and an unknown Unix type is named.
func zipType(f cdEntry) (pipeline.EntryType, uint32) {
	const (
		creatorFAT, creatorNTFS, creatorVFAT, creatorMacOSX = 0, 11, 14, 19
		msdosDir, msdosReadOnly                             = 0x10, 0x01
	)
	typ, mode := pipeline.TypeFile, uint32(0)
	unixMode := f.extAttrs >> 16
	switch creator := f.creator >> 8; {
	case creator == creatorUnix && unixMode != 0:
		mode = unixMode & pipeline.ModePerm
		switch unixMode & 0o170000 {
		case 0o040000:
			typ = pipeline.TypeDir
		case 0o120000:
			typ = pipeline.TypeSymlink
		case 0o100000, 0:
		default:
			typ = pipeline.EntryType(fmt.Sprintf("zip-mode-%o", unixMode&0o170000))
		}
	case creator == creatorUnix || creator == creatorMacOSX:
		mode = unixMode & 0o777
		if unixMode&0o170000 == 0o040000 {
			typ = pipeline.TypeDir
		}
	case creator == creatorFAT || creator == creatorNTFS || creator == creatorVFAT:
		mode = 0o666
		if f.extAttrs&msdosDir != 0 {
			typ, mode = pipeline.TypeDir, 0o777
		}
		if f.extAttrs&msdosReadOnly != 0 {
			mode &^= 0o222
		}
	}
	if strings.HasSuffix(f.name, "/") || strings.HasSuffix(f.name, `\`) {
		typ = pipeline.TypeDir
	}
	return typ, mode
}

// openEntry opens an entry from where its data lies, with nothing of the
// archive's directory.
func openEntry(r io.ReaderAt, d zipDir, f cdEntry) (io.ReadCloser, error) {
	off, err := dataOffset(r, d, f)
	if err != nil {
		return nil, fmt.Errorf("zip entry: finding its data: %w", err)
	}
	switch {
	case f.method == zip.Store && f.csize == f.usize:
		return pipeline.OpenSection(r, off, f.usize)(context.Background())
	case f.method == zip.Store, f.method == zip.Deflate:
	default:
		return nil, fmt.Errorf("zip entry: %w (method %d)", zip.ErrAlgorithm, f.method)
	}
	z := &zipReader{src: io.NopCloser(io.NewSectionReader(r, off, f.csize)), left: f.usize, crc: f.crc, hash: crc32.NewIEEE()}
	if f.method == zip.Deflate {
		z.src, z.pooled = inflater(io.NewSectionReader(r, off, f.csize)), true
	}
	return z, nil
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

func readZipEntry(r io.ReaderAt, d zipDir, f cdEntry, n int64) ([]byte, error) {
	rc, err := openEntry(r, d, f)
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
