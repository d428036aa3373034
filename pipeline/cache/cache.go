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
