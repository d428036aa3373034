package policy

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fwvet/fwvet/pipeline"
)

// Digests recorded before YAML policies existed: verdicts stored and
// golden files carry them, so they must never change.
const (
	// defaultDigest is Default().Digest() as the JSON-only policy code gave it.
	defaultDigest = "sha256:68b319b0946f119aa611ac906209517eee168a14075fff3f230d53179b50fcf2"
	// legacyDigest is the digest that code gave {"fail_on": "critical",
	// "require_baseline": false, "signature_threshold": 2, "severity":
	// {"file-added": "low"}}.
	legacyDigest = "sha256:4189c29d07a14581027547e5ebfe4d848e1b6e4bc89a2f8480aedb02d62ebcec"
)

func TestDigestPinned(t *testing.T) {
	if d := Default().Digest(); d != defaultDigest {
		t.Errorf("Default().Digest() = %s, want %s (the digest recorded verdicts carry)", d, defaultDigest)
	}
	legacy, err := Load(writePolicy(t, `{"fail_on": "critical", "require_baseline": false, "signature_threshold": 2, "severity": {"file-added": "low"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if d := legacy.Digest(); d != legacyDigest {
		t.Errorf("legacy policy digest = %s, want %s", d, legacyDigest)
	}
	// The same policy in the new form hashes the same.
	yml, err := Load(writeYAML(t, `apiVersion: fwvet/v1
kind: Policy
mode: enforce
fail_on: critical
require_baseline: false
signature_threshold: 2
severity: {file-added: low}
`))
	if err != nil {
		t.Fatal(err)
	}
	if d := yml.Digest(); d != legacyDigest {
		t.Errorf("YAML form of the legacy policy: digest %s, want %s", d, legacyDigest)
	}
	// So does a YAML policy that says only what the default says.
	def, err := Load(writeYAML(t, "apiVersion: fwvet/v1\nkind: Policy\n"))
	if err != nil {
		t.Fatal(err)
	}
	if d := def.Digest(); d != defaultDigest {
		t.Errorf("minimal YAML policy digest %s, want the default's %s", d, defaultDigest)
	}
}

func TestDigestNewFields(t *testing.T) {
	dir := t.TempDir()
	writeKey(t, dir, "a.pub")
	head := "apiVersion: fwvet/v1\nkind: Policy\n"
	bodies := map[string]string{
		"mode warn":    "mode: warn\n",
		"params":       "params: {x: 1}\n",
		"params diff":  "params: {x: 2}\n",
		"rule":         "rules: [{name: a, expression: 'true'}]\n",
		"rule verdict": "rules: [{name: a, expression: 'true', verdict: review}]\n",
		"key":          "authorities: {keys: [a.pub]}\n",
		"keyless":      "authorities: {keyless: [{identity: a@b, issuer: https://i}]}\n",
		"threshold":    "authorities: {keyless: [{identity: a@b, issuer: https://i}, {identity: c@d, issuer: https://i}], threshold: 2}\n",
		"provenance":   "provenance: {builder_ids: [b]}\n",
	}
	seen := map[string]string{defaultDigest: "default"}
	for name, body := range bodies {
		f := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".yaml")
		if err := os.WriteFile(f, []byte(head+body), 0o600); err != nil {
			t.Fatal(err)
		}
		p, err := Load(f)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if prev, dup := seen[p.Digest()]; dup {
			t.Errorf("%s has the digest of %s", name, prev)
		}
		seen[p.Digest()] = name
	}
	// A key's content counts, not only its path.
	f := filepath.Join(dir, "key.yaml")
	os.WriteFile(f, []byte(head+bodies["key"]), 0o600)
	p1, _ := Load(f)
	writeKeyContent(t, dir, "a.pub", "-----BEGIN PUBLIC KEY-----\nAQID\n-----END PUBLIC KEY-----\n")
	p2, err := Load(f)
	if err != nil {
		t.Fatal(err)
	}
	if p1.Digest() == p2.Digest() {
		t.Errorf("changing the key file did not change the digest")
	}
}

func writeYAML(t *testing.T, body string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(f, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func writeKey(t *testing.T, dir, name string) string {
	return writeKeyContent(t, dir, name, "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n")
}

func writeKeyContent(t *testing.T, dir, name, content string) string {
	t.Helper()
	f := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(f), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestLoadYAMLFields(t *testing.T) {
	dir := t.TempDir()
	writeKey(t, dir, "keys/vendor.pub")
	abs := writeKey(t, t.TempDir(), "other.pub")
	body := `apiVersion: fwvet/v1
kind: Policy
mode: warn
fail_on: critical
review_on: low
severity:
  endpoint-added: high
  file-added: low
require_baseline: false
signature_threshold: 2
authorities:
  keys: [keys/vendor.pub, ` + abs + `]
  keyless:
    - {identity: release@acme.example, issuer: https://accounts.google.com}
    - {identity_regexp: '^https://github.com/acme/.*$', issuer_regexp: '^https://token\.actions\..*$'}
  threshold: 2
provenance:
  predicate_type: https://slsa.dev/provenance/v1
  builder_ids: [https://github.com/slsa-framework/slsa-github-generator/.github/workflows/builder_go_slsa3.yml@refs/tags/v2.1.0]
  source_uri: github.com/acme/fw
  branch: main
  tag: v1.0.1
params:
  allowed_hosts: [updates.acme.example]
  max: 3
  nested: {a: [1, 2.5, true, null]}
rules:
  - name: no-new-cgi
    expression: "!changes.exists(c, c.kind == 'added' && c.path.startsWith('/www/cgi-bin/'))"
    verdict: fail
    message: a CGI script was added
  - name: hosts
    expression: "findings.all(f, f.id != 'endpoint-added' || params.allowed_hosts.exists(h, f.message.contains(h)))"
    verdict: review
`
	f := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(f, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := Load(f)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Warn() || p.Mode != ModeWarn {
		t.Errorf("mode = %q, want warn", p.Mode)
	}
	if p.FailOn != pipeline.SeverityCritical || p.ReviewOn != pipeline.SeverityLow || p.RequireBaseline || p.SignatureThreshold != 2 {
		t.Errorf("thresholds = %+v", p)
	}
	if want := map[string]pipeline.Severity{pipeline.IDEndpointAdded: pipeline.SeverityHigh, pipeline.IDFileAdded: pipeline.SeverityLow}; !reflect.DeepEqual(p.Severity, want) {
		t.Errorf("severity = %v, want %v", p.Severity, want)
	}
	wantAuth := Authorities{
		Keys: []string{filepath.Join(dir, "keys/vendor.pub"), abs},
		Keyless: []Keyless{
			{Identity: "release@acme.example", Issuer: "https://accounts.google.com"},
			{IdentityRegexp: "^https://github.com/acme/.*$", IssuerRegexp: `^https://token\.actions\..*$`},
		},
		Threshold: 2,
	}
	if got := p.Authorities(); !reflect.DeepEqual(got, wantAuth) {
		t.Errorf("Authorities() = %+v, want %+v", got, wantAuth)
	}
	wantProv := Provenance{PredicateType: "https://slsa.dev/provenance/v1",
		BuilderIDs: []string{"https://github.com/slsa-framework/slsa-github-generator/.github/workflows/builder_go_slsa3.yml@refs/tags/v2.1.0"},
		SourceURI:  "github.com/acme/fw", Branch: "main", Tag: "v1.0.1"}
	if got := p.Provenance(); !reflect.DeepEqual(got, wantProv) {
		t.Errorf("Provenance() = %+v, want %+v", got, wantProv)
	}
	wantParams := map[string]any{"allowed_hosts": []any{"updates.acme.example"}, "max": 3, "nested": map[string]any{"a": []any{1, 2.5, true, nil}}}
	if !reflect.DeepEqual(p.Params, wantParams) {
		t.Errorf("params = %#v, want %#v", p.Params, wantParams)
	}
	if len(p.Rules) != 2 || p.Rules[0].Name != "no-new-cgi" || p.Rules[0].Verdict != pipeline.VerdictFail ||
		p.Rules[0].Message != "a CGI script was added" || p.Rules[1].Verdict != pipeline.VerdictReview {
		t.Errorf("rules = %+v", p.Rules)
	}
	// The accessors hand out copies.
	a := p.Authorities()
	a.Keys[0] = "x"
	if p.Authorities().Keys[0] == "x" {
		t.Errorf("Authorities() shares its slices")
	}
	// Threshold falls back to signature_threshold.
	q, err := Load(writeYAML(t, "apiVersion: fwvet/v1\nkind: Policy\nsignature_threshold: 3\n"))
	if err != nil {
		t.Fatal(err)
	}
	if q.Authorities().Threshold != 3 || q.Warn() {
		t.Errorf("Authorities().Threshold = %d, Warn %v; want 3, false", q.Authorities().Threshold, q.Warn())
	}
	// JSON in the new form.
	j, err := Load(writePolicy(t, `{"apiVersion": "fwvet/v1", "kind": "Policy", "fail_on": "medium", "rules": [{"name": "r", "expression": "checks.size() >= 0"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if j.FailOn != pipeline.SeverityMedium || len(j.Rules) != 1 || j.Rules[0].Verdict != pipeline.VerdictFail {
		t.Errorf("JSON new form = %+v", j)
	}
}

func TestLoadYAMLErrors(t *testing.T) {
	head := "apiVersion: fwvet/v1\nkind: Policy\n"
	tests := []struct {
		name, body string
		want       []string // each must be in the error
	}{
		{"undeclared variable", head + "rules:\n  - name: no-new-cgi\n    expression: \"!chnges.exists(c, c.kind == 'added')\"\n",
			[]string{"policy.yaml:5: rule \"no-new-cgi\": ERROR: <input>:1:2: undeclared reference to 'chnges'"}},
		{"misspelt field", head + "rules:\n  - name: r\n    expression: \"changes.exists(c, c.kidn == 'added')\"\n",
			[]string{"policy.yaml:5:", `rule "r"`, "kidn"}},
		{"wrong types", head + "rules:\n  - name: r\n    verdict: review\n    expression: \"candidate.version > 3\"\n",
			[]string{"policy.yaml:6:", `rule "r"`, "no matching overload"}},
		{"not bool", head + "rules:\n  - name: count\n    expression: \"changes.size()\"\n", []string{"policy.yaml:5:", `rule "count"`, "gives int, not bool"}},
		{"not bool string", head + "rules:\n  - name: s\n    expression: \"candidate.ref\"\n", []string{"gives string, not bool"}},
		{"syntax", head + "rules:\n  - name: s\n    expression: \"changes.exists(c,\"\n", []string{"policy.yaml:5:", `rule "s"`, "Syntax error"}},
		{"duplicate rule", head + "rules:\n  - {name: a, expression: 'true'}\n  - {name: a, expression: 'false'}\n", []string{"policy.yaml:5:", `rule "a"`, "line 4"}},
		{"bad verdict", head + "rules:\n  - {name: a, expression: 'true', verdict: pass}\n", []string{"policy.yaml:4:", `verdict "pass"`}},
		{"empty expression", head + "rules:\n  - {name: a, expression: ''}\n", []string{"policy.yaml:4:", "no expression"}},
		{"missing expression", head + "rules:\n  - {name: a}\n", []string{"no expression"}},
		{"no name", head + "rules:\n  - {expression: 'true'}\n", []string{"rule without a name"}},
		{"unknown rule field", head + "rules:\n  - {name: a, expression: 'true', severity: high}\n", []string{"policy.yaml:4:", `unknown field "severity"`}},
		{"bad template", head + "rules:\n  - {name: a, expression: 'true', message: '{{.candidate'}\n", []string{`rule "a": message`}},
		{"unknown field", head + "fail_on: high\nfail_on_checks: true\n", []string{"policy.yaml:4:", `unknown field "fail_on_checks"`}},
		{"unknown authorities field", head + "authorities: {key: [a.pub]}\n", []string{"policy.yaml:3:", `unknown field "key"`}},
		{"unknown provenance field", head + "provenance: {builder: x}\n", []string{`provenance: unknown field "builder"`}},
		{"unknown keyless field", head + "authorities: {keyless: [{identity: a, issuer: b, subject: c}]}\n", []string{`unknown field "subject"`}},
		{"keyless without issuer", head + "authorities: {keyless: [{identity: a}]}\n", []string{"exactly one of issuer"}},
		{"keyless with both", head + "authorities: {keyless: [{identity: a, identity_regexp: b, issuer: c}]}\n", []string{"exactly one of identity"}},
		{"keyless bad regexp", head + "authorities: {keyless: [{identity_regexp: '(', issuer: c}]}\n", []string{"identity_regexp", "missing closing"}},
		{"missing key", head + "authorities: {keys: [nope.pub]}\n", []string{"policy.yaml:3:", "nope.pub"}},
		{"threshold over authorities", head + "authorities: {keyless: [{identity: a, issuer: b}], threshold: 2}\n", []string{"threshold 2 is more than the 1"}},
		{"thresholds differ", head + "signature_threshold: 1\nauthorities: {keyless: [{identity: a, issuer: b}, {identity: c, issuer: b}], threshold: 2}\n", []string{"differ"}},
		{"negative threshold", head + "signature_threshold: -1\n", []string{"negative"}},
		{"bad mode", head + "mode: audit\n", []string{"policy.yaml:3:", `mode "audit"`}},
		{"bad severity", head + "fail_on: severe\n", []string{"policy.yaml:3:", "unknown severity"}},
		{"numeric severity", head + "fail_on: 3\n", []string{"want a severity name"}},
		{"unknown id", head + "severity: {backdoor-added: low}\n", []string{"policy.yaml:3:", "unknown finding id"}},
		{"review above fail", head + "fail_on: medium\nreview_on: high\n", []string{"above fail_on"}},
		{"bool as string", head + "require_baseline: yes please\n", []string{"want true or false"}},
		{"params not a map", head + "params: [1, 2]\n", []string{"params: want a mapping"}},
		{"params non-string key", head + "params: {1: a}\n", []string{"not a string"}},
		{"params nan", head + "params: {x: .nan}\n", []string{"not finite"}},
		{"rules not a list", head + "rules: {name: a}\n", []string{"rules: want a list"}},
		{"wrong apiVersion", "apiVersion: fwvet/v2\nkind: Policy\n", []string{`apiVersion "fwvet/v2"`}},
		{"wrong kind", "apiVersion: fwvet/v1\nkind: Manifest\n", []string{`kind "Manifest"`}},
		{"no kind", "apiVersion: fwvet/v1\n", []string{`kind ""`}},
		{"duplicate field", head + "fail_on: high\nfail_on: low\n", []string{"policy.yaml:4:", "given twice"}},
		{"malformed YAML", head + "rules:\n  - name: a\n   expression: x\n", []string{"not a policy", "line"}},
		{"tab indentation", head + "rules:\n\t- name: a\n", []string{"not a policy"}},
		{"two documents", head + "---\n" + head, []string{"more than one YAML document"}},
		{"not a mapping", "- apiVersion: fwvet/v1\n", []string{"not a policy"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Load(writeYAML(t, tt.body))
			if err == nil {
				t.Fatalf("Load = %+v, want an error", p)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestLoadTooLarge(t *testing.T) {
	body := "apiVersion: fwvet/v1\nkind: Policy\n#" + strings.Repeat("x", maxPolicySize) + "\n"
	if _, err := Load(writeYAML(t, body)); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("Load of a 1 MiB+ policy: %v, want too large", err)
	}
}

// report is a report to decide on: one passing check, a disclosed finding
// and a baseline.
func report() *pipeline.Report {
	return &pipeline.Report{
		Candidate: pipeline.Subject{Ref: "acme/fw:1.1", Digest: "sha256:cand", Version: "1.1.0"},
		Baseline:  &pipeline.Subject{Ref: "acme/fw:1.0", Digest: "sha256:base", Version: "1.0.0"},
		Checks:    []pipeline.Check{{Name: "signature", Status: pipeline.CheckPass, Detail: "signed by vendor.pub"}},
		Findings: []pipeline.Finding{{ID: pipeline.IDEndpointAdded, Severity: pipeline.SeverityMedium, Path: "/etc/update.conf",
			Container: []string{"fw.bin", "squashfs@0x40000"}, Disclosed: true, Message: "new host updates.acme.example"}},
		Summary: pipeline.Summary{Added: 1, Modified: 1},
	}
}

var testChanges = []*pipeline.Change{
	{Kind: pipeline.ChangeAdded, Path: "/www/cgi-bin/diag.cgi", Disclosed: true},
	{Kind: pipeline.ChangeModified, Path: "/etc/update.conf", Disclosed: true},
}

func loadRules(t *testing.T, extra, rules string) *Policy {
	t.Helper()
	p, err := Load(writeYAML(t, "apiVersion: fwvet/v1\nkind: Policy\n"+extra+"rules:\n"+rules))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRules(t *testing.T) {
	tests := []struct {
		name    string
		extra   string // top-level fields before rules
		rule    string // expression
		verdict string
		message string
		modify  func(*Input)
		want    pipeline.Verdict
		reasons []string
	}{
		{name: "candidate", rule: "candidate.version == '1.1.0' && candidate.digest == 'sha256:cand' && candidate.ref.startsWith('acme/')", want: pipeline.VerdictPass},
		{name: "candidate false", rule: "candidate.version.startsWith('2.')", message: "not a 2.x release", want: pipeline.VerdictFail,
			reasons: []string{"rule r: not a 2.x release"}},
		{name: "baseline", rule: "baseline != null && baseline.version == '1.0.0' && baseline.ref == 'acme/fw:1.0' && baseline.digest == 'sha256:base'", want: pipeline.VerdictPass},
		{name: "baseline null", rule: "baseline == null", modify: func(in *Input) { in.Report.Baseline = nil; in.HasBaseline = false },
			extra: "require_baseline: false\n", want: pipeline.VerdictPass},
		// A field of a null baseline is null: a rule that compares it is false.
		{name: "baseline null field", rule: "baseline.version == '1.0.0'", verdict: "review",
			modify: func(in *Input) { in.Report.Baseline = nil; in.HasBaseline = false }, extra: "require_baseline: false\n",
			want: pipeline.VerdictReview, reasons: []string{"rule r: the expression is false"}},
		{name: "checks", rule: "checks.exists(c, c.name == 'signature' && c.status == 'pass' && c.detail.contains('vendor'))", want: pipeline.VerdictPass},
		{name: "checks missing", rule: "checks.exists(c, c.name == 'provenance' && c.status == 'pass')", verdict: "review",
			message: "no provenance", want: pipeline.VerdictReview, reasons: []string{"rule r: no provenance"}},
		{name: "findings", rule: "findings.all(f, f.id == 'endpoint-added' && f.severity == 'medium' && f.path == '/etc/update.conf' && f.container[1] == 'squashfs@0x40000' && f.disclosed && f.message.matches('updates\\\\.acme'))",
			want: pipeline.VerdictPass},
		{name: "findings disclosed too", rule: "!findings.exists(f, f.id == 'endpoint-added')", message: "no new endpoints, even disclosed",
			want: pipeline.VerdictFail, reasons: []string{"no new endpoints"}},
		{name: "changes", rule: "!changes.exists(c, c.kind == 'added' && c.path.startsWith('/www/cgi-bin/'))", message: "a CGI script was added",
			want: pipeline.VerdictFail, reasons: []string{"rule r: a CGI script was added"}},
		{name: "changes kinds", rule: "changes.map(c, c.kind) == ['added', 'modified'] && changes.all(c, c.disclosed)", want: pipeline.VerdictPass},
		{name: "changes from the report", rule: "changes.size() == 1 && changes[0].kind == 'metadata'",
			modify: func(in *Input) {
				in.Changes = nil
				in.Report.Changes = []*pipeline.Change{{Kind: pipeline.ChangeMetadata, Path: "/bin/busybox"}}
			}, want: pipeline.VerdictPass},
		{name: "no changes", rule: "changes.size() == 0", modify: func(in *Input) { in.Changes = nil }, want: pipeline.VerdictPass},
		{name: "params", extra: "params: {allowed_hosts: [updates.acme.example], max_added: 1}\n",
			rule: "changes.filter(c, c.kind == 'added').size() <= params.max_added && findings.all(f, params.allowed_hosts.exists(h, f.message.endsWith(h)))",
			want: pipeline.VerdictPass},
		{name: "params exceeded", extra: "params: {max_added: 0}\n", rule: "changes.filter(c, c.kind == 'added').size() <= params.max_added",
			verdict: "review", want: pipeline.VerdictReview},
		{name: "params missing key fails closed", rule: "params.nope == 1", want: pipeline.VerdictFail, reasons: []string{"could not be evaluated", "nope"}},
		{name: "dyn result not bool fails closed", extra: "params: {x: 3}\n", rule: "params.x", verdict: "review", want: pipeline.VerdictFail,
			reasons: []string{"rule r could not be evaluated: it gave int, not bool"}},
		{name: "dyn result bool", extra: "params: {strict: true}\n", rule: "params.strict", want: pipeline.VerdictPass},
		{name: "template message", rule: "candidate.version == '9'", message: "{{.candidate.ref}} is {{.candidate.version}}, {{len .changes}} changes, baseline {{.baseline.version}}, first {{(index .changes 0).path}}",
			want: pipeline.VerdictFail, reasons: []string{"rule r: acme/fw:1.1 is 1.1.0, 2 changes, baseline 1.0.0, first /www/cgi-bin/diag.cgi"}},
		{name: "template with params", extra: "params: {owner: sec-team}\n", rule: "false", message: "ask {{.params.owner}}",
			verdict: "review", want: pipeline.VerdictReview, reasons: []string{"rule r: ask sec-team"}},
		{name: "no message", rule: "false", want: pipeline.VerdictFail, reasons: []string{"rule r: the expression is false"}},
		{name: "string extensions", rule: "'a,b'.split(',').size() == 2 && 'ABC'.lowerAscii() == 'abc' && candidate.ref.indexOf('/') == 4", want: pipeline.VerdictPass},
		{name: "review rule does not hide a threshold fail", rule: "false", verdict: "review",
			modify: func(in *Input) { in.Report.Checks[0].Status = pipeline.CheckFail }, want: pipeline.VerdictFail,
			reasons: []string{"check signature failed"}},
		{name: "threshold review then rule fail", rule: "false", message: "m",
			modify: func(in *Input) { in.HasBaseline = false }, want: pipeline.VerdictFail, reasons: []string{"rule r: m"}},
		{name: "threshold review and rule review", rule: "false", verdict: "review", message: "m",
			modify: func(in *Input) { in.HasBaseline = false }, want: pipeline.VerdictReview, reasons: []string{"no baseline", "rule r: m"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rule := "  - name: r\n    expression: " + quote(tt.rule) + "\n"
			if tt.verdict != "" {
				rule += "    verdict: " + tt.verdict + "\n"
			}
			if tt.message != "" {
				rule += "    message: " + quote(tt.message) + "\n"
			}
			p := loadRules(t, tt.extra, rule)
			in := Input{Report: report(), Changes: testChanges, HasBaseline: true}
			if tt.modify != nil {
				tt.modify(&in)
			}
			d, err := p.Decide(context.Background(), in)
			if err != nil {
				t.Fatal(err)
			}
			if d.Verdict != tt.want || d.Mode != ModeEnforce {
				t.Errorf("Decide = %+v, want %s (enforce)", d, tt.want)
			}
			all := strings.Join(d.Reasons, "\n")
			for _, w := range tt.reasons {
				if !strings.Contains(all, w) {
					t.Errorf("reasons %q do not mention %q", d.Reasons, w)
				}
			}
		})
	}
}

// quote makes a YAML double-quoted string.
func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

func TestRulesOrderAndWorst(t *testing.T) {
	p := loadRules(t, "", `  - {name: a, expression: 'false', verdict: review, message: first review}
  - {name: b, expression: 'true', message: never}
  - {name: c, expression: 'false', message: first fail}
  - {name: d, expression: 'false', verdict: review, message: second review}
  - {name: e, expression: 'false', message: second fail}
`)
	d, err := p.Decide(context.Background(), Input{Report: report(), Changes: testChanges, HasBaseline: true})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"rule c: first fail", "rule e: second fail"}
	if d.Verdict != pipeline.VerdictFail || !reflect.DeepEqual(d.Reasons, want) {
		t.Errorf("Decide = %+v, want fail %q", d, want)
	}
}

func TestWarnMode(t *testing.T) {
	p := loadRules(t, "mode: warn\n", "  - {name: a, expression: 'false', message: m}\n")
	d, err := p.Decide(context.Background(), Input{Report: report(), HasBaseline: true})
	if err != nil {
		t.Fatal(err)
	}
	// Warn mode records the verdict as it is; only the command's exit changes.
	if d.Verdict != pipeline.VerdictFail || d.Mode != ModeWarn || !p.Warn() {
		t.Errorf("Decide = %+v, want fail in warn mode", d)
	}
	if Default().Warn() {
		t.Errorf("the default policy is in warn mode")
	}
}

func TestCostLimit(t *testing.T) {
	// 10,000 params elements and a quadratic comprehension: 10^8 steps.
	var b strings.Builder
	b.WriteString("params:\n  xs: [")
	for i := range 10_000 {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("1")
	}
	b.WriteString("]\n")
	p := loadRules(t, b.String(), "  - {name: quadratic, expression: 'params.xs.all(x, params.xs.all(y, x == y))', verdict: review}\n")
	start := time.Now()
	d, err := p.Decide(context.Background(), Input{Report: report(), HasBaseline: true})
	if err != nil {
		t.Fatal(err)
	}
	if d.Verdict != pipeline.VerdictFail || len(d.Reasons) != 1 || !strings.Contains(d.Reasons[0], "rule quadratic could not be evaluated") ||
		!strings.Contains(d.Reasons[0], "cost limit") {
		t.Errorf("Decide = %+v, want fail: rule quadratic over its cost limit", d)
	}
	if took := time.Since(start); took > RuleTimeout {
		t.Errorf("the rule ran %s, past its timeout", took)
	}

	// A cancelled context fails closed too.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	d, err = p.Decide(ctx, Input{Report: report(), HasBaseline: true})
	if err != nil || d.Verdict != pipeline.VerdictFail {
		t.Errorf("Decide with a cancelled context = %+v, %v, want fail", d, err)
	}

	// A rule certain to cost more than the limit is refused at Load: its
	// lists are in the expression, so their sizes are known.
	list := "[" + strings.Repeat("1,", 99) + "1]"
	expr := list + ".map(a, " + list + ".map(b, " + list + ".map(c, " + list + ".map(d, a + b + c + d)))).size() > 0"
	_, err = Load(writeYAML(t, "apiVersion: fwvet/v1\nkind: Policy\nrules:\n  - name: huge\n    expression: \""+expr+"\"\n"))
	if err == nil || !strings.Contains(err.Error(), `rule "huge"`) || !strings.Contains(err.Error(), "over the limit") {
		t.Errorf("Load of a rule over the static cost limit: %v, want an error", err)
	}
}

// TestDefaultKeepsVerdicts: the default policy, from default.yaml or from
// an empty JSON object (or one of nulls, as before), is the one TestDecide
// runs its table of today's verdicts through.
func TestDefaultKeepsVerdicts(t *testing.T) {
	yml, err := Load(writeYAML(t, string(defaultYAML)))
	if err != nil {
		t.Fatal(err)
	}
	js, err := Load(writePolicy(t, `{}`))
	if err != nil {
		t.Fatal(err)
	}
	null, err := Load(writePolicy(t, `{"fail_on": null, "review_on": null, "severity": null, "require_baseline": null}`))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(yml, Default()) || !reflect.DeepEqual(js, Default()) || !reflect.DeepEqual(null, Default()) {
		t.Errorf("default.yaml loaded = %+v, {} loaded = %+v, want Default() = %+v", yml, js, Default())
	}
}

func TestDecideErrors(t *testing.T) {
	if _, err := Default().Decide(context.Background(), Input{}); err == nil {
		t.Errorf("Decide without a report: no error")
	}
	p := Default()
	p.Rules = []Rule{{Name: "a", Expression: "true"}}
	if _, err := p.Decide(context.Background(), Input{Report: report()}); err == nil {
		t.Errorf("Decide with uncompiled rules: no error")
	}
}

func TestReadReportAndDecideReport(t *testing.T) {
	body := `{"schema": "fwvet/report/v1", "candidate": {"ref": "c", "digest": "sha256:c", "version": "2"},
		"baseline": null, "checks": [{"name": "signature", "status": "pass", "detail": ""}],
		"summary": {"added": 1, "removed": 0, "modified": 0, "metadata": 0, "undisclosed": 1},
		"findings": [{"id": "file-added", "severity": "info", "path": "/www/cgi-bin/x", "container": [], "disclosed": false, "message": ""}],
		"verdict": "review", "reasons": ["…"],
		"changes": [{"kind": "added", "path": "/www/cgi-bin/x", "container": [], "disclosed": false}]}`
	rep, err := ReadReport(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	p := loadRules(t, "require_baseline: false\nseverity: {file-added: high}\n",
		"  - {name: cgi, expression: \"!changes.exists(c, c.kind == 'added' && c.path.startsWith('/www/cgi-bin/'))\", message: a CGI script was added}\n")
	d, err := p.DecideReport(context.Background(), rep)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"1 undisclosed finding of high severity or above: file-added /www/cgi-bin/x", "rule cgi: a CGI script was added"}
	if d.Verdict != pipeline.VerdictFail || !reflect.DeepEqual(d.Reasons, want) {
		t.Errorf("DecideReport = %+v, want fail %q", d, want)
	}
	if rep.Findings[0].Severity != pipeline.SeverityInfo {
		t.Errorf("DecideReport changed the report's findings")
	}
	for _, bad := range []string{`{"schema": "fwvet/equivalence/v1"}`, `[]`, `{`} {
		if _, err := ReadReport(strings.NewReader(bad)); err == nil {
			t.Errorf("ReadReport(%s): no error", bad)
		}
	}
}

func FuzzLoad(f *testing.F) {
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"fail_on": "critical", "severity": {"file-added": "low"}}`))
	f.Add(defaultYAML)
	f.Add([]byte("apiVersion: fwvet/v1\nkind: Policy\nparams: {a: [1, {b: c}]}\nrules:\n  - {name: a, expression: \"changes.exists(c, c.kind == 'added')\", message: '{{.candidate.ref}}'}\n"))
	f.Add([]byte("apiVersion: fwvet/v1\nkind: Policy\nparams: &a {x: *a}\n"))
	f.Add([]byte("apiVersion: fwvet/v1\nkind: Policy\nauthorities: {keyless: [{identity_regexp: '.*', issuer: x}]}\nprovenance: {builder_ids: [a]}\n"))
	dir := f.TempDir()
	file := filepath.Join(dir, "policy.yaml")
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(file, data, 0o600); err != nil {
			t.Fatal(err)
		}
		p, err := Load(file)
		if err != nil {
			return
		}
		_ = p.Digest()
		d, err := p.Decide(context.Background(), Input{Report: report(), Changes: testChanges, HasBaseline: true})
		if err != nil {
			t.Fatalf("Decide on a loaded policy: %v", err)
		}
		if d.Verdict != pipeline.VerdictPass && d.Verdict != pipeline.VerdictReview && d.Verdict != pipeline.VerdictFail {
			t.Fatalf("verdict %q", d.Verdict)
		}
	})
}

func TestDefaultIsACopy(t *testing.T) {
	p := Default()
	p.FailOn = pipeline.SeverityCritical
	p.Severity = map[string]pipeline.Severity{pipeline.IDFileAdded: pipeline.SeverityHigh}
	if q := Default(); q.FailOn != pipeline.SeverityHigh || q.Severity != nil || q.Digest() != defaultDigest {
		t.Errorf("changing one Default() changed the next: %+v", q)
	}
	if Default().Ranked(nil) != nil {
		t.Errorf("Ranked(nil) is not nil")
	}
}
