package source

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/cache"
)

// Options configure a Resolver.
type Options struct {
	Cache *cache.Cache
	// Insecure lists the registries (host or host:port; a host alone
	// allows any port) that may be reached over plain HTTP. Every other
	// host, loopback and private addresses included, is HTTPS only: a
	// plain-HTTP request to it fails with an *InsecureError.
	Insecure []string
	// Platform picks one image of a multi-platform index ("linux/arm64",
	// "linux/arm/v7"); empty means the caller must pick (see Platforms).
	Platform string
	// Keychain finds credentials; nil means the Docker keychain
	// (~/.docker/config.json and credential helpers), then anonymous.
	Keychain authn.Keychain
	// Transport carries registry traffic; nil means one with timeouts on
	// dialling, TLS and response headers.
	Transport http.RoundTripper
	// Retry is the backoff on 429 and 5xx answers and dropped connections.
	Retry remote.Backoff
	// Jobs bounds the blobs of one image fetched at once.
	Jobs int
	// MaxRootfsBytes bounds the root file system an image's layers are
	// flattened into; 0 means the default max-total-bytes unpack limit.
	MaxRootfsBytes int64
	// NoLocalDigest leaves a local file's Digest empty instead of hashing
	// it: for fwvet unpack, which reports no digest.
	NoLocalDigest bool
}

// Resolver fetches every form of reference: local files and directories,
// OCI layouts, docker-archive tarballs and registry images.
type Resolver struct {
	opts  Options
	local *Local
	// pinned remembers the digest each registry reference resolved to, so
	// that a tag is resolved once even when it is asked about twice.
	pinned *sync.Map
}

var _ pipeline.Fetcher = (*Resolver)(nil)

// DefaultRetry retries 4 times over about 3 seconds.
var DefaultRetry = remote.Backoff{Duration: 200 * time.Millisecond, Factor: 2, Jitter: 0.1, Steps: 5}

// NewResolver checks the options and returns a Resolver.
func NewResolver(opts Options) (*Resolver, error) {
	if opts.Cache == nil {
		return nil, errors.New("source: no cache")
	}
	if opts.Platform != "" {
		if _, err := v1.ParsePlatform(opts.Platform); err != nil {
			return nil, fmt.Errorf("platform %q: %w", opts.Platform, err)
		}
	}
	if opts.Keychain == nil {
		opts.Keychain = authn.DefaultKeychain
	}
	if opts.Transport == nil {
		opts.Transport = &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 15 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   15 * time.Second,
			ResponseHeaderTimeout: 60 * time.Second,
			ExpectContinueTimeout: time.Second,
			MaxIdleConnsPerHost:   8,
		}
	}
	if err := checkInsecure(opts.Insecure); err != nil {
		return nil, err
	}
	// Plain HTTP only to the hosts named in Insecure, whatever
	// go-containerregistry would do for loopback and private addresses.
	// The guard is outside the manifest cache, so that nothing answers a
	// plain-HTTP request it refuses.
	if g, ok := opts.Transport.(*httpsOnly); ok {
		opts.Transport = g.next // ForPlatform: the same manifest cache, guarded again
	}
	opts.Transport = &httpsOnly{allowed: opts.Insecure, next: newManifestCache(opts.Transport)}
	if opts.Retry.Steps == 0 {
		opts.Retry = DefaultRetry
	}
	if opts.MaxRootfsBytes <= 0 {
		opts.MaxRootfsBytes = pipeline.DefaultLimits().MaxTotalBytes
	}
	if opts.Jobs <= 0 {
		opts.Jobs = 4
	}
	return &Resolver{opts: opts, local: &Local{Cache: opts.Cache, NoDigest: opts.NoLocalDigest}, pinned: &sync.Map{}}, nil
}

