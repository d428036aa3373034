package waiver_test

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/waiver"
)

var (
	digestA = "sha256:" + fmt.Sprintf("%064x", 0xa)
	digestB = "sha256:" + fmt.Sprintf("%064x", 0xb)
	// now is in the middle of 2026-06-15, UTC.
	now = time.Date(2026, 6, 15, 12, 0, 0, 0, time.UTC)
)

func findingWaiver(id, path, product, until string) pipeline.Waiver {
	return pipeline.Waiver{
		Scope: pipeline.WaiverScope{FindingID: id, Path: path, Product: product},
		Until: until, Reason: "vendor ticket 42", By: "alice",
	}
}

func digestWaiver(d, until string) pipeline.Waiver {
	return pipeline.Waiver{Scope: pipeline.WaiverScope{Digest: d}, Until: until, Reason: "accepted build", By: "bob"}
}

func finding(id, path string) pipeline.Finding {
	return pipeline.NewFinding(id, path, []string{"fw.bin"}, "something changed")
}

func TestApplies(t *testing.T) {
	setuid := finding(pipeline.IDSetuidAdded, "/usr/bin/diag")
	for _, tc := range []struct {
		name    string
		w       pipeline.Waiver
		f       pipeline.Finding
		digest  string
		product string
		now     time.Time
		want    bool
	}{
		{"its finding", findingWaiver("setuid-added", "/usr/bin/diag", "RT-3200", "2026-06-30"), setuid, digestA, "RT-3200", now, true},
		{"another id on the same path", findingWaiver("setuid-added", "/usr/bin/diag", "RT-3200", "2026-06-30"), finding(pipeline.IDFileAdded, "/usr/bin/diag"), digestA, "RT-3200", now, false},
		{"the same id on another path", findingWaiver("setuid-added", "/usr/bin/diag", "RT-3200", "2026-06-30"), finding(pipeline.IDSetuidAdded, "/usr/bin/diag2"), digestA, "RT-3200", now, false},
		{"another product", findingWaiver("setuid-added", "/usr/bin/diag", "RT-3200", "2026-06-30"), setuid, digestA, "RT-3300", now, false},
		{"a vet without a product", findingWaiver("setuid-added", "/usr/bin/diag", "RT-3200", "2026-06-30"), setuid, digestA, "", now, false},
		{"no product in the waiver, a vet with one", findingWaiver("setuid-added", "/usr/bin/diag", "", "2026-06-30"), setuid, digestA, "RT-3200", now, false},
		{"no product in the waiver or the vet", findingWaiver("setuid-added", "/usr/bin/diag", "", "2026-06-30"), setuid, digestA, "", now, true},
		{"any candidate digest", findingWaiver("setuid-added", "/usr/bin/diag", "RT-3200", "2026-06-30"), setuid, digestB, "RT-3200", now, true},
		{"on its last day", findingWaiver("setuid-added", "/usr/bin/diag", "RT-3200", "2026-06-15"), setuid, digestA, "RT-3200", time.Date(2026, 6, 15, 23, 59, 59, 0, time.UTC), true},
		{"after its date", findingWaiver("setuid-added", "/usr/bin/diag", "RT-3200", "2026-06-15"), setuid, digestA, "RT-3200", time.Date(2026, 6, 16, 0, 0, 0, 0, time.UTC), false},
		{"long after its date", findingWaiver("setuid-added", "/usr/bin/diag", "RT-3200", "2025-01-01"), setuid, digestA, "RT-3200", now, false},
		{"after its date in another zone", findingWaiver("setuid-added", "/usr/bin/diag", "RT-3200", "2026-06-15"), setuid, digestA, "RT-3200", time.Date(2026, 6, 15, 20, 0, 0, 0, time.FixedZone("UTC-5", -5*3600)), false},
		{"glob", findingWaiver("file-added", "/usr/share/doc/**", "RT-3200", "2026-06-30"), finding(pipeline.IDFileAdded, "/usr/share/doc/pkg/README"), digestA, "RT-3200", now, true},
		{"glob, another directory", findingWaiver("file-added", "/usr/share/doc/**", "RT-3200", "2026-06-30"), finding(pipeline.IDFileAdded, "/usr/share/docs/README"), digestA, "RT-3200", now, false},
		{"single star stays in its directory", findingWaiver("file-added", "/usr/share/doc/*", "RT-3200", "2026-06-30"), finding(pipeline.IDFileAdded, "/usr/share/doc/pkg/README"), digestA, "RT-3200", now, false},
		{"finding without a path", findingWaiver("downgrade", "/**", "RT-3200", "2026-06-30"), finding(pipeline.IDDowngrade, ""), digestA, "RT-3200", now, false},
		{"a finding waiver without a date", findingWaiver("setuid-added", "/usr/bin/diag", "RT-3200", ""), setuid, digestA, "RT-3200", now, false},
		{"a waiver that does not validate", pipeline.Waiver{Scope: pipeline.WaiverScope{FindingID: "setuid-added", Path: "/usr/bin/diag", Product: "RT-3200"}, Until: "2026-06-30", By: "alice"}, setuid, digestA, "RT-3200", now, false},
		{"digest: every finding of that digest", digestWaiver(digestA, ""), setuid, digestA, "", now, true},
		{"digest: another finding of that digest", digestWaiver(digestA, ""), finding(pipeline.IDAccountAdded, "/etc/passwd"), digestA, "RT-3200", now, true},
		{"digest: another digest", digestWaiver(digestA, ""), setuid, digestB, "", now, false},
		{"digest: no digest", digestWaiver(digestA, ""), setuid, "", "", now, false},
		{"digest: after its date", digestWaiver(digestA, "2026-06-14"), setuid, digestA, "", now, false},
		{"digest: before its date", digestWaiver(digestA, "2026-06-16"), setuid, digestA, "", now, true},
		{"digest and finding scope together", pipeline.Waiver{Scope: pipeline.WaiverScope{Digest: digestA, FindingID: "setuid-added", Path: "/usr/bin/diag"}, Until: "2026-06-30", Reason: "r", By: "b"}, setuid, digestA, "", now, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := waiver.Applies(tc.w, tc.f, tc.digest, tc.product, tc.now); got != tc.want {
				t.Errorf("Applies(%s until %q, %s on %q, %s, %q) = %v, want %v", tc.w.Scope, tc.w.Until, tc.f.ID, tc.f.Path, tc.digest, tc.product, got, tc.want)
			}
		})
	}
}

