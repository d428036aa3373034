package verifiers_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
	"google.golang.org/protobuf/proto"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/verifiers"
)

// writeTrustedRoot writes the trusted_root.json of a virtual Sigstore: its
// Fulcio CA, Rekor log, CT log and timestamp authority, and the workflow
// CAs given.
func writeTrustedRoot(t *testing.T, vs *ca.VirtualSigstore, workflows ...*workflowCA) string {
	t.Helper()
	// The virtual Sigstore keys its logs by the hex of their key ids and
	// keeps that text as the id; a trusted_root.json holds the raw bytes.
	raw := func(logs map[string]*root.TransparencyLog) map[string]*root.TransparencyLog {
		out := map[string]*root.TransparencyLog{}
		for k, l := range logs {
			c := *l
			if id, err := hex.DecodeString(string(l.ID)); err == nil {
				c.ID = id
			}
			out[k] = &c
		}
		return out
	}
	cas := vs.FulcioCertificateAuthorities()
	for _, w := range workflows {
		cas = append(cas, w.ca)
	}
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01, cas, raw(vs.CTLogs()), vs.TimestampingAuthorities(), raw(vs.RekorLogs()))
	if err != nil {
		t.Fatal(err)
	}
	b, err := tr.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "trusted_root.json")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// writeBundle turns what the virtual Sigstore signed into a Sigstore bundle
