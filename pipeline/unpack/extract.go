package unpack

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"

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

// Extract writes a tree under dir, for people to look at. dir must be empty
// or absent. Every write goes through an os.Root, so no entry can land
// outside dir whatever its name or the links before it; symlinks are made
// last, so none is ever written through. Setuid, setgid and sticky bits and
// owners are not applied, and device nodes, FIFOs and sockets are not made.
// A nested container's entries go under "<its path>.d/".
func Extract(ctx context.Context, t *pipeline.Tree, dir string) (*ExtractStats, error) {
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
	defer root.Close()
	st := &ExtractStats{}
	var links []*pipeline.Entry
	for _, e := range t.Entries {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		name := outName(e)
		where := "/" + name
		switch e.Type {
		case pipeline.TypeDir:
			if name == "." {
				continue
			}
			if err := root.MkdirAll(name, 0o755); err != nil {
				return st, fmt.Errorf("creating %s: %w", where, err)
			}
			st.Dirs++
		case pipeline.TypeFile:
			if e.SHA256 == "" {
				st.Unreadable = append(st.Unreadable, e.Where())
				continue
			}
			if e.Mode&^0o777 != 0 {
				st.Stripped = append(st.Stripped, fmt.Sprintf("%s (mode %04o)", e.Where(), e.Mode))
			}
			if err := writeFile(ctx, root, name, e); err != nil {
				return st, fmt.Errorf("writing %s: %w", where, err)
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
		if err := root.MkdirAll(path.Dir(name), 0o755); err != nil {
			return st, fmt.Errorf("creating %s: %w", path.Dir("/"+name), err)
		}
		if err := root.Symlink(e.LinkTarget, name); err != nil {
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

func writeFile(ctx context.Context, root *os.Root, name string, e *pipeline.Entry) error {
	if err := root.MkdirAll(path.Dir(name), 0o755); err != nil {
		return err
	}
	rc, err := e.Open(ctx)
	if err != nil {
		return err
	}
	defer rc.Close()
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fs.FileMode(e.Mode&0o777|0o600))
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, io.LimitReader(rc, e.Size)); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
