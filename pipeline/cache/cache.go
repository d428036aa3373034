// Package cache is fwvet's local, content-addressed cache: file digests
// remembered by file identity so an image is hashed once, and per-run work
// directories that are removed when the run ends.
package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/fwvet/fwvet/pipeline"
)

// Cache is a directory of cached data.
type Cache struct {
	dir string
}

// DefaultDir is $XDG_CACHE_HOME/fwvet, or ~/.cache/fwvet.
func DefaultDir() (string, error) {
	dir := os.Getenv("XDG_CACHE_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("finding the cache directory: %w", err)
		}
		dir = filepath.Join(home, ".cache")
	}
	return filepath.Join(dir, "fwvet"), nil
}

// Open opens (creating) the cache in dir.
func Open(dir string) (*Cache, error) {
	for _, sub := range []string{"digests", "work"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return nil, fmt.Errorf("creating cache %s: %w", dir, err)
		}
	}
	return &Cache{dir: dir}, nil
}

// Dir is the cache directory.
func (c *Cache) Dir() string { return c.dir }

// WorkDir creates a fresh work directory for one run; remove deletes it and
// everything in it.
func (c *Cache) WorkDir() (dir string, remove func() error, err error) {
	dir, err = os.MkdirTemp(filepath.Join(c.dir, "work"), "run-")
	if err != nil {
		return "", nil, fmt.Errorf("creating work directory: %w", err)
	}
	return dir, func() error { return os.RemoveAll(dir) }, nil
}

// FileDigest returns "sha256:<hex>" of a regular file, hashing it only when
// the cache holds no digest for this file as it is now (same device, inode,
// size, modification and change times).
func (c *Cache) FileDigest(ctx context.Context, path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("%s is not a regular file", path)
	}
	key := identity(path, st)
	memo := ""
	if key != "" {
		memo = filepath.Join(c.dir, "digests", key)
		if b, err := os.ReadFile(memo); err == nil && strings.HasPrefix(string(b), "sha256:") && len(b) == 71 {
			return string(b), nil
		}
	}
	h := sha256.New()
	if _, err := io.Copy(h, pipeline.ContextReader(ctx, f)); err != nil {
		return "", fmt.Errorf("hashing %s: %w", path, err)
	}
	d := "sha256:" + hex.EncodeToString(h.Sum(nil))
	if memo != "" {
		// A failed memo only costs a rehash next time.
		tmp := memo + ".tmp"
		if os.WriteFile(tmp, []byte(d), 0o600) == nil {
			_ = os.Rename(tmp, memo)
		}
	}
	return d, nil
}

func identity(path string, st os.FileInfo) string {
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return ""
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return ""
	}
	s := fmt.Sprintf("%s\x00%d\x00%d\x00%d\x00%d.%d\x00%d.%d", abs, sys.Dev, sys.Ino, st.Size(),
		sys.Mtim.Sec, sys.Mtim.Nsec, sys.Ctim.Sec, sys.Ctim.Nsec)
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// DigestMismatchError reports bytes that do not hash to the digest they
// were fetched as.
type DigestMismatchError struct {
	Want, Got string
}

func (e *DigestMismatchError) Error() string {
	return fmt.Sprintf("digest mismatch: expected %s, the bytes hash to %s", e.Want, e.Got)
}

// blobPath maps "sha256:<hex>" to its place in the cache, refusing anything
// that is not a SHA-256 digest (a digest names a file here).
func (c *Cache) blobPath(digest string) (string, error) {
	hexPart, ok := strings.CutPrefix(digest, "sha256:")
	if !ok || len(hexPart) != 64 || strings.Trim(hexPart, "0123456789abcdef") != "" {
		return "", fmt.Errorf("%q is not a sha256 digest", digest)
	}
	return filepath.Join(c.dir, "blobs", "sha256", hexPart), nil
}

// Blob returns the path of a cached blob, or "" if it is not cached.
func (c *Cache) Blob(digest string) (string, error) {
	p, err := c.blobPath(digest)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(p); err != nil {
		return "", nil
	}
	return p, nil
}

// PutBlob streams r into the cache as the blob named by digest, checking the
// bytes against the digest (and size, when not negative) as they arrive. A
// blob that does not match is not kept: the error is a
// *DigestMismatchError. Concurrent puts of one blob are safe.
func (c *Cache) PutBlob(ctx context.Context, digest string, size int64, r io.Reader) (string, error) {
	p, err := c.blobPath(digest)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return "", fmt.Errorf("caching %s: %w", digest, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".part-*")
	if err != nil {
		return "", fmt.Errorf("caching %s: %w", digest, err)
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), pipeline.ContextReader(ctx, r))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("caching %s: %w", digest, err)
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != digest {
		return "", &DigestMismatchError{Want: digest, Got: got}
	}
	if size >= 0 && n != size {
		return "", fmt.Errorf("caching %s: %d bytes, the manifest says %d", digest, n, size)
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		return "", fmt.Errorf("caching %s: %w", digest, err)
	}
	return p, nil
}

// ImageDir is the directory that holds what was made of one image (by
// manifest digest): its flattened root file system or its firmware files.
func (c *Cache) ImageDir(digest string) (string, error) {
	p, err := c.blobPath(digest)
	if err != nil {
		return "", err
	}
	return filepath.Join(c.dir, "images", filepath.Base(p)), nil
}
