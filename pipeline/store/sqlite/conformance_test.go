package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/store/sqlite"
	"github.com/fwvet/fwvet/pipeline/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Backend{
		New: func(t *testing.T) (func(t *testing.T) pipeline.Store, storetest.Raw) {
			path := filepath.Join(t.TempDir(), "verdicts.db")
			// The table exists before the raw handle first looks at it.
			openStore(t, path)
			return func(t *testing.T) pipeline.Store {
				s, err := sqlite.Open(context.Background(), path)
				if err != nil {
					t.Fatalf("Open(%s): %v", path, err)
				}
				return s
			}, rawStore{path}
		},
		NotFound: sqlite.ErrNotFound,
	})
}

// rawStore reaches the SQLite file directly.
type rawStore struct{ path string }

func (r rawStore) Exec(t *testing.T, q string, args ...any) {
	t.Helper()
	mustExec(t, rawDB(t, r.path), q, args...)
}

func (r rawStore) Columns(t *testing.T) []string {
	t.Helper()
	rows, err := rawDB(t, r.path).Query(`SELECT name FROM pragma_table_info('verdicts')`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var cols []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		cols = append(cols, n)
	}
	return cols
}

func (r rawStore) Touch(t *testing.T, id int64, col string) {
	t.Helper()
	set := col + ` = ` + col + ` || 'x'`
	switch col {
	case "report":
		set = `report = CAST(report || ' ' AS BLOB)`
	case "created_at": // still a time, so that the record reads
		set = `created_at = '2001-01-01T00:00:00Z'`
	}
	r.Exec(t, `UPDATE verdicts SET `+set+` WHERE id = ?`, id)
}

func (r rawStore) SetSeq(t *testing.T, n int64) {
	t.Helper()
	r.Exec(t, `UPDATE sqlite_sequence SET seq = ? WHERE name = 'verdicts'`, n)
}
