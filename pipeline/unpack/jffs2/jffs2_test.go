package jffs2_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/fixture"
	"github.com/fwvet/fwvet/pipeline/unpack/jffs2"
)

// node is one entry as the source tree or an image holds it.
type node struct {
	typ          pipeline.EntryType
	mode         uint32
	uid, gid     uint32
	size         int64
	link         string
	major, minor uint32
	sha          string
	id           uint64 // Identity in an image, the inode number in the source
	damage       string
}

// sourceTree reads the tree mkfs.jffs2 was given, through lstat.
func sourceTree(t *testing.T) map[string]node {
	t.Helper()
	root := fixture.Path(t, "stage/formats")
	out := map[string]node{}
	err := filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		n := node{mode: st.Mode & 0o7777, uid: st.Uid, gid: st.Gid, id: st.Ino}
		switch st.Mode & syscall.S_IFMT {
		case syscall.S_IFDIR:
			n.typ = pipeline.TypeDir
		case syscall.S_IFREG:
			n.typ, n.size = pipeline.TypeFile, st.Size
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			s := sha256.Sum256(b)
			n.sha = hex.EncodeToString(s[:])
		case syscall.S_IFLNK:
			n.typ = pipeline.TypeSymlink
			if n.link, err = os.Readlink(p); err != nil {
				return err
			}
		case syscall.S_IFCHR, syscall.S_IFBLK:
			n.typ = pipeline.TypeChar
			if st.Mode&syscall.S_IFMT == syscall.S_IFBLK {
				n.typ = pipeline.TypeBlock
			}
			n.major, n.minor = uint32(st.Rdev>>8&0xfff), uint32(st.Rdev&0xff|st.Rdev>>12&0xfff00)
		case syscall.S_IFIFO:
			n.typ = pipeline.TypeFIFO
		case syscall.S_IFSOCK:
			n.typ = pipeline.TypeSocket
		}
		out[filepath.ToSlash(rel)] = n
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// walkImage walks an image and reads every file through its OpenFunc.
func walkImage(t *testing.T, rel string, lim pipeline.Limits) (map[string]node, error) {
	t.Helper()
	f, err := os.Open(fixture.Path(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]node{}
	var opens []func() error
	err = jffs2.Format{}.Walk(context.Background(), f, st.Size(), lim, func(h *pipeline.Header, open pipeline.OpenFunc) error {
		if _, dup := out[h.Name]; dup {
			t.Errorf("%s listed twice", h.Name)
		}
		out[h.Name] = node{typ: h.Type, mode: h.Mode, uid: h.UID, gid: h.GID, size: h.Size, link: h.LinkName,
			major: h.Major, minor: h.Minor, id: h.Identity, damage: h.Damage}
		if h.Type == pipeline.TypeFile {
			if open == nil {
				t.Errorf("%s: a file without an OpenFunc", h.Name)
				return nil
			}
			name := h.Name
			// Read after Walk returns, as the unpacker may.
			opens = append(opens, func() error {
				rc, err := open(context.Background())
				if err != nil {
					return err
				}
				defer rc.Close()
				s := sha256.New()
				if _, err := io.Copy(s, rc); err != nil {
					return err
				}
				n := out[name]
				n.sha = hex.EncodeToString(s.Sum(nil))
				out[name] = n
				return nil
			})
		}
		return nil
	})
	for _, o := range opens {
		if rerr := o(); rerr != nil && err == nil {
			err = rerr
		}
	}
	return out, err
}

var cleanImages = []string{
	"fw/jffs2-le-128k.img", "fw/jffs2-be-64k.img", "fw/jffs2-le-pad.img",
	"fw/jffs2-le-none.img", "fw/jffs2-le-lzo.img", "fw/jffs2-be-rtime.img",
}

// TestWalkMatchesSource: every image lists exactly the source tree, with
// types, modes (setuid and setgid too), owners, sizes, link targets, device
// numbers and contents, and hard links share an Identity.
func TestWalkMatchesSource(t *testing.T) {
	want := sourceTree(t)
	for _, img := range cleanImages {
		t.Run(filepath.Base(img), func(t *testing.T) {
			got, err := walkImage(t, img, pipeline.DefaultLimits())
			if err != nil {
				t.Fatal(err)
			}
			root, ok := got["."]
			if !ok || root.typ != pipeline.TypeDir || root.damage != "" {
				t.Errorf("root = %+v", root)
			}
			delete(got, ".")
			idOf := map[uint64]uint64{} // source inode -> image Identity
			for p, w := range want {
				g, ok := got[p]
				if !ok {
					t.Errorf("%s missing", p)
					continue
				}
				if g.damage != "" {
					t.Errorf("%s: damage %q on a clean image", p, g.damage)
				}
				wid := w.id
				w.id, g.id = 0, 0 // compared apart below
				if g != w {
					t.Errorf("%s:\n got %+v\nwant %+v", p, g, w)
				}
				if w.typ == pipeline.TypeFile {
					gid := got[p].id
					if gid == 0 {
						t.Errorf("%s: zero Identity", p)
					}
					if prev, seen := idOf[wid]; seen && prev != gid {
						t.Errorf("%s: hard link with Identity %d, its other link has %d", p, gid, prev)
					}
					idOf[wid] = gid
				}
			}
			for p := range got {
				if _, ok := want[p]; !ok {
					t.Errorf("%s listed but not in the source", p)
				}
			}
			ids := map[uint64]bool{}
			for _, id := range idOf {
				if ids[id] {
					t.Errorf("Identity %d shared by different inodes", id)
				}
				ids[id] = true
			}
			if got["etc/issue"].id != got["etc/banner"].id {
				t.Error("the hard links /etc/issue and /etc/banner differ in Identity")
			}
		})
	}
}
