package policy

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/fwvet/fwvet/pipeline"
)

func fnd(id string, sev pipeline.Severity, disclosed bool) pipeline.Finding {
	return pipeline.Finding{ID: id, Severity: sev, Path: "/p/" + id, Disclosed: disclosed}
}

func TestDecide(t *testing.T) {
	pass := pipeline.Check{Name: "signature", Status: pipeline.CheckPass}
	tests := []struct {
		name        string
		policy      func(*Policy)
		checks      []pipeline.Check
		findings    []pipeline.Finding
		summary     pipeline.Summary
		noBaseline  bool
		want        pipeline.Verdict
		wantReasons []string // each must appear in some reason
	}{
		{
			name: "nothing to object to",
			want: pipeline.VerdictPass,
		},
		{
			name:   "passing and skipped checks",
			checks: []pipeline.Check{pass, {Name: "provenance", Status: pipeline.CheckSkip}},
			want:   pipeline.VerdictPass,
		},
		{
			name:        "failed check",
			checks:      []pipeline.Check{pass, {Name: "signature", Status: pipeline.CheckFail, Detail: "bad sig"}},
			want:        pipeline.VerdictFail,
			wantReasons: []string{"check signature failed: bad sig"},
		},
		{
			name:        "check that could not complete",
			checks:      []pipeline.Check{{Name: "provenance", Status: pipeline.CheckError, Detail: "timeout"}},
			want:        pipeline.VerdictFail,
			wantReasons: []string{"check provenance could not complete: timeout"},
		},
		{
			name:        "failed check with everything disclosed",
			checks:      []pipeline.Check{{Name: "manifest", Status: pipeline.CheckFail}},
			findings:    []pipeline.Finding{fnd(pipeline.IDFileModified, pipeline.SeverityInfo, true)},
			summary:     pipeline.Summary{Modified: 1},
			want:        pipeline.VerdictFail,
			wantReasons: []string{"check manifest failed"},
		},
		{
			name:        "undisclosed critical",
			findings:    []pipeline.Finding{fnd(pipeline.IDAccountAdded, pipeline.SeverityCritical, false)},
			summary:     pipeline.Summary{Modified: 1, Undisclosed: 1},
			want:        pipeline.VerdictFail,
			wantReasons: []string{"1 undisclosed finding of high severity or above", "account-added /p/account-added"},
		},
		{
			name:        "undisclosed high",
			findings:    []pipeline.Finding{fnd(pipeline.IDSetuidAdded, pipeline.SeverityHigh, false)},
			summary:     pipeline.Summary{Added: 1, Undisclosed: 1},
			want:        pipeline.VerdictFail,
			wantReasons: []string{"setuid-added"},
		},
		{
			name:     "disclosed critical and high",
			findings: []pipeline.Finding{fnd(pipeline.IDAccountAdded, pipeline.SeverityCritical, true), fnd(pipeline.IDSetuidAdded, pipeline.SeverityHigh, true)},
			summary:  pipeline.Summary{Added: 1, Modified: 1},
			want:     pipeline.VerdictPass,
		},
		{
			name:        "undisclosed medium",
			findings:    []pipeline.Finding{fnd(pipeline.IDEndpointAdded, pipeline.SeverityMedium, false)},
			summary:     pipeline.Summary{Modified: 1, Undisclosed: 1},
			want:        pipeline.VerdictReview,
			wantReasons: []string{"1 undisclosed finding below high severity", "endpoint-added"},
		},
		{
			name:        "undisclosed low",
			findings:    []pipeline.Finding{fnd(pipeline.IDMetadataChanged, pipeline.SeverityLow, false)},
			summary:     pipeline.Summary{Metadata: 1, Undisclosed: 1},
			want:        pipeline.VerdictReview,
			wantReasons: []string{"metadata-changed"},
		},
		{
			name:        "undisclosed info",
			findings:    []pipeline.Finding{fnd(pipeline.IDFileAdded, pipeline.SeverityInfo, false)},
			summary:     pipeline.Summary{Added: 1, Undisclosed: 1},
			want:        pipeline.VerdictReview,
			wantReasons: []string{"file-added"},
		},
		{
			name:        "undisclosed change without a finding",
			summary:     pipeline.Summary{Added: 2, Undisclosed: 2},
			want:        pipeline.VerdictReview,
			wantReasons: []string{"2 undisclosed changes"},
		},
		{
			name:        "undisclosed high beats undisclosed low",
			findings:    []pipeline.Finding{fnd(pipeline.IDFileAdded, pipeline.SeverityInfo, false), fnd(pipeline.IDServiceAdded, pipeline.SeverityHigh, false)},
			summary:     pipeline.Summary{Added: 2, Undisclosed: 2},
			want:        pipeline.VerdictFail,
			wantReasons: []string{"service-added"},
		},
		{
			name:     "all disclosed",
			checks:   []pipeline.Check{pass},
			findings: []pipeline.Finding{fnd(pipeline.IDFileAdded, pipeline.SeverityInfo, true), fnd(pipeline.IDEndpointAdded, pipeline.SeverityMedium, true)},
			summary:  pipeline.Summary{Added: 1},
			want:     pipeline.VerdictPass,
		},
		{
			name:        "no baseline",
			noBaseline:  true,
			want:        pipeline.VerdictReview,
			wantReasons: []string{"no baseline"},
		},
		{
			name:       "no baseline allowed",
			policy:     func(p *Policy) { p.RequireBaseline = false },
			noBaseline: true,
			want:       pipeline.VerdictPass,
		},
		{
			name:        "no baseline and a failed check",
			noBaseline:  true,
			checks:      []pipeline.Check{{Name: "signature", Status: pipeline.CheckFail}},
			want:        pipeline.VerdictFail,
			wantReasons: []string{"signature"},
		},
		{
			name:        "fail_on critical lets high ask for review",
			policy:      func(p *Policy) { p.FailOn = pipeline.SeverityCritical },
			findings:    []pipeline.Finding{fnd(pipeline.IDSetuidAdded, pipeline.SeverityHigh, false)},
			summary:     pipeline.Summary{Added: 1, Undisclosed: 1},
			want:        pipeline.VerdictReview,
			wantReasons: []string{"below critical severity"},
		},
		{
			name:     "review_on medium ignores low findings and bare changes",
			policy:   func(p *Policy) { p.ReviewOn = pipeline.SeverityMedium },
			findings: []pipeline.Finding{fnd(pipeline.IDMetadataChanged, pipeline.SeverityLow, false)},
			summary:  pipeline.Summary{Metadata: 1, Undisclosed: 1},
			want:     pipeline.VerdictPass,
		},
		{
			name:        "review_on medium still reviews medium",
			policy:      func(p *Policy) { p.ReviewOn = pipeline.SeverityMedium },
			findings:    []pipeline.Finding{fnd(pipeline.IDELFImportAdded, pipeline.SeverityMedium, false)},
			summary:     pipeline.Summary{Modified: 1, Undisclosed: 1},
			want:        pipeline.VerdictReview,
			wantReasons: []string{"elf-import-added"},
		},
		{
			name: "many failing findings are summarised",
			findings: []pipeline.Finding{
				fnd("a", pipeline.SeverityHigh, false), fnd("b", pipeline.SeverityHigh, false), fnd("c", pipeline.SeverityHigh, false),
				fnd("d", pipeline.SeverityHigh, false), fnd("e", pipeline.SeverityHigh, false), fnd("f", pipeline.SeverityHigh, false),
				fnd("g", pipeline.SeverityCritical, false),
			},
			want:        pipeline.VerdictFail,
			wantReasons: []string{"7 undisclosed findings", "and 2 more", "g /p/g"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Default()
			if tt.policy != nil {
				tt.policy(p)
			}
			d, err := p.Decide(context.Background(), Input{Report: &pipeline.Report{Checks: tt.checks, Findings: tt.findings, Summary: tt.summary}, HasBaseline: !tt.noBaseline})
			if err != nil {
				t.Fatal(err)
			}
			got, reasons := d.Verdict, d.Reasons
			if got != tt.want {
				t.Errorf("Decide = %s %q, want %s", got, reasons, tt.want)
			}
			if len(reasons) == 0 {
				t.Errorf("Decide gave no reasons")
			}
			all := strings.Join(reasons, "\n")
			for _, w := range tt.wantReasons {
				if !strings.Contains(all, w) {
					t.Errorf("reasons %q do not mention %q", reasons, w)
				}
			}
		})
	}
}

