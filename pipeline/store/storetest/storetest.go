// Package storetest is the conformance suite that every verdict store
// backend passes, as go-containerregistry's validate package is for
// images: the chain's links and hashes, detection of every edit and
// deletion, refusal to extend a broken chain, segments, concurrent
// writers, and the queries audits and gates rely on.
package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/store/chain"
)

// Backend is a store implementation under test.
type Backend struct {
	// New makes an empty store. open returns a new handle on it each time
	// it is called (the suite closes them); raw reaches its rows directly.
	New func(t *testing.T) (open func(t *testing.T) pipeline.Store, raw Raw)
	// NotFound is the error Get wraps for an id the store does not hold.
	NotFound error
}

// Raw reaches a store's table of records ("verdicts", with the columns
// of pipeline.Record in snake case) behind the store's back, as someone
// tampering with it would.
type Raw interface {
	// Exec runs one statement, with ? placeholders; it fails the test
	// unless a row changed.
	Exec(t *testing.T, query string, args ...any)
	// Columns lists the table's columns.
	Columns(t *testing.T) []string
	// Touch changes the value of one column of one record slightly.
	Touch(t *testing.T, id int64, column string)
	// SetSeq sets the highest id the store remembers handing out.
	SetSeq(t *testing.T, n int64)
}

// Run runs the suite.
func Run(t *testing.T, b Backend) {
	for _, tc := range []struct {
		name string
		run  func(*testing.T, Backend)
	}{
		{"AppendListGetVerify", testAppendListGetVerify},
		{"LookupAndPassing", testLookupAndPassing},
		{"VerifyDetectsTampering", testVerifyDetectsTampering},
		{"VerifyDetectsAnEditOfEachColumn", testEditOfEachColumn},
		{"AppendRefusesNewChainOverDeletedStore", testRefusesNewChainOverDeleted},
		{"DeletedTailStaysDetected", testDeletedTailStaysDetected},
		{"HeadDetectsCutTail", testHeadDetectsCutTail},
		{"AppendRefusesBrokenTail", testAppendRefusesBrokenTail},
		{"ConcurrentAppends", testConcurrentAppends},
		{"VerifyWhileAppending", testVerifyWhileAppending},
		{"Decisions", testDecisions},
		{"DecisionRefused", testDecisionRefused},
		{"Waivers", testWaivers},
		{"VerifyDetectsDeletedWaiver", testDeletedWaiver},
		{"LookupAndPassingSkipDecisionsAndWaivers", testLookupSkipsDecisionsAndWaivers},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, b) })
	}
}

