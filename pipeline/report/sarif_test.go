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
	"encoding/json"
	"os"
	"reflect"
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
// plain URI, a first segment with a colon, and evidence of every JSON type.
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
			if d.Name == nil || *d.Name != "fwvet" || d.Version == nil || *d.Version != "0.1.0" ||
				d.InformationURI == nil || *d.InformationURI != "https://github.com/fwvet/fwvet" {
				t.Errorf("driver name %q, version %q, informationUri %q", deref(d.Name), deref(d.Version), deref(d.InformationURI))
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
	wantURI := map[string]string{
		"/usr/share/doc/README":        "usr/share/doc/README",
		"/usr/bin/diagd":               "usr/bin/diagd",
		"/etc/fw-release":              "etc/fw-release",
		"/etc/shadow":                  "etc/shadow",
		"/etc/passwd":                  "etc/passwd",
		"/etc/init.d/S55factory-diag":  "etc/init.d/S55factory-diag",
		"/diag.ko":                     "diag.ko",
		"/www/help.html":               "www/help.html",
		"/www/cgi-bin/diag tool#2.cgi": "www/cgi-bin/diag%20tool%232.cgi",
		"/lib/firmware/blob.bin":       "lib/firmware/blob.bin",
		"/c:weird":                     "./c:weird",
	}
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
			want, ok := wantURI[f.Path]
			if !ok {
				t.Fatalf("test table has no URI for %s", f.Path)
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
			}
		}

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
