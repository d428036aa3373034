package source

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"strings"
	"sync"
)

// A manifest named by its digest never changes, and an audit asks for each
// one several times (to list its platforms, to describe it, to fetch it):
// the manifest cache answers the repeats from memory. A manifest fetched by
// tag or by digest is kept under the digest of its bytes, computed here, and
// only requests by digest are answered from the cache: a tag is always asked
// of the registry. Each manifest kept is at most maxCachedManifest bytes and
// all of them at most maxManifestCache, oldest dropped first, so memory
// stays flat however many images pass through.
const (
	maxCachedManifest = 256 << 10
	maxManifestCache  = 8 << 20
)

type manifestCache struct {
	next http.RoundTripper

	mu    sync.Mutex
	byURL map[string]*cachedManifest
	order []string // oldest first
	size  int
}

type cachedManifest struct {
	header http.Header
	body   []byte
}

func newManifestCache(next http.RoundTripper) http.RoundTripper {
	if _, ok := next.(*manifestCache); ok {
		return next
	}
	return &manifestCache{next: next, byURL: map[string]*cachedManifest{}}
}

// manifestURL splits a manifest request's URL into the part before the
// reference and the reference (a tag or a digest).
func manifestURL(req *http.Request) (prefix, ref string, ok bool) {
	if req.Method != http.MethodGet || !strings.HasPrefix(req.URL.Path, "/v2/") || req.URL.RawQuery != "" {
		return "", "", false
	}
	i := strings.LastIndex(req.URL.Path, "/manifests/")
	if i < 0 {
		return "", "", false
	}
	u := *req.URL
	u.Path = req.URL.Path[:i+len("/manifests/")]
	u.RawPath = ""
	return u.String(), req.URL.Path[i+len("/manifests/"):], true
}

func (c *manifestCache) RoundTrip(req *http.Request) (*http.Response, error) {
	prefix, ref, ok := manifestURL(req)
	if !ok {
		return c.next.RoundTrip(req)
	}
	c.mu.Lock()
	m := c.byURL[prefix+ref]
	c.mu.Unlock()
	if m != nil {
		return &http.Response{
			Status: "200 OK", StatusCode: http.StatusOK, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: m.header.Clone(), Body: io.NopCloser(bytes.NewReader(m.body)),
			ContentLength: int64(len(m.body)), Request: req,
		}, nil
	}
	resp, err := c.next.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusOK || resp.ContentLength > maxCachedManifest {
		return resp, err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxCachedManifest+1))
	if err != nil {
		resp.Body.Close()
		return nil, err
	}
	if len(body) > maxCachedManifest {
		// Too large to keep: hand on what was read and the rest unread.
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(body), resp.Body), resp.Body}
		return resp, nil
	}
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	sum := sha256.Sum256(body)
	c.put(prefix+"sha256:"+hex.EncodeToString(sum[:]), &cachedManifest{header: resp.Header.Clone(), body: body})
	return resp, nil
}

func (c *manifestCache) put(key string, m *cachedManifest) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byURL[key] != nil {
		return
	}
	c.byURL[key] = m
	c.order = append(c.order, key)
	c.size += len(m.body)
	for c.size > maxManifestCache && len(c.order) > 0 {
		old := c.order[0]
		c.order = c.order[1:]
		c.size -= len(c.byURL[old].body)
		delete(c.byURL, old)
	}
}