// (v0.3) file: the leaf certificate, the transparency-log entries with
// their inclusion proofs, the timestamps, and the signature or envelope.
func writeBundle(t *testing.T, vs *ca.VirtualSigstore, e *ca.TestEntity, tamper func(*protobundle.Bundle)) string {
	t.Helper()
	vc, _ := e.VerificationContent()
	cert := vc.(*bundle.Certificate).Certificate()
	entries, _ := e.TlogEntries()
	stamps, _ := e.Timestamps()
	pb := &protobundle.Bundle{
		MediaType: "application/vnd.dev.sigstore.bundle.v0.3+json",
		VerificationMaterial: &protobundle.VerificationMaterial{
			Content:                   &protobundle.VerificationMaterial_Certificate{Certificate: &protocommon.X509Certificate{RawBytes: cert.Raw}},
			TimestampVerificationData: &protobundle.TimestampVerificationData{},
		},
	}
	for _, te := range entries {
		tle := proto.Clone(te.TransparencyLogEntry()).(*protorekor.TransparencyLogEntry)
		var kv struct {
			Kind       string `json:"kind"`
			APIVersion string `json:"apiVersion"`
		}
		if err := json.Unmarshal(tle.CanonicalizedBody, &kv); err != nil {
			t.Fatal(err)
		}
		tle.KindVersion = &protorekor.KindVersion{Kind: kv.Kind, Version: kv.APIVersion}
		if tle.InclusionProof == nil {
			// Without an inclusion proof, the log's promise (its signed
			// entry timestamp) stands for it, as in a v0.1 bundle.
			tle.InclusionPromise = &protorekor.InclusionPromise{SignedEntryTimestamp: promise(t, vs, tle)}
			pb.MediaType = "application/vnd.dev.sigstore.bundle+json;version=0.1"
		}
		pb.VerificationMaterial.TlogEntries = append(pb.VerificationMaterial.TlogEntries, tle)
	}
	for _, s := range stamps {
		pb.VerificationMaterial.TimestampVerificationData.Rfc3161Timestamps = append(pb.VerificationMaterial.TimestampVerificationData.Rfc3161Timestamps,
			&protocommon.RFC3161SignedTimestamp{SignedTimestamp: s})
	}
	sc, _ := e.SignatureContent()
	if env := sc.EnvelopeContent(); env != nil {
		raw := env.RawEnvelope()
		payload, err := base64.StdEncoding.DecodeString(raw.Payload)
		if err != nil {
			t.Fatal(err)
		}
		de := &protodsse.Envelope{Payload: payload, PayloadType: raw.PayloadType}
		for _, s := range raw.Signatures {
			sig, err := base64.StdEncoding.DecodeString(s.Sig)
			if err != nil {
				t.Fatal(err)
			}
			de.Signatures = append(de.Signatures, &protodsse.Signature{Sig: sig, Keyid: s.KeyID})
		}
		pb.Content = &protobundle.Bundle_DsseEnvelope{DsseEnvelope: de}
	} else {
		ms := sc.MessageSignatureContent()
		pb.Content = &protobundle.Bundle_MessageSignature{MessageSignature: &protocommon.MessageSignature{
			MessageDigest: &protocommon.HashOutput{Algorithm: protocommon.HashAlgorithm_SHA2_256, Digest: ms.Digest()},
			Signature:     ms.Signature(),
		}}
	}
	if tamper != nil {
		tamper(pb)
	}
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

func blob(t *testing.T, content []byte) *pipeline.Artifact {
	t.Helper()
	p := filepath.Join(t.TempDir(), "firmware.bin")
	if err := os.WriteFile(p, content, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(content)
	return &pipeline.Artifact{Name: "firmware.bin", Path: p, Digest: "sha256:" + hexString(sum[:]), Size: int64(len(content))}
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

func check(t *testing.T, o verifiers.Options, art *pipeline.Artifact) []pipeline.Check {
	t.Helper()
	vs, err := verifiers.New(o)
	if err != nil {
		t.Fatal(err)
	}
	var out []pipeline.Check
	for _, v := range vs {
		out = append(out, v.Verify(context.Background(), art))
	}
	return out
}

const (
	identity = "release@acme.example"
	issuer   = "https://accounts.acme.example"
)

// TestKeylessBundle: bundles made by a Fulcio CA, Rekor log, CT log and
// timestamp authority of the tests' own (sigstore-go's virtual Sigstore),
// checked against a trusted root file: the chain at signing time, the SCT,
// the inclusion proof and the identity.
func TestKeylessBundle(t *testing.T) {
	vs, err := ca.NewVirtualSigstore()
	if err != nil {
		t.Fatal(err)
	}
	other, _ := ca.NewVirtualSigstore()
	trusted := writeTrustedRoot(t, vs)
	fw := []byte("firmware image 1.0.1\n")
	art := blob(t, fw)
	good, err := vs.Sign(identity, issuer, fw)
	if err != nil {
		t.Fatal(err)
	}
	untrusted, _ := other.Sign(identity, issuer, fw)
	expired, _ := vs.SignAtTime(identity, issuer, fw, time.Now().Add(-30*24*time.Hour))
	// An attestation of the firmware, logged with an inclusion proof.
	sum := sha256.Sum256(fw)
	st, _ := json.Marshal(map[string]any{"_type": "https://in-toto.io/Statement/v1", "predicateType": verifiers.CosignSignPredicate, "predicate": map[string]any{},
		"subject": []any{map[string]any{"name": "firmware.bin", "digest": map[string]string{"sha256": hexString(sum[:])}}}})
	proved, err := vs.AttestAtTime(identity, issuer, st, time.Now().Add(5*time.Minute), true)
	if err != nil {
		t.Fatal(err)
	}
	base := verifiers.Options{TrustedRoot: trusted, CertIdentity: identity, CertOIDCIssuer: issuer}
	runBundleCases(t, base, []bundleCase{
		{name: "signed by the identity", bundle: writeBundle(t, vs, good, nil), art: art, status: pipeline.CheckPass, detail: "identity " + identity},
		{name: "identity by regexp", bundle: writeBundle(t, vs, good, nil), art: art, status: pipeline.CheckPass,
			opts: func(o *verifiers.Options) { o.CertIdentity, o.CertIdentityRegexp = "", `^release@acme\.example$` }},
		{name: "another identity", bundle: writeBundle(t, vs, good, nil), art: art, status: pipeline.CheckFail, detail: "SAN",
			opts: func(o *verifiers.Options) { o.CertIdentity = "intern@acme.example" }},
		{name: "another issuer", bundle: writeBundle(t, vs, good, nil), art: art, status: pipeline.CheckFail,
			opts: func(o *verifiers.Options) { o.CertOIDCIssuer = "https://evil.example" }},
		{name: "artifact changed after signing", bundle: writeBundle(t, vs, good, nil), art: blob(t, []byte("firmware image 1.0.1 + backdoor\n")), status: pipeline.CheckFail},
		{name: "certificate from an untrusted CA", bundle: writeBundle(t, other, untrusted, nil), art: art, status: pipeline.CheckFail},
		{name: "signed outside the certificate's validity", bundle: writeBundle(t, vs, expired, nil), art: art, status: pipeline.CheckFail},
		{name: "broken inclusion proof", art: art, status: pipeline.CheckFail, bundle: writeBundle(t, vs, proved, func(b *protobundle.Bundle) {
			b.VerificationMaterial.TlogEntries[0].InclusionProof.RootHash[0] ^= 0xff
		})},
		{name: "intact inclusion proof", art: art, status: pipeline.CheckPass, bundle: writeBundle(t, vs, proved, nil)},
	})
}

// bundleCase is one --bundle for the signature verifier, and the check it
// must give.
type bundleCase struct {
	name   string
	bundle string
	art    *pipeline.Artifact
	opts   func(*verifiers.Options)
	status pipeline.CheckStatus
	detail string
}

func runBundleCases(t *testing.T, base verifiers.Options, cases []bundleCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := base
			o.Bundle = tc.bundle
			if tc.opts != nil {
				tc.opts(&o)
			}
			cs := check(t, o, tc.art)
			if len(cs) != 1 || cs[0].Status != tc.status || !strings.Contains(cs[0].Detail, tc.detail) {
				t.Errorf("checks %+v, want signature %s mentioning %q", cs, tc.status, tc.detail)
			}
		})
	}
}

