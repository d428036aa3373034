package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/store/sqlite"
)

// appendVerdicts appends one small report per verdict to the env's store,
// without vetting.
func (e *env) appendVerdicts(verdicts ...pipeline.Verdict) []*pipeline.Record {
	e.t.Helper()
	s, err := sqlite.Open(context.Background(), e.storePath())
	if err != nil {
		e.t.Fatal(err)
	}
	defer s.Close()
	var recs []*pipeline.Record
	for i, v := range verdicts {
		rec, err := s.Append(context.Background(), &pipeline.Report{
			Schema:    pipeline.ReportSchema,
			Candidate: pipeline.Subject{Ref: fmt.Sprintf("registry.example/fw:2.%d", i), Digest: fmt.Sprintf("sha256:%064d", 100+i), Version: fmt.Sprintf("2.%d", i)},
			Findings:  []pipeline.Finding{pipeline.NewFinding(pipeline.IDSetuidAdded, "/usr/bin/diag", []string{"fw.bin"}, "setuid binary added")},
			Verdict:   v, Reasons: []string{"an undisclosed high finding: setuid-added"}, PolicyDigest: "sha256:" + strings.Repeat("0", 64),
		})
		if err != nil {
			e.t.Fatal(err)
		}
		recs = append(recs, rec)
	}
	return recs
}

type shownDecision struct {
	RecordID int64            `json:"record_id"`
	Verdict  pipeline.Verdict `json:"verdict"`
	Computed pipeline.Verdict `json:"computed"`
	Approve  bool             `json:"approve"`
	By       string           `json:"by"`
	At       time.Time        `json:"at"`
	Reason   string           `json:"reason"`
}

type shownReport struct {
	pipeline.Report
	Decision *shownDecision `json:"decision"`
}

func (e *env) showJSON(id int64) shownReport {
	e.t.Helper()
	r := e.run("verdicts", "show", fmt.Sprint(id), "--format", "json", "--store", e.store)
	if r.code != 0 {
		e.t.Fatalf("show %d: exit %d\n%s%s", id, r.code, r.stdout, r.stderr)
	}
	var rep shownReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		e.t.Fatalf("show %d: not JSON (%v):\n%s", id, err, r.stdout)
	}
	return rep
}

