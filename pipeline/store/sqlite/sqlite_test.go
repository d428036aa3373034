package sqlite_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/store/sqlite"
)

// helperEnv names the environment variable that turns the test binary into
// the crash-test writer: it appends large reports to the store at that path
// until it is killed.
const helperEnv = "FWVET_STORE_HELPER"

func TestMain(m *testing.M) {
	if path := os.Getenv(helperEnv); path != "" {
		os.Exit(runWriter(path))
	}
	os.Exit(m.Run())
}

// runWriter appends reports of 1 to 4 MB as fast as it can and prints
// "ready" after the first one is committed. It never returns on its own
// unless an append fails.
func runWriter(path string) int {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 3
	}
	for i := 0; ; i++ {
		r := bigReport(i, 1<<20+rand.IntN(3<<20))
		if _, err := s.Append(ctx, r); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			return 4
		}
		if i == 0 {
			fmt.Println("ready")
		}
	}
}

func digest(parts ...any) string {
	sum := sha256.Sum256([]byte(fmt.Sprint(parts...)))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// testReport builds a small but complete report; odd i have a baseline.
func testReport(i int) *pipeline.Report {
	r := &pipeline.Report{
		Schema:    pipeline.ReportSchema,
		Tool:      pipeline.Tool{Name: "fwvet", Version: "0.1.0-test"},
		Candidate: pipeline.Subject{Ref: fmt.Sprintf("registry.example/rt3200:1.%d", i), Digest: digest("candidate", i), Size: int64(1000 + i), Version: fmt.Sprintf("1.%d", i)},
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
		PolicyDigest: digest("policy"),
	}
	r.Findings[0].Evidence["user"] = fmt.Sprintf("backdoor%d", i)
	if i%2 == 1 {
		r.Baseline = &pipeline.Subject{Ref: fmt.Sprintf("registry.example/rt3200:1.%d", i-1), Digest: digest("candidate", i-1), Size: 999, Version: fmt.Sprintf("1.%d", i-1)}
	}
	return r
}

// bigReport is a report whose findings take about size bytes of JSON.
func bigReport(i, size int) *pipeline.Report {
	r := testReport(i)
	filler := strings.Repeat("x", 900)
	for n := 0; n*1100 < size; n++ {
		f := pipeline.NewFinding(pipeline.IDFileAdded, fmt.Sprintf("/usr/share/doc/pkg%d/file%d", i, n), []string{"fw.bin", "squashfs@0x40000"}, filler)
		f.Evidence["sha256"] = digest(i, n)
		r.Findings = append(r.Findings, f)
	}
	return r
}

func openStore(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// rawDB opens the store's file directly, as someone tampering with it would.
func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(30000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func appendN(t *testing.T, s *sqlite.Store, n int) ([]*pipeline.Report, []*pipeline.Record) {
	t.Helper()
	var reps []*pipeline.Report
	var recs []*pipeline.Record
	for i := 1; i <= n; i++ {
		r := testReport(i)
		rec, err := s.Append(context.Background(), r)
		if err != nil {
			t.Fatalf("Append #%d: %v", i, err)
		}
		reps = append(reps, r)
		recs = append(recs, rec)
	}
	return reps, recs
}

func verify(t *testing.T, s *sqlite.Store) pipeline.ChainStatus {
	t.Helper()
	st, err := s.Verify(context.Background())
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return st
}

func TestAppendListGetVerify(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "verdicts.db")
	s := openStore(t, path)
	reps, recs := appendN(t, s, 5)

	for i, rec := range recs {
		if want := int64(i + 1); rec.ID != want {
			t.Errorf("Append #%d: id %d, want %d", i+1, rec.ID, want)
		}
		wantPrev := pipeline.Genesis
		if i > 0 {
			wantPrev = recs[i-1].Hash
		}
		if rec.PrevHash != wantPrev {
			t.Errorf("record %d: prev_hash %s, want %s", rec.ID, rec.PrevHash, wantPrev)
		}
		if h := pipeline.RecordHash(rec); h != rec.Hash {
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
		if _, err := s.Get(ctx, 99); !errors.Is(err, sqlite.ErrNotFound) {
			t.Errorf("Get(99) error = %v, want ErrNotFound", err)
		}
	})

	t.Run("Verify", func(t *testing.T) {
		st := verify(t, s)
		if !st.OK() || st.Records != 5 || st.BrokenID != 0 {
			t.Errorf("Verify = %+v, want OK with 5 records", st)
		}
	})

	t.Run("Reopen", func(t *testing.T) {
		s2 := openStore(t, path)
		st := verify(t, s2)
		if !st.OK() || st.Records != 5 {
			t.Errorf("Verify after reopening = %+v, want OK with 5 records", st)
		}
		rec, err := s2.Append(ctx, testReport(6))
		if err != nil {
			t.Fatal(err)
		}
		if rec.ID != 6 || rec.PrevHash != recs[4].Hash {
			t.Errorf("Append after reopening: id %d prev %s, want 6 %s", rec.ID, rec.PrevHash, recs[4].Hash)
		}
	})

	t.Run("Empty", func(t *testing.T) {
		e := openStore(t, filepath.Join(t.TempDir(), "empty.db"))
		st := verify(t, e)
		if !st.OK() || st.Records != 0 {
			t.Errorf("Verify on an empty store = %+v, want OK with 0 records", st)
		}
		got, err := e.List(ctx, 10)
		if err != nil || len(got) != 0 {
			t.Errorf("List on an empty store = %v, %v; want nothing", got, err)
		}
	})
}

func sameRecord(a, b *pipeline.Record) bool {
	return a.ID == b.ID && a.CreatedAt.Equal(b.CreatedAt) &&
		a.CandidateRef == b.CandidateRef && a.CandidateDigest == b.CandidateDigest &&
		a.BaselineRef == b.BaselineRef && a.BaselineDigest == b.BaselineDigest &&
		a.Verdict == b.Verdict && a.PolicyDigest == b.PolicyDigest &&
		bytes.Equal(a.Report, b.Report) && a.PrevHash == b.PrevHash && a.Hash == b.Hash
}

func mustExec(t *testing.T, db *sql.DB, q string, args ...any) {
	t.Helper()
	res, err := db.Exec(q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		t.Fatalf("%s: changed no rows (%v)", q, err)
	}
}

func TestVerifyDetectsTampering(t *testing.T) {
	for _, tc := range []struct {
		name        string
		tamper      func(t *testing.T, db *sql.DB, recs []*pipeline.Record)
		wantID      int64
		wantRecords int
		wantReason  string
	}{
		{
			name: "edited report",
			tamper: func(t *testing.T, db *sql.DB, recs []*pipeline.Record) {
				edited := bytes.Replace(recs[2].Report, []byte(`"verdict":"fail"`), []byte(`"verdict":"pass"`), 1)
				if bytes.Equal(edited, recs[2].Report) {
					t.Fatal("test report has no verdict to edit")
				}
				mustExec(t, db, `UPDATE verdicts SET report = ? WHERE id = 3`, edited)
			},
			wantID: 3, wantRecords: 2, wantReason: "edited",
		},
		{
			name: "edited verdict column",
			tamper: func(t *testing.T, db *sql.DB, _ []*pipeline.Record) {
				mustExec(t, db, `UPDATE verdicts SET verdict = 'pass' WHERE id = 2`)
			},
			wantID: 2, wantRecords: 1, wantReason: "edited",
		},
		{
			name: "edited first record's created_at",
			tamper: func(t *testing.T, db *sql.DB, _ []*pipeline.Record) {
				mustExec(t, db, `UPDATE verdicts SET created_at = '2001-01-01T00:00:00Z' WHERE id = 1`)
			},
			wantID: 1, wantRecords: 0, wantReason: "edited",
		},
		{
			name: "edited last record's candidate digest",
			tamper: func(t *testing.T, db *sql.DB, _ []*pipeline.Record) {
				mustExec(t, db, `UPDATE verdicts SET candidate_digest = ? WHERE id = 5`, digest("other"))
			},
			wantID: 5, wantRecords: 4, wantReason: "edited",
		},
		{
			name: "edited baseline column",
			tamper: func(t *testing.T, db *sql.DB, _ []*pipeline.Record) {
				mustExec(t, db, `UPDATE verdicts SET baseline_ref = 'elsewhere' WHERE id = 3`)
			},
			wantID: 3, wantRecords: 2, wantReason: "edited",
		},
		{
			name: "deleted middle record",
			tamper: func(t *testing.T, db *sql.DB, _ []*pipeline.Record) {
				mustExec(t, db, `DELETE FROM verdicts WHERE id = 3`)
			},
			wantID: 4, wantRecords: 2, wantReason: "missing",
		},
		{
			name: "deleted first record",
			tamper: func(t *testing.T, db *sql.DB, _ []*pipeline.Record) {
				mustExec(t, db, `DELETE FROM verdicts WHERE id = 1`)
			},
			wantID: 2, wantRecords: 0, wantReason: "missing",
		},
		{
			name: "deleted last record",
			tamper: func(t *testing.T, db *sql.DB, _ []*pipeline.Record) {
				mustExec(t, db, `DELETE FROM verdicts WHERE id = 5`)
			},
			wantID: 5, wantRecords: 4, wantReason: "deleted",
		},
		{
			name: "deleted tail records",
			tamper: func(t *testing.T, db *sql.DB, _ []*pipeline.Record) {
				mustExec(t, db, `DELETE FROM verdicts WHERE id >= 3`)
			},
			wantID: 3, wantRecords: 2, wantReason: "deleted",
		},
		{
			name: "deleted every record",
			tamper: func(t *testing.T, db *sql.DB, _ []*pipeline.Record) {
				mustExec(t, db, `DELETE FROM verdicts`)
			},
			wantID: 1, wantRecords: 0, wantReason: "deleted",
		},
		{
			name: "rewritten prev_hash",
			tamper: func(t *testing.T, db *sql.DB, recs []*pipeline.Record) {
				mustExec(t, db, `UPDATE verdicts SET prev_hash = ? WHERE id = 3`, recs[0].Hash)
			},
			wantID: 3, wantRecords: 2, wantReason: "previous hash",
		},
		{
			name: "edited and rehashed record",
			tamper: func(t *testing.T, db *sql.DB, recs []*pipeline.Record) {
				r := *recs[2]
				r.Verdict = pipeline.VerdictPass
				r.Hash = pipeline.RecordHash(&r)
				mustExec(t, db, `UPDATE verdicts SET verdict = ?, hash = ? WHERE id = 3`, string(r.Verdict), r.Hash)
			},
			wantID: 4, wantRecords: 3, wantReason: "previous hash",
		},
		{
			name: "records swapped",
			tamper: func(t *testing.T, db *sql.DB, _ []*pipeline.Record) {
				mustExec(t, db, `UPDATE verdicts SET id = -2 WHERE id = 2`)
				mustExec(t, db, `UPDATE verdicts SET id = 2 WHERE id = 4`)
				mustExec(t, db, `UPDATE verdicts SET id = 4 WHERE id = -2`)
			},
			wantID: 2, wantRecords: 1, wantReason: "previous hash",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "verdicts.db")
			s := openStore(t, path)
			_, recs := appendN(t, s, 5)
			if st := verify(t, s); !st.OK() || st.Records != 5 {
				t.Fatalf("Verify before tampering = %+v", st)
			}
			tc.tamper(t, rawDB(t, path), recs)

			st := verify(t, s)
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
			st2 := verify(t, openStore(t, path))
			if st2 != st {
				t.Errorf("Verify through a new handle = %+v, want %+v", st2, st)
			}
		})
	}
}

