package attest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/fixture"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// runIn runs a command in dir with a scratch HOME and fails the test, with
// its output, if it fails.
func runIn(t *testing.T, dir, bin string, args ...string) string {
	t.Helper()
	out, err := command(t, dir, bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", bin, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func command(t *testing.T, dir, bin string, args ...string) *exec.Cmd {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	home := filepath.Join(dir, "home")
	os.MkdirAll(home, 0o700)
	cmd.Env = append(os.Environ(), "HOME="+home, "TUF_ROOT="+filepath.Join(home, "tuf"), "SIGSTORE_NO_CACHE=1")
	return cmd
}

// pushImage pushes a small random image and returns its digest reference.
func pushImage(t *testing.T, reg *fixture.Registry, repo string) name.Digest {
	t.Helper()
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(fmt.Sprintf("%s/%s:1.0.1", reg.Host, repo))
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img); err != nil {
		t.Fatal(err)
	}
	h, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return tag.Context().Digest(h.String())
}

func TestAttachFindVerifyCosign(t *testing.T) {
	ctx := context.Background()
	reg := fixture.StartRegistry(t)
	subject := pushImage(t, reg, "fw/rt3200")
	s, pubFile, pub := newECDSA(t)
	r := report(subject.DigestStr(), pipeline.VerdictPass, pass("signature"))
	r.Candidate.Ref = subject.String()
	env := signed(t, s, r, Options{PolicyURI: "file:///etc/fwvet/policy.yaml"})
	if err := Attach(ctx, subject, env); err != nil {
		t.Fatal(err)
	}
	// A second summary (a later decision) is appended, not overwritten.
	env2 := signed(t, s, r, Options{Decision: &Decision{By: "alice", At: testNow, Approve: true, Reason: "ok"}})
	if err := Attach(ctx, subject, env2); err != nil {
		t.Fatal(err)
	}
	// Attaching the same one again changes nothing.
	if err := Attach(ctx, subject, env); err != nil {
		t.Fatal(err)
	}

	t.Run("layouts", func(t *testing.T) {
		idx, err := remote.Referrers(subject)
		if err != nil {
			t.Fatal(err)
		}
		im, _ := idx.IndexManifest()
		intoto := 0
		for _, d := range im.Manifests {
			if d.ArtifactType == PayloadType {
				intoto++
			}
		}
		if intoto != 2 || len(im.Manifests) != 2 {
			t.Errorf("referrers = %+v, want 2 of artifactType %s", im.Manifests, PayloadType)
		}
		// The registry has no referrers API: the fallback tag holds them.
		fallback := subject.Context().Tag("sha256-" + subject.DigestStr()[len("sha256:"):])
		if d, err := remote.Get(fallback); err != nil || d.MediaType != types.OCIImageIndex {
			t.Errorf("fallback tag %s: %v", fallback, err)
		}
		tag, _ := LegacyTag(subject)
		img, err := remote.Image(tag)
		if err != nil {
			t.Fatal(err)
		}
		m, _ := img.Manifest()
		if len(m.Layers) != 2 || m.Layers[0].MediaType != DSSEMediaType || m.Layers[0].Annotations[cosignSignatureAnnotation] != "" {
			t.Errorf(".att manifest layers = %+v", m.Layers)
		}
	})

	t.Run("find and verify", func(t *testing.T) {
		envs, err := Find(ctx, subject)
		if err != nil {
			t.Fatal(err)
		}
		if len(envs) != 2 {
			t.Fatalf("Find = %d envelopes, want 2 (each read from both layouts, once)", len(envs))
		}
		decided := 0
		for _, e := range envs {
			vs, err := Verify(e, pub, Expect{Digest: subject.DigestStr(), PolicyDigest: testPolicy})
			if err != nil {
				t.Fatal(err)
			}
			if vs.Decision != nil {
				decided++
			}
			if vs.Statement.Predicate.ResourceURI != subject.String() {
				t.Errorf("resourceUri = %s", vs.Statement.Predicate.ResourceURI)
			}
		}
		if decided != 1 {
			t.Errorf("%d summaries carry a decision, want 1", decided)
		}
		res, err := VerifyRef(ctx, subject, pubFile, Expect{PolicyDigest: testPolicy})
		if err != nil || !res.Passed() || len(res.Rejected) != 0 {
			t.Errorf("VerifyRef = %+v, %v", res, err)
		}
	})

	for _, v := range []string{"cosign-v2.6.5", "cosign-v3.1.3"} {
		t.Run(v, func(t *testing.T) {
			cosign := fixture.Tool(t, filepath.Join(v, "cosign"))
			out := runIn(t, t.TempDir(), cosign, "verify-attestation", "--key", pubFile,
				"--type", PredicateType, "--insecure-ignore-tlog=true",
				"--allow-insecure-registry", "--allow-http-registry", subject.String())
			checkCosignOutput(t, out, 2)
		})
	}

	_, otherPub, _ := newECDSA(t)
	for _, v := range []string{"cosign-v2.6.5", "cosign-v3.1.3"} {
		t.Run(v+" rejects a wrong key", func(t *testing.T) {
			cosign := fixture.Tool(t, filepath.Join(v, "cosign"))
			out, err := command(t, t.TempDir(), cosign, "verify-attestation", "--key", otherPub,
				"--type", PredicateType, "--insecure-ignore-tlog=true",
				"--allow-insecure-registry", "--allow-http-registry", subject.String()).CombinedOutput()
			if err == nil {
				t.Errorf("cosign accepted a wrong key:\n%s", out)
			}
		})
	}
}

