package report_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/report"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

const (
	candDigest = "sha256:5e2b9f0c7d1a8e3f4b6c9d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c"
	baseDigest = "sha256:0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9"
)

// fixture is a report with something of everything; the findings are in no
// particular order, as analyzers would emit them.
func fixture(withBaseline bool) *pipeline.Report {
	nested := []string{"rt3200-1.0.1.bin", "ubi@0x200000", "squashfs@0x0"}
	deeper := []string{"rt3200-1.0.1.bin", "ubi@0x200000", "squashfs@0x0", "/lib/modules/extra.tar.gz", "gzip", "tar"}
	flat := []string{"rt3200-1.0.1.bin", "squashfs@0x40000"}
	f := func(id string, sev pipeline.Severity, path string, container []string, msg string, disclosed bool, evidence map[string]any) pipeline.Finding {
		return pipeline.Finding{ID: id, Severity: sev, Path: path, Container: container, Message: msg, Disclosed: disclosed, Evidence: evidence}
	}
	r := &pipeline.Report{
		Schema:    pipeline.ReportSchema,
		Tool:      pipeline.Tool{Name: "fwvet", Version: "0.1.0"},
		Candidate: pipeline.Subject{Ref: "registry.example/acme/rt3200:1.0.1", Digest: candDigest, Size: 7340032, Version: "1.0.1"},
		Checks: []pipeline.Check{
			{Name: "signature", Status: pipeline.CheckPass, Detail: "signed by release@acme.example"},
			{Name: "provenance", Status: pipeline.CheckSkip, Detail: "no provenance given"},
			{Name: "manifest", Status: pipeline.CheckFail, Detail: "image_sha256 does not match the candidate"},
			{Name: "unpack", Status: pipeline.CheckError, Detail: "ubi@0x200000: volume table truncated"},
		},
		Summary: pipeline.Summary{Added: 5, Removed: 1, Modified: 3, Metadata: 1, Undisclosed: 7},
		Findings: []pipeline.Finding{
			f(pipeline.IDFileAdded, pipeline.SeverityInfo, "/usr/share/doc/README", flat, "file added", true, nil),
			f(pipeline.IDSetuidAdded, pipeline.SeverityHigh, "/usr/bin/diagd", nested, "new setuid root binary", false, map[string]any{"mode": "4755", "uid": "0"}),
			f(pipeline.IDFileModified, pipeline.SeverityInfo, "/etc/fw-release", flat, "content changed", false, map[string]any{"old_sha256": "aa", "new_sha256": "bb"}),
			f(pipeline.IDMetadataChanged, pipeline.SeverityLow, "/etc/shadow", flat, "mode 0600 became 0644", true, map[string]any{"fields": []any{"mode"}}),
			f(pipeline.IDAccountAdded, pipeline.SeverityCritical, "/etc/passwd", flat, "user diag added with uid 0", false, map[string]any{"user": "diag", "uid": "0"}),
			f(pipeline.IDServiceAdded, pipeline.SeverityHigh, "/etc/init.d/S55factory-diag", flat, "new init script", true, nil),
			f(pipeline.IDEndpointAdded, pipeline.SeverityMedium, "/usr/bin/diagd", nested, "new host telemetry.acme.example", false, map[string]any{"host": "telemetry.acme.example"}),
			f(pipeline.IDKernelModuleAdded, pipeline.SeverityHigh, "/diag.ko", deeper, "new kernel module", false, map[string]any{"sha256": "cc"}),
			f(pipeline.IDDowngrade, pipeline.SeverityCritical, "", nil, "candidate 1.0.1 is older than baseline 1.0.2", false, nil),
			f(pipeline.IDFileRemoved, pipeline.SeverityInfo, "/www/help.html", flat, "file removed", true, nil),
		},
		Verdict: pipeline.VerdictFail,
		Reasons: []string{
			"check manifest failed: image_sha256 does not match the candidate",
			"2 undisclosed critical findings, 2 undisclosed high findings",
		},
		PolicyDigest: "sha256:feedfacefeedfacefeedfacefeedfacefeedfacefeedfacefeedfacefeedface",
		Changes: []*pipeline.Change{
			{Kind: pipeline.ChangeAdded, Path: "/usr/bin/diagd", Container: nested},
			{Kind: pipeline.ChangeModified, Path: "/etc/fw-release", Container: flat, Fields: []string{"content"}},
			{Kind: pipeline.ChangeRemoved, Path: "/www/help.html", Container: flat, Disclosed: true, MovedTo: "/www/docs/help.html"},
		},
	}
	if withBaseline {
		r.Baseline = &pipeline.Subject{Ref: "registry.example/acme/rt3200:1.0.2", Digest: baseDigest, Size: 7335936, Version: "1.0.2"}
	}
	return r
}

