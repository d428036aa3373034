package source_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/fwvet/fwvet/pipeline/cache"
	"github.com/fwvet/fwvet/pipeline/fixture"
	"github.com/fwvet/fwvet/pipeline/source"
)

// TestPlainHTTPOnlyWhereAllowed: go-containerregistry speaks plain HTTP
// to loopback and private addresses on its own; fwvet does only to a host
// named with --insecure-registry, and otherwise fails naming the host and
// the flag, before any image is read.
func TestPlainHTTPOnlyWhereAllowed(t *testing.T) {
	reg := fixture.StartRegistry(t)
	crane := fixture.Tool(t, "crane")
	ref := reg.Host + "/acme/plain:1"
	fixture.Run(t, crane, "append", "--insecure", "-f", fixture.Tar(t, map[string]string{"etc/os-release": "VERSION_ID=1\n"}), "-t", ref)
	checkPlainHTTP(t, reg.Host, ref, "127.0.0.1")
}

// checkPlainHTTP fetches ref, on a registry that speaks only HTTP at
// host (HOST:PORT), with each --insecure-registry list.
func checkPlainHTTP(t *testing.T, host, ref, bare string) {
	t.Helper()
	for _, tc := range []struct {
		name     string
		insecure []string
		ok       bool
	}{
		{"no flag", nil, false},
		{"another host", []string{"registry.example.com"}, false},
		{"another port", []string{bare + ":1"}, false},
		{"host:port", []string{host}, true},
		{"host, any port", []string{bare}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := cache.Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			r, err := source.NewResolver(source.Options{Cache: c, Insecure: tc.insecure, Retry: remote.Backoff{Duration: 1, Factor: 1, Steps: 1}})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			calls := []struct {
				name string
				call func() error
			}{
				{"fetch", func() error { _, err := r.Fetch(ctx, ref); return err }},
				{"describe", func() error { _, err := r.Describe(ctx, ref); return err }},
				{"platforms", func() error { _, err := r.Platforms(ctx, ref); return err }},
				{"tags", func() error { _, err := r.Tags(ctx, ref[:strings.LastIndex(ref, ":")]); return err }},
			}
			for _, op := range calls {
				err := op.call()
				if tc.ok {
					if err != nil {
						t.Errorf("%s with --insecure-registry %v: %v", op.name, tc.insecure, err)
					}
					continue
				}
				var ie *source.InsecureError
				if !errors.As(err, &ie) || ie.Host != host {
					t.Fatalf("%s without --insecure-registry %s: error %v, want an InsecureError naming %s", op.name, host, err, host)
				}
				t.Logf("%s: %v", op.name, err)
				if msg := err.Error(); !strings.Contains(msg, host) || !strings.Contains(msg, "HTTP is not allowed without --insecure-registry") {
					t.Errorf("%s: error %q does not name the host and the flag", op.name, msg)
				}
			}
		})
	}
}

// TestInsecureRegistryValues: a value that is not HOST or HOST:PORT is an
// error, not a pattern that matches nothing.
func TestInsecureRegistryValues(t *testing.T) {
	c, err := cache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"", "http://127.0.0.1:5000", "127.0.0.1:5000/acme"} {
		if _, err := source.NewResolver(source.Options{Cache: c, Insecure: []string{v}}); err == nil || !strings.Contains(err.Error(), "--insecure-registry") {
			t.Errorf("--insecure-registry %q: %v", v, err)
		}
	}
}
