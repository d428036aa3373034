package gate_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/gate"
	"github.com/fwvet/fwvet/pipeline/store/chain"
)

// chainLink is what a store's chain holds for one record, without what
// differs by nature between two stores (ids, times, the temporary paths
// of the references, hashes over them).
type chainLink struct {
	Verdict       pipeline.Verdict
	Candidate     string
	Baseline      string
	Policy        string
	Platform      string
	Findings      []string
	LinksPrevious bool // PrevHash is the previous record's Hash (the genesis for the first)
	HasReport     bool // the report (or decision body) is kept with the record
}

// TestSameJobBothStores: one job, with a reviewer's decision, through the
// embedded SQLite store and through PostgreSQL gives the same verdict,
// the same answers and a chain of the same shape that verifies in both.
func TestSameJobBothStores(t *testing.T) {
	type outcome struct {
		Verdict gate.Verdict
		Chain   []chainLink
		Status  pipeline.ChainStatus
	}
	run := func(t *testing.T, pg bool) outcome {
		h := newHarness(t, options{allowLocal: true, postgres: pg})
		base := firmware(t, filepath.Join(h.dir, "base"), rootLine)
		cand := firmware(t, filepath.Join(h.dir, "cand"), rootLine+evilLine)
		j := h.wait(h.submitJob(gate.VetRequest{Candidate: cand, Baseline: base}))
		if j.State != gate.StateDone || len(j.Verdicts) != 1 {
			t.Fatalf("job = %+v\nlog:\n%s", j, h.logs)
		}
		dec := gate.DecisionRequest{Approve: false, Reason: "an account the release notes do not declare", By: "alice@example.com"}
		if code := h.do("POST", fmt.Sprintf("/v1/verdicts/%d/decision", j.Verdicts[0].ReportID), h.review, dec, nil); code != http.StatusCreated {
			t.Fatalf("decision = %d", code)
		}
		v := h.verdict(j.Verdicts[0].Digest, h.read)
		recs := h.records()
		slices.Reverse(recs) // oldest first
		var out outcome
		prev := chain.Genesis
		for _, listed := range recs {
			r, err := h.st.Get(context.Background(), listed.ID)
			if err != nil {
				t.Fatal(err)
			}
			l := chainLink{Verdict: r.Verdict, Candidate: r.CandidateDigest, Baseline: r.BaselineDigest, Policy: r.PolicyDigest,
				Platform: r.Platform, LinksPrevious: r.PrevHash == prev, HasReport: len(r.Report) > 0}
			var rep struct {
				Findings []pipeline.Finding `json:"findings"`
			}
			if json.Unmarshal(r.Report, &rep) == nil {
				for _, f := range rep.Findings {
					l.Findings = append(l.Findings, f.ID+" "+f.Path)
				}
			}
			out.Chain = append(out.Chain, l)
			prev = r.Hash
		}
		st, err := h.st.Verify(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		out.Status = pipeline.ChainStatus{Records: st.Records, BrokenID: st.BrokenID, Segments: st.Segments}
		// Ids, times and hashes over them differ by store; the answer's
		// meaning must not.
		v.ReportID = 0
		if v.Decision != nil {
			d := *v.Decision
			d.RecordID, d.VerdictID, d.VerdictHash, d.At = 0, 0, "", time.Time{}
			v.Decision = &d
		}
		out.Verdict = v
		return out
	}
	sqlite := run(t, false)
	postgres := run(t, true)

	if sqlite.Verdict.State != gate.StateDone || sqlite.Verdict.Verdict != pipeline.VerdictFail || sqlite.Verdict.Decision == nil || sqlite.Verdict.Decision.Approve {
		t.Errorf("sqlite verdict = %+v, want done, fail, rejected by the reviewer", sqlite.Verdict)
	}
	if n := len(sqlite.Chain); n != 2 || sqlite.Status.Records != n || sqlite.Status.BrokenID != 0 || sqlite.Status.Segments != 1 {
		t.Errorf("sqlite chain: %d records, status %+v; want the verdict and the decision, verifying", n, sqlite.Status)
	}
	for i, l := range sqlite.Chain {
		if !l.LinksPrevious {
			t.Errorf("sqlite record %d does not link to the one before it", i)
		}
	}
	a, _ := json.MarshalIndent(sqlite, "", "  ")
	b, _ := json.MarshalIndent(postgres, "", "  ")
	if string(a) != string(b) {
		t.Errorf("the same job differs between the stores:\nsqlite:\n%s\npostgres:\n%s", a, b)
	}
}
