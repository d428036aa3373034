package analyze

import (
	"context"
	"strings"
	"testing"

	"github.com/fwvet/fwvet/pipeline"
)

func TestDowngrade(t *testing.T) {
	v := func(value, source string) *pipeline.Version {
		return &pipeline.Version{Value: value, Source: source, Container: []string{"fw.bin", "squashfs@0x40000"}}
	}
	tests := []struct {
		name      string
		baseline  *pipeline.Version
		candidate *pipeline.Version
		want      bool
		wantSev   pipeline.Severity
		wantPath  string
		wantMsg   string
	}{
		{
			name: "older", baseline: v("1.0.1", "/etc/os-release"), candidate: v("1.0.0", "/etc/os-release"),
			want: true, wantSev: pipeline.SeverityCritical, wantPath: "/etc/os-release", wantMsg: "older",
		},
		{
			name: "older vendor form", baseline: v("V1.0.0.13_1.0.1", "/etc/fw-release"), candidate: v("V1.0.0.12_1.0.3", "/etc/fw-release"),
			want: true, wantSev: pipeline.SeverityCritical, wantPath: "/etc/fw-release",
		},
		{
			name: "pre-release of the baseline", baseline: v("2.0", "/etc/os-release"), candidate: v("2.0-rc1", "/etc/os-release"),
			want: true, wantSev: pipeline.SeverityCritical, wantPath: "/etc/os-release",
		},
		{
			name: "older, from the manifest", baseline: v("1.0.1", "/etc/os-release"), candidate: v("1.0.0", "manifest"),
			want: true, wantSev: pipeline.SeverityCritical, wantPath: "",
		},
		{name: "newer", baseline: v("1.0.0", "/etc/os-release"), candidate: v("1.0.1", "/etc/os-release")},
		{name: "equal", baseline: v("1.0.0", "/etc/os-release"), candidate: v("1.0.0", "/etc/os-release")},
		{name: "equal in another form", baseline: v("V1.0.0.12", "/etc/fw-release"), candidate: v("1.0.0.12", "/etc/fw-release")},
		{
			name: "unorderable", baseline: v("1.0.1", "/etc/os-release"), candidate: v("latest", "/etc/os-release"),
			want: true, wantSev: pipeline.SeverityMedium, wantPath: "/etc/os-release", wantMsg: "cannot tell",
		},
		{
			name: "word faces number", baseline: v("1.0.1", "/etc/os-release"), candidate: v("1.0a", "/etc/os-release"),
			want: true, wantSev: pipeline.SeverityMedium, wantPath: "/etc/os-release", wantMsg: "cannot tell",
		},
		{name: "no baseline version", candidate: v("1.0.0", "/etc/os-release")},
		{name: "no candidate version", baseline: v("1.0.0", "/etc/os-release")},
		{name: "no versions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := input()
			in.BaselineVersion, in.CandidateVersion = tt.baseline, tt.candidate
			got, err := Downgrade{}.Analyze(context.Background(), in)
			if err != nil {
				t.Fatalf("Analyze: %v", err)
			}
			if !tt.want {
				if len(got) != 0 {
					t.Errorf("findings: %s", marshal(t, got))
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("%d findings, want 1: %s", len(got), marshal(t, got))
			}
			f := got[0]
			if f.ID != pipeline.IDDowngrade || f.Severity != tt.wantSev {
				t.Errorf("finding = %s/%s, want downgrade/%s", f.ID, f.Severity, tt.wantSev)
			}
			if f.Path != tt.wantPath {
				t.Errorf("path = %q, want %q", f.Path, tt.wantPath)
			}
			if f.Evidence["baseline_version"] != tt.baseline.Value || f.Evidence["candidate_version"] != tt.candidate.Value {
				t.Errorf("evidence = %v, want both versions %s and %s", f.Evidence, tt.baseline.Value, tt.candidate.Value)
			}
			if f.Evidence["baseline_source"] != tt.baseline.Source || f.Evidence["candidate_source"] != tt.candidate.Source {
				t.Errorf("evidence = %v, want both sources", f.Evidence)
			}
			for _, s := range []string{tt.baseline.Value, tt.candidate.Value, tt.wantMsg} {
				if !strings.Contains(f.Message, s) {
					t.Errorf("message %q does not mention %q", f.Message, s)
				}
			}
			if f.Disclosed {
				t.Error("downgrade finding born disclosed")
			}
		})
	}
}
