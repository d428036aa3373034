package sqlite_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/store/sqlite"
)

// TestVerifyDetectsAnEditOfEachColumn edits every column of the verdicts
// table in turn, on record 3 of 5: Verify must name record 3 each time.
func TestVerifyDetectsAnEditOfEachColumn(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cols.db")
	s := openStore(t, path)
	appendN(t, s, 1)
	rows, err := rawDB(t, path).Query(`SELECT name FROM pragma_table_info('verdicts')`)
	if err != nil {
		t.Fatal(err)
	}
	var cols []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		cols = append(cols, n)
	}
	rows.Close()
	if len(cols) < 13 {
		t.Fatalf("verdicts has columns %v, want at least 13", cols)
	}
	for _, col := range cols {
		t.Run(col, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "verdicts.db")
			s := openStore(t, path)
			appendN(t, s, 5)
			set := col + ` = ` + col + ` || 'x'`
			switch col {
			case "id":
				set = `id = 103`
			case "report":
				set = `report = CAST(report || ' ' AS BLOB)`
			}
			mustExec(t, rawDB(t, path), `UPDATE verdicts SET `+set+` WHERE id = 3`)
			st := verify(t, s)
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

// TestOldHashForm: records written before the hash covered candidate_version
// and platform still verify, but only while those columns equal the report.
func TestOldHashForm(t *testing.T) {
	for _, tc := range []struct {
		name, set string
		wantOK    bool
	}{
		{"untouched", "", true},
		{"edited version", `candidate_version = '9.9'`, false},
		{"edited platform", `platform = 'linux/arm64'`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "verdicts.db")
			s := openStore(t, path)
			report, err := json.Marshal(testReport(1))
			if err != nil {
				t.Fatal(err)
			}
			rec := &pipeline.Record{ID: 1, CreatedAt: time.Now().UTC().Truncate(time.Microsecond), CandidateRef: "r", CandidateDigest: digest(1),
				Verdict: pipeline.VerdictFail, Report: report, PrevHash: pipeline.Genesis, CandidateVersion: "1.1"}
			rec.Hash = pipeline.RecordHashV1(rec)
			db := rawDB(t, path)
			mustExec(t, db, `INSERT INTO verdicts (id, created_at, candidate_ref, candidate_digest, baseline_ref, baseline_digest, verdict, policy_digest, report, prev_hash, hash, candidate_version, platform)
				VALUES (1, ?, ?, ?, '', '', ?, '', ?, ?, ?, ?, '')`, rec.CreatedAt.Format(time.RFC3339Nano), rec.CandidateRef, rec.CandidateDigest,
				string(rec.Verdict), rec.Report, rec.PrevHash, rec.Hash, rec.CandidateVersion)
			if tc.set != "" {
				mustExec(t, db, `UPDATE verdicts SET `+tc.set+` WHERE id = 1`)
			}
			if st := verify(t, s); st.OK() != tc.wantOK || (!tc.wantOK && st.BrokenID != 1) {
				t.Errorf("Verify = %+v, want OK %v", st, tc.wantOK)
			}
		})
	}
}

func TestOpenExistingNeverCreates(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.db")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, path string }{
		{"missing file", filepath.Join(dir, "typo.db")},
		{"missing directory", filepath.Join(dir, "nodir", "verdicts.db")},
		{"0-byte file", empty},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := sqlite.OpenExisting(context.Background(), tc.path)
			if err == nil {
				s.Close()
				t.Fatalf("OpenExisting(%s) succeeded", tc.path)
			}
			if !errors.Is(err, pipeline.ErrNoStore) || !strings.Contains(err.Error(), tc.path) {
				t.Errorf("OpenExisting(%s) = %v, want ErrNoStore naming the path", tc.path, err)
			}
			fi, serr := os.Stat(tc.path)
			if tc.name == "0-byte file" {
				if serr != nil || fi.Size() != 0 {
					t.Errorf("the empty file changed: %v, %v", fi, serr)
				}
			} else if serr == nil {
				t.Errorf("OpenExisting created %s", tc.path)
			}
		})
	}
	// An existing store opens and reads.
	path := filepath.Join(dir, "real.db")
	appendN(t, openStore(t, path), 2)
	s, err := sqlite.OpenExisting(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if st := verify(t, s); !st.OK() || st.Records != 2 {
		t.Errorf("Verify through OpenExisting = %+v", st)
	}
}

