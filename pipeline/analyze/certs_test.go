package analyze

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/fwvet/fwvet/pipeline"
)

var certSerial int64

// makeCert makes a certificate for key, signed by parent (self-signed when
// parent is nil).
func makeCert(t *testing.T, tmpl *x509.Certificate, key crypto.Signer, parent *x509.Certificate, parentKey crypto.Signer) *x509.Certificate {
	t.Helper()
	certSerial++
	tmpl.SerialNumber = big.NewInt(certSerial)
	if tmpl.NotBefore.IsZero() {
		tmpl.NotBefore = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
		tmpl.NotAfter = time.Date(2044, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// selfSignedCA is a self-signed CA certificate for key.
func selfSignedCA(t *testing.T, cn string, key crypto.Signer) *x509.Certificate {
	t.Helper()
	return makeCert(t, &x509.Certificate{
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"Test"}},
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}, key, nil, nil)
}

func ecKey(t *testing.T) crypto.Signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func certPEM(cs ...*x509.Certificate) string {
	var b strings.Builder
	for _, c := range cs {
		b.WriteString(pemOf("CERTIFICATE", c.Raw))
	}
	return b.String()
}

func TestCACerts(t *testing.T) {
	rootKey, evilKey, interKey := ecKey(t), ecKey(t), ecKey(t)
	root := selfSignedCA(t, "Vendor Root CA", rootKey)
	other := selfSignedCA(t, "Other Root CA", ecKey(t))
	evil := makeCert(t, &x509.Certificate{
		Subject:               pkix.Name{CommonName: "Evil Root CA", Organization: []string{"Evil Corp"}},
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
		NotBefore:             time.Date(2025, 2, 3, 4, 5, 6, 0, time.UTC),
		NotAfter:              time.Date(2035, 2, 3, 4, 5, 6, 0, time.UTC),
	}, evilKey, nil, nil)
	inter := makeCert(t, &x509.Certificate{
		Subject:               pkix.Name{CommonName: "Vendor Issuing CA"},
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}, interKey, root, rootKey)
	leaf := makeCert(t, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "device.example.com"},
		DNSNames:    []string{"device.example.com"},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, ecKey(t), root, rootKey)
	if len(evil.Raw) < 256 {
		t.Fatalf("test certificate of %d bytes: the DER magic (30 82) needs 256 or more", len(evil.Raw))
	}

	const bundle = "/etc/ssl/certs/ca-certificates.crt"
	base := certPEM(root, other)
	mod := func(p, old, cur string) *pipeline.Change {
		return changed(fileEntry(p, old, 0o644), fileEntry(p, cur, 0o644), "content")
	}
	type want struct {
		cert    *x509.Certificate
		offset  int64
		inStore bool
	}
	tests := []struct {
		name string
		ch   *pipeline.Change
		want []want
	}{
		{
			name: "self-signed CA appended to a bundle",
			ch:   mod(bundle, base, base+certPEM(evil)),
			want: []want{{cert: evil, offset: int64(len(base)), inStore: true}},
		},
		{
			name: "CA inserted between existing ones, with a comment",
			ch:   mod(bundle, base, certPEM(root)+"# Evil\n"+certPEM(evil, other)),
			want: []want{{cert: evil, offset: int64(len(certPEM(root)) + len("# Evil\n")), inStore: true}},
		},
		{
			name: "intermediate CA (not self-signed) added",
			ch:   mod(bundle, base, base+certPEM(inter)),
			want: []want{{cert: inter, offset: int64(len(base)), inStore: true}},
		},
		{
			name: "new PEM file in /etc/ssl/certs",
			ch:   added(fileEntry("/etc/ssl/certs/x.pem", certPEM(evil), 0o644)),
			want: []want{{cert: evil, inStore: true}},
		},
		{
			name: "new PEM file outside the trust stores",
			ch:   added(fileEntry("/opt/agent/pinned.pem", certPEM(evil), 0o644)),
			want: []want{{cert: evil, inStore: false}},
		},
		{
			name: "CA inside a binary",
			ch:   added(fileEntry("/usr/bin/agent", "\x7fELF\x02\x01\x01\x00"+certPEM(evil)+"\x00", 0o755)),
			want: []want{{cert: evil, offset: 8, inStore: false}},
		},
		{
			name: "DER .crt file in a trust store",
			ch:   added(fileEntry("/usr/local/share/ca-certificates/evil.crt", string(evil.Raw), 0o644)),
			want: []want{{cert: evil, inStore: true}},
		},
		{
			name: "DER .der file elsewhere",
			ch:   added(fileEntry("/opt/agent/ca.der", string(evil.Raw), 0o644)),
			want: []want{{cert: evil, inStore: false}},
		},
		// Nothing to report.
		{name: "existing certificates reordered", ch: mod(bundle, base, certPEM(other, root))},
		{name: "certificate removed", ch: mod(bundle, base, certPEM(root))},
		{name: "leaf certificate added", ch: mod(bundle, base, base+certPEM(leaf))},
		{name: "leaf certificate in a new file", ch: added(fileEntry("/etc/uhttpd.crt", certPEM(leaf), 0o644))},
		{name: "DER with an extension no certificate has", ch: added(fileEntry("/opt/agent/ca.bin", string(evil.Raw), 0o644))},
		{name: "removed bundle", ch: removed(fileEntry(bundle, base+certPEM(evil), 0o644))},
		{name: "garbage in a CERTIFICATE block", ch: added(fileEntry("/etc/ssl/certs/bad.pem", pemOf("CERTIFICATE", []byte("not DER at all")), 0o644))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := analyzeWith(t, CACerts{}, scanned(t, tt.ch))
			if len(got) != len(tt.want) {
				t.Fatalf("%d findings, want %d: %s", len(got), len(tt.want), marshal(t, got))
			}
			for i, w := range tt.want {
				f := got[i]
				if f.ID != pipeline.IDCACertAdded || f.Severity != pipeline.SeverityHigh || f.Path != tt.ch.Path || f.Key != tt.ch.Key {
					t.Errorf("finding %d = %s/%s on %s, want ca-cert-added/high on %s", i, f.ID, f.Severity, f.Path, tt.ch.Path)
				}
				sum := sha256.Sum256(w.cert.Raw)
				fp := hex.EncodeToString(sum[:])
				ev := map[string]any{
					"subject": w.cert.Subject.String(), "issuer": w.cert.Issuer.String(), "sha256_fingerprint": fp,
					"not_before": w.cert.NotBefore, "not_after": w.cert.NotAfter, "offset": w.offset, "in_trust_store": w.inStore,
				}
				for k, v := range ev {
					if f.Evidence[k] != v {
						t.Errorf("finding %d evidence %s = %#v, want %#v", i, k, f.Evidence[k], v)
					}
				}
				where := "trust store"
				if !w.inStore {
					where = "file outside the system trust stores"
				}
				contains(t, "message", f.Message, w.cert.Subject.String(), where, fp[:16])
				contains(t, "inspect", f.Evidence["inspect"].(string), "openssl x509", "DIR"+tt.ch.Path)
			}
		})
	}
	if s := evil.Subject.String(); s != "CN=Evil Root CA,O=Evil Corp" {
		t.Errorf("subject %q", s)
	}
}

// TestCACertsSelfSignedLeaf: a self-signed certificate that is not marked
// as a CA (a device's own TLS certificate, as px5g or openssl req makes
// it without basic constraints) is a trust anchor all the same once it is
// in a trust store; the README counts "a CA (or self-signed) certificate".
func TestCACertsSelfSignedLeaf(t *testing.T) {
	key := ecKey(t)
	c := makeCert(t, &x509.Certificate{
		Subject:  pkix.Name{CommonName: "pinned.example.com"},
		DNSNames: []string{"pinned.example.com"},
		KeyUsage: x509.KeyUsageDigitalSignature,
	}, key, nil, nil)
	if c.IsCA || c.Subject.String() != c.Issuer.String() || c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) != nil {
		t.Fatalf("test certificate is not a self-signed non-CA certificate")
	}
	ch := added(fileEntry("/etc/ssl/certs/pinned.pem", certPEM(c), 0o644))
	f := only(t, analyzeWith(t, CACerts{}, scanned(t, ch)), pipeline.IDCACertAdded, pipeline.SeverityHigh, ch)
	if f.Evidence["subject"] != "CN=pinned.example.com" {
		t.Errorf("subject = %v", f.Evidence["subject"])
	}
}
