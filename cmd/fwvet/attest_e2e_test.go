package main_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fwvet/fwvet/pipeline/attest"
	"github.com/fwvet/fwvet/pipeline/fixture"
)

// writeECDSAKey writes a P-256 key pair as PEM files (PKCS#8 and PKIX).
func writeECDSAKey(t *testing.T, dir, name string) (priv, pub string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	priv, pub = filepath.Join(dir, name+".key"), filepath.Join(dir, name+".pub")
	if err := os.WriteFile(priv, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644); err != nil {
		t.Fatal(err)
	}
	return priv, pub
}

// TestSignedVerdicts: vet signs the verdict and attaches it to the
// candidate in a real registry; verdicts verify-attestation and cosign v2
// and v3 verify-attestation accept it, and a wrong key, a wrong result, a
// wrong policy and an image without one are each refused.
func TestSignedVerdicts(t *testing.T) {
	reg := fixture.StartRegistry(t)
	crane := fixture.Tool(t, "crane")
	base, cand := reg.Host+"/acme/rt3200:1.0.0", reg.Host+"/acme/rt3200:1.0.1"
	fixture.Run(t, crane, "append", "--insecure", "-f", fixture.Tar(t, map[string]string{"etc/passwd": passwd, "etc/os-release": "VERSION_ID=1.0.0\n"}), "-t", base)
	fixture.Run(t, crane, "append", "--insecure", "-f", fixture.Tar(t, map[string]string{"etc/passwd": passwd, "etc/os-release": "VERSION_ID=1.0.1\n"}), "-t", cand)
	e := newEnv(t)
	key, pub := writeECDSAKey(t, e.dir, "gate")
	_, otherPub := writeECDSAKey(t, e.dir, "other")
	manifest := filepath.Join(e.dir, "manifest.json")
	if err := os.WriteFile(manifest, []byte(`{"version": "1.0.1", "previous_version": "1.0.0", "changed": ["/etc/os-release"]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(e.dir, "verdicts.jsonl")
	r := e.run("vet", cand, "--baseline", base, "--manifest", manifest, "--insecure-registry", reg.Host, "--no-store",
		"--sign-key", key, "--attach", "--attestation-out", out)
	if r.code != 0 {
		t.Fatalf("vet --sign-key --attach: exit %d\n%s", r.code, r.stderr)
	}

	// The file holds one DSSE envelope that verifies offline.
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) != 1 {
		t.Fatalf("--attestation-out holds %d lines, want 1", len(lines))
	}
	pk, err := attest.LoadPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	digest := strings.TrimSpace(fixture.Run(t, crane, "digest", "--insecure", cand))
	vs, err := attest.Verify([]byte(lines[0]), pk, attest.Expect{Digest: digest, UnsafeAnyPolicy: true})
	if err != nil {
		t.Fatalf("the written envelope does not verify: %v", err)
	}
	if vs.Verdict == nil || vs.Verdict.Verdict != "pass" || !strings.HasPrefix(vs.Statement.Predicate.Policy.URI, "fwvet:") {
		t.Errorf("summary %+v, policy %+v", vs.Verdict, vs.Statement.Predicate.Policy)
	}

	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"the gate's key", []string{cand, "--key", pub}, 0, "PASSED"},
		{"by digest", []string{reg.Host + "/acme/rt3200@" + digest, "--key", pub}, 0, "PASSED"},
		{"a wrong key", []string{cand, "--key", otherPub}, 2, "signature"},
		{"a failed result wanted", []string{cand, "--key", pub, "--result", "failed"}, 2, "FAILED"},
		{"another policy", []string{cand, "--key", pub, "--policy", writePolicy(t, e.dir)}, 2, "policy"},
		{"an image with none", []string{base, "--key", pub}, 1, "no"},
		{"no key", []string{cand}, 1, "--key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.run(append([]string{"verdicts", "verify-attestation", "--insecure-registry", reg.Host}, tc.args...)...)
			if r.code != tc.code || !strings.Contains(r.stdout+r.stderr, tc.want) {
				t.Errorf("exit %d, want %d and %q in\n%s%s", r.code, tc.code, tc.want, r.stdout, r.stderr)
			}
		})
	}

	for _, v := range []string{"cosign-v2.6.5", "cosign-v3.1.3"} {
		t.Run(v, func(t *testing.T) {
			cosign := fixture.Tool(t, filepath.Join(v, "cosign"))
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, cosign, "verify-attestation", "--key", pub, "--type", attest.PredicateType,
				"--insecure-ignore-tlog=true", "--allow-insecure-registry", "--allow-http-registry", cand)
			home := t.TempDir()
			cmd.Env = append(os.Environ(), "HOME="+home, "TUF_ROOT="+filepath.Join(home, "tuf"), "SIGSTORE_NO_CACHE=1")
			b, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(b), "verified against the specified public key") || !strings.Contains(string(b), attest.PayloadType) {
				t.Errorf("cosign verify-attestation: %v\n%s", err, b)
			}
		})
	}

	// A review verdict that a person approves: the signed decision passes
	// and names who decided.
	rev := reg.Host + "/acme/rt3200:1.0.2"
	fixture.Run(t, crane, "append", "--insecure", "-f", fixture.Tar(t, map[string]string{"etc/passwd": passwd, "etc/os-release": "VERSION_ID=1.0.2\n", "etc/extra": "x"}), "-t", rev)
	r, rep := e.vetJSON(rev, "--baseline", base, "--insecure-registry", reg.Host)
	if r.code != 3 || rep.Verdict != "review" {
		t.Fatalf("undisclosed change: exit %d, want 3 (review)\n%s", r.code, r.stderr)
	}
	if r := e.run("verdicts", "verify-attestation", rev, "--key", pub, "--insecure-registry", reg.Host); r.code != 1 {
		t.Errorf("before the decision: exit %d, want 1 (no summary attached)", r.code)
	}
	r = e.run("verdicts", "decide", "1", "--approve", "--reason", "extra file is the new calibration table", "--by", "alice",
		"--sign-key", key, "--attach", "--insecure-registry", reg.Host, "--store", e.store)
	if r.code != 0 {
		t.Fatalf("decide --sign-key --attach: exit %d\n%s", r.code, r.stderr)
	}
	r = e.run("verdicts", "verify-attestation", rev, "--key", pub, "--insecure-registry", reg.Host)
	if r.code != 0 || !strings.Contains(r.stdout, "decided by alice") || !strings.Contains(r.stdout, "fwvet verdict review") {
		t.Errorf("the approved verdict: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	// A local candidate cannot be attached to: an error before any work.
	local := filepath.Join(e.dir, "fw.bin")
	if err := os.WriteFile(local, []byte("firmware"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = e.run("vet", local, "--no-store", "--sign-key", key, "--attach")
	if r.code != 1 || !strings.Contains(r.stderr, "registry") {
		t.Errorf("--attach on a local file: exit %d, %q", r.code, r.stderr)
	}
	r = e.run("vet", local, "--no-store", "--attach")
	if r.code != 1 || !strings.Contains(r.stderr, "--sign-key") {
		t.Errorf("--attach without --sign-key: exit %d, %q", r.code, r.stderr)
	}
}

// writePolicy writes a JSON policy other than the default one.
func writePolicy(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "strict.json")
	if err := os.WriteFile(p, []byte(`{"fail_on": "medium"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
