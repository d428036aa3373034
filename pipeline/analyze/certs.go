package analyze

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"path"
	"strings"

	"github.com/fwvet/fwvet/pipeline"
)

// CACerts reports CA certificates added to a trust store or bundle
// (ca-cert-added). Each certificate of a bundle is compared by its SHA-256
// fingerprint with those of the file's previous version; the subject and
// fingerprint are the evidence.
type CACerts struct{}

var _ pipeline.Analyzer = CACerts{}

// Name implements pipeline.Analyzer.
func (CACerts) Name() string { return "ca-certs" }

// trustStores are where system trust anchors live; a CA certificate added
// elsewhere counts too, since a program may pin it.
var trustStores = []string{
	"/etc/ssl/**", "/usr/share/ca-certificates/**", "/usr/local/share/ca-certificates/**", "/etc/pki/**",
	"/etc/ca-certificates/**", "/usr/lib/ssl/**", "/etc/openvpn/**", "/etc/ipsec.d/cacerts/**",
	"**/*ca-bundle*", "**/*cacert*", "**/ca-certificates.crt", "**/*trust*",
}

type foundCert struct {
	cert        *x509.Certificate
	fingerprint string
	offset      int64
}

// Analyze implements pipeline.Analyzer.
func (CACerts) Analyze(ctx context.Context, in *pipeline.AnalysisInput) ([]pipeline.Finding, error) {
	var out []pipeline.Finding
	for _, ch := range in.Changes {
		added, err := addedIn(ctx, ch, in.Scans[ch.Key], certsIn, func(c foundCert) string { return c.fingerprint })
		if err != nil {
			return nil, err
		}
		store := matchAny(trustStores, ch.Path)
		for _, c := range added {
			if !(c.cert.IsCA || selfSigned(c.cert)) {
				continue
			}
			where := "trust store"
			if !store {
				where = "file outside the system trust stores"
			}
			ev := map[string]any{
				"subject": c.cert.Subject.String(), "issuer": c.cert.Issuer.String(),
				"sha256_fingerprint": c.fingerprint, "not_before": c.cert.NotBefore, "not_after": c.cert.NotAfter,
				"offset": c.offset, "in_trust_store": store,
				"inspect": fmt.Sprintf("fwvet unpack REF DIR && openssl x509 -noout -subject -fingerprint -sha256 -in DIR%s", ch.Path),
			}
			out = append(out, finding(pipeline.IDCACertAdded, ch,
				fmt.Sprintf("CA certificate %q added to a %s (SHA-256 %s)", c.cert.Subject.String(), where, c.fingerprint[:16]+"…"), ev))
		}
	}
	return out, nil
}

// certsIn finds the certificates of one file: its PEM blocks, or the whole
// file as DER.
func certsIn(ctx context.Context, e *pipeline.Entry, p *pipeline.Profile) ([]foundCert, error) {
	var out []foundCert
	for _, b := range p.PEM {
		if b.Type != "CERTIFICATE" && b.Type != "TRUSTED CERTIFICATE" {
			continue
		}
		blk, _ := pem.Decode(b.Text)
		if blk == nil {
			continue
		}
		if c, err := x509.ParseCertificate(blk.Bytes); err == nil {
			out = append(out, foundCert{cert: c, fingerprint: certFingerprint(blk.Bytes), offset: b.Offset})
		}
	}
	ext := strings.ToLower(path.Ext(e.Path))
	if len(out) > 0 || p.Magic != "der" || e.Size > maxKeyFile || (ext != ".der" && ext != ".crt" && ext != ".cer" && ext != ".pem") {
		return out, nil
	}
	b, err := readText(ctx, e, maxKeyFile)
	if err != nil {
		return nil, err
	}
	if c, err := x509.ParseCertificate(b); err == nil {
		out = append(out, foundCert{cert: c, fingerprint: certFingerprint(b)})
	}
	return out, nil
}

func certFingerprint(der []byte) string {
	h := sha256.Sum256(der)
	return hex.EncodeToString(h[:])
}

// selfSigned checks the signature with the certificate's own key directly:
// CheckSignatureFrom would refuse a signer not marked as a CA, and a
// self-signed leaf pinned as a trust anchor is exactly what to report.
func selfSigned(c *x509.Certificate) bool {
	return c.Subject.String() == c.Issuer.String() && c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil
}
