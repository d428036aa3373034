package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/fwvet/fwvet/pipeline"
)

// Tar reads POSIX, GNU and v7 tar archives.
type Tar struct{}

var _ pipeline.Container = Tar{}

// Name implements pipeline.Format.
func (Tar) Name() string { return "tar" }

// Match implements pipeline.Format: a first header block whose checksum is
// right, with the ustar magic or, for v7 archives, a plausible type.
func (Tar) Match(head []byte) bool {
	if len(head) < 512 {
		return false
	}
	h := head[:512]
	want, err := strconv.ParseUint(string(bytes.Trim(h[148:156], " \x00")), 8, 32)
	if err != nil {
		return false
	}
	var sum uint64
	for i, b := range h {
		if i >= 148 && i < 156 {
			b = ' '
		}
		sum += uint64(b)
	}
	if sum != want || h[0] == 0 {
		return false
	}
	if bytes.HasPrefix(h[257:], []byte("ustar")) {
		return true
	}
	return h[156] == 0 || (h[156] >= '0' && h[156] <= '7')
}

// Walk implements pipeline.Container. Entry data is opened in place from r;
// a sparse entry is opened by reading the archive again up to it.
func (Tar) Walk(ctx context.Context, r io.ReaderAt, size int64, lim pipeline.Limits, visit func(*pipeline.Header, pipeline.OpenFunc) error) error {
	sr := io.NewSectionReader(r, 0, size)
	tr := tar.NewReader(sr)
	// A file whose bytes lie in one piece is its offset, not a closure: a
	// root file system's tar of a million entries would hold a million.
	at := pipeline.SectionAt(r)
	for index := 0; ; index++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		th, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("tar entry %d: %w", index, err)
		}
		h := &pipeline.Header{
			Name: th.Name, Mode: uint32(th.Mode) & pipeline.ModePerm, UID: uint32(th.Uid), GID: uint32(th.Gid),
			Size: th.Size, LinkName: th.Linkname, Major: uint32(th.Devmajor), Minor: uint32(th.Devminor),
		}
		var open pipeline.OpenFunc
		switch th.Typeflag {
		case tar.TypeReg, tar.TypeCont:
			h.Type = pipeline.TypeFile
		case tar.TypeLink:
			h.Type, h.HardLink, h.Size = pipeline.TypeFile, true, 0
		case tar.TypeSymlink:
			h.Type, h.Size = pipeline.TypeSymlink, 0
		case tar.TypeChar:
			h.Type = pipeline.TypeChar
		case tar.TypeBlock:
			h.Type = pipeline.TypeBlock
		case tar.TypeDir:
			h.Type = pipeline.TypeDir
		case tar.TypeFifo:
			h.Type = pipeline.TypeFIFO
		case tar.TypeXGlobalHeader:
			continue
		case tar.TypeGNUSparse:
			h.Type = pipeline.TypeFile
		default:
			h.Type = pipeline.EntryType(fmt.Sprintf("tar-type-%q", th.Typeflag))
		}
		if h.Type == pipeline.TypeFile && !h.HardLink {
			if off, ok := inPlace(sr, th); ok {
				h.OpenAt, h.Locator = at, uint64(off)
			} else {
				open = sparseOpener(r, size, index)
			}
		}
		if err := visit(h, open); err != nil {
			return err
		}
	}
}

// inPlace returns where the entry's data lies when it lies in one piece:
// sparse entries scatter it.
func inPlace(sr *io.SectionReader, th *tar.Header) (int64, bool) {
	if th.Typeflag == tar.TypeGNUSparse || hasSparse(th) {
		return 0, false
	}
	off, err := sr.Seek(0, io.SeekCurrent)
	return off, err == nil
}

// sparseOpener opens a sparse entry, whose data is scattered, by reading
// the archive again up to the entry.
func sparseOpener(r io.ReaderAt, size int64, index int) pipeline.OpenFunc {
	return func(ctx context.Context) (io.ReadCloser, error) {
		tr := tar.NewReader(io.NewSectionReader(r, 0, size))
		for i := 0; i <= index; i++ {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			if _, err := tr.Next(); err != nil {
				return nil, fmt.Errorf("tar entry %d: %w", index, err)
			}
		}
		return io.NopCloser(tr), nil
	}
}

func hasSparse(th *tar.Header) bool {
	for k := range th.PAXRecords {
		if len(k) > 11 && k[:11] == "GNU.sparse." {
			return true
		}
	}
	return false
}
