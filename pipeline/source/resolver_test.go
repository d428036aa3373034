package source_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/compression"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/cache"
	"github.com/fwvet/fwvet/pipeline/fixture"
	"github.com/fwvet/fwvet/pipeline/source"
	"github.com/fwvet/fwvet/pipeline/unpack"
)

func newResolver(t *testing.T, reg *fixture.Registry, platform string) *source.Resolver {
	t.Helper()
	c, err := cache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r, err := source.NewResolver(source.Options{Cache: c, Insecure: []string{reg.Host}, Platform: platform})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// unpackArtifact unpacks a fetched artifact and returns path → sha256.
func unpackArtifact(t *testing.T, art *pipeline.Artifact) map[string]*pipeline.Entry {
	t.Helper()
	u, err := unpack.New(unpack.Options{Limits: pipeline.DefaultLimits(), WorkDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	tree, err := u.Unpack(context.Background(), art)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tree.Close() })
	out := map[string]*pipeline.Entry{}
	for e := range tree.All() {
		out[e.Key] = e
	}
	return out
}

// TestRootFilesystemImage: layers pushed with crane are flattened in order,
// whiteouts honoured, the tag resolved to the digest crane reports.
func TestRootFilesystemImage(t *testing.T) {
	reg := fixture.StartRegistry(t)
	crane := fixture.Tool(t, "crane")
	ref := reg.Host + "/acme/rootfs:1.0.0"
	base := fixture.Tar(t, map[string]string{"etc/": "", "etc/os-release": "VERSION_ID=1.0.0\n", "www/": "", "www/help.html": "help", "bin/": "", "bin/tool": "v1"})
	top := fixture.Tar(t, map[string]string{"www/.wh.help.html": "", "bin/tool": "v2", "etc/banner": "hello"})
	out := fixture.Run(t, crane, "append", "--insecure", "-f", base, "-f", top, "-t", ref)
	pushed := strings.TrimSpace(out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:])

	r := newResolver(t, reg, "")
	art, err := r.Fetch(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	if art.Resolved != pushed || !strings.HasSuffix(pushed, art.Digest) {
		t.Errorf("resolved %q digest %q, crane pushed %q", art.Resolved, art.Digest, pushed)
	}
	entries := unpackArtifact(t, art)
	if _, ok := entries["/www/help.html"]; ok {
		t.Error("/www/help.html survived its whiteout")
	}
	for p, want := range map[string]string{"/bin/tool": "v2", "/etc/os-release": "VERSION_ID=1.0.0\n", "/etc/banner": "hello"} {
		e := entries[p]
		if e == nil {
			t.Errorf("%s missing", p)
			continue
		}
		rc, _ := e.Open(context.Background())
		var b bytes.Buffer
		b.ReadFrom(rc)
		rc.Close()
		if b.String() != want {
			t.Errorf("%s = %q, want %q (upper layer wins)", p, b.String(), want)
		}
	}
	// A second fetch comes from the cache: a registry that is gone does not matter once pinned by digest.
	if _, err := r.Fetch(context.Background(), art.Resolved); err != nil {
		t.Errorf("fetch by digest: %v", err)
	}
}

// TestLayerCompressions: zstd and uncompressed layers flatten as gzip
// ones do, and a layer mislabelled as gzip is read by its bytes.
func TestLayerCompressions(t *testing.T) {
	reg := fixture.StartRegistry(t)
	for _, tc := range []struct {
		name string
		opts []tarball.LayerOption
	}{
		{"zstd", []tarball.LayerOption{tarball.WithCompression(compression.ZStd), tarball.WithMediaType(types.OCILayerZStd)}},
		{"gzip", []tarball.LayerOption{tarball.WithCompression(compression.GZip)}},
		{"zstd-labelled-gzip", []tarball.LayerOption{tarball.WithCompression(compression.ZStd), tarball.WithMediaType(types.OCILayer)}},
		{"uncompressed", []tarball.LayerOption{tarball.WithCompression(compression.None), tarball.WithMediaType(types.OCIUncompressedLayer)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := tarball.LayerFromFile(fixture.Tar(t, map[string]string{"etc/": "", "etc/os-release": "VERSION_ID=" + tc.name + "\n"}), tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			img, err := mutate.AppendLayers(empty.Image, l)
			if err != nil {
				t.Fatal(err)
			}
			ref := reg.Host + "/acme/" + tc.name + ":1"
			r, _ := name.ParseReference(ref, name.Insecure)
			if err := remote.Write(r, img); err != nil {
				t.Fatal(err)
			}
			art, err := newResolver(t, reg, "").Fetch(context.Background(), ref)
			if err != nil {
				t.Fatal(err)
			}
			e := unpackArtifact(t, art)["/etc/os-release"]
			if e == nil || e.Size != int64(len("VERSION_ID="+tc.name+"\n")) {
				t.Fatalf("/etc/os-release = %+v, want the layer's file", e)
			}
		})
	}
}

// TestLayerBomb: a small layer that inflates past the bound is an error
// naming the limit, and leaves nothing in the cache.
func TestLayerBomb(t *testing.T) {
	reg := fixture.StartRegistry(t)
	crane := fixture.Tool(t, "crane")
	ref := reg.Host + "/acme/bomb:1"
	fixture.Run(t, crane, "append", "--insecure", "-f", fixture.Tar(t, map[string]string{"zeros": strings.Repeat("\x00", 8<<20)}), "-t", ref)
	dir := t.TempDir()
	c, err := cache.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	r, err := source.NewResolver(source.Options{Cache: c, Insecure: []string{reg.Host}, MaxRootfsBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Fetch(context.Background(), ref)
	var le *pipeline.LimitError
	if !errors.As(err, &le) || le.Limit != "max-total-bytes" {
		t.Fatalf("err = %v, want the max-total-bytes limit", err)
	}
	var tars []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Name() == "rootfs.tar" {
			tars = append(tars, p)
		}
		return nil
	})
	if len(tars) > 0 {
		t.Errorf("a root file system past the bound was left in the cache: %v", tars)
	}
}

// pushArtifact pushes an OCI artifact of firmware files, each layer named
// by its title annotation, the way oras push lays them out.
func pushArtifact(t *testing.T, ref string, files map[string][]byte, annotations map[string]string) v1.Hash {
	t.Helper()
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, "application/vnd.oci.empty.v1+json")
	for n, b := range files {
		var err error
		img, err = mutate.Append(img, mutate.Addendum{
			Layer:       static.NewLayer(b, "application/vnd.acme.firmware"),
			Annotations: map[string]string{pipeline.AnnotationTitle: n},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if annotations != nil {
		img = mutate.Annotations(img, annotations).(v1.Image)
	}
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	return d
}

// TestArtifactImage: an artifact's layers are its firmware files, named by
// their titles; a single file becomes the artifact itself.
func TestArtifactImage(t *testing.T) {
	reg := fixture.StartRegistry(t)
	sqfs, err := os.ReadFile(fixture.Path(t, "fw/tiny-gzip.sqfs"))
	if err != nil {
		t.Fatal(err)
	}
	r := newResolver(t, reg, "")
	d := pushArtifact(t, reg.Host+"/acme/fw:2", map[string][]byte{"rootfs.sqfs": sqfs, "kernel.bin": bytes.Repeat([]byte("K"), 5000)},
		map[string]string{pipeline.AnnotationVersion: "2.0.0"})
	art, err := r.Fetch(context.Background(), reg.Host+"/acme/fw:2")
	if err != nil {
		t.Fatal(err)
	}
	if art.Digest != d.String() || !art.IsDir || len(art.Files) != 2 || art.Annotations[pipeline.AnnotationVersion] != "2.0.0" {
		t.Fatalf("artifact %+v", art)
	}
	entries := unpackArtifact(t, art)
	if entries["/rootfs.sqfs\x00/etc/passwd"] == nil || entries["/kernel.bin"] == nil {
		t.Errorf("the firmware files and what the squashfs holds: %v", keys(entries))
	}

	pushArtifact(t, reg.Host+"/acme/fw:1", map[string][]byte{"rootfs.sqfs": sqfs}, nil)
	one, err := r.Fetch(context.Background(), reg.Host+"/acme/fw:1")
	if err != nil {
		t.Fatal(err)
	}
	if one.IsDir || one.Name != "rootfs.sqfs" || len(one.Files) != 1 {
		t.Errorf("single-file artifact %+v", one)
	}
	if entries := unpackArtifact(t, one); entries["/etc/passwd"] == nil {
		t.Errorf("single-file artifact unpacked to %v", keys(entries))
	}
}

func keys(m map[string]*pipeline.Entry) []string {
	var out []string
	for k := range m {
		out = append(out, strings.ReplaceAll(k, "\x00", " › "))
	}
	return out
}

// TestMultiPlatformIndex: without a platform the index is refused and its
// platforms listed; with one, that platform's image is fetched.
func TestMultiPlatformIndex(t *testing.T) {
	reg := fixture.StartRegistry(t)
	var adds []mutate.IndexAddendum
	for _, p := range []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}} {
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		c := "ARCH=" + p.Architecture + "\n"
		tw.WriteHeader(&tar.Header{Name: "etc/arch", Mode: 0o644, Size: int64(len(c))})
		tw.Write([]byte(c))
		tw.Close()
		img, err := mutate.AppendLayers(empty.Image, static.NewLayer(b.Bytes(), types.OCIUncompressedLayer))
		if err != nil {
			t.Fatal(err)
		}
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &p}})
	}
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), adds...)
	ref, _ := name.ParseReference(reg.Host+"/acme/multi:1", name.Insecure)
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatal(err)
	}
	r := newResolver(t, reg, "")
	if _, err := r.Fetch(context.Background(), ref.String()); !errors.Is(err, source.ErrMultiPlatform) {
		t.Fatalf("fetch without a platform: %v", err)
	}
	plats, err := r.Platforms(context.Background(), ref.String())
	if err != nil || strings.Join(plats, ",") != "linux/amd64,linux/arm64" {
		t.Fatalf("platforms %v %v", plats, err)
	}
	arm, err := newResolver(t, reg, "linux/arm64").Fetch(context.Background(), ref.String())
	if err != nil {
		t.Fatal(err)
	}
	e := unpackArtifact(t, arm)["/etc/arch"]
	rc, _ := e.Open(context.Background())
	var b bytes.Buffer
	b.ReadFrom(rc)
	rc.Close()
	if b.String() != "ARCH=arm64\n" || arm.Platform != "linux/arm64" {
		t.Errorf("linux/arm64 fetched %q (platform %q)", b.String(), arm.Platform)
	}
}

