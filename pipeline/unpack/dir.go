package unpack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/fwvet/fwvet/pipeline"
)

// dir indexes a directory that holds an unpacked tree. Symlinks are recorded,
// never followed, and every file is opened through an os.Root so that nothing
// outside the directory can be reached, even if the tree changes underneath.
func (r *run) dir(ctx context.Context, art *pipeline.Artifact) error {
	root, err := os.OpenRoot(art.Path)
	if err != nil {
		return fmt.Errorf("opening directory %s: %w", art.Path, err)
	}
	r.closers = append(r.closers, root)
	walk := func(visit func(*pipeline.Header, pipeline.OpenFunc) error) error {
		return fs.WalkDir(root.FS(), ".", func(name string, d fs.DirEntry, err error) error {
			if err != nil {
				return fmt.Errorf("walking %s: %w", path.Join(art.Path, name), err)
			}
			if name == "." {
				return nil
			}
			info, err := d.Info()
			if err != nil {
				return fmt.Errorf("reading %s: %w", path.Join(art.Path, name), err)
			}
			h, err := dirHeader(root, name, info)
			if err != nil {
				return err
			}
			var open pipeline.OpenFunc
			if h.Type == pipeline.TypeFile {
				open = func(context.Context) (io.ReadCloser, error) { return root.Open(name) }
			}
			return visit(h, open)
		})
	}
	in := input{chain: []string{art.Name}, top: true}
	return r.archive(ctx, walk, in, []string{art.Name})
}

func dirHeader(root *os.Root, name string, info fs.FileInfo) (*pipeline.Header, error) {
	h := &pipeline.Header{Name: name, Size: info.Size()}
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return nil, errors.New("directory trees need a Unix file system")
	}
	h.Mode = st.Mode & pipeline.ModePerm
	h.UID, h.GID = st.Uid, st.Gid
	switch st.Mode & syscall.S_IFMT {
	case syscall.S_IFREG:
		h.Type = pipeline.TypeFile
		if st.Nlink > 1 {
			h.Identity = st.Ino
		}
	case syscall.S_IFDIR:
		h.Type = pipeline.TypeDir
	case syscall.S_IFLNK:
		h.Type = pipeline.TypeSymlink
		target, err := root.Readlink(name)
		if err != nil {
			return nil, fmt.Errorf("reading link %s: %w", name, err)
		}
		h.LinkName = target
	case syscall.S_IFCHR, syscall.S_IFBLK:
		h.Type = pipeline.TypeChar
		if st.Mode&syscall.S_IFMT == syscall.S_IFBLK {
			h.Type = pipeline.TypeBlock
		}
		h.Major, h.Minor = unix.Major(st.Rdev), unix.Minor(st.Rdev)
	case syscall.S_IFIFO:
		h.Type = pipeline.TypeFIFO
	case syscall.S_IFSOCK:
		h.Type = pipeline.TypeSocket
	}
	if h.Type != pipeline.TypeFile {
		h.Size = 0
	}
	return h, nil
}
