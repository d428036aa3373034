package analyze

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"

	"github.com/fwvet/fwvet/pipeline"
)

// maxInMemory bounds the entries copied into memory for random access;
// larger ones are copied into the work directory.
const maxInMemory = 16 << 20

// sizedReaderAt is an entry's bytes at random offsets.
type sizedReaderAt interface {
	io.ReaderAt
	Size() int64
}

// openAt opens an entry for reading at random offsets: in place when the
// format allows it (squashfs, tar, cpio, stored zip members, directories),
// otherwise through a copy.
func openAt(ctx context.Context, e *pipeline.Entry, workDir string) (sizedReaderAt, func(), error) {
	rc, err := e.Open(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("reading %s: %w", e.Where(), err)
	}
	if ra, ok := rc.(sizedReaderAt); ok {
		return ra, func() { rc.Close() }, nil
	}
	if f, ok := rc.(*os.File); ok {
		return fileAt{f, e.Size}, func() { f.Close() }, nil
	}
	defer rc.Close()
	if e.Size <= maxInMemory {
		b, err := io.ReadAll(io.LimitReader(pipeline.ContextReader(ctx, rc), e.Size+1))
		if err != nil {
			return nil, nil, fmt.Errorf("reading %s: %w", e.Where(), err)
		}
		return bytes.NewReader(b), func() {}, nil
	}
	f, err := os.CreateTemp(workDir, "entry-*")
	if err != nil {
		return nil, nil, fmt.Errorf("copying %s for random access: %w", e.Where(), err)
	}
	cleanup := func() { f.Close(); os.Remove(f.Name()) }
	if _, err := io.Copy(f, io.LimitReader(pipeline.ContextReader(ctx, rc), e.Size)); err != nil {
		cleanup()
		return nil, nil, fmt.Errorf("copying %s for random access: %w", e.Where(), err)
	}
	return fileAt{f, e.Size}, cleanup, nil
}

type fileAt struct {
	*os.File
	size int64
}

func (f fileAt) Size() int64 { return f.size }

// readText reads a small text file whole, up to max bytes.
func readText(ctx context.Context, e *pipeline.Entry, max int64) ([]byte, error) {
	if e == nil || e.Type != pipeline.TypeFile || e.SHA256 == "" {
		return nil, nil
	}
	rc, err := e.Open(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", e.Where(), err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(pipeline.ContextReader(ctx, rc), max))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", e.Where(), err)
	}
	return b, nil
}

// readVersions reads both versions of a changed text file, at most max
// bytes each; a version that does not exist reads as empty.
func readVersions(ctx context.Context, ch *pipeline.Change, max int64) (old, cur []byte, err error) {
	if old, err = readText(ctx, ch.Old, max); err != nil {
		return nil, nil, err
	}
	if cur, err = readText(ctx, ch.New, max); err != nil {
		return nil, nil, err
	}
	return old, cur, nil
}
