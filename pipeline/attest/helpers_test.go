package attest

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/sigstore/sigstore/pkg/signature"
)

const (
	testDigest = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	testPolicy = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
)

var testNow = time.Date(2026, 12, 2, 23, 0, 0, 0, time.UTC)

// report is a report of digest with verdict and checks.
func report(digest string, v pipeline.Verdict, checks ...pipeline.Check) *pipeline.Report {
	return &pipeline.Report{
		Schema:       pipeline.ReportSchema,
		Tool:         pipeline.Tool{Name: "fwvet", Version: "0.1.0"},
		Candidate:    pipeline.Subject{Ref: "registry.example/fw/rt3200@" + digest, Digest: digest, Version: "1.0.1"},
		Checks:       checks,
		Verdict:      v,
		Reasons:      []string{"because"},
		PolicyDigest: testPolicy,
	}
}

func pass(name string) pipeline.Check {
	return pipeline.Check{Name: name, Status: pipeline.CheckPass}
}

// keyKind is a key a test generates, written as a PEM file.
type keyKind struct {
	name string
	gen  func(t *testing.T) (crypto.Signer, *pem.Block)
}

func pkcs8(t *testing.T, k crypto.Signer) *pem.Block {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return &pem.Block{Type: "PRIVATE KEY", Bytes: der}
}

var keyKinds = []keyKind{
	{"ecdsa-p256-pkcs8", func(t *testing.T) (crypto.Signer, *pem.Block) {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		return k, pkcs8(t, k)
	}},
	{"ecdsa-p384-sec1", func(t *testing.T) (crypto.Signer, *pem.Block) {
		k, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		der, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return k, &pem.Block{Type: "EC PRIVATE KEY", Bytes: der}
	}},
	{"ed25519-pkcs8", func(t *testing.T) (crypto.Signer, *pem.Block) {
		_, k, _ := ed25519.GenerateKey(rand.Reader)
		return k, pkcs8(t, k)
	}},
	{"rsa-2048-pkcs1", func(t *testing.T) (crypto.Signer, *pem.Block) {
		k, _ := rsa.GenerateKey(rand.Reader, 2048)
		return k, &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}
	}},
	{"rsa-2048-pkcs8", func(t *testing.T) (crypto.Signer, *pem.Block) {
		k, _ := rsa.GenerateKey(rand.Reader, 2048)
		return k, pkcs8(t, k)
	}},
}

// writeKey writes a private key PEM and its public key PEM, returning the
// private key's path, the public key's path and the public key.
func writeKey(t *testing.T, dir string, k crypto.Signer, b *pem.Block) (string, string, crypto.PublicKey) {
	t.Helper()
	priv := filepath.Join(dir, "key.pem")
	if err := os.WriteFile(priv, pem.EncodeToMemory(b), 0o600); err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	pub := filepath.Join(dir, "key.pub")
	if err := os.WriteFile(pub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return priv, pub, k.Public()
}

// newECDSA is a P-256 key on disk, loaded by LoadSigner.
func newECDSA(t *testing.T) (signature.Signer, string, crypto.PublicKey) {
	t.Helper()
	k, b := keyKinds[0].gen(t)
	priv, pub, pk := writeKey(t, t.TempDir(), k, b)
	s, err := LoadSigner(context.Background(), priv)
	if err != nil {
		t.Fatal(err)
	}
	return s, pub, pk
}

// signed is a signed summary of r.
func signed(t *testing.T, s signature.Signer, r *pipeline.Report, o Options) []byte {
	t.Helper()
	st, err := Statement(r, o)
	if err != nil {
		t.Fatal(err)
	}
	env, err := Sign(context.Background(), st, s)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func hasPrefixAny(ss []string, prefix string) bool {
	for _, s := range ss {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}
