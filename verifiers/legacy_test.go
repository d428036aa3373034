package verifiers_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
	"github.com/sigstore/sigstore-go/pkg/tlog"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/cache"
	"github.com/fwvet/fwvet/pipeline/fixture"
	"github.com/fwvet/fwvet/pipeline/source"
	"github.com/fwvet/fwvet/verifiers"
)

// promise is the log's signed entry timestamp for an entry, as Rekor
// returns it and cosign keeps it.
func promise(t *testing.T, vs *ca.VirtualSigstore, tle *protorekor.TransparencyLogEntry) []byte {
	t.Helper()
	set, err := vs.RekorSignPayload(tlog.RekorPayload{Body: base64.StdEncoding.EncodeToString(tle.CanonicalizedBody),
		IntegratedTime: tle.IntegratedTime, LogIndex: tle.LogIndex, LogID: hexString(tle.LogId.KeyId)})
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// legacyAnnotations are the annotations cosign puts on a keyless signature
// or attestation layer in its legacy layout: the certificate and the Rekor
// bundle (entry body, time, index, log id and signed entry timestamp).
func legacyAnnotations(t *testing.T, vs *ca.VirtualSigstore, e *ca.TestEntity) map[string]string {
	t.Helper()
	vc, _ := e.VerificationContent()
	cert := vc.(*bundle.Certificate).Certificate()
	entries, _ := e.TlogEntries()
	tle := entries[0].TransparencyLogEntry()
	rb, err := json.Marshal(map[string]any{
		"SignedEntryTimestamp": promise(t, vs, tle),
		"Payload": map[string]any{"body": tle.CanonicalizedBody, "integratedTime": tle.IntegratedTime,
			"logIndex": tle.LogIndex, "logID": hexString(tle.LogId.KeyId)},
	})
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		"dev.sigstore.cosign/certificate": string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})),
		"dev.sigstore.cosign/bundle":      string(rb),
	}
}

// pushImage pushes a one-file root file system image and returns its
// reference by digest.
func pushImage(t *testing.T, repo name.Repository, content string) name.Digest {
	t.Helper()
	b, err := os.ReadFile(fixture.Tar(t, map[string]string{"etc/os-release": content}))
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, static.NewLayer(b, types.OCIUncompressedLayer))
	if err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	ref := repo.Digest(d.String())
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	return ref
}

// attach pushes one layer under the tag cosign's legacy layout gives the
// image's signatures (".sig") or attestations (".att").
func attach(t *testing.T, ref name.Digest, suffix string, layer []byte, mediaType types.MediaType, annotations map[string]string) {
	t.Helper()
	img, err := mutate.Append(empty.Image, mutate.Addendum{Layer: static.NewLayer(layer, mediaType), Annotations: annotations})
	if err != nil {
		t.Fatal(err)
	}
	tag := ref.Context().Tag(strings.Replace(ref.DigestStr(), ":", "-", 1) + suffix)
	if err := remote.Write(tag, img); err != nil {
		t.Fatal(err)
	}
}

func simpleSigningPayload(ref name.Digest, digest string) []byte {
	b, _ := json.Marshal(map[string]any{
		"critical": map[string]any{
			"identity": map[string]string{"docker-reference": ref.Context().Name()},
			"image":    map[string]string{"docker-manifest-digest": digest},
			"type":     "cosign container image signature",
		},
		"optional": nil,
	})
	return b
}