func TestApply(t *testing.T) {
	findings := []pipeline.Finding{
		finding(pipeline.IDSetuidAdded, "/usr/bin/diag"),
		finding(pipeline.IDFileAdded, "/usr/bin/diag"),
		finding(pipeline.IDSetuidAdded, "/usr/sbin/diag"),
		finding(pipeline.IDAccountAdded, "/etc/passwd"),
	}
	before := make([]pipeline.Finding, len(findings))
	copy(before, findings)
	ws := []pipeline.Waiver{
		findingWaiver("setuid-added", "/usr/bin/diag", "RT-3200", "2026-06-30"),
		findingWaiver("account-added", "/etc/passwd", "RT-3200", "2026-01-01"), // expired
		findingWaiver("file-added", "/usr/bin/*", "RT-3200", "2026-06-30"),
		findingWaiver("setuid-added", "/usr/**/diag", "RT-3200", "2026-06-30"),
		digestWaiver(digestB, ""),
	}
	got := waiver.Apply(ws, findings, digestA, "RT-3200", now)
	var pairs [][2]int
	for _, a := range got {
		for j, w := range ws {
			if reflect.DeepEqual(a.Waiver, w) {
				pairs = append(pairs, [2]int{a.Finding, j})
			}
		}
	}
	want := [][2]int{{0, 0}, {0, 3}, {1, 2}, {2, 3}}
	if !reflect.DeepEqual(pairs, want) {
		t.Errorf("Apply = %v (finding, waiver), want %v", pairs, want)
	}
	if !reflect.DeepEqual(findings, before) {
		t.Errorf("Apply changed the findings")
	}
	if c := waiver.Covered(got); len(c) != 3 || !c[0] || !c[1] || !c[2] || c[3] {
		t.Errorf("Covered = %v, want findings 0, 1 and 2", c)
	}
	if got := waiver.Apply(ws, findings, digestB, "", now); len(got) != len(findings) {
		t.Errorf("Apply for digest B = %d pairs, want the digest waiver on each of the %d findings", len(got), len(findings))
	}
	if got := waiver.Apply(nil, findings, digestA, "RT-3200", now); got != nil {
		t.Errorf("Apply without waivers = %v", got)
	}
}

func TestValidate(t *testing.T) {
	long := make([]byte, pipeline.MaxReasonLen+1)
	for i := range long {
		long[i] = 'x'
	}
	for _, tc := range []struct {
		name string
		w    pipeline.Waiver
		ok   bool
	}{
		{"finding", findingWaiver("setuid-added", "/usr/bin/diag", "RT-3200", "2026-06-30"), true},
		{"digest", digestWaiver(digestA, ""), true},
		{"nothing", pipeline.Waiver{Reason: "r", By: "b"}, false},
		{"id without path", findingWaiver("setuid-added", "", "", "2026-06-30"), false},
		{"relative path", findingWaiver("setuid-added", "usr/bin/diag", "", "2026-06-30"), false},
		{"bad glob", findingWaiver("setuid-added", "/usr/[bin", "", "2026-06-30"), false},
		{"bad id", findingWaiver("Setuid Added", "/usr/bin/diag", "", "2026-06-30"), false},
		{"no date", findingWaiver("setuid-added", "/usr/bin/diag", "", ""), false},
		{"bad date", findingWaiver("setuid-added", "/usr/bin/diag", "", "2026-02-30"), false},
		{"short digest", digestWaiver("sha256:abc", ""), false},
		{"digest with a product", pipeline.Waiver{Scope: pipeline.WaiverScope{Digest: digestA, Product: "RT-3200"}, Reason: "r", By: "b"}, false},
		{"no reason", pipeline.Waiver{Scope: pipeline.WaiverScope{Digest: digestA}, Reason: "  ", By: "b"}, false},
		{"no by", pipeline.Waiver{Scope: pipeline.WaiverScope{Digest: digestA}, Reason: "r"}, false},
		{"long reason", pipeline.Waiver{Scope: pipeline.WaiverScope{Digest: digestA}, Reason: string(long), By: "b"}, false},
		{"by with a newline", pipeline.Waiver{Scope: pipeline.WaiverScope{Digest: digestA}, Reason: "r", By: "b\nc"}, false},
		{"reason with a newline", pipeline.Waiver{Scope: pipeline.WaiverScope{Digest: digestA}, Reason: "line 1\nline 2", By: "b"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.w.Validate(); (err == nil) != tc.ok {
				t.Errorf("Validate() = %v, want ok %v", err, tc.ok)
			}
		})
	}
}