// TestDecideChangesShow: approving and then rejecting a review changes
// what show answers, beside the computed verdict, and the chain verifies.
func TestDecideChangesShow(t *testing.T) {
	e := newEnv(t)
	recs := e.appendVerdicts(pipeline.VerdictReview, pipeline.VerdictFail)
	review := recs[0].ID
	if rep := e.showJSON(review); rep.Decision != nil || rep.Verdict != pipeline.VerdictReview {
		t.Fatalf("show before any decision: verdict %s, decision %+v", rep.Verdict, rep.Decision)
	}
	plain := e.run("verdicts", "show", fmt.Sprint(review), "--format", "json", "--store", e.store)
	if stored := strings.TrimSpace(plain.stdout); stored != string(recs[0].Report) {
		t.Errorf("show --format json of an undecided verdict is not the report as stored:\n%s\nwant\n%s", stored, recs[0].Report)
	}

	for _, tc := range []struct {
		flag, by string
		want     pipeline.Verdict
	}{
		{"--approve", "alice", pipeline.VerdictPass},
		{"--reject", "bob", pipeline.VerdictFail},
		{"--approve", "carol", pipeline.VerdictPass},
	} {
		r := e.run("verdicts", "decide", fmt.Sprint(review), tc.flag, "--reason", "checked by "+tc.by, "--by", tc.by, "--store", e.store)
		if r.code != 0 {
			t.Fatalf("decide %s: exit %d\n%s%s", tc.flag, r.code, r.stdout, r.stderr)
		}
		rep := e.showJSON(review)
		d := rep.Decision
		if rep.Verdict != pipeline.VerdictReview || d == nil || d.Verdict != tc.want || d.Computed != pipeline.VerdictReview ||
			d.By != tc.by || d.Reason != "checked by "+tc.by || d.Approve != (tc.flag == "--approve") || d.At.IsZero() {
			t.Errorf("show after decide %s by %s: verdict %s, decision %+v; want the computed review and the decided %s", tc.flag, tc.by, rep.Verdict, d, tc.want)
		}
		text := e.run("verdicts", "show", fmt.Sprint(review), "--store", e.store)
		if want := fmt.Sprintf("DECIDED: %s (computed: review)", tc.want); text.code != 0 || !strings.Contains(text.stdout, want) || !strings.Contains(text.stdout, "by "+tc.by) {
			t.Errorf("show (text) after decide %s: exit %d, want %q by %s\n%s%s", tc.flag, text.code, want, tc.by, text.stdout, text.stderr)
		}
	}
	if r := e.run("verdicts", "decide", fmt.Sprint(recs[1].ID), "--approve", "--reason", "a known false positive", "--by", "dave", "--store", e.store); r.code != 0 {
		t.Errorf("decide on a fail: exit %d, want 0\n%s", r.code, r.stderr)
	}
	if d := e.showJSON(recs[1].ID).Decision; d == nil || d.Verdict != pipeline.VerdictPass || d.Computed != pipeline.VerdictFail {
		t.Errorf("show of the approved fail: decision %+v", d)
	}

	list := e.run("verdicts", "list", "--store", e.store)
	if list.code != 0 || !strings.Contains(list.stdout, "DECISION") || !strings.Contains(list.stdout, "pass (approved by carol)") || !strings.Contains(list.stdout, "on 1: reject by bob") {
		t.Errorf("list: exit %d, want a DECISION column with carol's approval\n%s%s", list.code, list.stdout, list.stderr)
	}
	var listed []struct {
		ID       int64            `json:"id"`
		Verdict  pipeline.Verdict `json:"verdict"`
		Decision *shownDecision   `json:"decision"`
	}
	lj := e.run("verdicts", "list", "--format", "json", "--store", e.store)
	if err := json.Unmarshal([]byte(lj.stdout), &listed); err != nil || len(listed) != 6 {
		t.Fatalf("list --format json: %v, %d records\n%s", err, len(listed), lj.stdout)
	}
	for _, l := range listed {
		if want := l.ID == review || l.ID == recs[1].ID; (l.Decision != nil) != want {
			t.Errorf("list --format json: record %d (%s) decision %+v", l.ID, l.Verdict, l.Decision)
		}
	}
	if r := e.run("verdicts", "verify", "--store", e.store); r.code != 0 || !strings.Contains(r.stdout, "ok: 6") {
		t.Errorf("verify after the decisions: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// A decision is a record of the chain: deleting one is detected.
	e.sql(`DELETE FROM verdicts WHERE id = 4`)
	if r := e.run("verdicts", "verify", "--store", e.store); r.code != 2 || !strings.Contains(r.stdout, "records 4 to 4 are missing") {
		t.Errorf("verify after deleting a decision: exit %d, want 2\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestDecideRefused: a pass, a decision, an unknown id and incomplete
// flags are refused with exit 1, and nothing is appended.
func TestDecideRefused(t *testing.T) {
	e := newEnv(t)
	recs := e.appendVerdicts(pipeline.VerdictPass, pipeline.VerdictReview)
	if r := e.run("verdicts", "decide", "2", "--approve", "--reason", "ok", "--by", "alice", "--store", e.store); r.code != 0 {
		t.Fatalf("decide 2: exit %d\n%s", r.code, r.stderr)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"a pass", []string{fmt.Sprint(recs[0].ID), "--reject", "--reason", "r", "--by", "b"}, "it passed"},
		{"a decision", []string{"3", "--approve", "--reason", "r", "--by", "b"}, "not a verdict"},
		{"an unknown id", []string{"99", "--approve", "--reason", "r", "--by", "b"}, "no such verdict"},
		{"a bad id", []string{"two", "--approve", "--reason", "r", "--by", "b"}, "positive number"},
		{"no reason", []string{"2", "--approve", "--by", "b"}, "reason is required"},
		{"no name", []string{"2", "--approve", "--reason", "r"}, "by is required"},
		{"a long reason", []string{"2", "--approve", "--reason", strings.Repeat("x", 3000), "--by", "b"}, "over the limit"},
		{"neither approve nor reject", []string{"2", "--reason", "r", "--by", "b"}, "exactly one"},
		{"both approve and reject", []string{"2", "--approve", "--reject", "--reason", "r", "--by", "b"}, "exactly one"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.run(append(append([]string{"verdicts", "decide"}, tc.args...), "--store", e.store)...)
			if r.code != 1 || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("decide %s: exit %d, want 1 and %q\n%s%s", tc.name, r.code, tc.want, r.stdout, r.stderr)
			}
		})
	}
	if r := e.run("verdicts", "verify", "--store", e.store); r.code != 0 || !strings.Contains(r.stdout, "ok: 3") {
		t.Errorf("verify after the refused decisions: exit %d, want 3 records\n%s%s", r.code, r.stdout, r.stderr)
	}
	if d := e.showJSON(recs[0].ID).Decision; d != nil {
		t.Errorf("the pass has a decision: %+v", d)
	}
}

// TestWaiversRegister: waive records waivers of both scopes; waivers lists
// them with the expired one marked; bad waivers are refused; deleting a
// waiver breaks verify.
func TestWaiversRegister(t *testing.T) {
	e := newEnv(t)
	e.appendVerdicts(pipeline.VerdictReview)
	next := time.Now().UTC().AddDate(0, 1, 0).Format("2006-01-02")
	for _, args := range [][]string{
		{"--finding", "setuid-added", "--path", "/usr/bin/*", "--product", "RT-3200", "--until", next, "--reason", "factory tool, ticket 42", "--by", "alice"},
		{"--digest", "sha256:" + strings.Repeat("ab", 32), "--reason", "accepted build", "--by", "bob"},
	} {
		if r := e.run(append(append([]string{"verdicts", "waive"}, args...), "--store", e.store)...); r.code != 0 || !strings.Contains(r.stdout, "waiver ") {
			t.Fatalf("waive %v: exit %d\n%s%s", args, r.code, r.stdout, r.stderr)
		}
	}
	// An expired waiver (the CLI refuses to record one already past).
	s, err := sqlite.Open(context.Background(), e.storePath())
	if err != nil {
		t.Fatal(err)
	}
	old, err := s.AppendWaiver(context.Background(), pipeline.Waiver{
		Scope: pipeline.WaiverScope{FindingID: "account-added", Path: "/etc/passwd", Product: "RT-3200"},
		Until: "2020-01-31", Reason: "long gone", By: "carol",
	})
	s.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no date", []string{"--finding", "setuid-added", "--path", "/usr/bin/x", "--reason", "r", "--by", "b"}, "end date"},
		{"a past date", []string{"--finding", "setuid-added", "--path", "/usr/bin/x", "--until", "2020-01-01", "--reason", "r", "--by", "b"}, "in the past"},
		{"a bad date", []string{"--finding", "setuid-added", "--path", "/usr/bin/x", "--until", "31/01/2030", "--reason", "r", "--by", "b"}, "YYYY-MM-DD"},
		{"no scope", []string{"--until", next, "--reason", "r", "--by", "b"}, "either"},
		{"a finding without a path", []string{"--finding", "setuid-added", "--until", next, "--reason", "r", "--by", "b"}, "either"},
		{"digest and finding", []string{"--digest", "sha256:" + strings.Repeat("ab", 32), "--finding", "setuid-added", "--path", "/x", "--reason", "r", "--by", "b"}, "whole candidate"},
		{"a relative path", []string{"--finding", "setuid-added", "--path", "usr/bin/x", "--until", next, "--reason", "r", "--by", "b"}, "absolute"},
		{"no reason", []string{"--digest", "sha256:" + strings.Repeat("ab", 32), "--by", "b"}, "reason is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.run(append(append([]string{"verdicts", "waive"}, tc.args...), "--store", e.store)...)
			if r.code != 1 || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("waive with %s: exit %d, want 1 and %q\n%s%s", tc.name, r.code, tc.want, r.stdout, r.stderr)
			}
		})
	}

	r := e.run("verdicts", "waivers", "--store", e.store)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != 0 || len(lines) != 4 {
		t.Fatalf("waivers: exit %d, want a header and 3 waivers\n%s%s", r.code, r.stdout, r.stderr)
	}
	for i, want := range []string{"2 active " + next + " setuid-added on /usr/bin/* for RT-3200 alice", "3 active - digest sha256:abab", "4 EXPIRED 2020-01-31 account-added on /etc/passwd for RT-3200 carol"} {
		if !strings.HasPrefix(strings.Join(strings.Fields(lines[i+1]), " "), want) {
			t.Errorf("waivers line %d = %q, want it to start %q", i+1, lines[i+1], want)
		}
	}
	var listed []struct {
		RecordID int64                `json:"record_id"`
		Scope    pipeline.WaiverScope `json:"scope"`
		Until    string               `json:"until"`
		By       string               `json:"by"`
		Expired  bool                 `json:"expired"`
	}
	rj := e.run("verdicts", "waivers", "--format", "json", "--store", e.store)
	if err := json.Unmarshal([]byte(rj.stdout), &listed); err != nil || len(listed) != 3 {
		t.Fatalf("waivers --format json: %v\n%s%s", err, rj.stdout, rj.stderr)
	}
	for i, w := range listed {
		if w.Expired != (i == 2) || w.RecordID != int64(i+2) {
			t.Errorf("waiver %d = %+v; want record %d, expired only the last", i, w, i+2)
		}
	}
	if listed[1].Scope.Digest != "sha256:"+strings.Repeat("ab", 32) || listed[0].Scope.Product != "RT-3200" || listed[0].Until != next {
		t.Errorf("waivers --format json = %+v", listed)
	}

	if r := e.run("verdicts", "verify", "--store", e.store); r.code != 0 || !strings.Contains(r.stdout, "ok: 4") {
		t.Fatalf("verify with the waivers: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	e.sql(`DELETE FROM verdicts WHERE id = ?`, old.ID)
	if r := e.run("verdicts", "verify", "--store", e.store); r.code != 2 || !strings.Contains(r.stdout, fmt.Sprintf("BROKEN at verdict %d", old.ID)) {
		t.Errorf("verify after deleting the last waiver: exit %d, want 2\n%s%s", r.code, r.stdout, r.stderr)
	}
}
