package unpack

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/fwvet/fwvet/pipeline"
)

// TestNames: a path is found at its slot, and an ancestor that is not a
// directory is found, the outermost first; the path itself, a directory,
// a sibling with the same prefix and a path replaced by a directory are
// not. With every path hashing the same, the answers are the same.
func TestNames(t *testing.T) {
	for _, mask := range []uint64{^uint64(0), 0} {
		// The records: a path and a type each, ids their positions.
		var paths []string
		var types []pipeline.EntryType
		n := newNames(func(id uint32, p string) bool { return paths[id] == p })
		n.mask = mask
		add := func(p string, typ pipeline.EntryType) {
			paths, types = append(paths, p), append(types, typ)
			s := nameSlot{id: uint32(len(paths) - 1), file: -1, dir: typ == pipeline.TypeDir}
			if i, ok := n.lookup(p); ok {
				n.replace(i, s)
				return
			}
			n.add(p, s)
		}
		add("/www", pipeline.TypeSymlink)
		add("/www/cgi-bin/admin", pipeline.TypeFile)
		add("/etc", pipeline.TypeFile)
		add("/etc", pipeline.TypeDir)
		add("/usr", pipeline.TypeDir)
		for _, tt := range []struct {
			path, want string
		}{
			{"/www/index.html", "/www"},
			{"/www/cgi-bin/admin/x", "/www"},
			{"/www", ""},
			{"/wwwroot/index.html", ""},
			{"/etc/passwd", ""},
			{"/usr/bin/x", ""},
			{"/", ""},
		} {
			got, ok := n.ancestor(tt.path)
			if ok != (tt.want != "") || ok && paths[got.id] != tt.want {
				t.Errorf("mask %x: ancestor(%q) = %v, %v; want %q", mask, tt.path, got, ok, tt.want)
			}
		}
		for i, p := range []string{"/www", "/www/cgi-bin/admin", "/etc", "/usr"} {
			if j, ok := n.lookup(p); !ok || j != i || paths[n.slots[j].id] != p {
				t.Errorf("mask %x: lookup(%q) = %d, %v; want slot %d", mask, p, j, ok, i)
			}
		}
		if _, ok := n.lookup("/var"); ok {
			t.Errorf("mask %x: /var found", mask)
		}
		if s := n.slots[2]; types[s.id] != pipeline.TypeDir || !s.dir {
			t.Errorf("mask %x: /etc is %s, want the directory that replaced it", mask, types[s.id])
		}
	}
}

// deepTar is a tar of n regular files, each under its own chain of depth
// directories (one name of about 4 KiB each), after one symlink /l.
func deepTar(tb testing.TB, n, depth int) []byte {
	var b bytes.Buffer
	w := tar.NewWriter(&b)
	w.WriteHeader(&tar.Header{Name: "l", Typeflag: tar.TypeSymlink, Linkname: "/etc", Mode: 0o777})
	seg := strings.Repeat("d/", depth)
	for i := range n {
		name := fmt.Sprintf("%sf%d", seg, i)
		if err := w.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: 0}); err != nil {
			tb.Fatal(err)
		}
	}
	w.WriteHeader(&tar.Header{Name: "l/passwd", Typeflag: tar.TypeReg, Mode: 0o644})
	w.Close()
	return b.Bytes()
}

// TestDeepNames: names of 2,000 levels are indexed, and a write through
// the symlink is still refused.
func TestDeepNames(t *testing.T) {
	tree := unpackBytes(t, deepTar(t, 200, 2000))
	defer tree.Close()
	if tree.Len() != 201 {
		t.Errorf("%d entries, want the symlink and 200 files", tree.Len())
	}
	refused := false
	for _, p := range tree.Problems {
		refused = refused || p.Path == "/l/passwd" && strings.Contains(p.Reason, "goes through /l")
	}
	if !refused {
		t.Errorf("the write through /l was not refused: %+v", tree.Problems)
	}
}

// BenchmarkDeepNames: indexing a tar of 2,000 files whose names are 2,000
// levels deep. Each ancestor is looked up in one pass over the name; a
// lookup per ancestor (path.Dir, then the map) took quadratic time in the
// name.
func BenchmarkDeepNames(b *testing.B) {
	data := deepTar(b, 2000, 2000)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		unpackBytes(b, data).Close()
	}
}

func unpackBytes(tb testing.TB, data []byte) *pipeline.Tree {
	tb.Helper()
	u, err := New(Options{Limits: pipeline.DefaultLimits(), WorkDir: tb.TempDir()})
	if err != nil {
		tb.Fatal(err)
	}
	dir := tb.TempDir()
	p := dir + "/deep.tar"
	if err := os.WriteFile(p, data, 0o644); err != nil {
		tb.Fatal(err)
	}
	tree, err := u.Unpack(context.Background(), &pipeline.Artifact{Name: "deep.tar", Path: p, Size: int64(len(data))})
	if err != nil {
		tb.Fatal(err)
	}
	return tree
}

// TestLinksReadWhatTheyName: a hard link reads its target's bytes and has
// their digest; when a later entry replaces the target, the link keeps
// the bytes it was made to ("T=evil; L->T; T=benign" leaves the evil
// bytes at L after an extractor), is read itself and reported with them,
// not left unread behind a collision.
func TestLinksReadWhatTheyName(t *testing.T) {
	var b bytes.Buffer
	w := tar.NewWriter(&b)
	file := func(name, body string) {
		w.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(body))})
		w.Write([]byte(body))
	}
	link := func(name, target string) {
		w.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeLink, Linkname: target, Mode: 0o755})
	}
	file("bin/busybox", "busybox 1.36.1")
	link("bin/sh", "bin/busybox")
	link("bin/ash", "bin/sh") // a link to a link
	file("sbin/telnetd", "evil telnetd listening on 9530")
	link("usr/sbin/telnetd", "sbin/telnetd")
	file("sbin/telnetd", "benign stub")
	w.Close()
	tree := unpackBytes(t, b.Bytes())
	defer tree.Close()
	sum := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
	for _, tt := range []struct{ path, body string }{
		{"/bin/busybox", "busybox 1.36.1"},
		{"/bin/sh", "busybox 1.36.1"},
		{"/bin/ash", "busybox 1.36.1"},
		{"/sbin/telnetd", "benign stub"},
		{"/usr/sbin/telnetd", "evil telnetd listening on 9530"},
	} {
		e := tree.Lookup(tt.path)
		if e == nil {
			t.Fatalf("%s is not indexed", tt.path)
		}
		if e.SHA256 != sum(tt.body) || e.Size != int64(len(tt.body)) || !e.Readable() {
			t.Errorf("%s: digest %s, size %d, readable %v; want the digest of %q", tt.path, e.SHA256, e.Size, e.Readable(), tt.body)
			continue
		}
		rc, err := e.Open(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(rc)
		rc.Close()
		if string(got) != tt.body {
			t.Errorf("%s opens %q, want %q", tt.path, got, tt.body)
		}
	}
	if len(tree.Problems) != 1 || !strings.Contains(tree.Problems[0].Reason, "collides") {
		t.Errorf("problems = %+v, want the one collision", tree.Problems)
	}
}
