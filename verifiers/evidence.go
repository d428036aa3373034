package verifiers

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/sigstore/sigstore-go/pkg/bundle"

	"github.com/fwvet/fwvet/pipeline"
)

// Bounds on what is read from a registry or a file as signatures.
const (
	maxEvidence     = 64
	maxEvidenceSize = 4 << 20
)

// Annotations and media types of cosign's layouts.
const (
	annotationSignature   = "dev.cosignproject.cosign/signature"
	annotationCertificate = "dev.sigstore.cosign/certificate"
	mediaTypeDSSE         = "application/vnd.dsse.envelope.v1+json"
	bundleMediaPrefix     = "application/vnd.dev.sigstore.bundle"
	// CosignSignPredicate is the predicate of an image signature in the
	// bundle layout: a statement whose subject is the signed digest.
	CosignSignPredicate = "https://sigstore.dev/cosign/sign/v1"
)

// evidence is one signature or attestation found for an artifact.
type evidence struct {
	source string
	// One of:
	bundle *bundle.Bundle
	simple *simpleSigning
	dsse   *envelope
	raw    []byte // a detached signature over the artifact's bytes
	// keyless holds the certificate and log entry of a keyless signature
	// in cosign's own formats: a legacy-layout layer, a cosign 2 blob
	// bundle.
	keyless legacyKeyless
}

type simpleSigning struct {
	payload, sig []byte
}

// envelope is a DSSE envelope.
type envelope struct {
	PayloadType string `json:"payloadType"`
	Payload     string `json:"payload"`
	Signatures  []struct {
		KeyID string `json:"keyid"`
		Sig   string `json:"sig"`
	} `json:"signatures"`
}

// pae is DSSE's pre-authentication encoding, what a DSSE signature signs.
func pae(payloadType string, payload []byte) []byte {
	return fmt.Appendf(nil, "DSSEv1 %d %s %d %s", len(payloadType), payloadType, len(payload), payload)
}

// gather finds the signatures and attestations of an artifact: the files
// given, and for a registry image the signatures and attestations attached
// to it, in cosign's legacy layout (sha256-<hex>.sig and .att tags) and as
// Sigstore bundles (OCI 1.1 referrers, or the sha256-<hex> fallback tag).
func gather(ctx context.Context, o Options, art *pipeline.Artifact) ([]evidence, error) {
	var out []evidence
	if o.Signature != "" {
		b, err := readLimited(o.Signature)
		if err != nil {
			return nil, fmt.Errorf("signature %s: %w", o.Signature, err)
		}
		out = append(out, evidence{source: "signature " + o.Signature, raw: decodeSignature(b)})
	}
	if o.Bundle != "" {
		e, err := readBundle(o.Bundle)
		if err != nil {
			return nil, fmt.Errorf("bundle %s: %w", o.Bundle, err)
		}
		out = append(out, e)
	}
	if art.Resolved == "" || o.Registry == nil {
		return out, nil
	}
	ref, ropts, err := o.Registry.Remote(ctx, art.Resolved)
	if err != nil {
		return nil, err
	}
	dig, ok := ref.(name.Digest)
	if !ok {
		return nil, fmt.Errorf("%s is not pinned to a digest", art.Resolved)
	}
	tag := strings.Replace(art.Digest, ":", "-", 1)
	for _, suffix := range []string{".sig", ".att"} {
		ev, err := legacy(dig.Context().Tag(tag+suffix), ropts)
		if err != nil {
			return nil, err
		}
		out = append(out, ev...)
	}
	ev, err := referrers(dig, ropts)
	if err != nil {
		return nil, err
	}
	return append(out, ev...), nil
}

// readBundle reads a Sigstore bundle, or the bundle cosign 2 writes by
// default for a blob (`cosign sign-blob --bundle` without
// --new-bundle-format): a signature over the file's bytes with, when
// keyless, the certificate and the Rekor bundle.
func readBundle(p string) (evidence, error) {
	raw, err := readLimited(p)
	if err != nil {
		return evidence{}, err
	}
	src := "bundle " + p
	var b bundle.Bundle
	berr := b.UnmarshalJSON(raw)
	if berr == nil {
		return evidence{source: src, bundle: &b}, nil
	}
	var legacy struct {
		Base64Signature string          `json:"base64Signature"`
		Cert            string          `json:"cert"`
		RekorBundle     json.RawMessage `json:"rekorBundle"`
	}
	if json.Unmarshal(raw, &legacy) != nil || legacy.Base64Signature == "" {
		return evidence{}, berr
	}
	sig, err := base64.StdEncoding.DecodeString(legacy.Base64Signature)
	if err != nil {
		return evidence{}, fmt.Errorf("base64Signature: %w", err)
	}
	e := evidence{source: src, raw: sig}
	if legacy.Cert != "" {
		// cosign writes the certificate's PEM in base64.
		cert := []byte(legacy.Cert)
		if !strings.HasPrefix(legacy.Cert, "-----BEGIN") {
			if cert, err = base64.StdEncoding.DecodeString(legacy.Cert); err != nil {
				return evidence{}, fmt.Errorf("cert: %w", err)
			}
		}
		e.keyless = legacyKeyless{cert: string(cert)}
		if len(legacy.RekorBundle) > 0 && string(legacy.RekorBundle) != "null" {
			e.keyless.rekor = string(legacy.RekorBundle)
		}
	}
	return e, nil
}

