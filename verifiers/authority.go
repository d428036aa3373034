package verifiers

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
)

// authority is one party whose signature counts: a public key, or a
// keyless identity (a certificate from a trusted Fulcio CA for a given
// subject and OIDC issuer).
type authority struct {
	name string
	// key is set for a key authority.
	key      signature.Verifier
	keyID    string
	identity *verify.CertificateIdentity
	trusted  *root.TrustedRoot
}

func authorities(o Options, identity bool) ([]*authority, error) {
	var tr *root.TrustedRoot
	if o.TrustedRoot != "" {
		var err error
		if tr, err = loadTrustedRoot(o.TrustedRoot); err != nil {
			return nil, err
		}
	}
	var out []*authority
	seen := map[string]bool{}
	for _, p := range o.Keys {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", p, err)
		}
		pub, err := cryptoutils.UnmarshalPEMToPublicKey(b)
		if err != nil {
			return nil, fmt.Errorf("key %s: not a PEM public key: %w", p, err)
		}
		v, err := signature.LoadVerifier(pub, crypto.SHA256)
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", p, err)
		}
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", p, err)
		}
		sum := sha256.Sum256(der)
		id := hex.EncodeToString(sum[:])
		if seen[id] {
			return nil, fmt.Errorf("key %s is given twice: one key is one authority", p)
		}
		seen[id] = true
		out = append(out, &authority{name: fmt.Sprintf("key %s (sha256:%s…)", p, id[:12]), key: v, keyID: id, trusted: tr})
	}
	if identity {
		ci, err := verify.NewShortCertificateIdentity(o.CertOIDCIssuer, o.CertOIDCIssuerRegexp, o.CertIdentity, o.CertIdentityRegexp)
		if err != nil {
			return nil, fmt.Errorf("certificate identity: %w", err)
		}
		who := o.CertIdentity
		if who == "" {
			who = "~" + o.CertIdentityRegexp
		}
		iss := o.CertOIDCIssuer
		if iss == "" {
			iss = "~" + o.CertOIDCIssuerRegexp
		}
		out = append(out, &authority{name: fmt.Sprintf("identity %s from %s", who, iss), identity: &ci, trusted: tr})
	}
	return out, nil
}

// expiringKey is a key that is valid at any time: keys given by the user
// have no validity period.
type expiringKey struct{ signature.Verifier }

func (expiringKey) ValidAtTime(time.Time) bool { return true }

// verifyBundle checks a Sigstore bundle for an artifact of the given
// SHA-256 digest: its signature by this authority (the key, or a
// certificate chaining to the trusted root for the identity, with the
// transparency log and timestamps the trusted root vouches for), and that
// it signs that digest (as a message digest or a statement subject).
func (a *authority) verifyBundle(b *bundle.Bundle, digest []byte) (*verify.VerificationResult, error) {
	var material root.TrustedMaterial
	var vopts []verify.VerifierOption
	var popts []verify.PolicyOption
	if a.key != nil {
		km := root.NewTrustedPublicKeyMaterial(func(string) (root.TimeConstrainedVerifier, error) {
			return expiringKey{a.key}, nil
		})
		material = km
		// A key needs no timestamp; a transparency-log entry, if any, is
		// checked when a trusted root was given.
		if a.trusted != nil && b.HasInclusionProof() {
			material = root.TrustedMaterialCollection{a.trusted, km}
			vopts = append(vopts, verify.WithTransparencyLog(1), verify.WithIntegratedTimestamps(1))
		} else {
			vopts = append(vopts, verify.WithNoObserverTimestamps())
		}
		popts = append(popts, verify.WithKey())
	} else {
		material = a.trusted
		if hasSCT(b) {
			// Fulcio embeds the CT log's promise in the certificate; it
			// cannot be stripped without breaking the CA's signature.
			vopts = append(vopts, verify.WithSignedCertificateTimestamps(1))
		}
		if b.HasInclusionProof() || b.HasInclusionPromise() {
			vopts = append(vopts, verify.WithTransparencyLog(1))
		}
		vopts = append(vopts, verify.WithObserverTimestamps(1))
		popts = append(popts, verify.WithCertificateIdentity(*a.identity))
	}
	v, err := verify.NewVerifier(material, vopts...)
	if err != nil {
		return nil, err
	}
	return v.Verify(b, verify.NewPolicy(verify.WithArtifactDigest("sha256", digest), popts...))
}

// verifyRaw checks a signature made with this authority's key over data.
func (a *authority) verifyRaw(sig, data []byte) error {
	if a.key == nil {
		return errors.New("a bare signature has no certificate: only a key can verify it")
	}
	return a.key.VerifySignature(bytes.NewReader(sig), bytes.NewReader(data))
}

// decodeSignature reads a signature as cosign writes it: base64, or raw.
func decodeSignature(b []byte) []byte {
	if s, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(b))); err == nil {
		return s
	}
	return b
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }

// oidSCTList is the X.509 extension holding embedded signed certificate
// timestamps (RFC 6962).
var oidSCTList = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11129, 2, 4, 2}

// hasSCT reports whether the bundle's signing certificate embeds SCTs.
func hasSCT(b *bundle.Bundle) bool {
	vc, err := b.VerificationContent()
	if err != nil {
		return false
	}
	c := vc.Certificate()
	if c == nil {
		return false
	}
	for _, e := range c.Extensions {
		if e.Id.Equal(oidSCTList) {
			return true
		}
	}
	return false
}