// checkCosignOutput checks that cosign printed n verified summaries.
func checkCosignOutput(t *testing.T, out string, n int) {
	t.Helper()
	got := 0
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var e struct {
			Payload string `json:"payload"`
		}
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("cosign printed %q: %v", line, err)
		}
		p, err := base64.StdEncoding.DecodeString(e.Payload)
		if err != nil {
			t.Fatal(err)
		}
		var st InTotoStatement
		if err := json.Unmarshal(p, &st); err != nil || st.PredicateType != PredicateType {
			t.Errorf("cosign printed a statement of %q (%v)", st.PredicateType, err)
		}
		got++
	}
	if got != n {
		t.Errorf("cosign printed %d statements, want %d:\n%s", got, n, out)
	}
}

// TestAttachBundle: with AttachOptions.Bundle, cosign v3 verifies the
// Sigstore bundle referrer; cosign v2 notices it and then wants a trusted
// root it cannot fetch offline, which is why Attach does not push it.
func TestAttachBundle(t *testing.T) {
	ctx := context.Background()
	reg := fixture.StartRegistry(t)
	subject := pushImage(t, reg, "fw/bundle")
	s, pubFile, _ := newECDSA(t)
	env := signed(t, s, report(subject.DigestStr(), pipeline.VerdictPass), Options{})
	if err := AttachWith(ctx, subject, env, AttachOptions{Bundle: true}); err != nil {
		t.Fatal(err)
	}
	args := []string{"verify-attestation", "--key", pubFile, "--type", PredicateType, "--insecure-ignore-tlog=true",
		"--allow-insecure-registry", "--allow-http-registry", subject.String()}
	out := runIn(t, t.TempDir(), fixture.Tool(t, filepath.Join("cosign-v3.1.3", "cosign")), args...)
	checkCosignOutput(t, out, 1)
	b, err := command(t, t.TempDir(), fixture.Tool(t, filepath.Join("cosign-v2.6.5", "cosign")), args...).CombinedOutput()
	if err == nil || !strings.Contains(string(b), "trusted root is required") {
		t.Errorf("cosign v2.6.5 on a bundle referrer, offline: %v\n%s\n(if it now passes, Attach may push the bundle by default)", err, b)
	}
	envs, err := Find(ctx, subject)
	if err != nil || len(envs) != 1 {
		t.Fatalf("Find = %d, %v; want the one summary, once", len(envs), err)
	}
	if _, err := VerifyRef(ctx, subject, pubFile, Expect{PolicyDigest: testPolicy}); err != nil {
		t.Error(err)
	}
}

