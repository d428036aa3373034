package unpack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"sync"

	"github.com/fwvet/fwvet/pipeline"
)

// ExtractStats counts what Extract wrote and what it deliberately did not.
type ExtractStats struct {
	Files, Dirs, Symlinks int
	// Nodes are device nodes, FIFOs and sockets: listed, never created.
	Nodes []string
	// Stripped are files whose setuid, setgid or sticky bit was not applied.
	Stripped []string
	// Unreadable are files whose bytes could not be read while unpacking.
	Unreadable []string
}

// Extractor writes a tree under a directory, for people to look at. Every
// write goes through an os.Root, so no entry can land outside the directory
// whatever its name or the links before it; symlinks are made last, so none
// is ever written through. Setuid, setgid and sticky bits and owners are
// not applied, and device nodes, FIFOs and sockets are not made. A nested
// container's entries go under "<its path>.d/".
//
// Given to the Unpacker as Options.Sink, it receives each file's bytes as
// they are hashed, so extracting costs no second decompression; Finish
// then writes what is left (directories, hard links, symlinks).
type Extractor struct {
	root    *os.Root
	written sync.Map // entry key -> true, for files written while hashing

	// dirs holds the directories files were created in, opened once: an
	// os.Root resolves a path one component at a time, and doing that for
	// every file of a large image costs more than writing it. At most
	// maxOpenDirs are kept open, and they are used only under mu.
	mu   sync.Mutex
	dirs map[string]*os.Root
}

// maxOpenDirs bounds the directories an Extractor keeps open: an image of
// a million directories must not exhaust file descriptors.
const maxOpenDirs = 256

// NewExtractor opens dir, which must be empty or absent.
func NewExtractor(dir string) (*Extractor, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating %s: %w", dir, err)
	}
	if ents, err := os.ReadDir(dir); err != nil {
		return nil, fmt.Errorf("reading %s: %w", dir, err)
	} else if len(ents) > 0 {
		return nil, fmt.Errorf("%s is not empty; extract into a new directory", dir)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	return &Extractor{root: root, dirs: map[string]*os.Root{}}, nil
}

// Close releases the directory.
func (x *Extractor) Close() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, d := range x.dirs {
		d.Close()
	}
	x.dirs = nil
	return x.root.Close()
}

// inDir runs fn on the directory that holds name, created with its parents
// if need be, and name's last element.
func (x *Extractor) inDir(name string, fn func(d *os.Root, base string) error) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	d, err := x.dirLocked(path.Dir(name))
	if err != nil {
		return err
	}
	return fn(d, path.Base(name))
}

func (x *Extractor) dirLocked(name string) (*os.Root, error) {
	if name == "." || name == "" {
		return x.root, nil
	}
	if d, ok := x.dirs[name]; ok {
		return d, nil
	}
	parent, err := x.dirLocked(path.Dir(name))
	if err != nil {
		return nil, err
	}
	base := path.Base(name)
	if err := parent.Mkdir(base, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("creating /%s: %w", name, err)
	}
	d, err := parent.OpenRoot(base)
	if err != nil {
		return nil, fmt.Errorf("opening /%s: %w", name, err)
	}
	if len(x.dirs) >= maxOpenDirs {
		// Files come in directory order, so starting afresh costs little;
		// the parents are opened again as they are needed.
		for k, od := range x.dirs {
			od.Close()
			delete(x.dirs, k)
		}
	}
	x.dirs[name] = d
	return d, nil
}

// Create implements Sink.
func (x *Extractor) Create(e *pipeline.Entry) (io.WriteCloser, error) {
	name := outName(e)
	var f *os.File
	err := x.inDir(name, func(d *os.Root, base string) (err error) {
		f, err = d.OpenFile(base, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, fs.FileMode(e.Mode&0o777|0o600))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("writing /%s: %w", name, err)
	}
	x.written.Store(e.Key, true)
	return f, nil
}

// Link implements Sink: a hard link of one inode is a hard link again.
func (x *Extractor) Link(e, first *pipeline.Entry) error {
	if _, ok := x.written.Load(first.Key); !ok {
		return nil
	}
	name := outName(e)
	err := x.inDir(name, func(*os.Root, string) error { return x.root.Link(outName(first), name) })
	if err != nil {
		return fmt.Errorf("linking /%s: %w", name, err)
	}
	x.written.Store(e.Key, true)
	return nil
}

// Extract writes a tree under dir, which must be empty or absent; see Extractor.
func Extract(ctx context.Context, t *pipeline.Tree, dir string) (*ExtractStats, error) {
	x, err := NewExtractor(dir)
	if err != nil {
		return nil, err
	}
	defer x.Close()
	return x.Finish(ctx, t)
}

// Finish writes what the tree holds and was not written while hashing.
func (x *Extractor) Finish(ctx context.Context, t *pipeline.Tree) (*ExtractStats, error) {
	st := &ExtractStats{}
	var links []*pipeline.Entry
	for e := range t.All() {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		name := outName(e)
		where := "/" + name
		_, written := x.written.Load(e.Key)
		switch e.Type {
		case pipeline.TypeDir:
			if name == "." {
				continue
			}
			x.mu.Lock()
			_, err := x.dirLocked(name)
			x.mu.Unlock()
			if err != nil {
				return st, err
			}
			st.Dirs++
		case pipeline.TypeFile:
			if !e.Readable() {
				// What was written before the read failed is not the file.
				if written {
					x.root.Remove(name)
				}
				st.Unreadable = append(st.Unreadable, e.Where())
				continue
			}
			if e.Mode&^0o777 != 0 {
				st.Stripped = append(st.Stripped, fmt.Sprintf("%s (mode %04o)", e.Where(), e.Mode))
			}
			if !written {
				if err := x.writeFile(ctx, name, e); err != nil {
					return st, fmt.Errorf("writing %s: %w", where, err)
				}
			}
			st.Files++
		case pipeline.TypeSymlink:
			links = append(links, e)
		default:
			st.Nodes = append(st.Nodes, fmt.Sprintf("%s (%s %d:%d)", e.Where(), e.Type, e.Major, e.Minor))
		}
	}
	for _, e := range links {
		name := outName(e)
		err := x.inDir(name, func(d *os.Root, base string) error { return d.Symlink(e.LinkTarget, base) })
		if err != nil {
			return st, fmt.Errorf("creating symlink /%s: %w", name, err)
		}
		st.Symlinks++
	}
	return st, nil
}

// outName is where an entry goes under the extraction directory.
func outName(e *pipeline.Entry) string {
	parts := strings.Split(e.Key, "\x00")
	for i := 0; i < len(parts)-1; i++ {
		parts[i] = strings.TrimPrefix(parts[i], "/") + ".d"
	}
	parts[len(parts)-1] = strings.TrimPrefix(parts[len(parts)-1], "/")
	name := path.Join(parts...)
	if name == "" {
		return "."
	}
	return name
}

func (x *Extractor) writeFile(ctx context.Context, name string, e *pipeline.Entry) error {
	rc, err := e.Open(ctx)
	if err != nil {
		return err
	}
	defer rc.Close()
	var f *os.File
	err = x.inDir(name, func(d *os.Root, base string) (err error) {
		f, err = d.OpenFile(base, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fs.FileMode(e.Mode&0o777|0o600))
		return err
	})
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, io.LimitReader(rc, e.Size)); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