// TestKeylessLegacyLayout: keyless signatures and attestations in cosign's
// legacy layout (the .sig and .att tags, the certificate and Rekor bundle
// annotations), made by the tests' virtual Sigstore, pass for the identity
// and fail closed on everything else.
func TestKeylessLegacyLayout(t *testing.T) {
	vs, err := ca.NewVirtualSigstore()
	if err != nil {
		t.Fatal(err)
	}
	other, _ := ca.NewVirtualSigstore()
	wf := newWorkflowCA(t, vs)
	reg := fixture.StartRegistry(t)
	repo, err := name.NewRepository(reg.Host+"/acme/legacy", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	const builder = "https://ci.acme.example/builders/firmware@v3"
	// sign pushes an image and signs it as a case asks: with which virtual
	// Sigstore, over a payload naming which digest, with its annotations
	// changed how.
	type signing struct {
		by     *ca.VirtualSigstore
		names  func(own string) string
		tamper func(map[string]string)
		attest bool
		// workflow, for an attestation, is the SAN of a workflow's
		// certificate (with the same Build Signer URI) to attest with
		// instead of the e-mail identity.
		workflow string
	}
	sign := func(t *testing.T, n int, s signing) name.Digest {
		ref := pushImage(t, repo, strings.Repeat("x", n))
		by := s.by
		if by == nil {
			by = vs
		}
		digest := ref.DigestStr()
		if s.names != nil {
			digest = s.names(digest)
		}
		if s.attest {
			st, _ := json.Marshal(map[string]any{
				"_type":         "https://in-toto.io/Statement/v1",
				"subject":       []any{map[string]any{"name": ref.Context().Name(), "digest": map[string]string{"sha256": strings.TrimPrefix(digest, "sha256:")}}},
				"predicateType": verifiers.SLSAv1,
				"predicate": map[string]any{
					"buildDefinition": map[string]any{"buildType": "https://acme.example/build/v1",
						"resolvedDependencies": []any{map[string]any{"uri": "git+https://git.acme.example/rt3200/firmware@refs/heads/main"}}},
					"runDetails": map[string]any{"builder": map[string]any{"id": builder}},
				},
			})
			var env []byte
			var ann map[string]string
			if s.workflow != "" {
				env, ann = legacyAttestation(t, wf.attest(t, workflowCert{san: s.workflow, buildSigner: s.workflow}, st))
			} else {
				e, err := by.AttestAtTime(identity, issuer, st, time.Now().Add(5*time.Minute), false)
				if err != nil {
					t.Fatal(err)
				}
				sc, _ := e.SignatureContent()
				env, _ = json.Marshal(sc.EnvelopeContent().RawEnvelope())
				ann = legacyAnnotations(t, by, e)
			}
			if s.tamper != nil {
				s.tamper(ann)
			}
			attach(t, ref, ".att", env, "application/vnd.dsse.envelope.v1+json", ann)
			return ref
		}
		payload := simpleSigningPayload(ref, digest)
		e, err := by.Sign(identity, issuer, payload)
		if err != nil {
			t.Fatal(err)
		}
		sc, _ := e.SignatureContent()
		ann := legacyAnnotations(t, by, e)
		ann["dev.cosignproject.cosign/signature"] = base64.StdEncoding.EncodeToString(sc.MessageSignatureContent().Signature())
		if s.tamper != nil {
			s.tamper(ann)
		}
		attach(t, ref, ".sig", payload, "application/vnd.dev.cosign.simplesigning.v1+json", ann)
		return ref
	}

	cch, _ := cache.Open(t.TempDir())
	res, err := source.NewResolver(source.Options{Cache: cch, Insecure: []string{reg.Host}})
	if err != nil {
		t.Fatal(err)
	}
	base := verifiers.Options{TrustedRoot: writeTrustedRoot(t, vs, wf), CertIdentity: identity, CertOIDCIssuer: issuer}
	// The identity of a workflow's certificate.
	byWorkflow := func(san, builderID string) func(*verifiers.Options) {
		return func(o *verifiers.Options) {
			o.CertIdentity, o.CertOIDCIssuer, o.BuilderID = san, githubIssuer, builderID
		}
	}
	cases := []struct {
		name    string
		signing signing
		opts    func(*verifiers.Options)
		check   string
		status  pipeline.CheckStatus
		detail  string
	}{
		{name: "signed by the identity", check: "signature", status: pipeline.CheckPass, detail: "identity " + identity},
		{name: "another identity asked", check: "signature", status: pipeline.CheckFail, detail: "SAN",
			opts: func(o *verifiers.Options) { o.CertIdentity = "intern@acme.example" }},
		{name: "certificate from an untrusted CA", signing: signing{by: other}, check: "signature", status: pipeline.CheckFail},
		{name: "payload names another digest", check: "signature", status: pipeline.CheckFail, detail: "not sha256:",
			signing: signing{names: func(string) string { return "sha256:" + strings.Repeat("ab", 32) }}},
		{name: "log promise tampered", check: "signature", status: pipeline.CheckFail,
			signing: signing{tamper: func(a map[string]string) {
				a["dev.sigstore.cosign/bundle"] = strings.Replace(a["dev.sigstore.cosign/bundle"], `"SignedEntryTimestamp":"M`, `"SignedEntryTimestamp":"N`, 1)
			}}},
		{name: "no log entry and no timestamp", check: "signature", status: pipeline.CheckFail,
			signing: signing{tamper: func(a map[string]string) { delete(a, "dev.sigstore.cosign/bundle") }}},
		{name: "no certificate", check: "signature", status: pipeline.CheckFail, detail: "no certificate",
			signing: signing{tamper: func(a map[string]string) { delete(a, "dev.sigstore.cosign/certificate") }}},
		{name: "signature swapped", check: "signature", status: pipeline.CheckFail,
			signing: signing{tamper: func(a map[string]string) {
				a["dev.cosignproject.cosign/signature"] = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 70))
			}}},
		{name: "attested provenance", signing: signing{attest: true, workflow: builder}, check: "provenance", status: pipeline.CheckPass,
			detail: "built by " + builder, opts: byWorkflow(builder, "https://ci.acme.example/builders/firmware")},
		{name: "attested by another builder", signing: signing{attest: true, workflow: builder}, check: "provenance", status: pipeline.CheckFail,
			detail: "builder.id", opts: byWorkflow(builder, "https://ci.evil.example/builder")},
		{name: "attested by another workflow claiming the builder", signing: signing{attest: true, workflow: attackerSigner}, check: "provenance",
			status: pipeline.CheckFail, detail: "is not bound by the signing certificate",
			opts: func(o *verifiers.Options) {
				byWorkflow("", "https://ci.acme.example/builders/firmware")(o)
				o.CertIdentityRegexp = ".*"
			}},
		{name: "attested by a person's certificate", signing: signing{attest: true}, check: "provenance", status: pipeline.CheckFail,
			detail: "binds no builder", opts: func(o *verifiers.Options) { o.BuilderID = "https://ci.acme.example/builders/firmware" }},
		{name: "attestation of another image", check: "provenance", status: pipeline.CheckFail,
			signing: signing{attest: true, names: func(string) string { return "sha256:" + strings.Repeat("cd", 32) }},
			opts:    func(o *verifiers.Options) { o.BuilderID = "https://ci.acme.example/builders/firmware" }},
		{name: "attestation from an untrusted CA", check: "provenance", status: pipeline.CheckFail,
			signing: signing{attest: true, by: other},
			opts:    func(o *verifiers.Options) { o.BuilderID = "https://ci.acme.example/builders/firmware" }},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ref := sign(t, i+1, tc.signing)
			art, err := res.Fetch(context.Background(), ref.String())
			if err != nil {
				t.Fatal(err)
			}
			o := base
			o.Registry = res
			if tc.opts != nil {
				tc.opts(&o)
			}
			var got *pipeline.Check
			for _, c := range check(t, o, art) {
				if c.Name == tc.check {
					got = &c
				}
			}
			if got == nil || got.Status != tc.status || !strings.Contains(got.Detail, tc.detail) {
				t.Errorf("%s check %+v, want %s mentioning %q", tc.check, got, tc.status, tc.detail)
			}
		})
	}
}

