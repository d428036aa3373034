package attest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"strings"
	"testing"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/sigstore/sigstore/pkg/signature"
)

// FuzzVerify feeds arbitrary envelopes to the decoding and checking of
// Verify, and arbitrary bundles to Find's bundle decoding: neither may
// panic, and nothing but a signature by the key may verify.
func FuzzVerify(f *testing.F) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	s, err := signature.LoadDefaultSigner(k)
	if err != nil {
		f.Fatal(err)
	}
	st, err := Statement(report(testDigest, pipeline.VerdictPass), Options{Now: testNow})
	if err != nil {
		f.Fatal(err)
	}
	env, err := Sign(f.Context(), st, s)
	if err != nil {
		f.Fatal(err)
	}
	e, payload, err := ParseEnvelope(env)
	if err != nil {
		f.Fatal(err)
	}
	bundle, err := bundleOf(e, payload)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(env)
	f.Add(bundle)
	f.Add([]byte(`{"payloadType":"application/vnd.in-toto+json","payload":"e30","signatures":[{"sig":"AA=="}]}`))
	f.Add([]byte(`{}`))
	want := Expect{Digest: testDigest, PolicyDigest: testPolicy}
	f.Fuzz(func(t *testing.T, b []byte) {
		if vs, err := Verify(b, k.Public(), want); err == nil {
			// What verifies says what was asked of it.
			found := false
			for _, sub := range vs.Statement.Subject {
				found = found || strings.EqualFold("sha256:"+sub.Digest["sha256"], testDigest)
			}
			if !found || vs.Result != ResultPassed || vs.Statement.Predicate.Verifier.ID != DefaultVerifierID {
				t.Fatalf("verified %q as %+v", b, vs)
			}
		}
		if n, err := envelopeOfBundle(b); err == nil && len(n) > 2*MaxEnvelopeSize {
			t.Fatalf("a bundle of %d bytes gave an envelope of %d", len(b), len(n))
		}
		if n, err := normalize(b); err == nil {
			if _, _, err := ParseEnvelope(n); err != nil {
				t.Fatalf("normalized envelope does not parse: %v", err)
			}
		}
	})
}
