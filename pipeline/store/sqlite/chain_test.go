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
	"github.com/fwvet/fwvet/pipeline/store/chain"
	"github.com/fwvet/fwvet/pipeline/store/sqlite"
	"github.com/fwvet/fwvet/pipeline/store/storetest"
)

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
			report, err := json.Marshal(storetest.Report(1))
			if err != nil {
				t.Fatal(err)
			}
			rec := &pipeline.Record{ID: 1, CreatedAt: time.Now().UTC().Truncate(time.Microsecond), CandidateRef: "r", CandidateDigest: storetest.Digest(1),
				Verdict: pipeline.VerdictFail, Report: report, PrevHash: chain.Genesis, CandidateVersion: "1.1"}
			rec.Hash = chain.HashV1(rec)
			db := rawDB(t, path)
			mustExec(t, db, `INSERT INTO verdicts (id, created_at, candidate_ref, candidate_digest, baseline_ref, baseline_digest, verdict, policy_digest, report, prev_hash, hash, candidate_version, platform)
				VALUES (1, ?, ?, ?, '', '', ?, '', ?, ?, ?, ?, '')`, rec.CreatedAt.Format(time.RFC3339Nano), rec.CandidateRef, rec.CandidateDigest,
				string(rec.Verdict), rec.Report, rec.PrevHash, rec.Hash, rec.CandidateVersion)
			if tc.set != "" {
				mustExec(t, db, `UPDATE verdicts SET `+tc.set+` WHERE id = 1`)
			}
			if st := storetest.Verify(t, s); st.OK() != tc.wantOK || (!tc.wantOK && st.BrokenID != 1) {
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
	storetest.AppendN(t, openStore(t, path), 2)
	s, err := sqlite.OpenExisting(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if st := storetest.Verify(t, s); !st.OK() || st.Records != 2 {
		t.Errorf("Verify through OpenExisting = %+v", st)
	}
}