// gathered shares the evidence of an artifact between the verifiers made
// together: the signature and the provenance checks read the same tags,
// referrers and files, and would otherwise fetch them twice.
type gathered struct {
	mu      sync.Mutex
	entries map[string]*gatherEntry
}

type gatherEntry struct {
	once sync.Once
	ev   []evidence
	err  error
}

// maxGathered bounds the artifacts whose evidence is kept: verifiers serve
// one vet, a candidate and perhaps its platforms.
const maxGathered = 16

func (g *gathered) get(ctx context.Context, o Options, art *pipeline.Artifact) ([]evidence, error) {
	key := art.Digest + " " + art.Resolved + " " + art.Path
	g.mu.Lock()
	if g.entries == nil || len(g.entries) >= maxGathered {
		g.entries = map[string]*gatherEntry{}
	}
	e := g.entries[key]
	if e == nil {
		e = &gatherEntry{}
		g.entries[key] = e
	}
	g.mu.Unlock()
	e.once.Do(func() { e.ev, e.err = gather(ctx, o, art) })
	return e.ev, e.err
}

func readLimited(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxEvidenceSize+1))
	if err == nil && len(b) > maxEvidenceSize {
		err = fmt.Errorf("larger than %d bytes", maxEvidenceSize)
	}
	return b, err
}

// notFound reports a registry answer that means "nothing attached".
func notFound(err error) bool {
	var te *transport.Error
	return errors.As(err, &te) && (te.StatusCode == 404 || te.StatusCode == 400 && strings.Contains(te.Error(), "MANIFEST_UNKNOWN"))
}

// legacy reads cosign's legacy layout: a tag whose image has one layer per
// signature (the simple-signing payload, the signature in an annotation)
// or per attestation (a DSSE envelope).
func legacy(tag name.Tag, ropts []remote.Option) ([]evidence, error) {
	img, err := remote.Image(tag, ropts...)
	if err != nil {
		if notFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("reading %s: %w", tag, err)
	}
	mf, err := img.Manifest()
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", tag, err)
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", tag, err)
	}
	var out []evidence
	for i, l := range layers {
		if i == maxEvidence {
			break
		}
		desc := mf.Layers[i]
		b, err := layerBytes(l)
		if err != nil {
			return nil, fmt.Errorf("reading %s layer %s: %w", tag, desc.Digest, err)
		}
		src := fmt.Sprintf("%s layer %d", tag.TagStr(), i)
		switch {
		case string(desc.MediaType) == mediaTypeDSSE || strings.HasSuffix(tag.TagStr(), ".att"):
			var env envelope
			if err := json.Unmarshal(b, &env); err != nil {
				return nil, fmt.Errorf("%s: not a DSSE envelope: %w", src, err)
			}
			out = append(out, evidence{source: src, dsse: &env, keyless: legacyKeylessFrom(desc.Annotations)})
		default:
			sig, err := base64.StdEncoding.DecodeString(desc.Annotations[annotationSignature])
			if err != nil {
				return nil, fmt.Errorf("%s: signature annotation: %w", src, err)
			}
			out = append(out, evidence{source: src, simple: &simpleSigning{payload: b, sig: sig}, keyless: legacyKeylessFrom(desc.Annotations)})
		}
	}
	return out, nil
}

func layerBytes(l v1.Layer) ([]byte, error) {
	rc, err := l.Uncompressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxEvidenceSize+1))
	if err == nil && len(b) > maxEvidenceSize {
		err = fmt.Errorf("larger than %d bytes", maxEvidenceSize)
	}
	return b, err
}

// referrers reads the Sigstore bundles attached to an image.
func referrers(d name.Digest, ropts []remote.Option) ([]evidence, error) {
	idx, err := remote.Referrers(d, ropts...)
	if err != nil {
		if notFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("listing what refers to %s: %w", d, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("listing what refers to %s: %w", d, err)
	}
	var out []evidence
	for _, m := range im.Manifests {
		if len(out) == maxEvidence {
			break
		}
		if !strings.HasPrefix(m.ArtifactType, bundleMediaPrefix) {
			continue
		}
		img, err := remote.Image(d.Context().Digest(m.Digest.String()), ropts...)
		if err != nil {
			return nil, fmt.Errorf("reading referrer %s: %w", m.Digest, err)
		}
		layers, err := img.Layers()
		if err != nil || len(layers) == 0 {
			return nil, fmt.Errorf("reading referrer %s: no bundle layer (%v)", m.Digest, err)
		}
		raw, err := layerBytes(layers[0])
		if err != nil {
			return nil, fmt.Errorf("reading referrer %s: %w", m.Digest, err)
		}
		var b bundle.Bundle
		if err := b.UnmarshalJSON(raw); err != nil {
			return nil, fmt.Errorf("referrer %s: not a Sigstore bundle: %w", m.Digest, err)
		}
		out = append(out, evidence{source: "referrer " + m.Digest.String(), bundle: &b})
	}
	return out, nil
}

// digestBytes is the raw SHA-256 of "sha256:<hex>".
func digestBytes(d string) ([]byte, error) {
	h, ok := strings.CutPrefix(d, "sha256:")
	if !ok {
		return nil, fmt.Errorf("digest %q is not sha256", d)
	}
	return hex.DecodeString(h)
}
