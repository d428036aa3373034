package main_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/fixture"
	"github.com/fwvet/fwvet/pipeline/store/sqlite"
)

// fillStore appends n small reports to the env's store, without vetting.
func (e *env) fillStore(n int) []*pipeline.Record {
	e.t.Helper()
	s, err := sqlite.Open(context.Background(), e.storePath())
	if err != nil {
		e.t.Fatal(err)
	}
	defer s.Close()
	var recs []*pipeline.Record
	for i := 1; i <= n; i++ {
		rec, err := s.Append(context.Background(), &pipeline.Report{
			Schema:    pipeline.ReportSchema,
			Candidate: pipeline.Subject{Ref: fmt.Sprintf("registry.example/fw:1.%d", i), Digest: fmt.Sprintf("sha256:%064d", i), Version: fmt.Sprintf("1.%d", i), Platform: "linux/arm64"},
			Verdict:   pipeline.VerdictPass, PolicyDigest: "sha256:" + strings.Repeat("0", 64),
		})
		if err != nil {
			e.t.Fatal(err)
		}
		recs = append(recs, rec)
	}
	return recs
}

func (e *env) storePath() string { return strings.TrimPrefix(e.store, "sqlite:") }

func (e *env) sql(q string, args ...any) {
	e.t.Helper()
	db, err := sql.Open("sqlite", e.storePath())
	if err != nil {
		e.t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(q, args...); err != nil {
		e.t.Fatalf("%s: %v", q, err)
	}
}

// TestStoreVerifyNamesEachEditedColumn edits each column of record 3 in
// turn; verdicts verify must exit 2 naming record 3 every time.
func TestStoreVerifyNamesEachEditedColumn(t *testing.T) {
	cols := []string{"id", "created_at", "candidate_ref", "candidate_digest", "baseline_ref", "baseline_digest", "verdict",
		"policy_digest", "report", "prev_hash", "hash", "candidate_version", "platform"}
	for _, col := range cols {
		t.Run(col, func(t *testing.T) {
			e := newEnv(t)
			e.fillStore(5)
			set := col + ` = ` + col + ` || 'x'`
			want := "BROKEN at verdict 3:"
			switch col {
			case "id":
				set, want = `id = 103`, "records 3 to 3 are missing" // record 3 is gone from its place
			case "report":
				set = `report = CAST(report || ' ' AS BLOB)`
			}
			e.sql(`UPDATE verdicts SET ` + set + ` WHERE id = 3`)
			r := e.run("verdicts", "verify", "--store", e.store)
			if r.code != 2 || !strings.Contains(r.stdout, want) {
				t.Errorf("verify after editing %s: exit %d, want 2 and %q\n%s%s", col, r.code, want, r.stdout, r.stderr)
			}
		})
	}
}

// TestStoreReadingCommandsNeverCreate: list, show and verify on a missing
// or empty store fail naming it and create nothing.
func TestStoreReadingCommandsNeverCreate(t *testing.T) {
	e := newEnv(t)
	empty := filepath.Join(e.dir, "empty.db")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	fresh := filepath.Join(e.dir, "fresh.db") // a store with no verdict in it
	s, err := sqlite.Open(context.Background(), fresh)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	for _, path := range []string{filepath.Join(e.dir, "typo", "verdicts.db"), filepath.Join(e.dir, "typo.db"), empty, fresh} {
		for _, args := range [][]string{{"verify"}, {"list"}, {"show", "1"}} {
			if path == fresh && args[0] != "verify" {
				continue // an existing store with no verdicts lists nothing
			}
			r := e.run(append(append([]string{"verdicts"}, args...), "--store", "sqlite:"+path)...)
			if r.code != 1 || !strings.Contains(r.stderr, path) {
				t.Errorf("verdicts %s on %s: exit %d, want 1 naming the store\n%s%s", args[0], path, r.code, r.stdout, r.stderr)
			}
			if strings.Contains(r.stdout, "intact") {
				t.Errorf("verdicts %s on %s says the chain is intact:\n%s", args[0], path, r.stdout)
			}
		}
	}
	for _, p := range []string{filepath.Join(e.dir, "typo"), filepath.Join(e.dir, "typo.db")} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("a reading command created %s", p)
		}
	}
	if fi, err := os.Stat(empty); err != nil || fi.Size() != 0 {
		t.Errorf("a reading command changed the empty file: %v, %v", fi, err)
	}
}

var headRE = regexp.MustCompile(`head (\d+:sha256:[0-9a-f]{64})`)