// TestKeylessCosignBlobBundle: the bundle cosign 2 writes for a blob by
// default (base64Signature, cert, rekorBundle), keyless.
func TestKeylessCosignBlobBundle(t *testing.T) {
	vs, err := ca.NewVirtualSigstore()
	if err != nil {
		t.Fatal(err)
	}
	fw := []byte("firmware image 3.1.0\n")
	e, err := vs.Sign(identity, issuer, fw)
	if err != nil {
		t.Fatal(err)
	}
	ann := legacyAnnotations(t, vs, e)
	sc, _ := e.SignatureContent()
	write := func(drop string) string {
		m := map[string]any{
			"base64Signature": base64.StdEncoding.EncodeToString(sc.MessageSignatureContent().Signature()),
			"cert":            base64.StdEncoding.EncodeToString([]byte(ann["dev.sigstore.cosign/certificate"])),
			"rekorBundle":     json.RawMessage(ann["dev.sigstore.cosign/bundle"]),
		}
		delete(m, drop)
		b, _ := json.Marshal(m)
		p := filepath.Join(t.TempDir(), "firmware.bin.bundle")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	base := verifiers.Options{TrustedRoot: writeTrustedRoot(t, vs), CertIdentity: identity, CertOIDCIssuer: issuer}
	runBundleCases(t, base, []bundleCase{
		{name: "signed by the identity", bundle: write(""), art: blob(t, fw), status: pipeline.CheckPass, detail: "identity " + identity},
		{name: "file changed", bundle: write(""), art: blob(t, append(fw, '!')), status: pipeline.CheckFail},
		{name: "another identity asked", bundle: write(""), art: blob(t, fw), status: pipeline.CheckFail, detail: "SAN",
			opts: func(o *verifiers.Options) { o.CertIdentity = "intern@acme.example" }},
		{name: "no log entry", bundle: write("rekorBundle"), art: blob(t, fw), status: pipeline.CheckFail},
		{name: "no certificate", bundle: write("cert"), art: blob(t, fw), status: pipeline.CheckFail, detail: "needs a key"},
	})
}

// countingRegistry counts the lookups of what is attached to images.
type countingRegistry struct {
	verifiers.Registry
	n int
}

func (c *countingRegistry) Remote(ctx context.Context, ref string) (name.Reference, []remote.Option, error) {
	c.n++
	return c.Registry.Remote(ctx, ref)
}

// TestEvidenceReadOnce: the signature and provenance checks of one image
// share one reading of its signatures and attestations.
func TestEvidenceReadOnce(t *testing.T) {
	vs, err := ca.NewVirtualSigstore()
	if err != nil {
		t.Fatal(err)
	}
	reg := fixture.StartRegistry(t)
	repo, _ := name.NewRepository(reg.Host+"/acme/once", name.Insecure)
	ref := pushImage(t, repo, "unsigned")
	cch, _ := cache.Open(t.TempDir())
	res, err := source.NewResolver(source.Options{Cache: cch, Insecure: []string{reg.Host}})
	if err != nil {
		t.Fatal(err)
	}
	art, err := res.Fetch(context.Background(), ref.String())
	if err != nil {
		t.Fatal(err)
	}
	counting := &countingRegistry{Registry: res}
	cs := check(t, verifiers.Options{TrustedRoot: writeTrustedRoot(t, vs), CertIdentity: identity, CertOIDCIssuer: issuer,
		BuilderID: "https://ci.acme.example/builders/firmware", Registry: counting}, art)
	if len(cs) != 2 || cs[0].Status != pipeline.CheckFail || cs[1].Status != pipeline.CheckFail {
		t.Errorf("an unsigned image: %+v", cs)
	}
	if counting.n != 1 {
		t.Errorf("the registry was asked %d times for what is attached, want 1", counting.n)
	}
}
