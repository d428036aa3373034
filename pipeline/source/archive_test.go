package source_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/fwvet/fwvet/pipeline/cache"
	"github.com/fwvet/fwvet/pipeline/fixture"
	"github.com/fwvet/fwvet/pipeline/source"
)

const passwd = "root:x:0:0::/root:/bin/sh\n"

// craneArchive is a docker archive as go-containerregistry's tarball.Write
// (crane pull) makes it: layers HEX.tar.gz, named by their gzip digest.
func craneArchive(t *testing.T) string {
	t.Helper()
	l, err := tarball.LayerFromFile(fixture.Tar(t, map[string]string{"etc/": "", "etc/passwd": passwd}))
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		t.Fatal(err)
	}
	tag, _ := name.NewTag("acme/fw:1")
	p := filepath.Join(t.TempDir(), "crane.tar")
	if err := tarball.WriteToFile(p, tag, img); err != nil {
		t.Fatal(err)
	}
	return p
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// legacyArchive is a docker archive as docker save made it before 25:
// uncompressed layers in ID/layer.tar, an ID that is no digest, the second
// layer a symlink to the first.
func legacyArchive(t *testing.T) string {
	t.Helper()
	layer, err := os.ReadFile(fixture.Tar(t, map[string]string{"etc/": "", "etc/passwd": passwd}))
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := json.Marshal(map[string]any{
		"architecture": "amd64", "os": "linux",
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{sha(layer), sha(layer)}},
	})
	cfgName := strings.TrimPrefix(sha(cfg), "sha256:") + ".json"
	id1, id2 := strings.Repeat("1", 64), strings.Repeat("2", 64)
	mf, _ := json.Marshal([]map[string]any{{"Config": cfgName, "RepoTags": []string{"acme/fw:1"}, "Layers": []string{id1 + "/layer.tar", id2 + "/layer.tar"}}})
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range []struct {
		name, link string
		data       []byte
	}{
		{name: id1 + "/layer.tar", data: layer},
		{name: id2 + "/layer.tar", link: "../" + id1 + "/layer.tar"},
		{name: cfgName, data: cfg},
		{name: "manifest.json", data: mf},
	} {
		h := &tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.data)), Typeflag: tar.TypeReg}
		if e.link != "" {
			h.Typeflag, h.Linkname = tar.TypeSymlink, e.link
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write(e.data)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "legacy.tar")
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// rewrite copies a tar, changing the bytes of the entries change picks.
func rewrite(t *testing.T, src string, change func(name string, b []byte) []byte) string {
	t.Helper()
	f, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out bytes.Buffer
	tr, tw := tar.NewReader(f), tar.NewWriter(&out)
	changed := false
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		if h.Typeflag == tar.TypeReg {
			if nb := change(h.Name, b); !bytes.Equal(nb, b) {
				b, changed = nb, true
			}
		}
		h.Size = int64(len(b))
		tw.WriteHeader(h)
		tw.Write(b)
	}
	tw.Close()
	if !changed {
		t.Fatalf("%s: nothing was tampered with", src)
	}
	p := filepath.Join(t.TempDir(), "tampered.tar")
	if err := os.WriteFile(p, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// isLayer picks a layer file of the archives above.
func isLayer(n string) bool {
	return strings.HasSuffix(n, "layer.tar") || strings.HasSuffix(n, ".tar.gz") || strings.HasSuffix(n, ".tar")
}

// regzip changes a gzip layer's content (or only its compression) and
// compresses it again.
func regzip(t *testing.T, b []byte, edit func([]byte) []byte, level int) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := io.ReadAll(zr)
	var out bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&out, level)
	zw.Write(edit(plain))
	zw.Close()
	return out.Bytes()
}

func tamperPasswd(b []byte) []byte {
	return bytes.Replace(b, []byte("root:x:0:0"), []byte("toor:x:0:0"), 1)
}

// TestDockerArchiveDigests: a docker archive whose layer no longer matches
// its diff id or the digest in its file name is refused, as docker load
// refuses it, naming the archive, the layer and both digests; the archives
// as tools write them are read.
func TestDockerArchiveDigests(t *testing.T) {
	crane, legacy := craneArchive(t), legacyArchive(t)
	for _, tc := range []struct {
		name    string
		archive string
		by      string // "" for an archive that must be read
	}{
		{"crane", crane, ""},
		{"legacy with a symlinked layer", legacy, ""},
		{"crane, layer content changed", rewrite(t, crane, func(n string, b []byte) []byte {
			if !isLayer(n) {
				return b
			}
			return regzip(t, b, tamperPasswd, gzip.BestCompression)
		}), "rootfs.diff_ids[0] of the config"},
		{"crane, layer recompressed", rewrite(t, crane, func(n string, b []byte) []byte {
			if !isLayer(n) {
				return b
			}
			return regzip(t, b, func(p []byte) []byte { return p }, gzip.NoCompression)
		}), "its file name"},
		{"legacy, layer content changed in place", rewrite(t, legacy, func(n string, b []byte) []byte {
			if !isLayer(n) {
				return b
			}
			return tamperPasswd(b)
		}), "rootfs.diff_ids[0] of the config"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := cache.Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			r, err := source.NewResolver(source.Options{Cache: c, Transport: noNetwork{t}})
			if err != nil {
				t.Fatal(err)
			}
			ref := "docker-archive:" + tc.archive
			art, ferr := r.Fetch(context.Background(), ref)
			_, derr := r.Describe(context.Background(), ref)
			if tc.by == "" {
				if ferr != nil || derr != nil {
					t.Fatalf("fetch: %v; describe: %v", ferr, derr)
				}
				if unpackArtifact(t, art)["/etc/passwd"] == nil {
					t.Error("/etc/passwd missing")
				}
				return
			}
			for op, err := range map[string]error{"fetch": ferr, "describe": derr} {
				var de *source.ArchiveDigestError
				if !errors.As(err, &de) {
					t.Fatalf("%s: %v, want an ArchiveDigestError", op, err)
				}
				if de.Archive != tc.archive || de.By != tc.by || !strings.HasPrefix(de.Blob, "layer ") || de.Want == de.Got ||
					!strings.HasPrefix(de.Want, "sha256:") || !strings.HasPrefix(de.Got, "sha256:") {
					t.Errorf("%s: %+v, want a mismatch with %s", op, de, tc.by)
				}
				for _, s := range []string{tc.archive, strings.TrimPrefix(de.Blob, "layer "), de.Want, de.Got} {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("%s: error %q does not name %s", op, err, s)
					}
				}
			}
		})
	}
}