// ForPlatform returns a resolver like r that picks the given platform.
func (r *Resolver) ForPlatform(p string) (*Resolver, error) {
	o := r.opts
	o.Platform = p
	nr, err := NewResolver(o)
	if err != nil {
		return nil, err
	}
	nr.pinned = r.pinned
	return nr, nil
}

// get fetches the descriptor a registry reference names, by the digest it
// resolved to before if it did.
func (r *Resolver) get(ctx context.Context, nref name.Reference) (*remote.Descriptor, error) {
	key := nref.String()
	if d, ok := r.pinned.Load(key); ok {
		nref = nref.Context().Digest(d.(string))
	}
	desc, err := remote.Get(nref, r.remoteOptions(ctx)...)
	if err != nil {
		return nil, registryError(nref, err)
	}
	r.pinned.LoadOrStore(key, desc.Digest.String())
	return desc, nil
}

// kind sorts a reference into the form that fetches it.
func kind(ref string) (string, string) {
	for _, p := range []string{"file:", "dir:", "oci-dir:", "docker-archive:", "registry:"} {
		if strings.HasPrefix(ref, p) {
			return strings.TrimSuffix(p, ":"), strings.TrimPrefix(ref, p)
		}
	}
	if _, err := os.Lstat(ref); err == nil || IsLocalPath(ref) {
		return "local", ref
	}
	return "registry", ref
}

// IsLocalPath reports whether a reference can only name a local file,
// whether or not it exists: it starts with "./", "../" or "/", or the part
// before its first "/" is an existing directory (relative to the working
// directory), as in "out.v2/fw.bin". Such a reference is never looked up
// on a registry: "./missing.bin" is a missing file, not the image
// "missing.bin" on a registry named ".".
func IsLocalPath(ref string) bool {
	if ref == "." || ref == ".." || strings.HasPrefix(ref, "./") || strings.HasPrefix(ref, "../") || strings.HasPrefix(ref, "/") {
		return true
	}
	first, _, ok := strings.Cut(ref, "/")
	if !ok {
		return false
	}
	st, err := os.Stat(first)
	return err == nil && st.IsDir()
}

// Fetch implements pipeline.Fetcher.
func (r *Resolver) Fetch(ctx context.Context, ref string) (*pipeline.Artifact, error) {
	k, rest := kind(ref)
	switch k {
	case "file", "dir", "local":
		return r.local.Fetch(ctx, ref)
	}
	img, resolved, platform, err := r.image(ctx, k, rest)
	if err != nil {
		return nil, err
	}
	art, err := materialize(ctx, r.opts, img, ref)
	if err != nil {
		return nil, err
	}
	art.Resolved, art.Platform = resolved, platform
	return art, nil
}

// ErrMultiPlatform is returned by Fetch for an index when no platform was
// chosen: the caller vets each of the platforms Platforms lists.
var ErrMultiPlatform = errors.New("a multi-platform index: choose a platform")

// Platforms lists the platforms of a multi-platform index, or nil for a
// reference to a single image or a local file, or when the resolver was
// given a platform already.
func (r *Resolver) Platforms(ctx context.Context, ref string) ([]string, error) {
	if r.opts.Platform != "" {
		return nil, nil
	}
	k, rest := kind(ref)
	var idx v1.ImageIndex
	switch k {
	case "registry":
		nref, err := r.parse(rest)
		if err != nil {
			return nil, err
		}
		desc, err := r.get(ctx, nref)
		if err != nil {
			return nil, err
		}
		if !desc.MediaType.IsIndex() {
			return nil, nil
		}
		if idx, err = desc.ImageIndex(); err != nil {
			return nil, registryError(nref, err)
		}
	case "oci-dir":
		dirIdx, err := r.layoutIndex(rest)
		if err != nil || dirIdx == nil {
			return nil, err
		}
		idx = dirIdx
	default:
		return nil, nil
	}
	return indexPlatforms(idx)
}

