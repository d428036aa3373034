package main_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/fixture"
)

// writeTree writes files under dir and returns dir.
func writeTree(t *testing.T, dir string, files map[string]string) string {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func writeFile(t *testing.T, path, body string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestPolicyFileDrivesVet: a YAML policy's authorities are checked as if
// given as flags, its CEL rules decide, and warn mode records the verdict
// and exits 0.
func TestPolicyFileDrivesVet(t *testing.T) {
	cosign := fixture.Tool(t, filepath.Join("cosign-v2.6.5", "cosign"))
	e := newEnv(t)
	cmd := exec.Command(cosign, "generate-key-pair", "--output-key-prefix", "vendor")
	cmd.Dir = e.dir
	cmd.Env = append(os.Environ(), "COSIGN_PASSWORD=", "COSIGN_YES=true")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cosign generate-key-pair: %v\n%s", err, out)
	}
	fw := fixture.Path(t, "fw/rootfs-1.0.1.sqfs")
	sig := filepath.Join(e.dir, "fw.sig")
	cmd = exec.Command(cosign, "sign-blob", "--key", "vendor.key", "--tlog-upload=false", "--output-signature", sig, fw)
	cmd.Dir = e.dir
	cmd.Env = append(os.Environ(), "COSIGN_PASSWORD=", "COSIGN_YES=true")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cosign sign-blob: %v\n%s", err, out)
	}
	base := fixture.Path(t, "fw/rootfs-1.0.0.sqfs")
	manifest := filepath.Join(fixture.Root(t), "testdata", "manifests", "rt3200-1.0.1.json")

	// The key comes from the policy (relative to the policy file), not a flag.
	signed := writeFile(t, filepath.Join(e.dir, "signed.yaml"), `apiVersion: fwvet/v1
kind: Policy
authorities:
  keys: [vendor.pub]
`)
	r, rep := e.vetJSON(fw, "--baseline", base, "--manifest", manifest, "--no-store", "--policy", signed, "--signature", sig)
	if r.code != 0 || len(rep.Checks) == 0 || rep.Checks[0].Name != "signature" || rep.Checks[0].Status != pipeline.CheckPass {
		t.Errorf("the policy's key: exit %d, checks %+v\n%s", r.code, rep, r.stderr)
	}

	// A CEL rule over the changes turns a clean update into a review.
	rules := writeFile(t, filepath.Join(e.dir, "rules.yaml"), `apiVersion: fwvet/v1
kind: Policy
rules:
  - name: no-new-docs
    expression: "!changes.exists(c, c.kind == 'added' && c.path.startsWith('/usr/share/doc/'))"
    verdict: review
    message: "documentation was added"
  - name: same-product
    expression: "candidate.digest.startsWith('sha256:')"
    verdict: fail
    message: "no digest"
`)
	r, rep = e.vetJSON(fw, "--baseline", base, "--manifest", manifest, "--no-store", "--policy", rules)
	hasRule := false
	for _, reason := range rep.Reasons {
		hasRule = hasRule || strings.Contains(reason, "no-new-docs")
	}
	// The release adds /usr/share/doc/acme, which its manifest declares.
	if r.code != 3 || rep.Verdict != pipeline.VerdictReview || !hasRule {
		t.Errorf("rules: exit %d, verdict %s, reasons %q; want review by rule no-new-docs", r.code, rep.Verdict, rep.Reasons)
	}

	// Warn mode: the backdoored image still fails, is recorded, and exits 0.
	warn := writeFile(t, filepath.Join(e.dir, "warn.yaml"), "apiVersion: fwvet/v1\nkind: Policy\nmode: warn\n")
	r, rep = e.vetJSON(fixture.Path(t, "fw/rootfs-1.0.1-backdoor.sqfs"), "--baseline", base, "--manifest", manifest, "--policy", warn)
	if r.code != 0 || rep.Verdict != pipeline.VerdictFail || rep.PolicyMode != "warn" {
		t.Errorf("warn mode: exit %d, verdict %s, mode %q", r.code, rep.Verdict, rep.PolicyMode)
	}
	if n := storeCount(t, e.store); n != 1 {
		t.Errorf("warn mode recorded %d verdicts, want 1", n)
	}
	text := e.run("vet", fixture.Path(t, "fw/rootfs-1.0.1-backdoor.sqfs"), "--baseline", base, "--manifest", manifest, "--policy", warn, "--no-store")
	if text.code != 0 || !strings.Contains(text.stdout, "warn mode") {
		t.Errorf("warn mode, text: exit %d\n%s", text.code, text.stdout)
	}

	// A policy that does not type-check is an error naming file, line and
	// rule, before anything is fetched.
	bad := writeFile(t, filepath.Join(e.dir, "bad.yaml"), "apiVersion: fwvet/v1\nkind: Policy\nrules:\n  - name: typo\n    expression: \"chnges.size() == 0\"\n    verdict: fail\n    message: x\n")
	r = e.run("vet", "registry.invalid/never/fetched:1", "--policy", bad, "--no-store")
	if r.code != 1 || !strings.Contains(r.stderr, "bad.yaml:5") || !strings.Contains(r.stderr, `"typo"`) {
		t.Errorf("bad policy: exit %d, %q", r.code, r.stderr)
	}
	// Nor is a store created for a run refused that early.
	fresh := filepath.Join(e.dir, "fresh", "verdicts.db")
	for _, cmd := range [][]string{{"vet", fw}, {"audit", fw}} {
		r = e.run(append(cmd, "--policy", bad, "--store", "sqlite:"+fresh)...)
		if _, err := os.Stat(fresh); r.code != 1 || err == nil {
			t.Errorf("%s with a bad policy: exit %d, store created: %v", cmd[0], r.code, err == nil)
		}
	}
}

