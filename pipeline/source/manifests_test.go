package source

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// manifestServer serves body for every manifest request, except 404 for
// "missing", and counts the requests that reach it.
func manifestServer(t *testing.T, body func(ref string) string) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		ref := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
		if ref == "missing" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
		io.WriteString(w, body(ref))
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

func get(t *testing.T, rt http.RoundTripper, url string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func digestOf(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(sum[:])
}

func TestManifestCache(t *testing.T) {
	const manifest = `{"schemaVersion":2}`
	big := strings.Repeat("x", maxCachedManifest+10)
	srv, hits := manifestServer(t, func(ref string) string {
		if ref == "big" || ref == digestOf(big) {
			return big
		}
		return manifest
	})
	rt := newManifestCache(http.DefaultTransport)
	base := srv.URL + "/v2/acme/rt/manifests/"

	for _, tc := range []struct {
		name     string
		ref      string
		wantHits int64 // server requests after this step
		wantBody string
		wantCode int
	}{
		{"a tag goes to the registry", "1.0", 1, manifest, 200},
		{"its digest is answered from memory", digestOf(manifest), 1, manifest, 200},
		{"a tag always goes to the registry", "1.0", 2, manifest, 200},
		{"an error is not kept", "missing", 3, "404 page not found\n", 404},
		{"an error is asked again", "missing", 4, "404 page not found\n", 404},
		{"a manifest too large to keep is passed on whole", "big", 5, big, 200},
		{"and is not kept", digestOf(big), 6, big, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := get(t, rt, base+tc.ref)
			if code != tc.wantCode || body != tc.wantBody {
				t.Errorf("got %d %.40q, want %d %.40q", code, body, tc.wantCode, tc.wantBody)
			}
			if got := hits.Load(); got != tc.wantHits {
				t.Errorf("registry asked %d times, want %d", got, tc.wantHits)
			}
		})
	}
	// Another repository's path with the same digest is not the same manifest.
	get(t, rt, srv.URL+"/v2/other/manifests/"+digestOf(manifest))
	if hits.Load() != 7 {
		t.Errorf("a manifest was answered for a repository it was not fetched from")
	}
}

// TestManifestCacheBound: however many manifests pass, the cache holds at
// most maxManifestCache bytes, the oldest dropped first.
func TestManifestCacheBound(t *testing.T) {
	pad := strings.Repeat("p", 100<<10)
	srv, hits := manifestServer(t, func(ref string) string { return ref + pad })
	rt := newManifestCache(http.DefaultTransport).(*manifestCache)
	base := srv.URL + "/v2/acme/rt/manifests/"
	n := 2 * maxManifestCache / len(pad)
	for i := range n {
		get(t, rt, base+fmt.Sprint(i))
	}
	if rt.size > maxManifestCache || len(rt.byURL) != len(rt.order) {
		t.Fatalf("cache holds %d bytes in %d entries (%d in order), bound %d", rt.size, len(rt.byURL), len(rt.order), maxManifestCache)
	}
	before := hits.Load()
	get(t, rt, base+digestOf(fmt.Sprint(n-1)+pad))
	if hits.Load() != before {
		t.Error("the newest manifest was dropped")
	}
	get(t, rt, base+digestOf("0"+pad))
	if hits.Load() != before+1 {
		t.Error("the oldest manifest was kept past the bound")
	}
}