func indexPlatforms(idx v1.ImageIndex) ([]string, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, m := range im.Manifests {
		if m.Platform != nil && m.MediaType.IsImage() && m.Platform.OS != "unknown" {
			out = append(out, m.Platform.String())
		}
	}
	sort.Strings(out)
	return out, nil
}

func (r *Resolver) parse(ref string) (name.Reference, error) {
	var opts []name.Option
	// Only a reference that names its registry goes to one: "fw.bin" or
	// "library/busybox" are missing files, not Docker Hub images.
	host, _, hasRepo := strings.Cut(ref, "/")
	if !hasRepo || (!strings.ContainsAny(host, ".:") && host != "localhost") {
		return nil, fmt.Errorf("no such file: %s, and not an image reference with a registry host (such as registry.example.com/repo:tag)", ref)
	}
	// Not even as registry:./x: "." and ".." name no registry.
	if strings.HasPrefix(host, ".") || strings.HasSuffix(host, ".") {
		return nil, fmt.Errorf("%s: %q is a path, not a registry host", ref, host)
	}
	if insecureAllowed(r.opts.Insecure, host) {
		opts = append(opts, name.Insecure)
	}
	nref, err := name.ParseReference(ref, opts...)
	if err != nil {
		return nil, fmt.Errorf("not an image reference: %w", err)
	}
	return nref, nil
}

func (r *Resolver) remoteOptions(ctx context.Context) []remote.Option {
	return []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(r.opts.Keychain),
		remote.WithTransport(r.opts.Transport),
		remote.WithRetryBackoff(r.opts.Retry),
		remote.WithRetryStatusCodes(http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
			http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout),
		remote.WithJobs(r.opts.Jobs),
	}
}

// image finds the image a reference names, resolving a tag to its digest
// once, and an index to the chosen platform's image.
func (r *Resolver) image(ctx context.Context, k, ref string) (v1.Image, string, string, error) {
	switch k {
	case "registry":
		nref, err := r.parse(ref)
		if err != nil {
			return nil, "", "", err
		}
		desc, err := r.get(ctx, nref)
		if err != nil {
			return nil, "", "", err
		}
		resolved := nref.Context().Digest(desc.Digest.String()).String()
		if !desc.MediaType.IsIndex() {
			img, err := desc.Image()
			if err != nil {
				return nil, "", "", registryError(nref, err)
			}
			return img, resolved, "", nil
		}
		idx, err := desc.ImageIndex()
		if err != nil {
			return nil, "", "", registryError(nref, err)
		}
		img, platform, err := r.pick(idx)
		if err != nil {
			return nil, "", "", fmt.Errorf("%s: %w", resolved, err)
		}
		d, err := img.Digest()
		if err != nil {
			return nil, "", "", registryError(nref, err)
		}
		return img, nref.Context().Digest(d.String()).String(), platform, nil
	case "oci-dir":
		return r.layoutImage(ref)
	case "docker-archive":
		img, err := tarball.ImageFromPath(ref, nil)
		if err != nil {
			return nil, "", "", fmt.Errorf("reading docker archive %s: %w", ref, err)
		}
		// tarball.Image trusts the config's diff ids and never hashes an
		// uncompressed layer against them; docker load does, and so must we.
		if err := checkDockerArchive(ctx, ref, img, r.opts.MaxRootfsBytes); err != nil {
			return nil, "", "", err
		}
		return img, "", "", nil
	}
	return nil, "", "", fmt.Errorf("unknown reference form %q", k)
}

// pick chooses the image of the resolver's platform from an index.
func (r *Resolver) pick(idx v1.ImageIndex) (v1.Image, string, error) {
	plats, err := indexPlatforms(idx)
	if err != nil {
		return nil, "", err
	}
	if r.opts.Platform == "" {
		return nil, "", fmt.Errorf("%w (it holds %s)", ErrMultiPlatform, strings.Join(plats, ", "))
	}
	want, _ := v1.ParsePlatform(r.opts.Platform)
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, "", err
	}
	for _, m := range im.Manifests {
		if m.Platform != nil && m.Platform.Satisfies(*want) && m.MediaType.IsImage() {
			img, err := idx.Image(m.Digest)
			return img, m.Platform.String(), err
		}
	}
	return nil, "", fmt.Errorf("no image for platform %s (the index holds %s)", r.opts.Platform, strings.Join(plats, ", "))
}