// Digest is a sha256 digest of its arguments' text.
func Digest(parts ...any) string {
	sum := sha256.Sum256([]byte(fmt.Sprint(parts...)))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Report builds a small but complete report; odd i have a baseline.
func Report(i int) *pipeline.Report {
	r := &pipeline.Report{
		Schema:    pipeline.ReportSchema,
		Tool:      pipeline.Tool{Name: "fwvet", Version: "0.1.0-test"},
		Candidate: pipeline.Subject{Ref: fmt.Sprintf("registry.example/rt3200:1.%d", i), Digest: Digest("candidate", i), Size: int64(1000 + i), Version: fmt.Sprintf("1.%d", i)},
		Checks: []pipeline.Check{
			{Name: "signature", Status: pipeline.CheckPass, Detail: "signed by Acme"},
			{Name: "provenance", Status: pipeline.CheckSkip, Detail: "no provenance given"},
		},
		Summary: pipeline.Summary{Added: i, Modified: 1, Undisclosed: 1},
		Findings: []pipeline.Finding{
			pipeline.NewFinding(pipeline.IDAccountAdded, "/etc/passwd", []string{"fw.bin", "squashfs@0x40000"}, fmt.Sprintf("user backdoor%d added", i)),
			pipeline.NewFinding(pipeline.IDFileModified, "/etc/fw-release", []string{"fw.bin", "squashfs@0x40000"}, "content changed"),
		},
		Verdict:      pipeline.VerdictFail,
		Reasons:      []string{"an undisclosed critical finding: account-added"},
		PolicyDigest: Digest("policy"),
	}
	r.Findings[0].Evidence["user"] = fmt.Sprintf("backdoor%d", i)
	if i%2 == 1 {
		r.Baseline = &pipeline.Subject{Ref: fmt.Sprintf("registry.example/rt3200:1.%d", i-1), Digest: Digest("candidate", i-1), Size: 999, Version: fmt.Sprintf("1.%d", i-1)}
	}
	return r
}

// BigReport is a report whose findings take about size bytes of JSON.
func BigReport(i, size int) *pipeline.Report {
	r := Report(i)
	filler := strings.Repeat("x", 900)
	for n := 0; n*1100 < size; n++ {
		f := pipeline.NewFinding(pipeline.IDFileAdded, fmt.Sprintf("/usr/share/doc/pkg%d/file%d", i, n), []string{"fw.bin", "squashfs@0x40000"}, filler)
		f.Evidence["sha256"] = Digest(i, n)
		r.Findings = append(r.Findings, f)
	}
	return r
}

// AppendN appends Report(1) to Report(n).
func AppendN(t *testing.T, s pipeline.Store, n int) ([]*pipeline.Report, []*pipeline.Record) {
	t.Helper()
	var reps []*pipeline.Report
	var recs []*pipeline.Record
	for i := 1; i <= n; i++ {
		r := Report(i)
		rec, err := s.Append(context.Background(), r)
		if err != nil {
			t.Fatalf("Append #%d: %v", i, err)
		}
		reps = append(reps, r)
		recs = append(recs, rec)
	}
	return reps, recs
}

// Verify verifies the chain; an error fails the test.
func Verify(t *testing.T, s pipeline.Store) pipeline.ChainStatus {
	t.Helper()
	st, err := s.Verify(context.Background())
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return st
}

func handle(t *testing.T, open func(t *testing.T) pipeline.Store) pipeline.Store {
	s := open(t)
	t.Cleanup(func() { s.Close() })
	return s
}

func sameRecord(a, b *pipeline.Record) bool {
	return a.ID == b.ID && a.CreatedAt.Equal(b.CreatedAt) &&
		a.CandidateRef == b.CandidateRef && a.CandidateDigest == b.CandidateDigest &&
		a.BaselineRef == b.BaselineRef && a.BaselineDigest == b.BaselineDigest &&
		a.Verdict == b.Verdict && a.PolicyDigest == b.PolicyDigest &&
		a.CandidateVersion == b.CandidateVersion && a.Platform == b.Platform &&
		bytes.Equal(a.Report, b.Report) && a.PrevHash == b.PrevHash && a.Hash == b.Hash
}

func testAppendListGetVerify(t *testing.T, b Backend) {
	ctx := context.Background()
	open, _ := b.New(t)
	s := handle(t, open)
	reps, recs := AppendN(t, s, 5)

	for i, rec := range recs {
		if want := int64(i + 1); rec.ID != want {
			t.Errorf("Append #%d: id %d, want %d", i+1, rec.ID, want)
		}
		wantPrev := chain.Genesis
		if i > 0 {
			wantPrev = recs[i-1].Hash
		}
		if rec.PrevHash != wantPrev {
			t.Errorf("record %d: prev_hash %s, want %s", rec.ID, rec.PrevHash, wantPrev)
		}
		if h := chain.Hash(rec); h != rec.Hash {
			t.Errorf("record %d: hash %s, but its fields hash to %s", rec.ID, rec.Hash, h)
		}
		if rec.CreatedAt.IsZero() {
			t.Errorf("record %d: no creation time", rec.ID)
		}
	}

	t.Run("List", func(t *testing.T) {
		for _, tc := range []struct {
			limit int
			want  []int64
		}{
			{0, []int64{5, 4, 3, 2, 1}},
			{-1, []int64{5, 4, 3, 2, 1}},
			{1, []int64{5}},
			{3, []int64{5, 4, 3}},
			{5, []int64{5, 4, 3, 2, 1}},
			{50, []int64{5, 4, 3, 2, 1}},
		} {
			got, err := s.List(ctx, tc.limit)
			if err != nil {
				t.Fatalf("List(%d): %v", tc.limit, err)
			}
			var ids []int64
			for _, rec := range got {
				ids = append(ids, rec.ID)
			}
			if fmt.Sprint(ids) != fmt.Sprint(tc.want) {
				t.Errorf("List(%d) ids = %v, want %v", tc.limit, ids, tc.want)
			}
			for _, rec := range got {
				if rec.Report != nil {
					t.Errorf("List(%d): record %d carries its report", tc.limit, rec.ID)
				}
				orig := recs[rec.ID-1]
				rec.Report = orig.Report
				if !sameRecord(&rec, orig) {
					t.Errorf("List(%d): record %d = %+v, want %+v", tc.limit, rec.ID, rec, *orig)
				}
			}
		}
	})

	t.Run("Get", func(t *testing.T) {
		for i, orig := range recs {
			got, err := s.Get(ctx, orig.ID)
			if err != nil {
				t.Fatalf("Get(%d): %v", orig.ID, err)
			}
			if !sameRecord(got, orig) {
				t.Errorf("Get(%d) = %+v, want %+v", orig.ID, *got, *orig)
			}
			want, err := json.Marshal(reps[i])
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Report, want) {
				t.Errorf("Get(%d): report\n%s\nwant\n%s", orig.ID, got.Report, want)
			}
			var back pipeline.Report
			if err := json.Unmarshal(got.Report, &back); err != nil {
				t.Fatalf("Get(%d): report does not parse: %v", orig.ID, err)
			}
			again, err := json.Marshal(&back)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again, want) {
				t.Errorf("Get(%d): report does not round-trip:\n%s\nwant\n%s", orig.ID, again, want)
			}
			if back.Candidate.Digest != got.CandidateDigest || back.Verdict != got.Verdict || back.PolicyDigest != got.PolicyDigest {
				t.Errorf("Get(%d): columns %q %q %q disagree with the report's %q %q %q", orig.ID,
					got.CandidateDigest, got.Verdict, got.PolicyDigest, back.Candidate.Digest, back.Verdict, back.PolicyDigest)
			}
			if b := reps[i].Baseline; b != nil && (got.BaselineRef != b.Ref || got.BaselineDigest != b.Digest) {
				t.Errorf("Get(%d): baseline %q %q, want %q %q", orig.ID, got.BaselineRef, got.BaselineDigest, b.Ref, b.Digest)
			}
			if reps[i].Baseline == nil && (got.BaselineRef != "" || got.BaselineDigest != "") {
				t.Errorf("Get(%d): baseline %q %q for a report without one", orig.ID, got.BaselineRef, got.BaselineDigest)
			}
		}
		if _, err := s.Get(ctx, 99); !errors.Is(err, b.NotFound) {
			t.Errorf("Get(99) error = %v, want %v", err, b.NotFound)
		}
	})

	t.Run("Verify", func(t *testing.T) {
		st := Verify(t, s)
		if !st.OK() || st.Records != 5 || st.BrokenID != 0 || st.Head != (pipeline.ChainHead{ID: 5, Hash: recs[4].Hash}) {
			t.Errorf("Verify = %+v, want OK with 5 records and record 5 as the head", st)
		}
	})

	t.Run("Reopen", func(t *testing.T) {
		s2 := handle(t, open)
		st := Verify(t, s2)
		if !st.OK() || st.Records != 5 {
			t.Errorf("Verify after reopening = %+v, want OK with 5 records", st)
		}
		rec, err := s2.Append(ctx, Report(6))
		if err != nil {
			t.Fatal(err)
		}
		if rec.ID != 6 || rec.PrevHash != recs[4].Hash {
			t.Errorf("Append after reopening: id %d prev %s, want 6 %s", rec.ID, rec.PrevHash, recs[4].Hash)
		}
	})

	t.Run("Empty", func(t *testing.T) {
		open, _ := b.New(t)
		e := handle(t, open)
		st := Verify(t, e)
		if !st.OK() || st.Records != 0 {
			t.Errorf("Verify on an empty store = %+v, want OK with 0 records", st)
		}
		got, err := e.List(ctx, 10)
		if err != nil || len(got) != 0 {
			t.Errorf("List on an empty store = %v, %v; want nothing", got, err)
		}
	})
}