// Workflows of the keyless provenance tests: the trusted publisher's
// builder, a release workflow that calls it, and an attacker's.
const (
	trustedBuilder = "https://github.com/acme/firmware-builder/.github/workflows/build.yml"
	callerWorkflow = "https://github.com/acme/firmware/.github/workflows/release.yml@refs/tags/v2.0.0"
	attackerSigner = "https://github.com/attacker/repo/.github/workflows/malicious_attestation.yaml@refs/heads/main"
)

// slsaStatement is an in-toto statement of SLSA v1 provenance for the
// digest, built by builder from git.acme.example/rt3200/firmware at v2.0.0.
func slsaStatement(digest, builder string) []byte {
	b, _ := json.Marshal(map[string]any{
		"_type":         "https://in-toto.io/Statement/v1",
		"subject":       []any{map[string]any{"name": "firmware.bin", "digest": map[string]string{"sha256": digest}}},
		"predicateType": verifiers.SLSAv1,
		"predicate": map[string]any{
			"buildDefinition": map[string]any{
				"buildType":            "https://acme.example/build/v1",
				"resolvedDependencies": []any{map[string]any{"uri": "git+https://git.acme.example/rt3200/firmware@refs/tags/v2.0.0"}},
			},
			"runDetails": map[string]any{"builder": map[string]any{"id": builder}},
		},
	})
	return b
}

