package main_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fwvet/fwvet/pipeline/equivalence"
)

// equivalenceFixtures is where scripts/fixtures/equivalence.sh writes its images.
func equivalenceFixtures(t *testing.T) string {
	dir := filepath.Join("..", "..", "testdata", "build", "fw", "equivalence")
	if _, err := os.Stat(filepath.Join(dir, "rt3200-fw-1.2.3.squashfs")); err != nil {
		t.Skipf("fixture missing: run scripts/mkfixtures: %v", err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// TestEquivalenceVerdicts: each pair's verdict and exit code, through the CLI.
func TestEquivalenceVerdicts(t *testing.T) {
	dir := equivalenceFixtures(t)
	e := newEnv(t)
	shipped := filepath.Join(dir, "rt3200-fw-1.2.3.squashfs")
	for _, tc := range []struct {
		rebuilt string
		verdict equivalence.Verdict
		code    int
		names   []string
	}{
		{"rt3200-fw-1.2.3.squashfs", equivalence.VerdictBitIdentical, 0, nil},
		{"rt3200-fw-1.2.3-rebuild.squashfs", equivalence.VerdictEquivalent, 0, nil},
		{"rt3200-fw-1.2.3-code.squashfs", equivalence.VerdictNotEquivalent, 2, []string{"/usr/sbin/diagd", "checksum"}},
		{"rt3200-fw-1.2.3-rodata.squashfs", equivalence.VerdictNotEquivalent, 2, []string{"/usr/sbin/diagd", ".rodata"}},
		{"rt3200-fw-1.2.3-extra.squashfs", equivalence.VerdictNotEquivalent, 2, []string{"/usr/bin/extra"}},
		{"rt3200-fw-1.2.3-mode.squashfs", equivalence.VerdictNotEquivalent, 2, []string{"/usr/sbin/diagd", "4755"}},
		{"rt3200-fw-1.2.3-truncated.squashfs", equivalence.VerdictInconclusive, 3, []string{"opaque"}},
	} {
		t.Run(tc.rebuilt, func(t *testing.T) {
			r := e.run("equivalence", shipped, filepath.Join(dir, tc.rebuilt), "--format", "json")
			if r.code != tc.code {
				t.Fatalf("exit %d, want %d\n%s\n%s", r.code, tc.code, r.stdout, r.stderr)
			}
			var rep equivalence.Report
			if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
				t.Fatalf("not JSON: %v\n%s", err, r.stdout)
			}
			if rep.Verdict != tc.verdict || rep.Schema != equivalence.Schema {
				t.Fatalf("verdict %s schema %s, want %s", rep.Verdict, rep.Schema, tc.verdict)
			}
			txt := e.run("equivalence", shipped, filepath.Join(dir, tc.rebuilt))
			if !strings.HasPrefix(txt.stdout, strings.ToUpper(string(tc.verdict))+":") {
				t.Errorf("text report starts %q", txt.stdout[:min(40, len(txt.stdout))])
			}
			for _, n := range tc.names {
				if !strings.Contains(txt.stdout, n) {
					t.Errorf("text report does not name %s:\n%s", n, txt.stdout)
				}
			}
		})
	}
}

// TestEquivalenceOutput: --provenance is recorded, -o writes the HTML page,
// a bad --format and a missing image are errors (exit 1).
func TestEquivalenceOutput(t *testing.T) {
	dir := equivalenceFixtures(t)
	e := newEnv(t)
	shipped, rebuilt := filepath.Join(dir, "rt3200-fw-1.2.3.squashfs"), filepath.Join(dir, "rt3200-fw-1.2.3-code.squashfs")
	prov := filepath.Join(e.dir, "provenance.intoto.jsonl")
	if err := os.WriteFile(prov, []byte(`{"payloadType":"application/vnd.in-toto+json"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(e.dir, "report.html")
	r := e.run("equivalence", shipped, rebuilt, "--provenance", prov, "--format", "html", "-o", out)
	if r.code != 2 || r.stdout != "" {
		t.Fatalf("exit %d stdout %q stderr %s", r.code, r.stdout, r.stderr)
	}
	page, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"NOT-EQUIVALENT", "checksum", prov, "<style>"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(string(page), "<script") {
		t.Error("page has a script")
	}
	// The page renders in real headless Chromium (Debian's; scripts/setup
	// installs it), kept off the network: no background requests, no
	// component updates, a profile of its own.
	rendered := false
	for _, b := range []string{"chromium", "chromium-headless-shell"} {
		path, err := exec.LookPath(b)
		if err != nil {
			continue
		}
		rendered = true
		dom, err := exec.Command(path, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
			"--disable-background-networking", "--disable-component-update", "--disable-sync", "--user-data-dir="+t.TempDir(),
			"--dump-dom", "file://"+out).Output()
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if !strings.Contains(string(dom), `id="verdict">NOT-EQUIVALENT`) || !strings.Contains(string(dom), "checksum") {
			t.Errorf("%s rendered no verdict or function:\n%s", b, dom)
		}
		t.Logf("rendered by %s", b)
		break
	}
	if !rendered {
		t.Error("no headless Chromium (chromium or chromium-headless-shell): run `make test`, whose scripts/setup installs Debian's chromium")
	}
	if r := e.run("equivalence", shipped, rebuilt, "--format", "sarif"); r.code != 1 || !strings.Contains(r.stderr, "--format") {
		t.Errorf("bad format: exit %d %s", r.code, r.stderr)
	}
	if r := e.run("equivalence", shipped, filepath.Join(dir, "missing.squashfs")); r.code != 1 {
		t.Errorf("missing image: exit %d", r.code)
	}
	if r := e.run("equivalence", shipped, rebuilt, "--provenance", prov+".missing"); r.code != 1 || !strings.Contains(r.stderr, "provenance") {
		t.Errorf("missing provenance: exit %d %s", r.code, r.stderr)
	}
}
