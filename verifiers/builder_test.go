package verifiers_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
)

// GitHub's OIDC issuer, which Fulcio names in a workflow's certificate.
const githubIssuer = "https://token.actions.githubusercontent.com"

// workflowCA is a Fulcio CA of the tests' own that issues what Fulcio
// issues to a CI workflow: a URI SAN (the workflow identity) and the build
// extensions (Build Signer URI, Build Config URI), which the virtual
// Sigstore's CA cannot. Timestamps come from the virtual Sigstore's TSA.
type workflowCA struct {
	vs  *ca.VirtualSigstore
	ca  *root.FulcioCertificateAuthority
	key *ecdsa.PrivateKey
}

func newWorkflowCA(t *testing.T, vs *ca.VirtualSigstore) *workflowCA {
	t.Helper()
	rootCert, rootKey, err := ca.GenerateRootCa()
	if err != nil {
		t.Fatal(err)
	}
	inter, interKey, err := ca.GenerateFulcioIntermediate(rootCert, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	return &workflowCA{vs: vs, key: interKey, ca: &root.FulcioCertificateAuthority{
		Root: rootCert, Intermediates: []*x509.Certificate{inter}, URI: "https://workflow.fulcio.example",
		ValidityPeriodStart: time.Now().Add(-5 * time.Hour), ValidityPeriodEnd: time.Now().Add(time.Hour),
	}}
}

// workflowCert is what a workflow's certificate says: its SAN and the
// Fulcio build extensions, empty when absent.
type workflowCert struct {
	san, buildSigner, buildConfig string
}

// attest signs an in-toto statement in a DSSE envelope with a fresh key,
// certified by this CA for the workflow and timestamped by the TSA: the
// Sigstore bundle v0.3 cosign attest would make (without a log entry).
func (w *workflowCA) attest(t *testing.T, wc workflowCert, statement []byte) *protobundle.Bundle {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der := func(s string) []byte {
		b, err := asn1.MarshalWithParams(s, "utf8")
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	exts := []pkix.Extension{{Id: certificate.OIDIssuerV2, Value: der(githubIssuer)}}
	if wc.buildSigner != "" {
		exts = append(exts, pkix.Extension{Id: certificate.OIDBuildSignerURI, Value: der(wc.buildSigner)})
	}
	if wc.buildConfig != "" {
		exts = append(exts, pkix.Extension{Id: certificate.OIDBuildConfigURI, Value: der(wc.buildConfig)})
	}
	san, err := url.Parse(wc.san)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber:    serial,
		URIs:            []*url.URL{san},
		NotBefore:       time.Now().Add(-time.Minute),
		NotAfter:        time.Now().Add(10 * time.Minute),
		KeyUsage:        x509.KeyUsageDigitalSignature,
		ExtKeyUsage:     []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		ExtraExtensions: exts,
	}
	raw, err := x509.CreateCertificate(rand.Reader, tmpl, w.ca.Intermediates[0], &key.PublicKey, w.key)
	if err != nil {
		t.Fatal(err)
	}
	const payloadType = "application/vnd.in-toto+json"
	sum := sha256.Sum256(fmt.Appendf(nil, "DSSEv1 %d %s %d %s", len(payloadType), payloadType, len(statement), statement))
	sig, err := ecdsa.SignASN1(rand.Reader, key, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	tsr, err := w.vs.TimestampResponse(sig)
	if err != nil {
		t.Fatal(err)
	}
	return &protobundle.Bundle{
		MediaType: "application/vnd.dev.sigstore.bundle.v0.3+json",
		VerificationMaterial: &protobundle.VerificationMaterial{
			Content: &protobundle.VerificationMaterial_Certificate{Certificate: &protocommon.X509Certificate{RawBytes: raw}},
			TimestampVerificationData: &protobundle.TimestampVerificationData{
				Rfc3161Timestamps: []*protocommon.RFC3161SignedTimestamp{{SignedTimestamp: tsr}},
			},
		},
		Content: &protobundle.Bundle_DsseEnvelope{DsseEnvelope: &protodsse.Envelope{
			Payload: statement, PayloadType: payloadType, Signatures: []*protodsse.Signature{{Sig: sig}},
		}},
	}
}

// writeProtoBundle writes a Sigstore bundle file.
func writeProtoBundle(t *testing.T, pb *protobundle.Bundle) string {
	t.Helper()
	b, err := bundle.NewBundle(pb)
	if err != nil {
		t.Fatal(err)
	}
	js, err := b.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "bundle.json")
	if err := os.WriteFile(p, js, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// legacyAttestation is a workflow's attestation bundle as cosign's legacy
// layout holds it: the DSSE envelope as the layer, the certificate and the
// RFC 3161 timestamp as annotations.
func legacyAttestation(t *testing.T, pb *protobundle.Bundle) ([]byte, map[string]string) {
	t.Helper()
	de := pb.GetDsseEnvelope()
	env, err := json.Marshal(map[string]any{
		"payloadType": de.PayloadType,
		"payload":     base64.StdEncoding.EncodeToString(de.Payload),
		"signatures":  []any{map[string]string{"keyid": "", "sig": base64.StdEncoding.EncodeToString(de.Signatures[0].Sig)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ts, err := json.Marshal(map[string][]byte{"SignedRFC3161Timestamp": pb.VerificationMaterial.TimestampVerificationData.Rfc3161Timestamps[0].SignedTimestamp})
	if err != nil {
		t.Fatal(err)
	}
	return env, map[string]string{
		"dev.sigstore.cosign/certificate":      string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: pb.VerificationMaterial.GetCertificate().RawBytes})),
		"dev.sigstore.cosign/rfc3161timestamp": string(ts),
	}
}
