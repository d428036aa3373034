// Package source turns references into artifacts: local files and
// directories, named directly or as file:PATH and dir:PATH.
package source

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/cache"
)

// Local fetches local files and directories.
type Local struct {
	Cache *cache.Cache
	// NoDigest leaves a file's Digest empty (see Options.NoLocalDigest).
	NoDigest bool
}

var _ pipeline.Fetcher = (*Local)(nil)

// ErrUnsupportedRef is returned for reference forms this build cannot fetch.
var ErrUnsupportedRef = errors.New("reference form not supported by this build")

// LocalError is a local file or directory that is missing or cannot be
// read. A reference that can only name a local path (see IsLocalPath) and
// does not exist is one, never a registry lookup.
type LocalError struct {
	Ref string
	Err error
}

func (e *LocalError) Error() string {
	if errors.Is(e.Err, fs.ErrNotExist) {
		return "no such file: " + e.Ref
	}
	return fmt.Sprintf("cannot read %s: %v", e.Ref, e.Err)
}

func (e *LocalError) Unwrap() error { return e.Err }

func localError(ref string, err error) error {
	return &LocalError{Ref: ref, Err: err}
}

// Fetch implements pipeline.Fetcher. A file's digest is its SHA-256; a
// directory's digest is computed from its tree once it is unpacked.
func (l *Local) Fetch(ctx context.Context, ref string) (*pipeline.Artifact, error) {
	kind, p := "", ref
	switch {
	case strings.HasPrefix(ref, "file:"):
		kind, p = "file", strings.TrimPrefix(ref, "file:")
	case strings.HasPrefix(ref, "dir:"):
		kind, p = "dir", strings.TrimPrefix(ref, "dir:")
	case strings.HasPrefix(ref, "oci-dir:"), strings.HasPrefix(ref, "docker-archive:"), strings.HasPrefix(ref, "registry:"):
		scheme, _, _ := strings.Cut(ref, ":")
		return nil, fmt.Errorf("%s: references are not supported yet: %w", scheme, ErrUnsupportedRef)
	}
	if p == "" {
		return nil, errors.New("empty path")
	}
	st, err := os.Stat(p)
	if err != nil {
		return nil, localError(ref, err)
	}
	art := &pipeline.Artifact{Ref: ref, Name: filepath.Base(filepath.Clean(p)), Path: p}
	switch {
	case st.IsDir():
		if kind == "file" {
			return nil, fmt.Errorf("%s is a directory, not a file", p)
		}
		art.IsDir, art.MediaType = true, "inode/directory"
	case st.Mode().IsRegular():
		if kind == "dir" {
			return nil, fmt.Errorf("%s is a file, not a directory", p)
		}
		art.Size, art.MediaType = st.Size(), "application/octet-stream"
		if l.NoDigest {
			break
		}
		if art.Digest, err = l.Cache.FileDigest(ctx, p); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("%s is neither a regular file nor a directory", p)
	}
	return art, nil
}
