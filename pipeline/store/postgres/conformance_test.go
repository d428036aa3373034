package postgres_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/fixture"
	"github.com/fwvet/fwvet/pipeline/store/postgres"
	"github.com/fwvet/fwvet/pipeline/store/storetest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	fixture.StopPostgres()
	os.Exit(code)
}

// TestConformance runs the store suite on a real PostgreSQL server.
func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Backend{
		New: func(t *testing.T) (func(t *testing.T) pipeline.Store, storetest.Raw) {
			dsn := fixture.PostgresDSN(t)
			open := func(t *testing.T) pipeline.Store {
				s, err := postgres.Open(context.Background(), dsn, true)
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				return s
			}
			open(t).Close() // the tables exist before the raw handle looks
			return open, rawStore{dsn}
		},
		NotFound: postgres.ErrNotFound,
	})
}

func TestOpenExistingNeverCreates(t *testing.T) {
	dsn := fixture.PostgresDSN(t)
	if s, err := postgres.Open(context.Background(), dsn, false); err == nil {
		s.Close()
		t.Fatal("opened a database without the store's tables")
	} else if !strings.Contains(err.Error(), "no verdicts table") {
		t.Errorf("error %q, want it to say the table is missing", err)
	}
}

// rawStore reaches the database behind the store's back.
type rawStore struct{ dsn string }

func (r rawStore) db(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", r.dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// Exec runs q with its ? placeholders numbered as PostgreSQL wants them.
func (r rawStore) Exec(t *testing.T, q string, args ...any) {
	t.Helper()
	n := 0
	var b strings.Builder
	for _, c := range q {
		if c == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(c)
	}
	res, err := r.db(t).Exec(b.String(), args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		t.Fatalf("%s: no row changed", q)
	}
}

func (r rawStore) Columns(t *testing.T) []string {
	t.Helper()
	rows, err := r.db(t).Query(`SELECT column_name FROM information_schema.columns WHERE table_name = 'verdicts' ORDER BY ordinal_position`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var cols []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			t.Fatal(err)
		}
		cols = append(cols, c)
	}
	return cols
}

func (r rawStore) Touch(t *testing.T, id int64, col string) {
	t.Helper()
	set := col + ` = ` + col + ` || 'x'`
	switch col {
	case "report":
		set = `report = report || '\x20'::bytea`
	case "created_at": // still a time, so that the record reads
		set = `created_at = '2001-01-01T00:00:00Z'`
	}
	r.Exec(t, `UPDATE verdicts SET `+set+` WHERE id = ?`, id)
}

func (r rawStore) SetSeq(t *testing.T, n int64) {
	t.Helper()
	r.Exec(t, `UPDATE verdicts_seq SET seq = ? WHERE one`, n)
}