// layoutIndex opens an OCI layout; it returns the index to pick from when
// the reference names no single image.
func (r *Resolver) layoutIndex(ref string) (v1.ImageIndex, error) {
	dir, sel := splitLayoutRef(ref)
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("reading OCI layout %s: %w", dir, err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("reading OCI layout %s: %w", dir, err)
	}
	desc, err := layoutSelect(idx, sel, dir)
	if err != nil {
		return nil, err
	}
	if desc.MediaType.IsIndex() {
		return idx.ImageIndex(desc.Digest)
	}
	return nil, nil
}

func (r *Resolver) layoutImage(ref string) (v1.Image, string, string, error) {
	dir, sel := splitLayoutRef(ref)
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, "", "", fmt.Errorf("reading OCI layout %s: %w", dir, err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return nil, "", "", fmt.Errorf("reading OCI layout %s: %w", dir, err)
	}
	desc, err := layoutSelect(idx, sel, dir)
	if err != nil {
		return nil, "", "", err
	}
	if desc.MediaType.IsIndex() {
		sub, err := idx.ImageIndex(desc.Digest)
		if err != nil {
			return nil, "", "", err
		}
		img, platform, err := r.pick(sub)
		return img, "", platform, err
	}
	img, err := idx.Image(desc.Digest)
	return img, "", "", err
}

// splitLayoutRef splits "PATH[:TAG|@DIGEST]".
func splitLayoutRef(ref string) (dir, sel string) {
	if i := strings.LastIndex(ref, "@sha256:"); i > 0 {
		return ref[:i], ref[i+1:]
	}
	if i := strings.LastIndex(ref, ":"); i > 0 && !strings.Contains(ref[i:], "/") {
		return ref[:i], ref[i+1:]
	}
	return ref, ""
}

// layoutSelect finds the manifest a layout reference names: by digest, by
// the ref.name annotation, or the only one.
func layoutSelect(idx v1.ImageIndex, sel, dir string) (v1.Descriptor, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("reading OCI layout %s: %w", dir, err)
	}
	var names []string
	for _, m := range im.Manifests {
		tag := m.Annotations["org.opencontainers.image.ref.name"]
		names = append(names, tag)
		switch {
		case sel == "" && len(im.Manifests) == 1,
			strings.HasPrefix(sel, "sha256:") && m.Digest.String() == sel,
			sel != "" && tag == sel:
			return m, nil
		}
	}
	if sel == "" {
		return v1.Descriptor{}, fmt.Errorf("OCI layout %s holds %d manifests; name one as %s:TAG or %s@sha256:…", dir, len(im.Manifests), dir, dir)
	}
	return v1.Descriptor{}, fmt.Errorf("OCI layout %s has no manifest %q (tags: %s)", dir, sel, strings.Join(names, ", "))
}

// RegistryError is a failure to talk to a registry, naming it and, when it
// answered, the status.
type RegistryError struct {
	Registry string
	Status   int
	Err      error
}

func (e *RegistryError) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("registry %s answered %d %s: %v", e.Registry, e.Status, http.StatusText(e.Status), e.Err)
	}
	return fmt.Sprintf("registry %s: %v", e.Registry, e.Err)
}

func (e *RegistryError) Unwrap() error { return e.Err }

func registryError(ref name.Reference, err error) error {
	re := &RegistryError{Registry: ref.Context().RegistryStr(), Err: err}
	var te *transport.Error
	if errors.As(err, &te) {
		re.Status = te.StatusCode
	}
	return re
}