// TestStoreVerifyHead: a head held outside the store catches records cut
// from the end with sqlite_sequence set back, which the chain alone cannot.
func TestStoreVerifyHead(t *testing.T) {
	e := newEnv(t)
	recs := e.fillStore(5)
	r := e.run("verdicts", "verify", "--store", e.store)
	m := headRE.FindStringSubmatch(r.stdout)
	if r.code != 0 || m == nil || m[1] != "5:sha256:"+recs[4].Hash {
		t.Fatalf("verify: exit %d, want 0 and head 5:sha256:%s\n%s%s", r.code, recs[4].Hash, r.stdout, r.stderr)
	}
	head := m[1]
	if r := e.run("verdicts", "verify", "--store", e.store, "--head", head); r.code != 0 {
		t.Fatalf("verify --head on the untouched store: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	older := "3:sha256:" + recs[2].Hash
	e.sql(`DELETE FROM verdicts WHERE id >= 4`)
	e.sql(`UPDATE sqlite_sequence SET seq = 3 WHERE name = 'verdicts'`)
	for _, tc := range []struct {
		head string
		code int
	}{
		{head, 2},
		{older, 0},
		{"3:sha256:" + recs[4].Hash, 2}, // record 3 has another hash
	} {
		r := e.run("verdicts", "verify", "--store", e.store, "--head", tc.head)
		if r.code != tc.code || (tc.code == 2 && !strings.Contains(r.stdout, "no longer contains head "+tc.head)) {
			t.Errorf("verify --head %s after cutting records 4 and 5: exit %d, want %d\n%s%s", tc.head, r.code, tc.code, r.stdout, r.stderr)
		}
	}
	if r := e.run("verdicts", "verify", "--store", e.store, "--head", "five"); r.code != 1 {
		t.Errorf("verify --head five: exit %d, want 1 (a bad flag)", r.code)
	}
}

// TestStoreRefusesWriteOntoBrokenChain: vet onto a broken chain fails
// naming the broken record unless --store-new-segment, after which verify
// reports both segments and still the old break.
func TestStoreRefusesWriteOntoBrokenChain(t *testing.T) {
	base := fixture.Path(t, "fw/rootfs-1.0.0.sqfs")
	clean := fixture.Path(t, "fw/rootfs-1.0.1.sqfs")
	for _, tc := range []struct{ name, tamper string }{
		{"edited platform of the last record", `UPDATE verdicts SET platform = 'linux/amd64' WHERE id = 2`},
		{"edited verdict of a middle record", `UPDATE verdicts SET verdict = 'fail' WHERE id = 2`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.fillStore(3)
			if !strings.Contains(tc.name, "middle") {
				e.sql(`DELETE FROM verdicts WHERE id = 3`)
				e.sql(`UPDATE sqlite_sequence SET seq = 2 WHERE name = 'verdicts'`)
			}
			e.sql(tc.tamper)
			r := e.run("vet", clean, "--baseline", base, "--store", e.store, "--format", "json")
			if r.code != 1 || !strings.Contains(r.stderr, "broken at record 2") {
				t.Fatalf("vet onto a broken chain: exit %d, want 1 naming record 2\n%s", r.code, r.stderr)
			}
			r = e.run("vet", clean, "--baseline", base, "--store", e.store, "--format", "json", "--store-new-segment")
			if r.code == 1 {
				t.Fatalf("vet --store-new-segment: exit 1\n%s", r.stderr)
			}
			r = e.run("verdicts", "verify", "--store", e.store)
			if r.code != 2 || !strings.Contains(r.stdout, "2 segments") || !strings.Contains(r.stdout, "BROKEN at verdict 2") {
				t.Errorf("verify after a new segment: exit %d, want 2 with 2 segments and the old break\n%s%s", r.code, r.stdout, r.stderr)
			}
			// The new segment is writable.
			if r := e.run("vet", clean, "--baseline", base, "--store", e.store, "--format", "json"); r.code == 1 {
				t.Errorf("vet after the new segment: exit 1\n%s", r.stderr)
			}
			// --last-segment passes an intact last segment, still naming
			// the old break, and fails once the last segment is edited.
			r = e.run("verdicts", "verify", "--store", e.store, "--last-segment")
			if r.code != 0 || !strings.Contains(r.stdout, "BROKEN at verdict 2") || !strings.Contains(r.stdout, "ok: the last segment") {
				t.Errorf("verify --last-segment after a new segment: exit %d, want 0 naming the old break\n%s%s", r.code, r.stdout, r.stderr)
			}
			e.sql(`UPDATE verdicts SET platform = platform || 'x' WHERE id = (SELECT MAX(id) FROM verdicts)`)
			r = e.run("verdicts", "verify", "--store", e.store, "--last-segment")
			if r.code != 2 || !strings.Contains(r.stdout, "BROKEN in the last segment") {
				t.Errorf("verify --last-segment after editing the last segment: exit %d, want 2 naming it\n%s%s", r.code, r.stdout, r.stderr)
			}
		})
	}
}