// TestCorruptBlob: a blob whose bytes on the server no longer match its
// digest is an error, never an artifact.
func TestCorruptBlob(t *testing.T) {
	reg := fixture.StartRegistry(t)
	crane := fixture.Tool(t, "crane")
	ref := reg.Host + "/acme/corrupt:1"
	fixture.Run(t, crane, "append", "--insecure", "-f", fixture.Tar(t, map[string]string{"etc/passwd": "root:x:0:0::/root:/bin/sh\n"}), "-t", ref)
	out := fixture.Run(t, crane, "manifest", "--insecure", ref)
	i := strings.Index(out, `"layers":[{`)
	j := strings.Index(out[i:], `"digest":"`) + i + len(`"digest":"`)
	layer := out[j : j+71]
	p := reg.BlobPath(layer)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = newResolver(t, reg, "").Fetch(context.Background(), ref)
	if err == nil {
		t.Fatal("a corrupted blob was accepted")
	}
	if !strings.Contains(err.Error(), layer) {
		t.Errorf("error %q does not name the blob %s", err, layer)
	}
}

// TestRetriesOn500: a registry that answers 500 twice, then serves, is
// fetched from.
func TestRetriesOn500(t *testing.T) {
	reg := fixture.StartRegistry(t)
	crane := fixture.Tool(t, "crane")
	fixture.Run(t, crane, "append", "--insecure", "-f", fixture.Tar(t, map[string]string{"etc/x": "x"}), "-t", reg.Host+"/acme/flaky:1")
	up, _ := url.Parse("http://" + reg.Host)
	proxy := httputil.NewSingleHostReverseProxy(up)
	var fails, requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		requests.Add(1)
		if strings.Contains(req.URL.Path, "/manifests/") && fails.Load() < 2 {
			fails.Add(1)
			http.Error(w, "try again", http.StatusInternalServerError)
			return
		}
		proxy.ServeHTTP(w, req)
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	c, _ := cache.Open(t.TempDir())
	r, err := source.NewResolver(source.Options{Cache: c, Insecure: []string{host}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Fetch(context.Background(), host+"/acme/flaky:1"); err != nil {
		t.Fatalf("after two 500s: %v", err)
	}
	if fails.Load() != 2 {
		t.Errorf("the proxy failed %d requests, want 2", fails.Load())
	}
}

// TestUnreachableRegistry: the error names the registry.
func TestUnreachableRegistry(t *testing.T) {
	host := "127.0.0.1:" + strconv.Itoa(fixture.FreePort(t))
	c, _ := cache.Open(t.TempDir())
	r, err := source.NewResolver(source.Options{Cache: c, Insecure: []string{host}, Retry: remote.Backoff{Duration: 1, Factor: 1, Steps: 2}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Fetch(context.Background(), host+"/acme/x:1")
	var re *source.RegistryError
	if !errors.As(err, &re) || re.Registry != host {
		t.Fatalf("error %v, want a RegistryError naming %s", err, host)
	}
}

// TestLayoutAndArchive: an image copied by skopeo into an OCI layout and a
// docker-archive tarball is read from both.
func TestLayoutAndArchive(t *testing.T) {
	reg := fixture.StartRegistry(t)
	crane := fixture.Tool(t, "crane")
	skopeo := fixture.Tool(t, "skopeo")
	ref := reg.Host + "/acme/copy:1"
	fixture.Run(t, crane, "append", "--insecure", "-f", fixture.Tar(t, map[string]string{"etc/os-release": "VERSION_ID=3\n"}), "-t", ref)
	dir := t.TempDir()
	fixture.Run(t, skopeo, "copy", "--src-tls-verify=false", "docker://"+ref, "oci:"+filepath.Join(dir, "layout")+":v3")
	fixture.Run(t, skopeo, "copy", "--src-tls-verify=false", "docker://"+ref, "docker-archive:"+filepath.Join(dir, "img.tar")+":acme/copy:1")
	r := newResolver(t, reg, "")
	for _, s := range []string{"oci-dir:" + filepath.Join(dir, "layout") + ":v3", "oci-dir:" + filepath.Join(dir, "layout"), "docker-archive:" + filepath.Join(dir, "img.tar")} {
		art, err := r.Fetch(context.Background(), s)
		if err != nil {
			t.Errorf("%s: %v", s, err)
			continue
		}
		if unpackArtifact(t, art)["/etc/os-release"] == nil {
			t.Errorf("%s: /etc/os-release missing", s)
		}
	}
	if _, err := r.Fetch(context.Background(), "oci-dir:"+filepath.Join(dir, "layout")+":nope"); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("missing tag: %v", err)
	}
	// skopeo's archive with a layer changed in place is refused.
	tampered := rewrite(t, filepath.Join(dir, "img.tar"), func(n string, b []byte) []byte {
		return bytes.Replace(b, []byte("VERSION_ID=3"), []byte("VERSION_ID=4"), 1)
	})
	var de *source.ArchiveDigestError
	if _, err := r.Fetch(context.Background(), "docker-archive:"+tampered); !errors.As(err, &de) || !strings.HasPrefix(de.By, "rootfs.diff_ids") {
		t.Errorf("tampered skopeo archive: %v, want an ArchiveDigestError", err)
	} else {
		t.Log(err)
	}
}

// TestNoImplicitRegistry: a name without a registry host is never looked up
// on a registry (no traffic to Docker Hub); it is a missing file.
func TestNoImplicitRegistry(t *testing.T) {
	c, _ := cache.Open(t.TempDir())
	r, _ := source.NewResolver(source.Options{Cache: c})
	for _, ref := range []string{"fw.bin", "library/busybox:1.36"} {
		_, err := r.Fetch(context.Background(), ref)
		if err == nil || !strings.Contains(err.Error(), "no such file") {
			t.Errorf("%s: %v", ref, err)
		}
	}
}

// countManifests counts the manifest requests that reach the registry.
type countManifests struct{ n atomic.Int64 }

func (c *countManifests) RoundTrip(req *http.Request) (*http.Response, error) {
	if strings.Contains(req.URL.Path, "/manifests/") {
		c.n.Add(1)
	}
	return http.DefaultTransport.RoundTrip(req)
}

// TestOneManifestRequest: listing an image's platforms, describing it and
// fetching it, as an audit does, ask the registry for its manifest once.
func TestOneManifestRequest(t *testing.T) {
	reg := fixture.StartRegistry(t)
	crane := fixture.Tool(t, "crane")
	ref := reg.Host + "/acme/once:1.0.0"
	fixture.Run(t, crane, "append", "--insecure", "-f", fixture.Tar(t, map[string]string{"etc/os-release": "VERSION_ID=1.0.0\n"}), "-t", ref)
	c, err := cache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	count := &countManifests{}
	r, err := source.NewResolver(source.Options{Cache: c, Insecure: []string{reg.Host}, Transport: count})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := r.Platforms(ctx, ref); err != nil {
		t.Fatal(err)
	}
	d, err := r.Describe(ctx, ref)
	if err != nil || d.Version != "1.0.0" {
		t.Fatalf("describe: %+v %v", d, err)
	}
	if _, err := r.Fetch(ctx, ref); err != nil {
		t.Fatal(err)
	}
	if got := count.n.Load(); got != 1 {
		t.Errorf("%d manifest requests, want 1", got)
	}
}
