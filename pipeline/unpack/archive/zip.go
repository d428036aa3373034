package archive

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"

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

func zipOpener(r io.ReaderAt, f *zip.File) pipeline.OpenFunc {
	if f.Method == zip.Store && f.CompressedSize64 == f.UncompressedSize64 {
		if off, err := f.DataOffset(); err == nil {
			n := int64(f.UncompressedSize64)
			return pipeline.OpenSection(r, off, n)
		}
	}
	return func(context.Context) (io.ReadCloser, error) { return f.Open() }
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