// testLookupAndPassing checks the queries that audits (a verdict to skip
// on, the previous passing version) and gates (the verdict of a digest)
// rely on.
func testLookupAndPassing(t *testing.T, b Backend) {
	ctx := context.Background()
	open, _ := b.New(t)
	s := handle(t, open)
	mk := func(ref, dig, platform, policy string, v pipeline.Verdict) *pipeline.Record {
		r := Report(1)
		r.Candidate.Ref, r.Candidate.Digest, r.Candidate.Platform, r.PolicyDigest, r.Verdict = ref, dig, platform, policy, v
		rec, err := s.Append(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		return rec
	}
	a1 := mk("reg.example/fw:1.0", Digest("a"), "", Digest("p1"), pipeline.VerdictPass)
	mk("reg.example/fw:1.0", Digest("a"), "", Digest("p2"), pipeline.VerdictFail)
	a3 := mk("reg.example/fw:1.0", Digest("a"), "", Digest("p1"), pipeline.VerdictReview)
	arm := mk("reg.example/fw:1.0", Digest("a"), "linux/arm64", Digest("p1"), pipeline.VerdictPass)
	other := mk("reg.example/fwx:2.0", Digest("b"), "", Digest("p1"), pipeline.VerdictPass)
	if _, err := s.StartSegment(ctx, 0, "a segment start is not a verdict"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		dig, platform, policy string
		want                  int64
	}{
		{Digest("a"), "", Digest("p1"), a3.ID},
		{Digest("a"), "linux/arm64", Digest("p1"), arm.ID},
		{Digest("a"), "linux/amd64", Digest("p1"), 0},
		{Digest("a"), "", Digest("p3"), 0},
		{Digest("b"), "", Digest("p1"), other.ID},
		{Digest("c"), "", Digest("p1"), 0},
		{"", "", "", 0},
	} {
		rec, err := s.Lookup(ctx, tc.dig, tc.platform, tc.policy)
		if err != nil {
			t.Fatalf("Lookup(%s, %q, %s): %v", tc.dig, tc.platform, tc.policy, err)
		}
		var got int64
		if rec != nil {
			got = rec.ID
		}
		if got != tc.want {
			t.Errorf("Lookup(%s, %q, %s) = record %d, want %d", tc.dig, tc.platform, tc.policy, got, tc.want)
		}
	}
	for _, tc := range []struct {
		prefix string
		want   []int64
	}{
		{"reg.example/fw:", []int64{arm.ID, a1.ID}},
		{"reg.example/fw", []int64{other.ID, arm.ID, a1.ID}},
		{"reg.example/fwx:", []int64{other.ID}},
		{"elsewhere/", nil},
		{"reg.example/fw%", nil}, // no pattern characters
	} {
		got, err := s.Passing(ctx, tc.prefix)
		if err != nil {
			t.Fatalf("Passing(%q): %v", tc.prefix, err)
		}
		var ids []int64
		for _, r := range got {
			ids = append(ids, r.ID)
			if r.Verdict != pipeline.VerdictPass || r.Report != nil {
				t.Errorf("Passing(%q): record %d has verdict %s and %d bytes of report", tc.prefix, r.ID, r.Verdict, len(r.Report))
			}
		}
		if fmt.Sprint(ids) != fmt.Sprint(tc.want) {
			t.Errorf("Passing(%q) = %v, want %v", tc.prefix, ids, tc.want)
		}
	}
}

func testVerifyDetectsTampering(t *testing.T, b Backend) {
	for _, tc := range []struct {
		name        string
		tamper      func(t *testing.T, raw Raw, recs []*pipeline.Record)
		wantID      int64
		wantRecords int
		wantReason  string
	}{
		{
			name: "edited report",
			tamper: func(t *testing.T, raw Raw, recs []*pipeline.Record) {
				edited := bytes.Replace(recs[2].Report, []byte(`"verdict":"fail"`), []byte(`"verdict":"pass"`), 1)
				if bytes.Equal(edited, recs[2].Report) {
					t.Fatal("test report has no verdict to edit")
				}
				raw.Exec(t, `UPDATE verdicts SET report = ? WHERE id = 3`, edited)
			},
			wantID: 3, wantRecords: 2, wantReason: "edited",
		},
		{
			name: "edited verdict column",
			tamper: func(t *testing.T, raw Raw, _ []*pipeline.Record) {
				raw.Exec(t, `UPDATE verdicts SET verdict = 'pass' WHERE id = 2`)
			},
			wantID: 2, wantRecords: 1, wantReason: "edited",
		},
		{
			name: "edited first record's created_at",
			tamper: func(t *testing.T, raw Raw, _ []*pipeline.Record) {
				raw.Touch(t, 1, "created_at")
			},
			wantID: 1, wantRecords: 0, wantReason: "edited",
		},
		{
			name: "edited last record's candidate digest",
			tamper: func(t *testing.T, raw Raw, _ []*pipeline.Record) {
				raw.Exec(t, `UPDATE verdicts SET candidate_digest = ? WHERE id = 5`, Digest("other"))
			},
			wantID: 5, wantRecords: 4, wantReason: "edited",
		},
		{
			name: "edited baseline column",
			tamper: func(t *testing.T, raw Raw, _ []*pipeline.Record) {
				raw.Exec(t, `UPDATE verdicts SET baseline_ref = 'elsewhere' WHERE id = 3`)
			},
			wantID: 3, wantRecords: 2, wantReason: "edited",
		},
		{
			name: "deleted middle record",
			tamper: func(t *testing.T, raw Raw, _ []*pipeline.Record) {
				raw.Exec(t, `DELETE FROM verdicts WHERE id = 3`)
			},
			wantID: 4, wantRecords: 2, wantReason: "missing",
		},
		{
			name: "deleted first record",
			tamper: func(t *testing.T, raw Raw, _ []*pipeline.Record) {
				raw.Exec(t, `DELETE FROM verdicts WHERE id = 1`)
			},
			wantID: 2, wantRecords: 0, wantReason: "missing",
		},
		{
			name: "deleted last record",
			tamper: func(t *testing.T, raw Raw, _ []*pipeline.Record) {
				raw.Exec(t, `DELETE FROM verdicts WHERE id = 5`)
			},
			wantID: 5, wantRecords: 4, wantReason: "deleted",
		},
		{
			name: "deleted tail records",
			tamper: func(t *testing.T, raw Raw, _ []*pipeline.Record) {
				raw.Exec(t, `DELETE FROM verdicts WHERE id >= 3`)
			},
			wantID: 3, wantRecords: 2, wantReason: "deleted",
		},
		{
			name: "deleted every record",
			tamper: func(t *testing.T, raw Raw, _ []*pipeline.Record) {
				raw.Exec(t, `DELETE FROM verdicts`)
			},
			wantID: 1, wantRecords: 0, wantReason: "deleted",
		},
		{
			name: "rewritten prev_hash",
			tamper: func(t *testing.T, raw Raw, recs []*pipeline.Record) {
				raw.Exec(t, `UPDATE verdicts SET prev_hash = ? WHERE id = 3`, recs[0].Hash)
			},
			wantID: 3, wantRecords: 2, wantReason: "previous hash",
		},
		{
			name: "edited and rehashed record",
			tamper: func(t *testing.T, raw Raw, recs []*pipeline.Record) {
				r := *recs[2]
				r.Verdict = pipeline.VerdictPass
				r.Hash = chain.Hash(&r)
				raw.Exec(t, `UPDATE verdicts SET verdict = ?, hash = ? WHERE id = 3`, string(r.Verdict), r.Hash)
			},
			wantID: 4, wantRecords: 3, wantReason: "previous hash",
		},
		{
			name: "records swapped",
			tamper: func(t *testing.T, raw Raw, _ []*pipeline.Record) {
				raw.Exec(t, `UPDATE verdicts SET id = -2 WHERE id = 2`)
				raw.Exec(t, `UPDATE verdicts SET id = 2 WHERE id = 4`)
				raw.Exec(t, `UPDATE verdicts SET id = 4 WHERE id = -2`)
			},
			wantID: 2, wantRecords: 1, wantReason: "previous hash",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			open, raw := b.New(t)
			s := handle(t, open)
			_, recs := AppendN(t, s, 5)
			if st := Verify(t, s); !st.OK() || st.Records != 5 {
				t.Fatalf("Verify before tampering = %+v", st)
			}
			tc.tamper(t, raw, recs)

			st := Verify(t, s)
			if st.OK() {
				t.Fatalf("Verify = %+v, want the tampering detected", st)
			}
			if st.BrokenID != tc.wantID {
				t.Errorf("BrokenID = %d, want %d (%s)", st.BrokenID, tc.wantID, st.Reason)
			}
			if st.Records != tc.wantRecords {
				t.Errorf("Records = %d, want %d", st.Records, tc.wantRecords)
			}
			if !strings.Contains(st.Reason, tc.wantReason) {
				t.Errorf("Reason = %q, want it to say %q", st.Reason, tc.wantReason)
			}
			// A fresh handle sees the same.
			if st2 := Verify(t, handle(t, open)); st2 != st {
				t.Errorf("Verify through a new handle = %+v, want %+v", st2, st)
			}
		})
	}
}

