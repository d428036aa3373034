package sqlite_test

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
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
	"github.com/fwvet/fwvet/pipeline/store/chain"
	"github.com/fwvet/fwvet/pipeline/store/sqlite"
	"github.com/fwvet/fwvet/pipeline/store/storetest"
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
		r := storetest.BigReport(i, 1<<20+rand.IntN(3<<20))
		if _, err := s.Append(ctx, r); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			return 4
		}
		if i == 0 {
			fmt.Println("ready")
		}
	}
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
		if h := chain.Hash(rec); h != rec.Hash {
			t.Fatalf("record %d: hash %s, contents hash to %s", rec.ID, rec.Hash, h)
		}
	}
	return st.Records
}

func TestOpenCreatesMissingDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing", "nested", "verdicts.db")
	s := openStore(t, path)
	if _, err := s.Append(context.Background(), storetest.Report(1)); err != nil {
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
