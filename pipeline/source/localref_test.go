package source_test

import (
	"context"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fwvet/fwvet/pipeline/cache"
	"github.com/fwvet/fwvet/pipeline/source"
)

// noNetwork is a registry transport that fails the test if it is used at
// all: dialling (and so resolving a name) happens inside it.
type noNetwork struct{ t *testing.T }

func (n noNetwork) RoundTrip(req *http.Request) (*http.Response, error) {
	n.t.Errorf("registry request %s %s: a local path was sent to a registry", req.Method, req.URL)
	return nil, errors.New("no network in this test")
}

// TestLocalPathsNeverRegistry: a reference that can only name a local path
// and does not exist is a missing file, never a registry lookup of ".",
// ".." or a directory's name.
func TestLocalPathsNeverRegistry(t *testing.T) {
	root := t.TempDir()
	wd := filepath.Join(root, "a", "b")
	for _, d := range []string{filepath.Join(wd, "out.v2"), filepath.Join(wd, "build.local:5000")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Chdir(wd)
	c, err := cache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r, err := source.NewResolver(source.Options{Cache: c, Transport: noNetwork{t}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, ref := range []string{
		"./missing.bin",
		"../../etc/passwd",
		"./registry.example.com/acme/fw:1",
		filepath.Join(root, "missing.bin"),
		"/registry.example.com/acme/fw:1",
		"out.v2/fw.bin",
		"out.v2/acme/fw:1",
		"build.local:5000/acme/fw:1",
	} {
		t.Run(ref, func(t *testing.T) {
			for _, op := range []struct {
				name string
				call func() error
			}{
				{"fetch", func() error { _, err := r.Fetch(ctx, ref); return err }},
				{"describe", func() error { _, err := r.Describe(ctx, ref); return err }},
				{"platforms", func() error { _, err := r.Platforms(ctx, ref); return err }},
			} {
				err := op.call()
				if op.name == "platforms" {
					if err != nil {
						t.Errorf("%s: %v, want no platforms and no error", op.name, err)
					}
					continue
				}
				var le *source.LocalError
				if !errors.As(err, &le) || !errors.Is(err, fs.ErrNotExist) || err.Error() != "no such file: "+ref {
					t.Errorf("%s: error %v, want a LocalError %q", op.name, err, "no such file: "+ref)
				}
			}
		})
	}
}

// TestDotHostsNeverRegistry: even with the registry: prefix, "." and ".."
// name no registry; nothing is looked up.
func TestDotHostsNeverRegistry(t *testing.T) {
	c, err := cache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r, err := source.NewResolver(source.Options{Cache: c, Transport: noNetwork{t}})
	if err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{"registry:./missing.bin", "registry:../etc/passwd", "registry:./registry.example.com/acme/fw:1"} {
		if _, err := r.Fetch(context.Background(), ref); err == nil || !strings.Contains(err.Error(), "not a registry host") {
			t.Errorf("%s: %v, want a path refused as a registry host", ref, err)
		}
	}
}

// TestLocalPathKind: which references are local paths whether they exist
// or not.
func TestLocalPathKind(t *testing.T) {
	t.Chdir(t.TempDir())
	if err := os.Mkdir("out.v2", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile("fw.v2", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		ref   string
		local bool
	}{
		{"./x", true},
		{"../x", true},
		{"/x", true},
		{".", true},
		{"..", true},
		{"out.v2/fw.bin", true},
		{"out.v2", false},  // no "/": an existing directory is found by Lstat, a missing name is refused by parse
		{"fw.v2/x", false}, // a file, not a directory
		{"registry.example.com/acme/fw:1", false},
		{"127.0.0.1:5000/acme/fw:1", false},
	} {
		if got := source.IsLocalPath(tc.ref); got != tc.local {
			t.Errorf("IsLocalPath(%q) = %v, want %v", tc.ref, got, tc.local)
		}
	}
}