// testEditOfEachColumn edits every column of the table in turn, on record
// 3 of 5: Verify must name record 3 each time.
func testEditOfEachColumn(t *testing.T, b Backend) {
	_, raw := b.New(t)
	cols := raw.Columns(t)
	if len(cols) < 13 {
		t.Fatalf("verdicts has columns %v, want at least 13", cols)
	}
	for _, col := range cols {
		t.Run(col, func(t *testing.T) {
			open, raw := b.New(t)
			s := handle(t, open)
			AppendN(t, s, 5)
			if col == "id" {
				raw.Exec(t, `UPDATE verdicts SET id = 103 WHERE id = 3`)
			} else {
				raw.Touch(t, 3, col)
			}
			st := Verify(t, s)
			if st.OK() {
				t.Fatalf("after editing %s of record 3, Verify = %+v, want it broken", col, st)
			}
			named := st.BrokenID == 3
			if col == "id" { // record 3 is gone from its place: the gap names it
				named = strings.Contains(st.Reason, "records 3 to")
			}
			if !named {
				t.Errorf("after editing %s of record 3, Verify = %+v, want record 3 named", col, st)
			}
		})
	}
}

func testRefusesNewChainOverDeleted(t *testing.T, b Backend) {
	ctx := context.Background()
	open, raw := b.New(t)
	s := handle(t, open)
	AppendN(t, s, 3)
	raw.Exec(t, `DELETE FROM verdicts`)

	if rec, err := s.Append(ctx, Report(9)); err == nil {
		t.Fatalf("Append over a deleted store = record %d, want an error", rec.ID)
	}
	got, err := s.List(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Errorf("the refused Append left %d records", len(got))
	}
	if st := Verify(t, s); st.OK() {
		t.Errorf("Verify = %+v after the refused Append, want the deletion still reported", st)
	}
}

