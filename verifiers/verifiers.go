// Package verifiers checks who signed an artifact and where it was built,
// the way the Sigstore ecosystem signs: cosign signatures of blobs and OCI
// images (legacy layout and Sigstore bundles), in-toto/SLSA provenance, all
// offline against given keys or a given trusted root. Each verifier yields
// a pipeline.Check and fails closed: what cannot be verified is not a pass.
package verifiers

import (
	"context"
	"errors"
	"fmt"
	"regexp"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/fwvet/fwvet/pipeline"
)

// Options are the signature and provenance flags, named as cosign and
// slsa-verifier name them.
type Options struct {
	// Keys are PEM public keys (cosign.pub); each is one signing authority.
	Keys []string
	// Threshold is how many authorities must have signed (k of n); zero
	// means one.
	Threshold int
	// Signature is a detached signature of a blob (cosign sign-blob).
	Signature string
	// Bundle is a Sigstore bundle (v0.1 to v0.3) for the artifact.
	Bundle string
	// TrustedRoot is a trusted_root.json: Fulcio CAs, Rekor and CT logs,
	// timestamp authorities. With the identity flags it makes keyless
	// signatures one more authority.
	TrustedRoot          string
	CertIdentity         string
	CertIdentityRegexp   string
	CertOIDCIssuer       string
	CertOIDCIssuerRegexp string
	// BuilderID, SourceURI, SourceBranch and SourceTag ask for SLSA
	// provenance that says so.
	BuilderID    string
	SourceURI    string
	SourceBranch string
	SourceTag    string
	// Registry reaches the registry an image came from, for its
	// signatures and attestations.
	Registry Registry
}

// Registry gives the reference and options to read from a registry.
type Registry interface {
	Remote(ctx context.Context, ref string) (name.Reference, []remote.Option, error)
}

// Requested reports whether any signature or provenance check was asked for.
func (o Options) Requested() bool {
	return len(o.Keys) > 0 || o.Signature != "" || o.Bundle != "" || o.TrustedRoot != "" || o.wantsProvenance() || o.WantsIdentity()
}

// WantsIdentity reports whether a keyless signing identity was asked for.
func (o Options) WantsIdentity() bool {
	return o.CertIdentity != "" || o.CertIdentityRegexp != "" || o.CertOIDCIssuer != "" || o.CertOIDCIssuerRegexp != ""
}

func (o Options) wantsProvenance() bool {
	return o.BuilderID != "" || o.SourceURI != "" || o.SourceBranch != "" || o.SourceTag != ""
}

// New checks the options together, once, and returns the verifiers they
// ask for: a signature check whenever an authority is given, a provenance
// check when builder or source is. Contradictory or incomplete options are
// an error.
func New(o Options) ([]pipeline.Verifier, error) {
	if !o.Requested() {
		return nil, nil
	}
	identity := o.WantsIdentity()
	switch {
	case identity && o.TrustedRoot == "":
		return nil, errors.New("--certificate-identity and --certificate-oidc-issuer need --trusted-root to check the certificate against")
	case o.TrustedRoot != "" && len(o.Keys) == 0 && !identity:
		return nil, errors.New("--trusted-root verifies keyless signatures: give --certificate-identity[-regexp] and --certificate-oidc-issuer[-regexp]")
	case identity && (o.CertIdentity == "") == (o.CertIdentityRegexp == ""):
		return nil, errors.New("give exactly one of --certificate-identity and --certificate-identity-regexp")
	case identity && (o.CertOIDCIssuer == "") == (o.CertOIDCIssuerRegexp == ""):
		return nil, errors.New("give exactly one of --certificate-oidc-issuer and --certificate-oidc-issuer-regexp")
	case o.Signature != "" && len(o.Keys) == 0:
		return nil, errors.New("--signature is checked with --key")
	case o.Signature != "" && o.Bundle != "":
		return nil, errors.New("give --signature or --bundle, not both")
	case len(o.Keys) == 0 && !identity:
		return nil, errors.New("nothing to verify with: give --key, or --trusted-root with the certificate identity flags")
	}
	for _, re := range []string{o.CertIdentityRegexp, o.CertOIDCIssuerRegexp} {
		if re != "" {
			if _, err := regexp.Compile(re); err != nil {
				return nil, fmt.Errorf("regexp %q: %w", re, err)
			}
		}
	}
	auths, err := authorities(o, identity)
	if err != nil {
		return nil, err
	}
	k := max(o.Threshold, 1)
	if k > len(auths) {
		return nil, fmt.Errorf("threshold %d of %d authorities cannot be met", k, len(auths))
	}
	ev := &gathered{}
	vs := []pipeline.Verifier{&signatureVerifier{o: o, auths: auths, threshold: k, evidence: ev}}
	if o.wantsProvenance() {
		vs = append(vs, &provenanceVerifier{o: o, auths: auths, evidence: ev})
	}
	return vs, nil
}

// loadTrustedRoot reads a trusted_root.json.
func loadTrustedRoot(path string) (*root.TrustedRoot, error) {
	tr, err := root.NewTrustedRootFromPath(path)
	if err != nil {
		return nil, fmt.Errorf("trusted root %s: %w", path, err)
	}
	return tr, nil
}