func TestAppendRefusesNewChainOverDeletedStore(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "verdicts.db")
	s := openStore(t, path)
	appendN(t, s, 3)
	mustExec(t, rawDB(t, path), `DELETE FROM verdicts`)

	if rec, err := s.Append(ctx, testReport(9)); err == nil {
		t.Fatalf("Append over a deleted store = record %d, want an error", rec.ID)
	}
	got, err := s.List(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Errorf("the refused Append left %d records", len(got))
	}
	if st := verify(t, s); st.OK() {
		t.Errorf("Verify = %+v after the refused Append, want the deletion still reported", st)
	}
}

// TestDeletedTailStaysDetected deletes the newest records and lets the gate
// carry on appending: the deletion must stay visible (or Append must refuse,
// as it does over a store whose records were all deleted). Otherwise the
// next appends reuse the deleted ids and the chain verifies again.
func TestDeletedTailStaysDetected(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "verdicts.db")
	s := openStore(t, path)
	appendN(t, s, 5)
	mustExec(t, rawDB(t, path), `DELETE FROM verdicts WHERE id >= 4`)
	if st := verify(t, s); st.OK() {
		t.Fatalf("Verify right after deleting records 4 and 5 = %+v, want them reported", st)
	}
	for i := 0; i < 3; i++ {
		rec, err := s.Append(ctx, testReport(10+i))
		if err != nil {
			return // refusing to extend a chain with a deleted tail is fine
		}
		if st := verify(t, s); st.OK() {
			t.Fatalf("after deleting records 4 and 5 and appending %d more (the last got id %d), Verify = %+v: the deletion is no longer detected", i+1, rec.ID, st)
		}
	}
}