// Tags lists the tags of a repository ("host/repo").
func (r *Resolver) Tags(ctx context.Context, repo string) ([]string, error) {
	nref, err := r.parse(repo + ":latest")
	if err != nil {
		return nil, err
	}
	tags, err := remote.List(nref.Context(), r.remoteOptions(ctx)...)
	if err != nil {
		return nil, registryError(nref, err)
	}
	sort.Strings(tags)
	return tags, nil
}

// Description is what an audit needs to know of a candidate before vetting
// it.
type Description struct {
	// Digest is the manifest digest (a tag resolved once), or a local
	// file's SHA-256.
	Digest string
	// Version is the version the image claims: its version annotation, or
	// else a tag that reads as a version. Empty when unknown.
	Version string
	// Repository is "host/repo" for a registry image, empty otherwise.
	Repository string
}

// Describe resolves a reference for an audit without fetching its layers.
func (r *Resolver) Describe(ctx context.Context, ref string) (*Description, error) {
	k, rest := kind(ref)
	switch k {
	case "file", "dir", "local":
		st, err := os.Stat(rest)
		if err != nil {
			return nil, localError(ref, err)
		}
		if st.IsDir() {
			return &Description{}, nil
		}
		d, err := r.opts.Cache.FileDigest(ctx, rest)
		if err != nil {
			return nil, err
		}
		return &Description{Digest: d}, nil
	}
	img, _, _, err := r.image(ctx, k, rest)
	if err != nil {
		return nil, err
	}
	if k != "registry" {
		return describeImage(img, "", "")
	}
	nref, err := r.parse(rest)
	if err != nil {
		return nil, err
	}
	tag := ""
	if t, ok := nref.(name.Tag); ok {
		tag = t.TagStr()
	}
	return describeImage(img, nref.Context().Name(), tag)
}

func describeImage(img v1.Image, repo, tag string) (*Description, error) {
	d, err := img.Digest()
	if err != nil {
		return nil, err
	}
	mf, err := img.Manifest()
	if err != nil {
		return nil, err
	}
	out := &Description{Digest: d.String(), Repository: repo, Version: mf.Annotations[pipeline.AnnotationVersion]}
	if out.Version == "" && tag != "" && tag != "latest" && strings.ContainsAny(tag, "0123456789") {
		out.Version = tag
	}
	return out, nil
}

// Remote gives the parsed reference and the options to read from its
// registry as this resolver does (credentials, plain HTTP where allowed,
// retries), for what is attached to an image: signatures, attestations.
func (r *Resolver) Remote(ctx context.Context, ref string) (name.Reference, []remote.Option, error) {
	nref, err := r.parse(strings.TrimPrefix(ref, "registry:"))
	if err != nil {
		return nil, nil, err
	}
	return nref, r.remoteOptions(ctx), nil
}

// ErrNotRegistry is returned for a reference that names no registry image.
var ErrNotRegistry = errors.New("not an image in a registry")

// IsRegistry reports whether a reference names an image in a registry
// rather than something local.
func IsRegistry(ref string) bool {
	k, _ := kind(ref)
	return k == "registry"
}

// Subject is the registry image a reference names, pinned to digest (the
// digest it was vetted as), with the options to reach its registry: where
// a signed verdict is attached.
func (r *Resolver) Subject(ctx context.Context, ref, digest string) (name.Digest, []remote.Option, error) {
	if !IsRegistry(ref) {
		return name.Digest{}, nil, fmt.Errorf("%s: %w", ref, ErrNotRegistry)
	}
	nref, opts, err := r.Remote(ctx, ref)
	if err != nil {
		return name.Digest{}, nil, err
	}
	if _, err := v1.NewHash(digest); err != nil {
		return name.Digest{}, nil, fmt.Errorf("%s: digest %q: %w", ref, digest, err)
	}
	// The repository keeps the reference's registry options (plain HTTP).
	return nref.Context().Digest(digest), opts, nil
}
