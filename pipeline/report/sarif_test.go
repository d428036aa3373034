package report_test

// testdata/sarif-schema-2.1.0.json is the official SARIF 2.1.0 JSON schema
// (OASIS, errata01, draft-04) as github.com/owenrumney/go-sarif/v3 v3.3.1
// embeds it in pkg/report/v210/sarif/schema.go: the text of its `schema`
// constant, copied unchanged. The output is validated against it twice: by
// go-sarif's Report.Validate (gojsonschema, on the decoded report) and by
// santhosh-tekuri/jsonschema (on the raw bytes, with format assertions), so
// that neither a decoding quirk nor one validator's blind spot hides an
// invalid log.

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/owenrumney/go-sarif/v3/pkg/report/v210/sarif"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/report"
)

const sarifSchemaFile = "testdata/sarif-schema-2.1.0.json"

// sarifFixture adds to the shared fixture what SARIF output must handle: a
// severity the policy raised above the id's default, a path that is not a
// plain URI, a first segment with a colon, evidence of every JSON type, and
// a path that the fixture already has, in another container.
func sarifFixture() *pipeline.Report {
	r := fixture(true)
	deep := []string{"bundle.tar.gz", "gzip", "tar", "/rootfs.sqfs", "squashfs"}
	r.Findings = append(r.Findings,
		pipeline.Finding{ID: pipeline.IDFileAdded, Severity: pipeline.SeverityHigh, Path: "/www/cgi-bin/diag tool#2.cgi", Container: deep,
			Message: "file added & raised by policy", Evidence: map[string]any{"size": 1234, "sha256": "dd"}},
		pipeline.Finding{ID: pipeline.IDHighEntropyBlobAdded, Severity: pipeline.SeverityMedium, Path: "/lib/firmware/blob.bin", Container: deep,
			Message: "new opaque blob", Disclosed: true, Evidence: map[string]any{
				"entropy":  7.93,
				"offset":   4096,
				"packed":   false,
				"sections": []any{".text", ".data"},
				"elf":      map[string]any{"machine": "arm", "imports": []any{"execve", "socket"}},
				"note":     nil,
			}},
		pipeline.Finding{ID: pipeline.IDFileModified, Severity: pipeline.SeverityInfo, Path: "/c:weird", Container: deep, Message: "content changed"},
		pipeline.Finding{ID: pipeline.IDFileModified, Severity: pipeline.SeverityInfo, Path: "/c:top", Container: []string{"rt3200-1.0.1.bin", "squashfs@0x40000"}, Message: "content changed"},
		pipeline.Finding{ID: pipeline.IDAccountAdded, Severity: pipeline.SeverityCritical, Path: "/etc/passwd", Container: deep,
			Message: "user diag added with uid 0", Evidence: map[string]any{"user": "diag", "uid": "0"}},
	)
	return r
}