// testDeletedTailStaysDetected deletes the newest records and lets the
// gate carry on appending: the deletion must stay visible (or Append must
// refuse, as it does over a store whose records were all deleted).
// Otherwise the next appends reuse the deleted ids and the chain verifies
// again.
func testDeletedTailStaysDetected(t *testing.T, b Backend) {
	ctx := context.Background()
	open, raw := b.New(t)
	s := handle(t, open)
	AppendN(t, s, 5)
	raw.Exec(t, `DELETE FROM verdicts WHERE id >= 4`)
	if st := Verify(t, s); st.OK() {
		t.Fatalf("Verify right after deleting records 4 and 5 = %+v, want them reported", st)
	}
	for i := 0; i < 3; i++ {
		rec, err := s.Append(ctx, Report(10+i))
		if err != nil {
			return // refusing to extend a chain with a deleted tail is fine
		}
		if st := Verify(t, s); st.OK() {
			t.Fatalf("after deleting records 4 and 5 and appending %d more (the last got id %d), Verify = %+v: the deletion is no longer detected", i+1, rec.ID, st)
		}
	}
}

// testHeadDetectsCutTail: cutting the last records and setting the id
// sequence back verifies, but the head held outside the store is no
// longer in the chain.
func testHeadDetectsCutTail(t *testing.T, b Backend) {
	open, raw := b.New(t)
	s := handle(t, open)
	_, recs := AppendN(t, s, 5)
	st := Verify(t, s)
	want := pipeline.ChainHead{ID: 5, Hash: recs[4].Hash}
	if st.Head != want {
		t.Fatalf("Head = %v, want %v", st.Head, want)
	}
	parsed, err := pipeline.ParseChainHead(st.Head.String())
	if err != nil || parsed != want {
		t.Fatalf("ParseChainHead(%q) = %v, %v", st.Head, parsed, err)
	}
	raw.Exec(t, `DELETE FROM verdicts WHERE id >= 4`)
	raw.SetSeq(t, 3)
	st = Verify(t, s)
	if !st.OK() {
		t.Fatalf("Verify = %+v: the cut is invisible without a head, as expected", st)
	}
	if st.Head.ID >= want.ID {
		t.Errorf("Head after the cut = %v, want below %v", st.Head, want)
	}
}

// testAppendRefusesBrokenTail: a write onto a broken chain fails naming
// the broken record, until a segment is started.
func testAppendRefusesBrokenTail(t *testing.T, b Backend) {
	for _, tc := range []struct {
		name   string
		tamper func(t *testing.T, raw Raw)
		wantID int64
	}{
		{"edited last record", func(t *testing.T, raw Raw) { raw.Exec(t, `UPDATE verdicts SET verdict = 'pass' WHERE id = 5`) }, 5},
		{"edited last record's platform", func(t *testing.T, raw Raw) {
			raw.Exec(t, `UPDATE verdicts SET platform = 'linux/arm64' WHERE id = 5`)
		}, 5},
		{"rewritten last prev_hash", func(t *testing.T, raw Raw) {
			raw.Exec(t, `UPDATE verdicts SET prev_hash = ? WHERE id = 5`, chain.Genesis)
		}, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			open, raw := b.New(t)
			s := handle(t, open)
			AppendN(t, s, 5)
			tc.tamper(t, raw)
			_, err := s.Append(ctx, Report(9))
			var be *pipeline.BrokenChainError
			if !errors.As(err, &be) || be.BrokenID != tc.wantID {
				t.Fatalf("Append onto a broken tail = %v, want a BrokenChainError naming record %d", err, tc.wantID)
			}
			st := Verify(t, s)
			if st.Writable() {
				t.Fatalf("Verify = %+v, want the last segment not writable", st)
			}
			seg, err := s.StartSegment(ctx, st.TailBrokenID, st.TailReason)
			if err != nil {
				t.Fatal(err)
			}
			rec, err := s.Append(ctx, Report(10))
			if err != nil {
				t.Fatalf("Append after a new segment: %v", err)
			}
			st = Verify(t, s)
			if st.OK() || st.BrokenID != tc.wantID {
				t.Errorf("Verify after the new segment = %+v, want the old break still reported", st)
			}
			if !st.Writable() || st.Segments != 2 || st.SegmentStart != seg.ID || st.Head.ID != rec.ID {
				t.Errorf("Verify after the new segment = %+v, want 2 segments, the last from %d to %d", st, seg.ID, rec.ID)
			}
			// The segment start is hashed: turning it into something else
			// breaks the last segment again.
			raw.Exec(t, `UPDATE verdicts SET verdict = 'fail' WHERE id = ?`, seg.ID)
			if st := Verify(t, s); st.Writable() {
				t.Errorf("Verify after editing the segment start = %+v, want the last segment broken", st)
			}
		})
	}
}

