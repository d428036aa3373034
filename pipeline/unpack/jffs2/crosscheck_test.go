package jffs2_test

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/fixture"
	"github.com/fwvet/fwvet/pipeline/unpack/jffs2"
)

// TestJffs2reader cross-checks the little-endian images against mtd-utils'
// jffs2reader: each directory's listing (names, ls-style modes, owners,
// symlink targets) and the contents of the files it reads right.
//
// jffs2reader has bugs of its own, so the check avoids them: it ignores a
// dirent of version 0 (mkfs.jffs2 writes the first one, /bin, so), it
// assembles files of more than one node wrongly and prints the first
// node's size, it reads neither big-endian images nor lzo, and it prints
// device numbers wrongly.
func TestJffs2reader(t *testing.T) {
	if _, err := exec.LookPath("jffs2reader"); err != nil {
		t.Fatal("jffs2reader (Debian package mtd-utils) is not installed")
	}
	for _, img := range []string{"fw/jffs2-le-128k.img", "fw/jffs2-le-none.img"} {
		t.Run(img, func(t *testing.T) {
			path := fixture.Path(t, img)
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			st, _ := f.Stat()
			type ent struct {
				h    pipeline.Header
				open pipeline.OpenFunc
			}
			var ents []ent
			err = jffs2.Format{}.Walk(context.Background(), f, st.Size(), pipeline.DefaultLimits(), func(h *pipeline.Header, open pipeline.OpenFunc) error {
				ents = append(ents, ent{*h, h.Opener(open)})
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			listings := map[string][]string{} // dir -> our lines
			compared := 0
			for _, e := range ents {
				if e.h.Name == "." || e.h.Name == "bin" || strings.HasPrefix(e.h.Name, "bin/") {
					continue
				}
				dir, _ := splitDir(e.h.Name)
				line := lsMode(e.h) + " " + itoa(e.h.UID) + " " + itoa(e.h.GID) + " /" + e.h.Name
				if e.h.Type == pipeline.TypeSymlink {
					line += " -> " + e.h.LinkName
				}
				listings[dir] = append(listings[dir], line)
				if e.h.Type == pipeline.TypeFile && e.h.Size < 4096 {
					out, err := exec.Command("jffs2reader", path, "-f", "/"+e.h.Name).Output()
					if err != nil {
						t.Errorf("jffs2reader -f /%s: %v", e.h.Name, err)
						continue
					}
					rc, err := e.open(context.Background())
					if err != nil {
						t.Fatal(err)
					}
					ours, err := io.ReadAll(rc)
					rc.Close()
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(ours, out) {
						t.Errorf("/%s: %d bytes differ from jffs2reader's %d", e.h.Name, len(ours), len(out))
					}
					compared++
				}
			}
			if compared < 30 {
				t.Errorf("only %d files compared with jffs2reader", compared)
			}
			for dir, lines := range listings {
				if dir == "" {
					continue // the root listing lacks /bin, see above
				}
				out, err := exec.Command("jffs2reader", path, "-d", "/"+dir).Output()
				if err != nil {
					t.Errorf("jffs2reader -d /%s: %v", dir, err)
					continue
				}
				theirs := parseListing(string(out))
				if strings.Join(theirs, "\n") != strings.Join(sorted(lines), "\n") {
					t.Errorf("listing of /%s:\n ours %q\ntheirs %q", dir, sorted(lines), theirs)
				}
			}
		})
	}
}

func splitDir(p string) (string, string) {
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return "", p
	}
	return p[:i], p[i+1:]
}

func itoa(n uint32) string { return strconv.FormatUint(uint64(n), 10) }

func sorted(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

// parseListing keeps mode, owner, group, path and link target of
// jffs2reader's lines: "MODE NLINK UID GID SIZE PATH[/| ] [-> TARGET]".
// A device's size is "MAJOR, MINOR", two fields.
func parseListing(s string) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		f := strings.Fields(l)
		if len(f) < 6 {
			continue
		}
		p := 5
		if strings.HasSuffix(f[4], ",") {
			p = 6
		}
		name := strings.TrimRight(f[p], "/|")
		line := f[0] + " " + f[2] + " " + f[3] + " " + name
		if len(f) > p+2 && f[p+1] == "->" {
			line += " -> " + f[p+2]
		}
		out = append(out, line)
	}
	return sorted(out)
}

// lsMode renders a mode as ls -l does.
func lsMode(h pipeline.Header) string {
	kind := map[pipeline.EntryType]byte{pipeline.TypeDir: 'd', pipeline.TypeSymlink: 'l', pipeline.TypeChar: 'c',
		pipeline.TypeBlock: 'b', pipeline.TypeFIFO: 'p', pipeline.TypeSocket: 's'}[h.Type]
	if kind == 0 {
		kind = '-'
	}
	b := []byte{kind}
	m := fs.FileMode(h.Mode & 0o777).String()[1:]
	b = append(b, m...)
	set := func(i int, bit uint32, on, off byte) {
		if h.Mode&bit != 0 {
			if b[i] == 'x' {
				b[i] = on
			} else {
				b[i] = off
			}
		}
	}
	set(3, 0o4000, 's', 'S')
	set(6, 0o2000, 's', 'S')
	set(9, 0o1000, 't', 'T')
	return string(b)
}