// empty is the least a report holds: a verdict on a candidate.
func empty() *pipeline.Report {
	return &pipeline.Report{
		Schema:    pipeline.ReportSchema,
		Tool:      pipeline.Tool{Name: "fwvet", Version: "0.1.0"},
		Candidate: pipeline.Subject{Ref: "fw.bin", Digest: candDigest, Size: 42},
		Verdict:   pipeline.VerdictPass,
	}
}

func encode(t *testing.T, e pipeline.Encoder, r *pipeline.Report) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := e.Encode(&b, r); err != nil {
		t.Fatalf("%T.Encode: %v", e, err)
	}
	return b.Bytes()
}

func TestGolden(t *testing.T) {
	for _, tc := range []struct {
		name string
		enc  pipeline.Encoder
		rep  *pipeline.Report
	}{
		{"text", report.Text{}, fixture(true)},
		{"text-no-baseline", report.Text{}, fixture(false)},
		{"text-empty", report.Text{}, empty()},
		{"json", report.JSON{}, fixture(true)},
		{"json-no-baseline", report.JSON{}, fixture(false)},
		{"json-empty", report.JSON{}, empty()},
		{"sarif", report.SARIF{}, sarifFixture()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := encode(t, tc.enc, tc.rep)
			golden := filepath.Join("testdata", tc.name+".golden")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./pipeline/report -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from %s (run with -update if the change is intended):\n%s",
					tc.name, golden, lineDiff(string(want), string(got)))
			}
		})
	}
}

// lineDiff shows the lines that differ, by position.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			fmt.Fprintf(&b, "line %d:\n  want %q\n  got  %q\n", i+1, wl, gl)
		}
	}
	return b.String()
}

func decodeRaw(t *testing.T, b []byte) map[string]json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("JSON output does not parse: %v\n%s", err, b)
	}
	return m
}