// TestHeadDetectsCutTail: cutting the last records and setting
// sqlite_sequence back verifies, but the head held outside the store is no
// longer in the chain.
func TestHeadDetectsCutTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "verdicts.db")
	s := openStore(t, path)
	_, recs := appendN(t, s, 5)
	st := verify(t, s)
	want := pipeline.ChainHead{ID: 5, Hash: recs[4].Hash}
	if st.Head != want {
		t.Fatalf("Head = %v, want %v", st.Head, want)
	}
	parsed, err := pipeline.ParseChainHead(st.Head.String())
	if err != nil || parsed != want {
		t.Fatalf("ParseChainHead(%q) = %v, %v", st.Head, parsed, err)
	}
	db := rawDB(t, path)
	mustExec(t, db, `DELETE FROM verdicts WHERE id >= 4`)
	mustExec(t, db, `UPDATE sqlite_sequence SET seq = 3 WHERE name = 'verdicts'`)
	st = verify(t, s)
	if !st.OK() {
		t.Fatalf("Verify = %+v: the cut is invisible without a head, as expected", st)
	}
	if st.Head.ID >= want.ID {
		t.Errorf("Head after the cut = %v, want below %v", st.Head, want)
	}
}

// TestAppendRefusesBrokenTail: a write onto a broken chain fails naming
// the broken record, until a segment is started.
func TestAppendRefusesBrokenTail(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tamper string
		wantID int64
	}{
		{"edited last record", `UPDATE verdicts SET verdict = 'pass' WHERE id = 5`, 5},
		{"edited last record's platform", `UPDATE verdicts SET platform = 'linux/arm64' WHERE id = 5`, 5},
		{"rewritten last prev_hash", `UPDATE verdicts SET prev_hash = '` + pipeline.Genesis + `' WHERE id = 5`, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "verdicts.db")
			s := openStore(t, path)
			appendN(t, s, 5)
			mustExec(t, rawDB(t, path), tc.tamper)
			_, err := s.Append(ctx, testReport(9))
			var be *pipeline.BrokenChainError
			if !errors.As(err, &be) || be.BrokenID != tc.wantID {
				t.Fatalf("Append onto a broken tail = %v, want a BrokenChainError naming record %d", err, tc.wantID)
			}
			st := verify(t, s)
			if st.Writable() {
				t.Fatalf("Verify = %+v, want the last segment not writable", st)
			}
			seg, err := s.StartSegment(ctx, st.TailBrokenID, st.TailReason)
			if err != nil {
				t.Fatal(err)
			}
			rec, err := s.Append(ctx, testReport(10))
			if err != nil {
				t.Fatalf("Append after a new segment: %v", err)
			}
			st = verify(t, s)
			if st.OK() || st.BrokenID != tc.wantID {
				t.Errorf("Verify after the new segment = %+v, want the old break still reported", st)
			}
			if !st.Writable() || st.Segments != 2 || st.SegmentStart != seg.ID || st.Head.ID != rec.ID {
				t.Errorf("Verify after the new segment = %+v, want 2 segments, the last from %d to %d", st, seg.ID, rec.ID)
			}
			// The segment start is hashed: turning it into something else
			// breaks the last segment again.
			mustExec(t, rawDB(t, path), `UPDATE verdicts SET verdict = 'fail' WHERE id = ?`, seg.ID)
			if st := verify(t, s); st.Writable() {
				t.Errorf("Verify after editing the segment start = %+v, want the last segment broken", st)
			}
		})
	}
}