func TestConcurrentAppends(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "verdicts.db")

	// Two handles on one file. (Opening them at once on a fresh file is
	// TestConcurrentOpenFreshStore.)
	handles := [2]*sqlite.Store{openStore(t, path), openStore(t, path)}
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
					rec, err := s.Append(ctx, testReport(h*1000+g*100+n))
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
		st := verify(t, s)
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

// TestConcurrentOpenFreshStore opens a new store from several handles at
// once, as gates or audit workers starting together on a new machine do.
// Every Open must succeed: concurrent writers are meant to queue (the store
// sets a 30 s busy timeout), not to fail with "database is locked".
func TestConcurrentOpenFreshStore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	const trials, handles = 300, 4
	failed := 0
	for trial := 0; trial < trials; trial++ {
		path := filepath.Join(dir, fmt.Sprintf("verdicts-%d.db", trial))
		var wg sync.WaitGroup
		start := make(chan struct{})
		stores := make([]*sqlite.Store, handles)
		errs := make([]error, handles)
		for h := range handles {
			wg.Go(func() {
				<-start
				stores[h], errs[h] = sqlite.Open(ctx, path)
			})
		}
		close(start)
		wg.Wait()
		for h, err := range errs {
			if err != nil {
				failed++
				if failed <= 3 {
					t.Errorf("trial %d, handle %d: %v", trial, h, err)
				}
				continue
			}
			stores[h].Close()
		}
	}
	if failed > 0 {
		t.Errorf("%d of %d concurrent first opens failed", failed, trials*handles)
	}
}

