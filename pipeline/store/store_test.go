package store_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/fixture"
	"github.com/fwvet/fwvet/pipeline/store"
	"github.com/fwvet/fwvet/pipeline/store/sqlite"
)

func report() *pipeline.Report {
	return &pipeline.Report{
		Schema:    pipeline.ReportSchema,
		Candidate: pipeline.Subject{Ref: "fw.bin", Digest: "sha256:" + strings.Repeat("ab", 32)},
		Verdict:   pipeline.VerdictPass,
	}
}

func TestOpenSQLite(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for _, tc := range []struct {
		name, dsn, file string
	}{
		{"sqlite scheme", "sqlite:" + filepath.Join(dir, "a", "verdicts.db"), filepath.Join(dir, "a", "verdicts.db")},
		{"bare path", filepath.Join(dir, "b", "verdicts.db"), filepath.Join(dir, "b", "verdicts.db")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := store.Open(ctx, tc.dsn)
			if err != nil {
				t.Fatalf("Open(%q): %v", tc.dsn, err)
			}
			defer s.Close()
			if _, ok := s.(*sqlite.Store); !ok {
				t.Errorf("Open(%q) = %T, want a SQLite store", tc.dsn, s)
			}
			rec, err := s.Append(ctx, report())
			if err != nil {
				t.Fatalf("Append: %v", err)
			}
			if rec.ID != 1 {
				t.Errorf("first record has id %d", rec.ID)
			}
			if fi, err := os.Stat(tc.file); err != nil || !fi.Mode().IsRegular() {
				t.Errorf("Open(%q) did not create %s: %v", tc.dsn, tc.file, err)
			}
		})
	}
	// The same file through both spellings is the same store.
	s, err := store.Open(ctx, "sqlite:"+filepath.Join(dir, "b", "verdicts.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st, err := s.Verify(ctx)
	if err != nil || !st.OK() || st.Records != 1 {
		t.Errorf("Verify through sqlite: on a bare-path store = %+v, %v; want OK with 1 record", st, err)
	}
}

func TestOpenRejects(t *testing.T) {
	// Nothing listens there: the errors must not show the passwords.
	host := fmt.Sprintf("127.0.0.1:%d", fixture.FreePort(t))
	for _, tc := range []struct {
		name, dsn, want string
		secrets         []string
	}{
		{"postgres", "postgres://user:secret@" + host + "/fwvet?connect_timeout=5", "postgres store", []string{"secret"}},
		{"postgresql", "postgresql://gate:hunter2@" + host + "/fwvet?sslmode=disable&connect_timeout=5", "postgres store", []string{"hunter2"}},
		{"password with @", "postgres://user:p@ss@" + host + "/fwvet", "postgres store", []string{"p@ss", ":p"}},
		{"password in the query", "postgres://" + host + "/fwvet?user=gate&password=secret&connect_timeout=5", "postgres store", []string{"secret"}},
		{"unknown scheme", "mysql://root:secret@db.example/fwvet", "unknown store type", []string{"secret"}},
		{"empty sqlite path", "sqlite:", "empty path", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := store.Open(context.Background(), tc.dsn)
			if err == nil {
				s.Close()
				t.Fatalf("Open(%q) succeeded", tc.dsn)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Open(%q) error %q, want it to say %q", tc.dsn, err, tc.want)
			}
			for _, secret := range tc.secrets {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("Open(%q) error %q shows the password %q", tc.dsn, err, secret)
				}
			}
		})
	}
}

func TestDefaultPath(t *testing.T) {
	t.Run("XDG_DATA_HOME", func(t *testing.T) {
		dir := t.TempDir()
		t.Setenv("XDG_DATA_HOME", dir)
		got, err := store.DefaultPath()
		if err != nil {
			t.Fatal(err)
		}
		if want := filepath.Join(dir, "fwvet", "verdicts.db"); got != want {
			t.Errorf("DefaultPath() = %q, want %q", got, want)
		}
		dsn, err := store.DefaultDSN()
		if err != nil {
			t.Fatal(err)
		}
		if want := "sqlite:" + filepath.Join(dir, "fwvet", "verdicts.db"); dsn != want {
			t.Errorf("DefaultDSN() = %q, want %q", dsn, want)
		}
	})
	t.Run("home", func(t *testing.T) {
		home := t.TempDir()
		t.Setenv("XDG_DATA_HOME", "")
		t.Setenv("HOME", home)
		got, err := store.DefaultPath()
		if err != nil {
			t.Fatal(err)
		}
		if want := filepath.Join(home, ".local", "share", "fwvet", "verdicts.db"); got != want {
			t.Errorf("DefaultPath() = %q, want %q", got, want)
		}
	})
}