// validateSARIF checks raw output against the schema both ways.
func validateSARIF(t *testing.T, out []byte) {
	t.Helper()
	log, err := sarif.FromBytes(out, sarif.WithStrictValidation())
	if err != nil {
		t.Fatalf("go-sarif cannot read the output: %v", err)
	}
	if err := log.Validate(); err != nil {
		t.Errorf("go-sarif Validate: %v", err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(out))
	if err != nil {
		t.Fatalf("output is not JSON: %v", err)
	}
	if err := compileSARIFSchema(t).Validate(doc); err != nil {
		t.Errorf("jsonschema: output does not satisfy the SARIF 2.1.0 schema: %v", err)
	}
}

func compileSARIFSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open(sarifSchemaFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatalf("reading %s: %v", sarifSchemaFile, err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource(sarifSchemaFile, doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile(sarifSchemaFile)
	if err != nil {
		t.Fatalf("compiling %s: %v", sarifSchemaFile, err)
	}
	return sch
}

func decodeSARIF(t *testing.T, out []byte) *sarif.Run {
	t.Helper()
	log, err := sarif.FromBytes(out, sarif.WithStrictValidation())
	if err != nil {
		t.Fatalf("go-sarif cannot read the output: %v\n%s", err, out)
	}
	if len(log.Runs) != 1 {
		t.Fatalf("%d runs, want 1", len(log.Runs))
	}
	return log.Runs[0]
}

func TestSARIFSchema(t *testing.T) {
	for _, tc := range []struct {
		name string
		rep  *pipeline.Report
	}{
		{"fixture", sarifFixture()},
		{"no baseline", fixture(false)},
		{"empty", empty()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			validateSARIF(t, encode(t, report.SARIF{}, tc.rep))
		})
	}
}

// TestSARIFSchemaRejects shows that both validators do reject a log that
// breaks the schema, so that TestSARIFSchema passing means something.
func TestSARIFSchemaRejects(t *testing.T) {
	out := encode(t, report.SARIF{}, sarifFixture())
	for _, tc := range []struct {
		name      string
		old, new_ string
	}{
		{"unknown level", `"level": "error"`, `"level": "fatal"`},
		{"unknown suppression kind", `"kind": "external"`, `"kind": "manifest"`},
		{"wrong version", `"version": "2.1.0"`, `"version": "2.0.0"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !bytes.Contains(out, []byte(tc.old)) {
				t.Fatalf("output holds no %s", tc.old)
			}
			bad := bytes.Replace(out, []byte(tc.old), []byte(tc.new_), 1)
			log, err := sarif.FromBytes(bad, sarif.WithStrictValidation())
			if err != nil {
				t.Fatal(err)
			}
			if err := log.Validate(); err == nil {
				t.Errorf("go-sarif Validate accepts a log with %s", tc.new_)
			}
			doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(bad))
			if err != nil {
				t.Fatal(err)
			}
			if err := compileSARIFSchema(t).Validate(doc); err == nil {
				t.Errorf("jsonschema accepts a log with %s", tc.new_)
			}
		})
	}
}

func TestSARIFRules(t *testing.T) {
	wantLevel := map[pipeline.Severity]string{
		pipeline.SeverityCritical: "error",
		pipeline.SeverityHigh:     "error",
		pipeline.SeverityMedium:   "warning",
		pipeline.SeverityLow:      "note",
		pipeline.SeverityInfo:     "note",
	}
	// Inside GitHub's bands: above 9.0 critical, 7.0-8.9 high, 4.0-6.9
	// medium, 0.1-3.9 low; info has none.
	wantSecuritySeverity := map[pipeline.Severity]string{
		pipeline.SeverityCritical: "9.5",
		pipeline.SeverityHigh:     "8.0",
		pipeline.SeverityMedium:   "5.5",
		pipeline.SeverityLow:      "3.0",
	}
	var wantIDs []string
	for id := range pipeline.DefaultSeverity {
		wantIDs = append(wantIDs, id)
	}
	sort.Strings(wantIDs)

	for _, tc := range []struct {
		name string
		rep  *pipeline.Report
	}{
		{"fixture", sarifFixture()},
		{"empty", empty()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := decodeSARIF(t, encode(t, report.SARIF{}, tc.rep))
			d := run.Tool.Driver
			// No informationUri: nothing shows that the module path's
			// address is the project's page (see report.SARIF).
			if d.Name == nil || *d.Name != "fwvet" || d.Version == nil || *d.Version != "0.1.0" || d.InformationURI != nil {
				t.Errorf("driver name %q, version %q, informationUri %q; want fwvet, 0.1.0, <absent>", deref(d.Name), deref(d.Version), deref(d.InformationURI))
			}
			var got []string
			for _, rule := range d.Rules {
				if rule.ID == nil {
					t.Fatal("a rule has no id")
				}
				id := *rule.ID
				got = append(got, id)
				sev, known := pipeline.DefaultSeverity[id]
				if !known {
					t.Errorf("rule %q is not a finding id", id)
					continue
				}
				if rule.ShortDescription == nil || rule.ShortDescription.Text == nil || *rule.ShortDescription.Text == "" || *rule.ShortDescription.Text == id {
					t.Errorf("rule %s has no description of its own", id)
				}
				if c := rule.DefaultConfiguration; c == nil || c.Level != wantLevel[sev] {
					t.Errorf("rule %s: default configuration %+v, want level %s (default severity %s)", id, c, wantLevel[sev], sev)
				}
				short := deref(rule.ShortDescription.Text)
				if fd := rule.FullDescription; fd == nil || !strings.HasPrefix(deref(fd.Text), short) || !strings.Contains(deref(fd.Text), "Default severity: "+sev.String()+".") {
					t.Errorf("rule %s: fullDescription %q, want its description and default severity %s", id, deref(fd.Text), sev)
				}
				if h := rule.Help; h == nil || !strings.HasPrefix(deref(h.Text), short+"\n") || !strings.Contains(deref(h.Markdown), "**"+id+"**: "+short) ||
					!strings.Contains(deref(h.Text), "fwvet unpack REF DIR") || !strings.Contains(deref(h.Markdown), "**"+sev.String()+"**") {
					t.Errorf("rule %s: help %s, want text and markdown with its description, default severity and how to look", id, jsonString(t, h))
				}
				if rule.HelpURI != nil {
					t.Errorf("rule %s: helpUri %q, want none", id, *rule.HelpURI)
				}
				if rule.Properties == nil {
					t.Errorf("rule %s: no properties", id)
					continue
				}
				if !slices.Contains(rule.Properties.Tags, "security") {
					t.Errorf("rule %s: tags %v lack \"security\", without which GitHub ignores security-severity", id, rule.Properties.Tags)
				}
				got, has := rule.Properties.Properties["security-severity"]
				if want, ok := wantSecuritySeverity[sev]; !ok && has || ok && got != want {
					t.Errorf("rule %s: security-severity %v (present %v), want %q for %s", id, got, has, want, sev)
				}
			}
			if !reflect.DeepEqual(got, wantIDs) {
				t.Errorf("rule ids %v,\nwant every finding id, sorted: %v", got, wantIDs)
			}
		})
	}

	t.Run("stable", func(t *testing.T) {
		first := encode(t, report.SARIF{}, sarifFixture())
		for i := 0; i < 20; i++ {
			// Map iteration order differs from run to run; the output must not.
			if again := encode(t, report.SARIF{}, sarifFixture()); !bytes.Equal(again, first) {
				t.Fatalf("encoding the same report twice gives different output:\n%s", lineDiff(string(first), string(again)))
			}
		}
	})

	t.Run("id without a default severity", func(t *testing.T) {
		r := empty()
		r.Findings = []pipeline.Finding{{ID: "zz-future-id", Severity: pipeline.SeverityMedium, Path: "/x", Message: "m"}}
		out := encode(t, report.SARIF{}, r)
		validateSARIF(t, out)
		run := decodeSARIF(t, out)
		rules := run.Tool.Driver.Rules
		if n := len(rules); n != len(pipeline.DefaultSeverity)+1 || *rules[n-1].ID != "zz-future-id" {
			t.Fatalf("%d rules, last %q; want a rule for the new id too", n, deref(rules[n-1].ID))
		}
		if res := run.Results[0]; res.RuleIndex != len(rules)-1 || res.Level != "warning" {
			t.Errorf("result ruleIndex %d, level %s; want %d, warning", res.RuleIndex, res.Level, len(rules)-1)
		}
	})
}

func TestSARIFResults(t *testing.T) {
	wantLevel := map[pipeline.Severity]string{
		pipeline.SeverityCritical: "error",
		pipeline.SeverityHigh:     "error",
		pipeline.SeverityMedium:   "warning",
		pipeline.SeverityLow:      "note",
		pipeline.SeverityInfo:     "note",
	}
	const (
		flat   = "rt3200-1.0.1.bin › squashfs@0x40000 › "
		nested = "rt3200-1.0.1.bin › ubi@0x200000 › squashfs@0x0 › "
		deeper = nested + "/lib/modules/extra.tar.gz › gzip › tar › "
		deep   = "bundle.tar.gz › gzip › tar › /rootfs.sqfs › squashfs › "
	)
	// The URI is where fwvet unpack writes the file: each container file of
	// the chain becomes its path plus ".d"; format names add nothing.
	wantURI := map[string]string{
		flat + "/usr/share/doc/README":        "usr/share/doc/README",
		nested + "/usr/bin/diagd":             "usr/bin/diagd",
		flat + "/etc/fw-release":              "etc/fw-release",
		flat + "/etc/shadow":                  "etc/shadow",
		flat + "/etc/passwd":                  "etc/passwd",
		flat + "/etc/init.d/S55factory-diag":  "etc/init.d/S55factory-diag",
		deeper + "/diag.ko":                   "lib/modules/extra.tar.gz.d/diag.ko",
		flat + "/www/help.html":               "www/help.html",
		deep + "/www/cgi-bin/diag tool#2.cgi": "rootfs.sqfs.d/www/cgi-bin/diag%20tool%232.cgi",
		deep + "/lib/firmware/blob.bin":       "rootfs.sqfs.d/lib/firmware/blob.bin",
		deep + "/c:weird":                     "rootfs.sqfs.d/c:weird",
		flat + "/c:top":                       "./c:top",
		deep + "/etc/passwd":                  "rootfs.sqfs.d/etc/passwd",
	}
	// The logical location: the chain without the artifact's name, then the
	// path.
	wantLogical := map[string]string{
		flat + "/etc/passwd":      "squashfs@0x40000 › /etc/passwd",
		deeper + "/diag.ko":       "ubi@0x200000 › squashfs@0x0 › /lib/modules/extra.tar.gz › gzip › tar › /diag.ko",
		deep + "/etc/passwd":      "gzip › tar › /rootfs.sqfs › squashfs › /etc/passwd",
		nested + "/usr/bin/diagd": "ubi@0x200000 › squashfs@0x0 › /usr/bin/diagd",
	}
	fingerprints := map[string]string{}
	r := sarifFixture()
	run := decodeSARIF(t, encode(t, report.SARIF{}, r))
	if len(run.Results) != len(r.Findings) {
		t.Fatalf("%d results, want one per finding (%d)", len(run.Results), len(r.Findings))
	}
	rules := run.Tool.Driver.Rules
	sawRaised, sawEmptyPath, sawDisclosed, sawNested := false, false, false, false
	for i, res := range run.Results {
		f := r.Findings[i]
		name := f.ID + " " + f.Path
		if res.RuleID == nil || *res.RuleID != f.ID {
			t.Errorf("result %d: ruleId %q, want %s", i, deref(res.RuleID), f.ID)
			continue
		}
		if res.RuleIndex < 0 || res.RuleIndex >= len(rules) || *rules[res.RuleIndex].ID != f.ID {
			t.Errorf("%s: ruleIndex %d does not point at rule %s", name, res.RuleIndex, f.ID)
		}
		if res.Level != wantLevel[f.Severity] {
			t.Errorf("%s: level %s, want %s for severity %s", name, res.Level, wantLevel[f.Severity], f.Severity)
		}
		sawRaised = sawRaised || f.Severity != pipeline.DefaultSeverity[f.ID] && res.Level != wantLevel[pipeline.DefaultSeverity[f.ID]]
		if res.Message == nil || res.Message.Text == nil || *res.Message.Text != f.Message {
			t.Errorf("%s: message %+v, want %q", name, res.Message, f.Message)
		}

		if f.Path == "" {
			sawEmptyPath = true
			if len(res.Locations) != 0 {
				t.Errorf("%s: a finding without a path has locations %s", name, jsonString(t, res.Locations))
			}
		} else {
			where := pipeline.Where(f.Container, f.Path)
			want, ok := wantURI[where]
			if !ok {
				t.Fatalf("test table has no URI for %s", where)
			}
			if len(res.Locations) != 1 || res.Locations[0].PhysicalLocation == nil || res.Locations[0].PhysicalLocation.ArtifactLocation == nil {
				t.Errorf("%s: locations %s, want one physical location", name, jsonString(t, res.Locations))
			} else {
				al := res.Locations[0].PhysicalLocation.ArtifactLocation
				if al.URI == nil || *al.URI != want {
					t.Errorf("%s: uri %q, want %q", name, deref(al.URI), want)
				}
				if al.URIBaseID == nil || *al.URIBaseID != "IMAGEROOT" {
					t.Errorf("%s: uriBaseId %q, want IMAGEROOT", name, deref(al.URIBaseID))
				}
				ll := res.Locations[0].LogicalLocations
				if len(ll) != 1 || deref(ll[0].Name) != f.Path || !strings.HasSuffix(deref(ll[0].FullyQualifiedName), f.Path) ||
					strings.Contains(deref(ll[0].FullyQualifiedName), f.Container[0]) {
					t.Errorf("%s: logical locations %s, want one named %s, its chain without %s", name, jsonString(t, ll), f.Path, f.Container[0])
				} else if want, ok := wantLogical[where]; ok && deref(ll[0].FullyQualifiedName) != want {
					t.Errorf("%s: logical location %q, want %q", name, deref(ll[0].FullyQualifiedName), want)
				}
			}
		}

		fp := res.PartialFingerprints["fwvetFinding/v1"]
		if b, err := hex.DecodeString(fp); err != nil || len(b) != sha256.Size || len(res.PartialFingerprints) != 1 {
			t.Errorf("%s: partialFingerprints %v, want one fwvetFinding/v1, a SHA-256 in hex", name, res.PartialFingerprints)
		}
		if other, dup := fingerprints[fp]; dup {
			t.Errorf("%s: same fingerprint as %s", name, other)
		}
		fingerprints[fp] = name + " in " + fmt.Sprint(f.Container)

		if res.Properties == nil {
			t.Errorf("%s: no properties", name)
			continue
		}
		props := res.Properties.Properties
		wantContainer := []any{}
		for _, c := range f.Container {
			wantContainer = append(wantContainer, c)
		}
		sawNested = sawNested || len(f.Container) > 2
		if !reflect.DeepEqual(props["container"], wantContainer) {
			t.Errorf("%s: container %v, want %v", name, props["container"], wantContainer)
		}
		if props["disclosed"] != f.Disclosed {
			t.Errorf("%s: disclosed %v, want %v", name, props["disclosed"], f.Disclosed)
		}
		if props["severity"] != f.Severity.String() {
			t.Errorf("%s: severity property %v, want %s", name, props["severity"], f.Severity)
		}
		evidence := f.Evidence
		if evidence == nil {
			evidence = map[string]any{}
		}
		if want := jsonValue(t, evidence); !reflect.DeepEqual(props["evidence"], want) {
			t.Errorf("%s: evidence %v, want %v", name, props["evidence"], want)
		}

		if f.Disclosed {
			sawDisclosed = true
			if len(res.Suppressions) != 1 {
				t.Errorf("%s: disclosed, %d suppressions, want 1", name, len(res.Suppressions))
				continue
			}
			s := res.Suppressions[0]
			if s.Kind == nil || *s.Kind != "external" || s.Justification == nil || *s.Justification != "declared in the release manifest" {
				t.Errorf("%s: suppression kind %q, justification %q", name, deref(s.Kind), deref(s.Justification))
			}
		} else if len(res.Suppressions) != 0 {
			t.Errorf("%s: undisclosed but suppressed: %s", name, jsonString(t, res.Suppressions))
		}
	}
	// The fixture must exercise what the loop checks.
	if !sawRaised || !sawEmptyPath || !sawDisclosed || !sawNested {
		t.Errorf("fixture lacks a case: raised severity %v, empty path %v, disclosed %v, nested container %v", sawRaised, sawEmptyPath, sawDisclosed, sawNested)
	}
	if base, ok := run.OriginalUriBaseIds["IMAGEROOT"]; !ok || base.Description == nil {
		t.Errorf("IMAGEROOT is not declared in originalUriBaseIds: %+v", run.OriginalUriBaseIds)
	}
}

// jsonValue is v as it reads back from JSON.
func jsonValue(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestSARIFRunProperties(t *testing.T) {
	for _, tc := range []struct {
		name string
		rep  *pipeline.Report
	}{
		{"fixture", sarifFixture()},
		{"no baseline", fixture(false)},
		{"empty", empty()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := decodeSARIF(t, encode(t, report.SARIF{}, tc.rep))
			if run.Properties == nil {
				t.Fatal("run has no properties")
			}
			props := run.Properties.Properties
			checks, reasons := any(tc.rep.Checks), any(tc.rep.Reasons)
			if tc.rep.Checks == nil {
				checks = []pipeline.Check{}
			}
			if tc.rep.Reasons == nil {
				reasons = []string{}
			}
			for key, want := range map[string]any{
				"verdict":   jsonValue(t, tc.rep.Verdict),
				"reasons":   jsonValue(t, reasons),
				"candidate": jsonValue(t, tc.rep.Candidate),
				"baseline":  jsonValue(t, tc.rep.Baseline),
				"checks":    jsonValue(t, checks),
			} {
				got, ok := props[key]
				if !ok {
					t.Errorf("run properties have no %q", key)
					continue
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("run property %s = %v, want %v", key, got, want)
				}
			}
			if tc.rep.Baseline == nil && props["baseline"] != nil {
				t.Errorf("baseline = %v, want null when there is none", props["baseline"])
			}
			if tc.rep.Baseline != nil && !strings.Contains(jsonString(t, props["baseline"]), baseDigest) {
				t.Errorf("baseline = %v, want the baseline subject", props["baseline"])
			}
		})
	}
}

func jsonString(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// deref shows an optional string of go-sarif's model in a message.
func deref(p *string) string {
	if p == nil {
		return "<absent>"
	}
	return *p
}

// TestSARIFFingerprint: a finding keeps its partial fingerprint from one
// release to the next, whatever the artifact is called and whatever
// numbers its message and evidence carry, and two findings that differ in
// id, path, container or the evidence that tells them apart never share
// one.
func TestSARIFFingerprint(t *testing.T) {
	chain := []string{"rt3200-1.0.1.bin", "raw", "/squashfs-1", "squashfs"}
	base := pipeline.Finding{ID: pipeline.IDAccountAdded, Severity: pipeline.SeverityCritical, Path: "/etc/passwd", Container: chain,
		Message: "new user diag (uid 0) at line 12", Evidence: map[string]any{"user": "diag", "uid": "0", "line": 12, "reason": "new-user"}}
	key := func(k pipeline.Finding) pipeline.Finding {
		k.ID, k.Severity, k.Path = pipeline.IDPrivateKeyAdded, pipeline.SeverityHigh, "/etc/ssl/private/server.pem"
		k.Message = "RSA private key (PEM) at offset 0"
		k.Evidence = map[string]any{"key_type": "RSA", "form": "PEM", "offset": 0, "public_key_fingerprint": "SHA256:aaaa"}
		return k
	}
	for _, tc := range []struct {
		name   string
		change func(r *pipeline.Report, f *pipeline.Finding)
		same   bool
	}{
		{"next release: artifact name, versions, message, line", func(r *pipeline.Report, f *pipeline.Finding) {
			r.Candidate.Ref, r.Candidate.Version, r.Candidate.Digest = "registry.example/acme/rt3200:1.0.2", "1.0.2", baseDigest
			r.Baseline = &pipeline.Subject{Ref: "registry.example/acme/rt3200:1.0.1", Digest: candDigest, Version: "1.0.1"}
			f.Container = []string{"rt3200-1.0.2.bin", "raw", "/squashfs-1", "squashfs"}
			f.Message = "new user diag (uid 0) at line 13"
			f.Evidence = map[string]any{"user": "diag", "uid": "0", "line": 13, "reason": "new-user", "shell": "/bin/sh"}
		}, true},
		{"disclosed and raised", func(_ *pipeline.Report, f *pipeline.Finding) {
			f.Disclosed, f.Severity = true, pipeline.SeverityHigh
		}, true},
		{"another platform", func(r *pipeline.Report, _ *pipeline.Finding) { r.Candidate.Platform = "linux/arm64" }, true},
		{"another path", func(_ *pipeline.Report, f *pipeline.Finding) { f.Path = "/etc/group" }, false},
		{"same path, another container", func(_ *pipeline.Report, f *pipeline.Finding) {
			f.Container = []string{"rt3200-1.0.1.bin", "raw", "/squashfs-2", "squashfs"}
		}, false},
		{"same path, container one level up", func(_ *pipeline.Report, f *pipeline.Finding) {
			f.Container = []string{"rt3200-1.0.1.bin", "squashfs"}
		}, false},
		{"another id", func(_ *pipeline.Report, f *pipeline.Finding) { f.ID = pipeline.IDCredentialChanged }, false},
		{"same path, another user", func(_ *pipeline.Report, f *pipeline.Finding) { f.Evidence["user"] = "factory" }, false},
		{"same user, another reason", func(_ *pipeline.Report, f *pipeline.Finding) { f.Evidence["reason"] = "empty-password" }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r1, r2 := fixture(false), fixture(false)
			f := base
			f.Container = slices.Clone(base.Container)
			f.Evidence = maps.Clone(base.Evidence)
			tc.change(r2, &f)
			r1.Findings, r2.Findings = []pipeline.Finding{base}, []pipeline.Finding{f}
			a, b := resultFingerprint(t, r1), resultFingerprint(t, r2)
			if tc.same && a != b {
				t.Errorf("fingerprint changed: %s, then %s", a, b)
			}
			if !tc.same && a == b {
				t.Errorf("two different findings share the fingerprint %s", a)
			}
		})
	}

	// Several keys in one file: the public key's fingerprint tells them
	// apart; their offsets, which move, do not count.
	for _, tc := range []struct {
		name   string
		change func(f *pipeline.Finding)
		same   bool
	}{
		{"offset moved", func(f *pipeline.Finding) {
			f.Evidence["offset"], f.Message = 4096, "RSA private key (PEM) at offset 4096"
		}, true},
		{"another key", func(f *pipeline.Finding) { f.Evidence["public_key_fingerprint"] = "SHA256:bbbb" }, false},
	} {
		t.Run("key: "+tc.name, func(t *testing.T) {
			k1 := key(base)
			k2 := key(base)
			tc.change(&k2)
			r1, r2 := fixture(false), fixture(false)
			r1.Findings, r2.Findings = []pipeline.Finding{k1}, []pipeline.Finding{k2}
			a, b := resultFingerprint(t, r1), resultFingerprint(t, r2)
			if tc.same != (a == b) {
				t.Errorf("fingerprints %s and %s; want them the same: %v", a, b, tc.same)
			}
		})
	}
}

// resultFingerprint is the fwvetFinding/v1 partial fingerprint of the first
// result of r's SARIF log.
func resultFingerprint(t *testing.T, r *pipeline.Report) string {
	t.Helper()
	out := encode(t, report.SARIF{}, r)
	validateSARIF(t, out)
	run := decodeSARIF(t, out)
	if len(run.Results) == 0 {
		t.Fatal("no results")
	}
	fp, ok := run.Results[0].PartialFingerprints["fwvetFinding/v1"]
	if !ok || fp == "" {
		t.Fatalf("no fwvetFinding/v1 partial fingerprint: %v", run.Results[0].PartialFingerprints)
	}
	return fp
}

// TestSARIFPlatforms: a multi-platform image is one log with a run per
// platform, each in its own automation category, so that GitHub code
// scanning keeps each platform's alerts apart and accepts the log; a report
// of no one platform leaves the category to the uploader.
func TestSARIFPlatforms(t *testing.T) {
	plat := func(p string) *pipeline.Report {
		r := sarifFixture()
		r.Candidate.Platform = p
		return r
	}
	for _, tc := range []struct {
		name string
		reps []*pipeline.Report
		want []string // automationDetails.id per run, "" for none
	}{
		{"two platforms", []*pipeline.Report{plat("linux/amd64"), plat("linux/arm64")}, []string{"fwvet/linux/amd64/", "fwvet/linux/arm64/"}},
		{"variant", []*pipeline.Report{plat("linux/arm/v7"), plat("linux/arm64")}, []string{"fwvet/linux/arm/v7/", "fwvet/linux/arm64/"}},
		{"one picked platform", []*pipeline.Report{plat("linux/arm64")}, []string{"fwvet/linux/arm64/"}},
		{"no platform", []*pipeline.Report{sarifFixture()}, []string{""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := report.EncodeAll(report.SARIF{}, &b, tc.reps); err != nil {
				t.Fatal(err)
			}
			validateSARIF(t, b.Bytes())
			log, err := sarif.FromBytes(b.Bytes(), sarif.WithStrictValidation())
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, run := range log.Runs {
				id := ""
				if run.AutomationDetails != nil {
					id = deref(run.AutomationDetails.ID)
				}
				got = append(got, id)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("automationDetails ids %q, want %q", got, tc.want)
			}
		})
	}
}