func TestDefault(t *testing.T) {
	p := Default()
	if p.FailOn != pipeline.SeverityHigh || p.ReviewOn != pipeline.SeverityInfo || !p.RequireBaseline || len(p.Severity) != 0 {
		t.Errorf("Default = %+v, want fail_on high, review_on info, require_baseline, no overrides", p)
	}
}

func writePolicy(t *testing.T, body string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "policy.json")
	if err := os.WriteFile(f, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestLoad(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		want    *Policy
		wantErr string
	}{
		{name: "empty object is the default", body: `{}`, want: Default()},
		{
			name: "overrides",
			body: `{"fail_on": "critical", "review_on": "low", "require_baseline": false, "severity": {"endpoint-added": "high", "file-added": "low"}}`,
			want: &Policy{FailOn: pipeline.SeverityCritical, ReviewOn: pipeline.SeverityLow, RequireBaseline: false,
				Severity: map[string]pipeline.Severity{pipeline.IDEndpointAdded: pipeline.SeverityHigh, pipeline.IDFileAdded: pipeline.SeverityLow}},
		},
		{
			name: "review_on equal to fail_on",
			body: `{"fail_on": "medium", "review_on": "medium"}`,
			want: &Policy{FailOn: pipeline.SeverityMedium, ReviewOn: pipeline.SeverityMedium, RequireBaseline: true},
		},
		{name: "unknown field", body: `{"fail_on": "high", "fail_on_checks": true}`, wantErr: "unknown field"},
		{name: "misspelt field", body: `{"failon": "high"}`, wantErr: "unknown field"},
		{name: "unknown id", body: `{"severity": {"backdoor-added": "low"}}`, wantErr: "unknown finding id"},
		{name: "unknown severity name", body: `{"fail_on": "severe"}`, wantErr: "unknown severity"},
		{name: "unknown severity in override", body: `{"severity": {"downgrade": "none"}}`, wantErr: "unknown severity"},
		{name: "review_on above fail_on", body: `{"fail_on": "medium", "review_on": "high"}`, wantErr: "above fail_on"},
		{name: "review_on above default fail_on", body: `{"review_on": "critical"}`, wantErr: "above fail_on"},
		{name: "not JSON", body: `fail_on: high`, wantErr: "not a policy"},
		{name: "numeric severity", body: `{"fail_on": 3}`, wantErr: "not a policy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Load(writePolicy(t, tt.body))
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("Load(%s) = %+v, want an error mentioning %q", tt.body, p, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("Load error %q, want it to mention %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if !reflect.DeepEqual(p, tt.want) {
				t.Errorf("Load = %+v, want %+v", p, tt.want)
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		if p, err := Load(filepath.Join(t.TempDir(), "nope.json")); err == nil {
			t.Errorf("Load(missing) = %+v, want an error", p)
		}
	})
}

func TestRanked(t *testing.T) {
	p := Default()
	p.Severity = map[string]pipeline.Severity{
		pipeline.IDEndpointAdded: pipeline.SeverityCritical,
		pipeline.IDFileAdded:     pipeline.SeverityLow,
		pipeline.IDDowngrade:     pipeline.SeverityInfo,
	}
	findings := []pipeline.Finding{
		{ID: pipeline.IDEndpointAdded, Severity: pipeline.SeverityMedium},
		{ID: pipeline.IDFileAdded, Severity: pipeline.SeverityInfo},
		{ID: pipeline.IDDowngrade, Severity: pipeline.SeverityCritical},
		{ID: pipeline.IDSetuidAdded, Severity: pipeline.SeverityHigh},
		{ID: pipeline.IDDowngrade, Severity: pipeline.SeverityMedium},
	}
	orig := slices.Clone(findings)
	ranked := p.Ranked(findings)
	if !reflect.DeepEqual(findings, orig) {
		t.Errorf("Ranked changed its input: %v", findings)
	}
	findings = ranked
	want := []pipeline.Severity{pipeline.SeverityCritical, pipeline.SeverityLow, pipeline.SeverityInfo, pipeline.SeverityHigh, pipeline.SeverityInfo}
	for i, f := range findings {
		if f.Severity != want[i] {
			t.Errorf("finding %d %s severity = %s, want %s", i, f.ID, f.Severity, want[i])
		}
	}

	// Ranking then deciding: an override to critical fails the verdict.
	d, err := p.Decide(context.Background(), Input{Report: &pipeline.Report{Findings: []pipeline.Finding{findings[0]}}, HasBaseline: true})
	if err != nil || d.Verdict != pipeline.VerdictFail {
		t.Errorf("Decide after Ranked = %+v, %v, want fail", d, err)
	}

	// No overrides: nothing changes.
	f := []pipeline.Finding{{ID: pipeline.IDEndpointAdded, Severity: pipeline.SeverityMedium}}
	f = Default().Ranked(f)
	if f[0].Severity != pipeline.SeverityMedium {
		t.Errorf("Default().Rank changed severity to %s", f[0].Severity)
	}
}

func TestDigest(t *testing.T) {
	base := Default().Digest()
	if !strings.HasPrefix(base, "sha256:") || len(base) != len("sha256:")+64 {
		t.Fatalf("Digest = %q, want sha256:<64 hex>", base)
	}
	if again := Default().Digest(); again != base {
		t.Errorf("Digest of two default policies differ: %s, %s", base, again)
	}
	// Map order must not matter.
	a := Default()
	a.Severity = map[string]pipeline.Severity{pipeline.IDFileAdded: pipeline.SeverityLow, pipeline.IDEndpointAdded: pipeline.SeverityHigh, pipeline.IDDowngrade: pipeline.SeverityHigh}
	b := Default()
	b.Severity = map[string]pipeline.Severity{}
	b.Severity[pipeline.IDDowngrade] = pipeline.SeverityHigh
	b.Severity[pipeline.IDEndpointAdded] = pipeline.SeverityHigh
	b.Severity[pipeline.IDFileAdded] = pipeline.SeverityLow
	if a.Digest() != b.Digest() {
		t.Errorf("equal policies have different digests")
	}
	// A loaded policy equal to the default has the default's digest.
	loaded, err := Load(writePolicy(t, `{"fail_on": "high"}`))
	if err != nil {
		t.Fatal(err)
	}
	if loaded.Digest() != base {
		t.Errorf("loaded default policy digest %s, want %s", loaded.Digest(), base)
	}

	changes := map[string]func(*Policy){
		"fail_on":          func(p *Policy) { p.FailOn = pipeline.SeverityCritical },
		"review_on":        func(p *Policy) { p.ReviewOn = pipeline.SeverityLow },
		"require_baseline": func(p *Policy) { p.RequireBaseline = false },
		"severity override": func(p *Policy) {
			p.Severity = map[string]pipeline.Severity{pipeline.IDFileAdded: pipeline.SeverityLow}
		},
		"severity override value": func(p *Policy) {
			p.Severity = map[string]pipeline.Severity{pipeline.IDFileAdded: pipeline.SeverityMedium}
		},
	}
	seen := map[string]string{base: "default"}
	for name, change := range changes {
		p := Default()
		change(p)
		d := p.Digest()
		if prev, dup := seen[d]; dup {
			t.Errorf("policy with %s changed has the same digest as %s", name, prev)
		}
		seen[d] = name
	}
}