// TestWaiverAppliesToLaterVets: a recorded waiver covers its finding in a
// later vet, which says so; a waiver for another path does not.
func TestWaiverAppliesToLaterVets(t *testing.T) {
	e := newEnv(t)
	base := writeTree(t, filepath.Join(e.dir, "base"), map[string]string{"etc/passwd": passwd, "etc/fw-release": "1.0.0\n"})
	cand := writeTree(t, filepath.Join(e.dir, "cand"), map[string]string{"etc/passwd": passwd + "diag:x:0:0::/:/bin/sh\n", "etc/fw-release": "1.0.1\n"})
	manifest := writeFile(t, filepath.Join(e.dir, "manifest.json"), `{"product": "RT-3200", "changed": ["/etc/fw-release"]}`)
	r, rep := e.vetJSON(cand, "--baseline", base, "--manifest", manifest)
	if r.code != 2 || !hasFinding(rep, pipeline.IDAccountAdded, "/etc/passwd", false) {
		t.Fatalf("before any waiver: exit %d, %+v\n%s", r.code, rep, r.stderr)
	}
	until := time.Now().UTC().AddDate(0, 0, 7).Format("2006-01-02")
	waive := func(args ...string) {
		t.Helper()
		full := append([]string{"verdicts", "waive", "--until", until, "--reason", "factory account, removed in 1.0.2", "--by", "carol", "--store", e.store}, args...)
		if r := e.run(full...); r.code != 0 {
			t.Fatalf("waive %v: exit %d\n%s", args, r.code, r.stderr)
		}
	}
	// Another path, and another product: neither covers the finding.
	waive("--finding", pipeline.IDAccountAdded, "--path", "/etc/group", "--product", "RT-3200")
	waive("--finding", pipeline.IDAccountAdded, "--path", "/etc/passwd", "--product", "RT-9000")
	r, rep = e.vetJSON(cand, "--baseline", base, "--manifest", manifest)
	if r.code != 2 || len(rep.Waivers) != 0 {
		t.Errorf("waivers out of scope: exit %d, waivers %+v", r.code, rep.Waivers)
	}
	waive("--finding", pipeline.IDAccountAdded, "--path", "/etc/passwd", "--product", "RT-3200")
	r, rep = e.vetJSON(cand, "--baseline", base, "--manifest", manifest)
	// The account is waived; the undisclosed change of /etc/passwd still
	// asks for review: a waiver covers its finding, nothing more.
	if r.code != 3 || len(rep.Waivers) != 1 || rep.Waivers[0].By != "carol" {
		t.Fatalf("waived: exit %d, verdict %s, waivers %+v, reasons %q", r.code, rep.Verdict, rep.Waivers, rep.Reasons)
	}
	for _, f := range rep.Findings {
		if f.ID == pipeline.IDAccountAdded && !f.Waived {
			t.Errorf("finding %s %s is not marked waived", f.ID, f.Path)
		}
	}
}