// TestCosignKeyV3: a key made by cosign generate-key-pair signs, cosign v3
// verifies.
func TestCosignKeyV3(t *testing.T) {
	ctx := context.Background()
	reg := fixture.StartRegistry(t)
	subject := pushImage(t, reg, "fw/cosignkey")
	cosign := fixture.Tool(t, filepath.Join("cosign-v3.1.3", "cosign"))
	dir := t.TempDir()
	t.Setenv(PasswordEnv, "s3cret")
	runIn(t, dir, cosign, "generate-key-pair")
	s, err := LoadSigner(ctx, filepath.Join(dir, "cosign.key"))
	if err != nil {
		t.Fatal(err)
	}
	env := signed(t, s, report(subject.DigestStr(), pipeline.VerdictPass), Options{})
	if err := Attach(ctx, subject, env); err != nil {
		t.Fatal(err)
	}
	runIn(t, dir, cosign, "verify-attestation", "--key", filepath.Join(dir, "cosign.pub"),
		"--type", PredicateType, "--insecure-ignore-tlog=true",
		"--allow-insecure-registry", "--allow-http-registry", subject.String())
	if _, err := VerifyRef(ctx, subject, filepath.Join(dir, "cosign.pub"), Expect{PolicyDigest: testPolicy}); err != nil {
		t.Error(err)
	}
}

func TestVerifyRefRejects(t *testing.T) {
	ctx := context.Background()
	reg := fixture.StartRegistry(t)
	subject := pushImage(t, reg, "fw/rejects")
	other := pushImage(t, reg, "fw/other")
	s, pubFile, _ := newECDSA(t)
	_, otherPubFile, _ := newECDSA(t)
	want := Expect{PolicyDigest: testPolicy}

	// Nothing attached yet.
	if _, err := VerifyRef(ctx, subject, pubFile, want); !errors.Is(err, ErrNoAttestation) {
		t.Fatalf("VerifyRef with nothing attached = %v, want ErrNoAttestation", err)
	}

	// Attach refuses a summary of another digest.
	otherEnv := signed(t, s, report(other.DigestStr(), pipeline.VerdictPass), Options{})
	var me *MismatchError
	if err := Attach(ctx, subject, otherEnv); !errors.As(err, &me) || me.Field != "subject.digest" {
		t.Errorf("Attach of another digest's summary = %v", err)
	}
	// Pushed anyway (as another tool might), VerifyRef rejects it, and a
	// tampered one; each with its reason.
	good := signed(t, s, report(subject.DigestStr(), pipeline.VerdictPass), Options{})
	for _, env := range [][]byte{otherEnv, tamper(t, good)} {
		if err := attachLegacy(subject, env, nil); err != nil {
			t.Fatal(err)
		}
	}
	_, err := VerifyRef(ctx, subject, pubFile, want)
	var re *RejectedError
	if !errors.As(err, &re) || len(re.Rejected) != 2 {
		t.Fatalf("VerifyRef = %v, want a RejectedError of 2", err)
	}
	if !errors.As(err, &me) || me.Field != "subject.digest" {
		t.Errorf("VerifyRef = %v, want a subject.digest mismatch among its reasons", err)
	}
	if !errors.Is(err, ErrBadSignature) {
		t.Errorf("VerifyRef = %v, want a bad signature among its reasons", err)
	}

	// The good one attached: VerifyRef passes and says why the others failed.
	if err := Attach(ctx, subject, good); err != nil {
		t.Fatal(err)
	}
	res, err := VerifyRef(ctx, subject, pubFile, want)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rejected) != 2 {
		t.Errorf("VerifyRef rejected %v, want 2", res.Rejected)
	}
	// A wrong key: every one is a bad signature.
	_, err = VerifyRef(ctx, subject, otherPubFile, want)
	if !errors.As(err, &re) || !errors.Is(err, ErrBadSignature) {
		t.Errorf("VerifyRef with a wrong key = %v", err)
	}
	for _, r := range re.Rejected {
		if !errors.Is(r, ErrBadSignature) {
			t.Errorf("wrong key: %v", r)
		}
	}
}
