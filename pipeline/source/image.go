package source

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sync/errgroup"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/cache"
	"github.com/fwvet/fwvet/pipeline/unpack/compression"
)

// maxLayers bounds the layers of one image.
const maxLayers = 512

// imageMeta is what was made of an image, kept beside it in the cache so
// that a second fetch needs no blob.
type imageMeta struct {
	Digest      string            `json:"digest"`
	Kind        string            `json:"kind"` // "rootfs" or "files"
	Files       []pipeline.File   `json:"files,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// materialize turns an image into a local artifact, through the cache: the
// layers of a root file system image flattened into one tar (whiteouts
// honoured), or the firmware files of an artifact, each named by its title.
// Every blob is fetched once and checked against its digest as it streams.
func materialize(ctx context.Context, opts Options, img v1.Image, ref string) (*pipeline.Artifact, error) {
	c := opts.Cache
	digest, err := img.Digest()
	if err != nil {
		return nil, fmt.Errorf("reading the manifest of %s: %w", ref, err)
	}
	dir, err := c.ImageDir(digest.String())
	if err != nil {
		return nil, err
	}
	meta, err := readMeta(dir)
	if err != nil {
		meta, err = build(ctx, c, img, digest.String(), dir, ref, opts.Jobs, opts.MaxRootfsBytes)
		if err != nil {
			return nil, err
		}
	}
	art := &pipeline.Artifact{Ref: ref, Digest: meta.Digest, Files: meta.Files, Annotations: meta.Annotations, MediaType: "application/vnd.oci.image.manifest.v1+json"}
	switch {
	case meta.Kind == "rootfs":
		art.Path, art.Name = filepath.Join(dir, "rootfs.tar"), imageName(ref)
	case len(meta.Files) == 1:
		art.Path, art.Name = filepath.Join(dir, "files", meta.Files[0].Name), meta.Files[0].Name
	default:
		art.Path, art.Name, art.IsDir = filepath.Join(dir, "files"), imageName(ref), true
	}
	st, err := os.Stat(art.Path)
	if err != nil {
		return nil, fmt.Errorf("cached image %s: %w", digest, err)
	}
	art.Size = st.Size()
	return art, nil
}

// imageName is a short name for an image reference: "repo:tag".
func imageName(ref string) string {
	name := ref[strings.LastIndex(ref, "/")+1:]
	if i := strings.Index(name, "@"); i > 0 {
		name = name[:i]
	}
	return name
}

func readMeta(dir string) (*imageMeta, error) {
	b, err := os.ReadFile(filepath.Join(dir, "meta.json"))
	if err != nil {
		return nil, err
	}
	var m imageMeta
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// build fetches an image's blobs into the cache and makes its local form.
// The directory appears whole or not at all: it is made beside its final
// place and renamed.
func build(ctx context.Context, c *cache.Cache, img v1.Image, digest, dir, ref string, jobs int, maxBytes int64) (*imageMeta, error) {
	mf, err := img.Manifest()
	if err != nil {
		return nil, fmt.Errorf("reading the manifest of %s: %w", ref, err)
	}
	if len(mf.Layers) > maxLayers {
		return nil, fmt.Errorf("%s has %d layers, more than the %d fwvet reads", ref, len(mf.Layers), maxLayers)
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("reading the layers of %s: %w", ref, err)
	}
	meta := &imageMeta{Digest: digest, Annotations: mf.Annotations, Kind: "rootfs"}
	for _, l := range mf.Layers {
		if l.Annotations[pipeline.AnnotationTitle] != "" {
			meta.Kind = "files"
		}
	}
	if meta.Kind == "rootfs" {
		for _, l := range mf.Layers {
			if !isTarLayer(l.MediaType) {
				return nil, fmt.Errorf("%s: layer %s has media type %s and no %s annotation: neither a root file system nor a firmware artifact", ref, l.Digest, l.MediaType, pipeline.AnnotationTitle)
			}
		}
	}
	// Blobs first, concurrently, each verified against its digest.
	paths := make([]string, len(layers))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(jobs, 1))
	for i, l := range layers {
		desc := mf.Layers[i]
		g.Go(func() error {
			p, err := fetchBlob(gctx, c, l, desc)
			if err != nil {
				return fmt.Errorf("%s: layer %s: %w", ref, desc.Digest, err)
			}
			paths[i] = p
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".build-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	if meta.Kind == "rootfs" {
		if err := flatten(ctx, mf, paths, filepath.Join(tmp, "rootfs.tar"), maxBytes); err != nil {
			return nil, fmt.Errorf("%s: flattening its layers: %w", ref, err)
		}
	} else if err := linkFiles(mf, paths, filepath.Join(tmp, "files"), meta); err != nil {
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	b, _ := json.Marshal(meta)
	if err := os.WriteFile(filepath.Join(tmp, "meta.json"), b, 0o600); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, dir); err != nil {
		// Another process made it first: theirs is as good.
		if m, rerr := readMeta(dir); rerr == nil {
			return m, nil
		}
		return nil, fmt.Errorf("caching %s: %w", ref, err)
	}
	return meta, nil
}

func isTarLayer(mt types.MediaType) bool {
	switch mt {
	case types.DockerLayer, types.DockerUncompressedLayer, types.OCILayer, types.OCIUncompressedLayer, types.OCILayerZStd,
		types.DockerForeignLayer, types.OCIRestrictedLayer, types.OCIUncompressedRestrictedLayer:
		return true
	}
	return false
}

// fetchBlob puts a layer's compressed bytes in the cache, unless they are
// there already.
func fetchBlob(ctx context.Context, c *cache.Cache, l v1.Layer, desc v1.Descriptor) (string, error) {
	if p, err := c.Blob(desc.Digest.String()); err != nil || p != "" {
		return p, err
	}
	rc, err := l.Compressed()
	if err != nil {
		return "", err
	}
	defer rc.Close()
	return c.PutBlob(ctx, desc.Digest.String(), desc.Size, rc)
}

// cachedLayer is a layer whose compressed bytes are a cached blob, read
// with unpack's decompressors. Unlike partial.CompressedToLayer inside
// mutate.AppendLayers, it computes its diff id only when asked: flattening
// never asks, and computing it up front read every layer twice, which for
// small images cost more than fetching them.
type cachedLayer struct {
	path string
	desc v1.Descriptor
}

var _ v1.Layer = (*cachedLayer)(nil)

func (l *cachedLayer) Digest() (v1.Hash, error)           { return l.desc.Digest, nil }
func (l *cachedLayer) Compressed() (io.ReadCloser, error) { return os.Open(l.path) }
func (l *cachedLayer) Size() (int64, error)               { return l.desc.Size, nil }
func (l *cachedLayer) MediaType() (types.MediaType, error) {
	return l.desc.MediaType, nil
}

func (l *cachedLayer) DiffID() (v1.Hash, error) {
	rc, err := l.Uncompressed()
	if err != nil {
		return v1.Hash{}, err
	}
	defer rc.Close()
	h, _, err := v1.SHA256(rc)
	return h, err
}

// Uncompressed picks the decompressor by the stream's magic rather than the
// media type, which registries and tools get wrong.
func (l *cachedLayer) Uncompressed() (io.ReadCloser, error) {
	f, err := os.Open(l.path)
	if err != nil {
		return nil, err
	}
	br := bufio.NewReader(f)
	head, _ := br.Peek(pipeline.MatchSize)
	for _, d := range []pipeline.Decompressor{compression.Gzip{}, compression.Zstd{}} {
		if d.Match(head) {
			rc, err := d.NewReader(br)
			if err != nil {
				f.Close()
				return nil, fmt.Errorf("layer %s: %s: %w", l.desc.Digest, d.Name(), err)
			}
			return readCloser{rc, func() error { rc.Close(); return f.Close() }}, nil
		}
	}
	return readCloser{br, f.Close}, nil
}

type readCloser struct {
	io.Reader
	close func() error
}

func (r readCloser) Close() error { return r.close() }

// layersImage is an image that is only its layers: all that mutate.Extract
// reads.
type layersImage struct {
	v1.Image
	layers []v1.Layer
}

func (i layersImage) Layers() ([]v1.Layer, error) { return i.layers, nil }

// flatten writes the root file system the layers make, top layer winning
// and whiteouts applied, as one tar of at most limit bytes: a layer is as
// hostile as any input, and a small one can inflate without end.
func flatten(ctx context.Context, mf *v1.Manifest, paths []string, out string, limit int64) error {
	layers := make([]v1.Layer, len(paths))
	for i, p := range paths {
		layers[i] = &cachedLayer{path: p, desc: mf.Layers[i]}
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	rc := mutate.Extract(layersImage{Image: empty.Image, layers: layers})
	defer rc.Close()
	n, err := io.Copy(f, io.LimitReader(pipeline.ContextReader(ctx, rc), limit+1))
	if err == nil && n > limit {
		err = &pipeline.LimitError{Limit: "max-total-bytes", Value: limit,
			Msg: fmt.Sprintf("the layers make a root file system of more than %d bytes", limit)}
	}
	if err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// linkFiles names each firmware file of an artifact by its title, as a
// hard link to the cached blob (a copy where links are not possible).
func linkFiles(mf *v1.Manifest, paths []string, dir string, meta *imageMeta) error {
	if err := os.Mkdir(dir, 0o700); err != nil {
		return err
	}
	seen := map[string]bool{}
	for i, l := range mf.Layers {
		title := l.Annotations[pipeline.AnnotationTitle]
		if title == "" {
			continue // a layer without a name (a config blob, a signature) is no firmware file
		}
		name := path.Base(path.Clean("/" + strings.ReplaceAll(title, `\`, "/")))
		if name == "/" || name == "." || name == ".." || strings.ContainsAny(name, "\x00") {
			return fmt.Errorf("layer %s: title %q is not a file name", l.Digest, title)
		}
		if seen[name] {
			return fmt.Errorf("layer %s: title %q names two layers", l.Digest, title)
		}
		seen[name] = true
		dst := filepath.Join(dir, name)
		if err := os.Link(paths[i], dst); err != nil {
			if err := copyFile(paths[i], dst); err != nil {
				return err
			}
		}
		meta.Files = append(meta.Files, pipeline.File{Name: name, Digest: l.Digest.String(), Size: l.Size})
	}
	if len(meta.Files) == 0 {
		return errors.New("an artifact without firmware files")
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