// TestSurvivesKill kills a process that is appending large reports, at a
// random moment, several times over on the same file. Every time, what is
// left must be a whole chain of whole records.
func TestSurvivesKill(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a writer process several times")
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "verdicts.db")
	prev := 0
	for round := 1; round <= 5; round++ {
		cmdCtx, cancel := context.WithTimeout(ctx, 2*time.Minute) // a safety net, not an assertion
		cmd := exec.CommandContext(cmdCtx, os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), helperEnv+"="+path)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if strings.TrimSpace(line) != "ready" {
			cmd.Process.Kill()
			cmd.Wait()
			cancel()
			t.Fatalf("round %d: the writer said %q (%v) instead of ready; stderr:\n%s", round, line, err, stderr.String())
		}
		time.Sleep(time.Duration(rand.IntN(400)) * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatalf("round %d: SIGKILL: %v", round, err)
		}
		cmd.Wait()
		cancel()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("round %d: the writer ended by itself (%v) instead of being killed; stderr:\n%s", round, cmd.ProcessState, stderr.String())
		}

		n := checkWholeStore(t, path)
		t.Logf("round %d: %d records", round, n)
		if n <= prev {
			t.Fatalf("round %d: %d records after the kill, want more than the %d before", round, n, prev)
		}
		prev = n
	}
}

// checkWholeStore opens the store, checks its chain and every record, and
// returns how many records it holds.
func checkWholeStore(t *testing.T, path string) int {
	t.Helper()
	ctx := context.Background()
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatalf("Open after the kill: %v", err)
	}
	defer s.Close()
	var integrity string
	if err := rawDB(t, path).QueryRow(`PRAGMA integrity_check`).Scan(&integrity); err != nil || integrity != "ok" {
		t.Fatalf("integrity_check after the kill: %q, %v", integrity, err)
	}
	st, err := s.Verify(ctx)
	if err != nil {
		t.Fatalf("Verify after the kill: %v", err)
	}
	if !st.OK() {
		t.Fatalf("Verify after the kill = %+v", st)
	}
	list, err := s.List(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != st.Records {
		t.Fatalf("List has %d records, Verify counted %d", len(list), st.Records)
	}
	for _, l := range list {
		rec, err := s.Get(ctx, l.ID)
		if err != nil {
			t.Fatalf("Get(%d) after the kill: %v", l.ID, err)
		}
		var r pipeline.Report
		if err := json.Unmarshal(rec.Report, &r); err != nil {
			t.Fatalf("record %d: report of %d bytes does not parse: %v", rec.ID, len(rec.Report), err)
		}
		if r.Candidate.Digest != rec.CandidateDigest || len(r.Findings) < 2 {
			t.Fatalf("record %d: report for %s with %d findings, want %s with its findings", rec.ID, r.Candidate.Digest, len(r.Findings), rec.CandidateDigest)
		}
		if h := pipeline.RecordHash(rec); h != rec.Hash {
			t.Fatalf("record %d: hash %s, contents hash to %s", rec.ID, rec.Hash, h)
		}
	}
	return st.Records
}

func TestOpenCreatesMissingDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing", "nested", "verdicts.db")
	s := openStore(t, path)
	if _, err := s.Append(context.Background(), testReport(1)); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || !fi.Mode().IsRegular() {
		t.Fatalf("after Open and Append, %s: %v, %v; want a file", path, fi, err)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, path string
	}{
		{"a directory", dir},
		{"a file inside a file", func() string {
			f := filepath.Join(dir, "plain")
			if err := os.WriteFile(f, []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(f, "verdicts.db")
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := sqlite.Open(context.Background(), tc.path)
			if err == nil {
				s.Close()
				t.Fatalf("Open(%s) on %s succeeded", tc.path, tc.name)
			}
			if !strings.Contains(err.Error(), tc.path) {
				t.Errorf("Open(%s) error %q does not name the path", tc.path, err)
			}
		})
	}
	if s, err := sqlite.Open(context.Background(), ""); err == nil {
		s.Close()
		t.Error("Open(\"\") succeeded")
	}
}