// testConcurrentAppends appends from several goroutines on two handles at
// once: every id is handed out once and the chain stays whole.
func testConcurrentAppends(t *testing.T, b Backend) {
	ctx := context.Background()
	open, _ := b.New(t)
	handles := [2]pipeline.Store{handle(t, open), handle(t, open)}
	var wg sync.WaitGroup

	const goroutinesPerHandle, appendsEach = 4, 10
	const total = len(handles) * goroutinesPerHandle * appendsEach
	var mu sync.Mutex
	ids := map[int64]bool{}
	errs := make(chan error, 2*total)
	for h, s := range handles {
		for g := 0; g < goroutinesPerHandle; g++ {
			wg.Go(func() {
				for n := 0; n < appendsEach; n++ {
					rec, err := s.Append(ctx, Report(h*1000+g*100+n))
					if err != nil {
						errs <- fmt.Errorf("handle %d goroutine %d append %d: %w", h, g, n, err)
						return
					}
					mu.Lock()
					if ids[rec.ID] {
						errs <- fmt.Errorf("id %d handed out twice", rec.ID)
					}
					ids[rec.ID] = true
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if len(ids) != total {
		t.Errorf("%d distinct ids, want %d", len(ids), total)
	}
	for id := int64(1); id <= int64(total); id++ {
		if !ids[id] {
			t.Errorf("no Append returned id %d", id)
		}
	}
	for i, s := range handles {
		st := Verify(t, s)
		if !st.OK() || st.Records != total {
			t.Errorf("Verify through handle %d = %+v, want OK with %d records", i, st, total)
		}
		got, err := s.List(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != total {
			t.Fatalf("List through handle %d: %d records, want %d", i, len(got), total)
		}
		for j, rec := range got {
			if want := int64(total - j); rec.ID != want {
				t.Fatalf("List through handle %d: record %d has id %d, want %d", i, j, rec.ID, want)
			}
		}
	}
}

// testVerifyWhileAppending: a Verify that runs while another handle
// appends sees the chain as it was at one moment: always whole, never a
// tail that looks cut because a record landed between its reads.
func testVerifyWhileAppending(t *testing.T, b Backend) {
	ctx := context.Background()
	open, _ := b.New(t)
	writer, reader := handle(t, open), handle(t, open)
	const appends = 60
	done := make(chan error, 1)
	go func() {
		for i := range appends {
			if _, err := writer.Append(ctx, Report(i)); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	verifies, last := 0, 0
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Append: %v", err)
			}
			if st := Verify(t, reader); !st.OK() || st.Records != appends {
				t.Errorf("Verify after the appends = %+v, want OK with %d records", st, appends)
			}
			t.Logf("%d verifies while appending", verifies)
			return
		default:
		}
		st := Verify(t, reader)
		verifies++
		if !st.OK() || st.Records < last {
			t.Fatalf("Verify %d while appending = %+v (after %d records): not the chain as it was at one moment", verifies, st, last)
		}
		last = st.Records
	}
}

// appendVerdict appends Report(i) with verdict v.
func appendVerdict(t *testing.T, s pipeline.Store, i int, v pipeline.Verdict) *pipeline.Record {
	t.Helper()
	r := Report(i)
	r.Verdict = v
	rec, err := s.Append(context.Background(), r)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	return rec
}

// testDecisions: a decision reads back with the decided record's digest,
// hash and verdict; the latest decision on a verdict wins, both stay in
// the chain, which still verifies.
func testDecisions(t *testing.T, b Backend) {
	ctx := context.Background()
	open, raw := b.New(t)
	s := handle(t, open)
	review := appendVerdict(t, s, 1, pipeline.VerdictReview)
	fail := appendVerdict(t, s, 2, pipeline.VerdictFail)
	other := appendVerdict(t, s, 3, pipeline.VerdictReview)

	if d, err := s.Decision(ctx, review.ID); err != nil || d != nil {
		t.Fatalf("Decision before any = %+v, %v; want nil", d, err)
	}
	at := time.Date(2026, 5, 1, 10, 30, 0, 0, time.UTC)
	first, err := s.AppendDecision(ctx, pipeline.Decision{VerdictID: review.ID, Approve: true, Reason: "checked by hand: the new account is the vendor's", By: "alice", At: at})
	if err != nil {
		t.Fatalf("AppendDecision: %v", err)
	}
	if first.Verdict != pipeline.VerdictDecision || first.ID != other.ID+1 || first.PrevHash != other.Hash || chain.Hash(first) != first.Hash {
		t.Errorf("decision record = %+v, want a linked decision record after %d", *first, other.ID)
	}
	d, err := s.Decision(ctx, review.ID)
	if err != nil || d == nil {
		t.Fatalf("Decision = %v, %v", d, err)
	}
	want := pipeline.Decision{Schema: pipeline.DecisionSchema, RecordID: first.ID, VerdictID: review.ID,
		CandidateDigest: review.CandidateDigest, VerdictHash: review.Hash, Computed: pipeline.VerdictReview,
		Approve: true, Reason: "checked by hand: the new account is the vendor's", By: "alice", At: at}
	if !d.At.Equal(want.At) || d.At.Location() != time.UTC {
		t.Errorf("Decision at %v, want %v UTC", d.At, want.At)
	}
	d.At = want.At
	if *d != want {
		t.Errorf("Decision = %+v, want %+v", *d, want)
	}
	if d.Verdict() != pipeline.VerdictPass {
		t.Errorf("approved decision's verdict = %s, want pass", d.Verdict())
	}
	got, err := s.Get(ctx, first.ID)
	if err != nil || !sameRecord(got, first) {
		t.Errorf("Get(%d) = %+v, %v; want the decision record", first.ID, got, err)
	}

	// A later decision overrides; the earlier one stays in the chain.
	second, err := s.AppendDecision(ctx, pipeline.Decision{VerdictID: review.ID, Approve: false, Reason: "the account has a default password", By: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendDecision(ctx, pipeline.Decision{VerdictID: fail.ID, Approve: true, Reason: "a known false positive", By: "carol"}); err != nil {
		t.Fatalf("deciding a fail: %v", err)
	}
	d, err = s.Decision(ctx, review.ID)
	if err != nil || d == nil || d.RecordID != second.ID || d.Approve || d.By != "bob" || d.Verdict() != pipeline.VerdictFail || d.At.IsZero() {
		t.Errorf("Decision after an override = %+v, %v; want bob's rejection (record %d)", d, err, second.ID)
	}
	d, err = s.Decision(ctx, fail.ID)
	if err != nil || d == nil || !d.Approve || d.Computed != pipeline.VerdictFail || d.By != "carol" {
		t.Errorf("Decision on the fail = %+v, %v; want carol's approval", d, err)
	}
	if d, err := s.Decision(ctx, other.ID); err != nil || d != nil {
		t.Errorf("Decision on an undecided verdict = %+v, %v; want nil", d, err)
	}
	if _, err := s.Get(ctx, first.ID); err != nil {
		t.Errorf("the overridden decision is gone: %v", err)
	}
	if st := Verify(t, s); !st.OK() || st.Records != 6 {
		t.Errorf("Verify = %+v, want OK with 6 records", st)
	}
	// A decision is hashed: turning an approval into a rejection breaks
	// the chain at the decision.
	raw.Exec(t, `UPDATE verdicts SET report = ? WHERE id = ?`, bytes.Replace(second.Report, []byte(`"approve":false`), []byte(`"approve":true`), 1), second.ID)
	if st := Verify(t, s); st.OK() || st.BrokenID != second.ID {
		t.Errorf("Verify after editing decision %d = %+v, want it named", second.ID, st)
	}
}

// testDecisionRefused: a decision on a record the store does not hold, on
// a pass, a segment start, a decision or a waiver, or without a reason or
// a name is refused and appends nothing.
func testDecisionRefused(t *testing.T, b Backend) {
	ctx := context.Background()
	open, raw := b.New(t)
	s := handle(t, open)
	pass := appendVerdict(t, s, 1, pipeline.VerdictPass)
	review := appendVerdict(t, s, 2, pipeline.VerdictReview)
	seg, err := s.StartSegment(ctx, 0, "not a verdict")
	if err != nil {
		t.Fatal(err)
	}
	dec, err := s.AppendDecision(ctx, pipeline.Decision{VerdictID: review.ID, Approve: true, Reason: "ok", By: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	wv, err := s.AppendWaiver(ctx, pipeline.Waiver{Scope: pipeline.WaiverScope{Digest: Digest("waived")}, Reason: "r", By: "b"})
	if err != nil {
		t.Fatal(err)
	}
	edited := appendVerdict(t, s, 3, pipeline.VerdictReview)
	last := appendVerdict(t, s, 4, pipeline.VerdictReview)
	raw.Exec(t, `UPDATE verdicts SET candidate_ref = 'elsewhere' WHERE id = ?`, edited.ID)
	for _, tc := range []struct {
		name string
		d    pipeline.Decision
		want error
	}{
		{"missing record", pipeline.Decision{VerdictID: 999, Approve: true, Reason: "r", By: "b"}, b.NotFound},
		{"pass", pipeline.Decision{VerdictID: pass.ID, Approve: false, Reason: "r", By: "b"}, pipeline.ErrNotDecidable},
		{"segment start", pipeline.Decision{VerdictID: seg.ID, Approve: true, Reason: "r", By: "b"}, pipeline.ErrNotDecidable},
		{"decision", pipeline.Decision{VerdictID: dec.ID, Approve: true, Reason: "r", By: "b"}, pipeline.ErrNotDecidable},
		{"waiver", pipeline.Decision{VerdictID: wv.ID, Approve: true, Reason: "r", By: "b"}, pipeline.ErrNotDecidable},
		{"edited verdict", pipeline.Decision{VerdictID: edited.ID, Approve: true, Reason: "r", By: "b"}, pipeline.ErrNotDecidable},
		{"no reason", pipeline.Decision{VerdictID: last.ID, Approve: true, Reason: " ", By: "b"}, nil},
		{"no name", pipeline.Decision{VerdictID: last.ID, Approve: true, Reason: "r"}, nil},
		{"long reason", pipeline.Decision{VerdictID: last.ID, Approve: true, Reason: strings.Repeat("x", pipeline.MaxReasonLen+1), By: "b"}, nil},
		{"long name", pipeline.Decision{VerdictID: last.ID, Approve: true, Reason: "r", By: strings.Repeat("x", pipeline.MaxByLen+1)}, nil},
		{"no id", pipeline.Decision{Approve: true, Reason: "r", By: "b"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, err := s.List(ctx, 1)
			if err != nil {
				t.Fatal(err)
			}
			rec, err := s.AppendDecision(ctx, tc.d)
			if err == nil {
				t.Fatalf("AppendDecision = record %d, want it refused", rec.ID)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("AppendDecision error = %v, want %v", err, tc.want)
			}
			after, err := s.List(ctx, 1)
			if err != nil {
				t.Fatal(err)
			}
			if after[0].ID != before[0].ID {
				t.Errorf("the refused decision appended record %d", after[0].ID)
			}
		})
	}
	if d, err := s.Decision(ctx, pass.ID); err != nil || d != nil {
		t.Errorf("Decision on the pass = %+v, %v; want nil", d, err)
	}
}

// testWaivers: waivers of both scopes read back in order, expired ones
// included, and the chain verifies; a waiver that does not validate is
// refused.
func testWaivers(t *testing.T, b Backend) {
	ctx := context.Background()
	open, _ := b.New(t)
	s := handle(t, open)
	if ws, err := s.Waivers(ctx); err != nil || len(ws) != 0 {
		t.Fatalf("Waivers on an empty store = %v, %v", ws, err)
	}
	AppendN(t, s, 2)
	at := time.Date(2026, 4, 1, 8, 0, 0, 0, time.UTC)
	in := []pipeline.Waiver{
		{Scope: pipeline.WaiverScope{FindingID: pipeline.IDSetuidAdded, Path: "/usr/bin/diag", Product: "RT-3200"}, Until: "2026-06-30", Reason: "factory tool, removed in 1.1 (ticket 42)", By: "alice", At: at},
		{Scope: pipeline.WaiverScope{Digest: Digest("candidate", 1)}, Reason: "accepted as is", By: "bob", At: at},
		{Scope: pipeline.WaiverScope{FindingID: pipeline.IDFileAdded, Path: "/usr/share/doc/**"}, Until: "2020-01-01", Reason: "long expired", By: "carol"},
	}
	var recs []*pipeline.Record
	for _, w := range in {
		rec, err := s.AppendWaiver(ctx, w)
		if err != nil {
			t.Fatalf("AppendWaiver(%s): %v", w.Scope, err)
		}
		if rec.Verdict != pipeline.VerdictWaiver || chain.Hash(rec) != rec.Hash {
			t.Errorf("waiver record = %+v, want a hashed waiver record", *rec)
		}
		recs = append(recs, rec)
	}
	AppendN(t, s, 1)
	got, err := s.Waivers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(in) {
		t.Fatalf("Waivers = %d, want %d: %+v", len(got), len(in), got)
	}
	for i, w := range got {
		want := in[i]
		want.Schema, want.RecordID = pipeline.WaiverSchema, recs[i].ID
		if want.At.IsZero() {
			if w.At.IsZero() || w.At.Location() != time.UTC {
				t.Errorf("waiver %d: at %v, want now in UTC", i, w.At)
			}
			want.At = w.At
		}
		if !w.At.Equal(want.At) {
			t.Errorf("waiver %d: at %v, want %v", i, w.At, want.At)
		}
		w.At = want.At
		if w != want {
			t.Errorf("waiver %d = %+v, want %+v", i, w, want)
		}
	}
	if !got[2].Expired(time.Now()) || got[0].Expired(time.Date(2026, 6, 30, 23, 0, 0, 0, time.UTC)) || got[1].Expired(time.Now()) {
		t.Errorf("expiry of %+v is wrong", got)
	}
	for _, bad := range []pipeline.Waiver{
		{Scope: pipeline.WaiverScope{FindingID: pipeline.IDSetuidAdded, Path: "/usr/bin/diag"}, Reason: "no date", By: "alice"},
		{Scope: pipeline.WaiverScope{Digest: "sha256:short"}, Reason: "r", By: "alice"},
		{Scope: pipeline.WaiverScope{Digest: Digest("x")}, Reason: "", By: "alice"},
		{Scope: pipeline.WaiverScope{Digest: Digest("x")}, Reason: "r", By: ""},
	} {
		if rec, err := s.AppendWaiver(ctx, bad); err == nil {
			t.Errorf("AppendWaiver(%+v) = record %d, want it refused", bad, rec.ID)
		}
	}
	if st := Verify(t, s); !st.OK() || st.Records != 6 {
		t.Errorf("Verify = %+v, want OK with 6 records", st)
	}
}

// testDeletedWaiver: a waiver is a record of the chain, so deleting or
// editing one is detected.
func testDeletedWaiver(t *testing.T, b Backend) {
	for _, tc := range []struct {
		name   string
		tamper func(t *testing.T, raw Raw, w *pipeline.Record)
		reason string
	}{
		{"deleted", func(t *testing.T, raw Raw, w *pipeline.Record) {
			raw.Exec(t, `DELETE FROM verdicts WHERE id = ?`, w.ID)
		}, "missing"},
		{"edited", func(t *testing.T, raw Raw, w *pipeline.Record) {
			raw.Touch(t, w.ID, "report")
		}, "edited"},
		{"extended", func(t *testing.T, raw Raw, w *pipeline.Record) {
			raw.Exec(t, `UPDATE verdicts SET report = ? WHERE id = ?`, []byte(strings.Replace(string(w.Report), "2026-06-30", "2099-12-31", 1)), w.ID)
		}, "edited"},
		{"turned into a verdict", func(t *testing.T, raw Raw, w *pipeline.Record) {
			raw.Exec(t, `UPDATE verdicts SET verdict = 'pass' WHERE id = ?`, w.ID)
		}, "edited"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			open, raw := b.New(t)
			s := handle(t, open)
			AppendN(t, s, 2)
			w, err := s.AppendWaiver(ctx, pipeline.Waiver{Scope: pipeline.WaiverScope{FindingID: pipeline.IDSetuidAdded, Path: "/usr/bin/diag", Product: "RT-3200"}, Until: "2026-06-30", Reason: "r", By: "alice"})
			if err != nil {
				t.Fatal(err)
			}
			AppendN(t, s, 1)
			if st := Verify(t, s); !st.OK() {
				t.Fatalf("Verify before tampering = %+v", st)
			}
			tc.tamper(t, raw, w)
			st := Verify(t, s)
			if st.OK() || !strings.Contains(st.Reason, tc.reason) {
				t.Fatalf("Verify after the waiver was %s = %+v, want it detected (%q)", tc.name, st, tc.reason)
			}
			if tc.name == "deleted" && (st.BrokenID != w.ID+1 || !strings.Contains(st.Reason, fmt.Sprintf("records %d to %d", w.ID, w.ID))) {
				t.Errorf("Verify after deleting waiver %d = %+v, want the gap named", w.ID, st)
			}
			if tc.name != "deleted" && st.BrokenID != w.ID {
				t.Errorf("Verify after editing waiver %d = %+v, want it named", w.ID, st)
			}
		})
	}
}

// testLookupSkipsDecisionsAndWaivers: decision and waiver records carry a
// candidate's columns (a decision those of the verdict it decides, a
// digest waiver the digest), yet neither Lookup nor Passing returns them.
func testLookupSkipsDecisionsAndWaivers(t *testing.T, b Backend) {
	ctx := context.Background()
	open, _ := b.New(t)
	s := handle(t, open)
	r := Report(1)
	r.Verdict, r.Candidate.Platform = pipeline.VerdictReview, "linux/arm64"
	review, err := s.Append(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := s.AppendDecision(ctx, pipeline.Decision{VerdictID: review.ID, Approve: true, Reason: "looked", By: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if dec.CandidateDigest != review.CandidateDigest || dec.Platform != review.Platform || dec.PolicyDigest != review.PolicyDigest || dec.CandidateRef != review.CandidateRef {
		t.Errorf("decision record %+v does not carry the columns of verdict %d", *dec, review.ID)
	}
	if _, err := s.AppendWaiver(ctx, pipeline.Waiver{Scope: pipeline.WaiverScope{Digest: review.CandidateDigest}, Reason: "r", By: "bob"}); err != nil {
		t.Fatal(err)
	}
	rec, err := s.Lookup(ctx, review.CandidateDigest, review.Platform, review.PolicyDigest)
	if err != nil || rec == nil || rec.ID != review.ID {
		t.Errorf("Lookup = %+v, %v; want verdict %d, not a decision or waiver", rec, err, review.ID)
	}
	if rec, err := s.Lookup(ctx, review.CandidateDigest, "", ""); err != nil || rec != nil {
		t.Errorf("Lookup of the waiver's columns = %+v, %v; want nothing", rec, err)
	}
	got, err := s.Passing(ctx, "")
	if err != nil || len(got) != 0 {
		t.Errorf("Passing = %+v, %v; want nothing (an approved review is still not a pass record)", got, err)
	}
}