// TestKeylessProvenance: a keyless in-toto attestation with SLSA v1
// provenance passes when its subject, builder and source are the ones
// asked for, and fails naming the field that differs. The builder that
// counts is the one the signing certificate binds (its SAN, or its Build
// Signer or Build Config URI), never the predicate's claim alone: a
// certificate issued to another workflow fails whatever the predicate says
// and however loose the identity asked for.
func TestKeylessProvenance(t *testing.T) {
	vs, err := ca.NewVirtualSigstore()
	if err != nil {
		t.Fatal(err)
	}
	wf := newWorkflowCA(t, vs)
	fw := []byte("firmware image 2.0.0\n")
	art := blob(t, fw)
	sum := sha256.Sum256(fw)
	digest := hexString(sum[:])
	const release = trustedBuilder + "@refs/tags/v3"
	attest := func(wc workflowCert, st []byte) string { return writeProtoBundle(t, wf.attest(t, wc, st)) }
	good := attest(workflowCert{san: release, buildSigner: release, buildConfig: release}, slsaStatement(digest, release))
	// The attacker's workflow, signing a predicate that names the trusted
	// builder.
	forged := attest(workflowCert{san: attackerSigner, buildSigner: attackerSigner, buildConfig: attackerSigner}, slsaStatement(digest, release))
	// The trusted builder as a reusable workflow: the SAN is the caller's,
	// the Build Signer URI the builder that signed.
	reusable := attest(workflowCert{san: callerWorkflow, buildSigner: release, buildConfig: callerWorkflow}, slsaStatement(digest, release))
	// The trusted builder's certificate at v3, its predicate claiming v2.
	otherRef := attest(workflowCert{san: release, buildSigner: release}, slsaStatement(digest, trustedBuilder+"@refs/tags/v2"))
	// The trusted builder delegating the signing to a shared workflow: the
	// Build Config URI is the builder that ran.
	const signer = "https://github.com/acme/shared/.github/workflows/sign.yml@refs/heads/main"
	delegated := attest(workflowCert{san: signer, buildSigner: signer, buildConfig: release}, slsaStatement(digest, release))
	other := attest(workflowCert{san: release, buildSigner: release}, slsaStatement(strings.Repeat("ab", 32), release))
	// A person's certificate (an e-mail SAN) binds no builder.
	byPerson, err := vs.AttestAtTime(identity, issuer, slsaStatement(digest, release), time.Now().Add(5*time.Minute), true)
	if err != nil {
		t.Fatal(err)
	}
	base := verifiers.Options{TrustedRoot: writeTrustedRoot(t, vs, wf), CertIdentity: release, CertOIDCIssuer: githubIssuer,
		BuilderID: trustedBuilder, SourceURI: "git.acme.example/rt3200/firmware", SourceTag: "v2.0.0"}
	anyIdentity := func(o *verifiers.Options) { o.CertIdentity, o.CertIdentityRegexp = "", ".*" }
	cases := []struct {
		name   string
		bundle string
		opts   func(*verifiers.Options)
		status pipeline.CheckStatus
		detail []string
		// unsigned: the signature check fails too.
		unsigned bool
	}{
		{name: "matching provenance", bundle: good, status: pipeline.CheckPass,
			detail: []string{"built by " + release, "bound by the certificate's SAN " + release}},
		{name: "builder at the version asked", bundle: good, status: pipeline.CheckPass,
			opts: func(o *verifiers.Options) { o.BuilderID = release }},
		{name: "another builder", bundle: good, status: pipeline.CheckFail, detail: []string{"predicate.runDetails.builder.id"},
			opts: func(o *verifiers.Options) { o.BuilderID = "https://ci.evil.example/builder" }},
		{name: "another source", bundle: good, status: pipeline.CheckFail, detail: []string{"resolvedDependencies[0].uri"},
			opts: func(o *verifiers.Options) { o.SourceURI = "github.com/someone/else" }},
		{name: "another tag", bundle: good, status: pipeline.CheckFail, detail: []string{"want tag"},
			opts: func(o *verifiers.Options) { o.SourceTag = "v1.9.9" }},
		{name: "provenance for another subject", bundle: other, status: pipeline.CheckFail, unsigned: true},
		{name: "forged builder claim, signer's identity asked", bundle: forged, status: pipeline.CheckFail,
			detail: []string{`--builder-id "` + trustedBuilder + `" is not bound`, `SAN "` + attackerSigner + `"`, "Build Signer URI"},
			opts:   func(o *verifiers.Options) { o.CertIdentity = attackerSigner }},
		{name: "forged builder claim, any identity", bundle: forged, status: pipeline.CheckFail,
			detail: []string{trustedBuilder, attackerSigner}, opts: anyIdentity},
		{name: "forged builder claim, builder at a version", bundle: forged, status: pipeline.CheckFail, detail: []string{release, attackerSigner},
			opts: func(o *verifiers.Options) { anyIdentity(o); o.BuilderID = release }},
		{name: "forged builder claim, builder by prefix", bundle: forged, status: pipeline.CheckFail, detail: []string{attackerSigner},
			opts: func(o *verifiers.Options) { anyIdentity(o); o.BuilderID = "https://github.com/acme/*" }},
		{name: "builder at another version than the certificate's", bundle: otherRef, status: pipeline.CheckFail,
			detail: []string{trustedBuilder + "@refs/tags/v2", "SAN " + `"` + release + `"`},
			opts:   func(o *verifiers.Options) { o.BuilderID = trustedBuilder + "@refs/tags/v2" }},
		{name: "reusable workflow, builder in Build Signer URI", bundle: reusable, status: pipeline.CheckPass,
			detail: []string{"bound by the certificate's Build Signer URI (1.3.6.1.4.1.57264.1.9) " + release},
			opts:   func(o *verifiers.Options) { o.CertIdentity = callerWorkflow }},
		{name: "reusable workflow, any identity", bundle: reusable, status: pipeline.CheckPass, detail: []string{"Build Signer URI"}, opts: anyIdentity},
		{name: "delegated signing, builder in Build Config URI", bundle: delegated, status: pipeline.CheckPass,
			detail: []string{"bound by the certificate's Build Config URI (1.3.6.1.4.1.57264.1.18) " + release},
			opts:   func(o *verifiers.Options) { o.CertIdentity = signer }},
		{name: "person's certificate", bundle: writeBundle(t, vs, byPerson, nil), status: pipeline.CheckFail,
			detail: []string{"binds no builder", identity},
			opts:   func(o *verifiers.Options) { o.CertIdentity, o.CertOIDCIssuer = identity, issuer }},
		{name: "no builder asked", bundle: forged, status: pipeline.CheckPass, detail: []string{"not checked: no --builder-id"},
			opts: func(o *verifiers.Options) { anyIdentity(o); o.BuilderID = "" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := base
			o.Bundle = tc.bundle
			if tc.opts != nil {
				tc.opts(&o)
			}
			cs := check(t, o, art)
			if len(cs) != 2 || (cs[0].Status == pipeline.CheckPass) == tc.unsigned || cs[1].Name != "provenance" || cs[1].Status != tc.status {
				t.Fatalf("checks %+v, want the signature verified (unless unsigned %v) and provenance %s", cs, tc.unsigned, tc.status)
			}
			for _, d := range tc.detail {
				if !strings.Contains(cs[1].Detail, d) {
					t.Errorf("provenance detail %q lacks %q", cs[1].Detail, d)
				}
			}
		})
	}
}

// TestOptionsChecked: contradictory or incomplete options are refused
// before anything is verified.
func TestOptionsChecked(t *testing.T) {
	for _, o := range []verifiers.Options{
		{CertIdentity: identity, CertOIDCIssuer: issuer},
		{TrustedRoot: "x.json"},
		{Signature: "sig"},
		{Keys: []string{"a.pub"}, Signature: "s", Bundle: "b"},
		{TrustedRoot: "x.json", CertIdentity: identity, CertIdentityRegexp: ".*", CertOIDCIssuer: issuer},
		{TrustedRoot: "x.json", CertIdentity: identity},
		{TrustedRoot: "x.json", CertIdentityRegexp: "(", CertOIDCIssuer: issuer},
		{BuilderID: "b"},
	} {
		if _, err := verifiers.New(o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
	if vs, err := verifiers.New(verifiers.Options{}); err != nil || vs != nil {
		t.Errorf("no options: %v %v", vs, err)
	}
}
