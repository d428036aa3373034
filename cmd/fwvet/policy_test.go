package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runPolicy runs fwvet in this process: the policy commands need no
// binary, image or store.
func runPolicy(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), append([]string{"--cache-dir", t.TempDir()}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

func policyTestFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	f := filepath.Join(dir, name)
	if err := os.WriteFile(f, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

const policyHead = "apiVersion: fwvet/v1\nkind: Policy\n"

const cgiRule = `rules:
  - name: no-new-cgi
    expression: "!changes.exists(c, c.kind == 'added' && c.path.startsWith('/www/cgi-bin/'))"
    verdict: fail
    message: a CGI script was added
`

func TestPolicyCheck(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, file, body string
		code             int
		stdout, stderr   []string
	}{
		{name: "yaml with a rule", file: "p.yaml", body: policyHead + cgiRule, code: 0,
			stdout: []string{"p.yaml: ok, 1 rule, digest sha256:"}},
		{name: "legacy json", file: "p.json", body: `{"fail_on": "high"}`, code: 0,
			// The default policy's digest, as recorded verdicts carry it.
			stdout: []string{"p.json: ok, 0 rules, digest sha256:68b319b0946f119aa611ac906209517eee168a14075fff3f230d53179b50fcf2"}},
		{name: "rule that does not compile", file: "bad.yaml", body: policyHead + strings.Replace(cgiRule, "!changes", "!chnges", 1), code: 1,
			stderr: []string{"bad.yaml:5: rule \"no-new-cgi\": ERROR: <input>:1:2: undeclared reference to 'chnges'"}},
		{name: "unknown field", file: "unknown.yaml", body: policyHead + "fail_onn: high\n", code: 1,
			stderr: []string{"unknown.yaml:3:", `unknown field "fail_onn"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := policyTestFile(t, dir, tt.file, tt.body)
			code, stdout, stderr := runPolicy(t, "policy", "check", f)
			if code != tt.code {
				t.Errorf("exit %d, want %d; stdout %q stderr %q", code, tt.code, stdout, stderr)
			}
			for _, w := range tt.stdout {
				if !strings.Contains(stdout, w) {
					t.Errorf("stdout %q does not mention %q", stdout, w)
				}
			}
			for _, w := range tt.stderr {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr %q does not mention %q", stderr, w)
				}
			}
		})
	}
	if code, _, stderr := runPolicy(t, "policy", "check", filepath.Join(dir, "missing.yaml")); code != 1 || stderr == "" {
		t.Errorf("policy check of a missing file: exit %d, stderr %q; want 1 and an error", code, stderr)
	}
}

func TestPolicyTest(t *testing.T) {
	dir := t.TempDir()
	// A saved report as fwvet diff --format json writes it: one undisclosed
	// CGI script added, a baseline, a passing signature check.
	rep := policyTestFile(t, dir, "report.json", `{"schema": "fwvet/report/v1", "tool": {"name": "fwvet", "version": "0.1.0"},
  "candidate": {"ref": "fw-1.1.bin", "digest": "sha256:c", "size": 1, "version": "1.1.0"},
  "baseline": {"ref": "fw-1.0.bin", "digest": "sha256:b", "size": 1, "version": "1.0.0"},
  "checks": [{"name": "signature", "status": "pass", "detail": "ok"}],
  "summary": {"added": 1, "removed": 0, "modified": 0, "metadata": 0, "undisclosed": 0},
  "findings": [{"id": "file-added", "severity": "info", "path": "/www/cgi-bin/diag.cgi", "container": [], "message": "", "disclosed": true, "evidence": {}}],
  "verdict": "pass", "reasons": ["every check passed and every change is disclosed"],
  "changes": [{"kind": "added", "path": "/www/cgi-bin/diag.cgi", "container": [], "disclosed": true}]}`)
	tests := []struct {
		name, body string
		code       int
		stdout     []string
	}{
		{name: "default policy passes", body: `{}`, code: 0, stdout: []string{"verdict: pass"}},
		{name: "fail rule", body: policyHead + cgiRule, code: 2, stdout: []string{"verdict: fail", "rule no-new-cgi: a CGI script was added"}},
		{name: "review rule", body: policyHead + strings.Replace(cgiRule, "verdict: fail", "verdict: review", 1), code: 3,
			stdout: []string{"verdict: review", "rule no-new-cgi"}},
		{name: "warn mode exits 0", body: policyHead + "mode: warn\n" + cgiRule, code: 0, stdout: []string{"verdict: fail", "mode: warn"}},
		{name: "severity override", body: policyHead + "severity: {file-added: high}\nfail_on: high\n", code: 0, stdout: []string{"verdict: pass"}},
		{name: "rule over the report's candidate", body: policyHead + "rules:\n  - {name: v, expression: \"candidate.version == '1.1.0' && baseline.version == '1.0.0'\"}\n",
			code: 0, stdout: []string{"verdict: pass"}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := policyTestFile(t, dir, "p"+string(rune('a'+i))+".yaml", tt.body)
			code, stdout, stderr := runPolicy(t, "policy", "test", f, rep)
			if code != tt.code {
				t.Errorf("exit %d, want %d; stdout %q stderr %q", code, tt.code, stdout, stderr)
			}
			for _, w := range tt.stdout {
				if !strings.Contains(stdout, w) {
					t.Errorf("stdout %q does not mention %q", stdout, w)
				}
			}
		})
	}
	notReport := policyTestFile(t, dir, "other.json", `{"schema": "fwvet/equivalence/v1"}`)
	pol := policyTestFile(t, dir, "ok.yaml", policyHead)
	if code, _, stderr := runPolicy(t, "policy", "test", pol, notReport); code != 1 || !strings.Contains(stderr, "not a report") {
		t.Errorf("policy test on a non-report: exit %d, stderr %q; want 1, not a report", code, stderr)
	}
	bad := policyTestFile(t, dir, "bad.yaml", policyHead+"rules: [{name: a, expression: '1'}]\n")
	if code, _, stderr := runPolicy(t, "policy", "test", bad, rep); code != 1 || !strings.Contains(stderr, "not bool") {
		t.Errorf("policy test with a bad policy: exit %d, stderr %q; want 1", code, stderr)
	}
}