func compact(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestJSON(t *testing.T) {
	t.Run("fields", func(t *testing.T) {
		for _, withBaseline := range []bool{true, false} {
			m := decodeRaw(t, encode(t, report.JSON{}, fixture(withBaseline)))
			if got := compact(t, m["schema"]); got != `"fwvet/report/v1"` {
				t.Errorf("schema = %s", got)
			}
			for _, key := range []string{"schema", "tool", "candidate", "baseline", "checks", "summary", "findings", "verdict", "reasons"} {
				if _, ok := m[key]; !ok {
					t.Errorf("baseline %v: no %q key", withBaseline, key)
				}
			}
			base := compact(t, m["baseline"])
			if !withBaseline && base != "null" {
				t.Errorf("baseline = %s, want null when there is none", base)
			}
			if withBaseline && !strings.Contains(base, `"digest":"`+baseDigest+`"`) {
				t.Errorf("baseline = %s, want the baseline subject", base)
			}
			if got := compact(t, m["verdict"]); got != `"fail"` {
				t.Errorf("verdict = %s", got)
			}
		}
	})

	t.Run("empty lists", func(t *testing.T) {
		m := decodeRaw(t, encode(t, report.JSON{}, empty()))
		for key, want := range map[string]string{"findings": "[]", "checks": "[]", "reasons": "[]", "baseline": "null"} {
			if got := compact(t, m[key]); got != want {
				t.Errorf("%s = %s, want %s", key, got, want)
			}
		}
		// Empty but non-nil lists too.
		r := empty()
		r.Findings, r.Checks, r.Reasons = []pipeline.Finding{}, []pipeline.Check{}, []string{}
		m = decodeRaw(t, encode(t, report.JSON{}, r))
		for _, key := range []string{"findings", "checks", "reasons"} {
			if got := compact(t, m[key]); got != "[]" {
				t.Errorf("%s = %s, want []", key, got)
			}
		}
	})

	t.Run("findings", func(t *testing.T) {
		r := fixture(true)
		m := decodeRaw(t, encode(t, report.JSON{}, r))
		var findings []map[string]json.RawMessage
		if err := json.Unmarshal(m["findings"], &findings); err != nil {
			t.Fatal(err)
		}
		if len(findings) != len(r.Findings) {
			t.Fatalf("%d findings, want %d", len(findings), len(r.Findings))
		}
		for i, f := range findings {
			want := r.Findings[i]
			if got, wantSev := compact(t, f["severity"]), `"`+want.Severity.String()+`"`; got != wantSev {
				t.Errorf("finding %s: severity %s, want %s", want.ID, got, wantSev)
			}
			if got := compact(t, f["id"]); got != `"`+want.ID+`"` {
				t.Errorf("finding %d: id %s, want %q", i, got, want.ID)
			}
			if got := compact(t, f["disclosed"]); got != fmt.Sprint(want.Disclosed) {
				t.Errorf("finding %s: disclosed %s, want %v", want.ID, got, want.Disclosed)
			}
			if want.Container == nil {
				if got := compact(t, f["container"]); got != "[]" {
					t.Errorf("finding %s: container %s, want []", want.ID, got)
				}
			}
			if want.Evidence == nil {
				if got := compact(t, f["evidence"]); got != "{}" {
					t.Errorf("finding %s: evidence %s, want {}", want.ID, got)
				}
			}
			if _, ok := f["Key"]; ok {
				t.Errorf("finding %s: the internal key is in the output", want.ID)
			}
		}
		if got := compact(t, findings[1]["container"]); got != `["rt3200-1.0.1.bin","ubi@0x200000","squashfs@0x0"]` {
			t.Errorf("nested container = %s", got)
		}
		// Empty but non-nil container and evidence too.
		e := empty()
		e.Findings = []pipeline.Finding{{ID: pipeline.IDDowngrade, Severity: pipeline.SeverityCritical, Container: []string{}, Evidence: map[string]any{}}}
		m = decodeRaw(t, encode(t, report.JSON{}, e))
		if got := compact(t, m["findings"]); !strings.Contains(got, `"container":[]`) || !strings.Contains(got, `"evidence":{}`) || !strings.Contains(got, `"severity":"critical"`) {
			t.Errorf("findings = %s, want container [], evidence {}, severity critical", got)
		}
	})

	t.Run("round trip", func(t *testing.T) {
		first := encode(t, report.JSON{}, fixture(true))
		var back pipeline.Report
		if err := json.Unmarshal(first, &back); err != nil {
			t.Fatalf("JSON report does not decode into a pipeline.Report: %v", err)
		}
		if back.Findings[4].Severity != pipeline.SeverityCritical || back.Findings[3].Severity != pipeline.SeverityLow {
			t.Errorf("severities decode as %v and %v", back.Findings[4].Severity, back.Findings[3].Severity)
		}
		if again := encode(t, report.JSON{}, &back); !bytes.Equal(again, first) {
			t.Errorf("encode(decode(encode(r))) differs:\n%s", lineDiff(string(first), string(again)))
		}
	})
}

// TestJSONNoHTMLEscaping: the JSON encoder turns HTML escaping off, so
// endpoints and messages with &, < and > must come out as written, not as
// \u0026, \u003c, \u003e.
func TestJSONNoHTMLEscaping(t *testing.T) {
	r := empty()
	r.Reasons = []string{"a <reason> & more"}
	r.Findings = []pipeline.Finding{pipeline.NewFinding(pipeline.IDEndpointAdded, "/etc/config", nil, "new URL http://x.example/?a=1&b=2")}
	out := string(encode(t, report.JSON{}, r))
	for _, want := range []string{"a <reason> & more", "http://x.example/?a=1&b=2"} {
		if !strings.Contains(out, want) {
			t.Errorf("JSON output does not hold %q as written:\n%s", want, out)
		}
	}
}

func lines(out string) []string { return strings.Split(out, "\n") }

func TestText(t *testing.T) {
	t.Run("order and marks", func(t *testing.T) {
		r := fixture(true)
		out := string(encode(t, report.Text{}, r))
		if want := fixture(true); fmt.Sprint(r.Findings) != fmt.Sprint(want.Findings) {
			t.Errorf("Text.Encode reordered or changed the report's findings")
		}
		last := -1
		for _, head := range []string{"CRITICAL (2, 0 disclosed)", "HIGH (3, 1 disclosed)", "MEDIUM (1, 0 disclosed)", "LOW (1, 1 disclosed)", "INFO (3, 2 disclosed)"} {
			i := strings.Index(out, "  "+head+"\n")
			if i < 0 {
				t.Errorf("no %q heading in:\n%s", head, out)
				continue
			}
			if i < last {
				t.Errorf("%q comes before the severity above it:\n%s", head, out)
			}
			last = i
		}
		for _, f := range r.Findings {
			var line string
			for _, l := range lines(out) {
				if strings.Contains(l, " "+f.ID+" ") && strings.HasSuffix(l, "  "+f.Message) {
					line = l
				}
			}
			if line == "" {
				t.Errorf("finding %s %q not listed:\n%s", f.ID, f.Message, out)
				continue
			}
			if f.Disclosed && !strings.HasPrefix(line, "  ✓ ") {
				t.Errorf("disclosed finding not marked: %q", line)
			}
			if !f.Disclosed && !strings.HasPrefix(line, "    ") {
				t.Errorf("undisclosed finding marked: %q", line)
			}
		}
		// Undisclosed before disclosed within a severity.
		if strings.Index(out, "new kernel module") > strings.Index(out, "new init script") ||
			strings.Index(out, "new setuid root binary") > strings.Index(out, "new init script") {
			t.Errorf("a disclosed high finding is listed before an undisclosed one:\n%s", out)
		}
		// Nested containers (more than two deep) get a line, flat ones do not.
		for _, want := range []string{
			"      in rt3200-1.0.1.bin › ubi@0x200000 › squashfs@0x0\n",
			"      in rt3200-1.0.1.bin › ubi@0x200000 › squashfs@0x0 › /lib/modules/extra.tar.gz › gzip › tar\n",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("no container line %q:\n%s", want, out)
			}
		}
		if strings.Contains(out, "in rt3200-1.0.1.bin › squashfs@0x40000") {
			t.Errorf("a two-level container got its own line:\n%s", out)
		}
		if !strings.Contains(out, " downgrade ") || !strings.Contains(out, " -  candidate 1.0.1") {
			t.Errorf("a finding without a path is not shown with -:\n%s", out)
		}
		if !strings.HasPrefix(out, "FAIL  registry.example/acme/rt3200:1.0.1 (sha256:5e2b9f0c7d1a…) version 1.0.1 against registry.example/acme/rt3200:1.0.2") {
			t.Errorf("first line: %q", lines(out)[0])
		}
		for _, reason := range r.Reasons {
			if !strings.Contains(out, "\n  "+reason+"\n") {
				t.Errorf("reason %q not listed", reason)
			}
		}
		if !strings.Contains(out, "5 added, 1 removed, 3 modified, 1 metadata changed; 7 undisclosed. 10 findings.") {
			t.Errorf("no summary line:\n%s", out)
		}
	})

	t.Run("no baseline", func(t *testing.T) {
		out := string(encode(t, report.Text{}, fixture(false)))
		if strings.Contains(lines(out)[0], "against") {
			t.Errorf("first line names a baseline: %q", lines(out)[0])
		}
	})

	t.Run("platforms", func(t *testing.T) {
		// One report per platform of a multi-platform image, as fwvet vet
		// prints them (report.EncodeAll): each header names its platform.
		plat := func(candidate, baseline string, verdict pipeline.Verdict) *pipeline.Report {
			r := fixture(true)
			r.Candidate.Platform, r.Baseline.Platform, r.Verdict = candidate, baseline, verdict
			return r
		}
		for _, tc := range []struct {
			name  string
			reps  []*pipeline.Report
			heads []string // the first line of each report, in order
		}{
			{"two platforms", []*pipeline.Report{plat("linux/amd64", "linux/amd64", pipeline.VerdictFail), plat("linux/arm64", "linux/arm64", pipeline.VerdictReview)}, []string{
				"FAIL  registry.example/acme/rt3200:1.0.1 (sha256:5e2b9f0c7d1a…) platform linux/amd64 version 1.0.1 against registry.example/acme/rt3200:1.0.2 (sha256:0a1b2c3d4e5f…) version 1.0.2",
				"REVIEW  registry.example/acme/rt3200:1.0.1 (sha256:5e2b9f0c7d1a…) platform linux/arm64 version 1.0.1 against registry.example/acme/rt3200:1.0.2 (sha256:0a1b2c3d4e5f…) version 1.0.2",
			}},
			{"baseline of another platform", []*pipeline.Report{plat("linux/arm64", "linux/arm/v7", pipeline.VerdictFail)}, []string{
				"FAIL  registry.example/acme/rt3200:1.0.1 (sha256:5e2b9f0c7d1a…) platform linux/arm64 version 1.0.1 against registry.example/acme/rt3200:1.0.2 (sha256:0a1b2c3d4e5f…) platform linux/arm/v7 version 1.0.2",
			}},
			{"no platform", []*pipeline.Report{plat("", "", pipeline.VerdictFail)}, []string{
				"FAIL  registry.example/acme/rt3200:1.0.1 (sha256:5e2b9f0c7d1a…) version 1.0.1 against registry.example/acme/rt3200:1.0.2 (sha256:0a1b2c3d4e5f…) version 1.0.2",
			}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				var b bytes.Buffer
				if err := report.EncodeAll(report.Text{}, &b, tc.reps); err != nil {
					t.Fatal(err)
				}
				var heads []string
				for _, l := range lines(b.String()) {
					if strings.HasPrefix(l, "FAIL  ") || strings.HasPrefix(l, "REVIEW  ") || strings.HasPrefix(l, "PASS  ") {
						heads = append(heads, l)
					}
				}
				if !reflect.DeepEqual(heads, tc.heads) {
					t.Errorf("headers:\n%s\nwant:\n%s", strings.Join(heads, "\n"), strings.Join(tc.heads, "\n"))
				}
			})
		}
	})

	t.Run("cap", func(t *testing.T) {
		many := func(n int, sev pipeline.Severity, tag string, disclosedEvery int) []pipeline.Finding {
			var fs []pipeline.Finding
			for i := 0; i < n; i++ {
				fs = append(fs, pipeline.Finding{ID: pipeline.IDFileAdded, Severity: sev, Path: fmt.Sprintf("/%s/%02d", tag, i),
					Message: fmt.Sprintf("%s %02d", tag, i), Disclosed: disclosedEvery > 0 && i%disclosedEvery == 0})
			}
			return fs
		}
		for _, tc := range []struct {
			name                    string
			max                     int
			info, low, high, medium int
			wantInfo, wantLow       int // listed
		}{
			{"max 3", 3, 7, 5, 5, 4, 3, 3},
			{"max 3, exactly 3", 3, 3, 3, 5, 0, 3, 3},
			{"default 25", 0, 30, 26, 30, 30, 25, 25},
			{"default 25, under it", 0, 24, 1, 0, 0, 24, 1},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := empty()
				r.Findings = append(r.Findings, many(tc.info, pipeline.SeverityInfo, "info", 4)...)
				r.Findings = append(r.Findings, many(tc.high, pipeline.SeverityHigh, "high", 0)...)
				r.Findings = append(r.Findings, many(tc.low, pipeline.SeverityLow, "low", 2)...)
				r.Findings = append(r.Findings, many(tc.medium, pipeline.SeverityMedium, "medium", 0)...)
				out := string(encode(t, report.Text{MaxPerSeverity: tc.max}, r))
				count := func(tag string) int { return strings.Count(out, "  "+tag+" ") }
				for _, c := range []struct {
					tag         string
					total, want int
				}{
					{"info", tc.info, tc.wantInfo},
					{"low", tc.low, tc.wantLow},
					{"high", tc.high, tc.high},
					{"medium", tc.medium, tc.medium},
				} {
					if got := count(c.tag); got != c.want {
						t.Errorf("%d %s findings listed, want %d:\n%s", got, c.tag, c.want, out)
					}
					more := fmt.Sprintf("… and %d more", c.total-c.want)
					if c.total > c.want && strings.Count(out, more) != 1 {
						t.Errorf("no %q line for %s:\n%s", more, c.tag, out)
					}
					if c.total > 0 {
						if !strings.Contains(out, fmt.Sprintf("%s (%d, ", strings.ToUpper(c.tag), c.total)) {
							t.Errorf("the %s heading does not count all %d:\n%s", c.tag, c.total, out)
						}
					}
				}
				wantMore := 0
				if tc.info > tc.wantInfo {
					wantMore++
				}
				if tc.low > tc.wantLow {
					wantMore++
				}
				if got := strings.Count(out, "… and "); got != wantMore {
					t.Errorf("%d \"… and N more\" lines, want %d:\n%s", got, wantMore, out)
				}
				// The "more" line of a severity sits in its own section,
				// after its last listed finding.
				if tc.info > tc.wantInfo {
					i := strings.Index(out, "  INFO (")
					if j := strings.Index(out, fmt.Sprintf("… and %d more", tc.info-tc.wantInfo)); j < i {
						t.Errorf("the info \"more\" line is not in the info section:\n%s", out)
					}
				}
			})
		}
	})
}

func TestForFormat(t *testing.T) {
	for name, want := range map[string]pipeline.Encoder{"text": report.Text{}, "json": report.JSON{}, "sarif": report.SARIF{}} {
		e, err := report.ForFormat(name)
		if err != nil {
			t.Errorf("ForFormat(%q): %v", name, err)
			continue
		}
		if fmt.Sprintf("%T", e) != fmt.Sprintf("%T", want) {
			t.Errorf("ForFormat(%q) = %T, want %T", name, e, want)
		}
	}
	for _, name := range []string{"xml", "", "JSON"} {
		e, err := report.ForFormat(name)
		if err == nil {
			t.Errorf("ForFormat(%q) = %T, want an error", name, e)
			continue
		}
		for _, part := range []string{fmt.Sprintf("%q", name), "json", "sarif", "text"} {
			if !strings.Contains(err.Error(), part) {
				t.Errorf("ForFormat(%q) error %q does not name %s", name, err, part)
			}
		}
	}
}
