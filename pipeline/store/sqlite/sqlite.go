// Package sqlite keeps verdicts in a SQLite file through the pure-Go
// modernc.org/sqlite driver, as an append-only hash chain.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"modernc.org/sqlite" // also registers the database/sql driver "sqlite"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/store/chain"
)

const schema = `
CREATE TABLE IF NOT EXISTS verdicts (
	id               INTEGER PRIMARY KEY AUTOINCREMENT,
	created_at       TEXT NOT NULL,
	candidate_ref    TEXT NOT NULL,
	candidate_digest TEXT NOT NULL,
	baseline_ref     TEXT NOT NULL,
	baseline_digest  TEXT NOT NULL,
	verdict          TEXT NOT NULL,
	policy_digest    TEXT NOT NULL,
	report           BLOB NOT NULL,
	prev_hash        TEXT NOT NULL,
	hash             TEXT NOT NULL UNIQUE
);
CREATE INDEX IF NOT EXISTS verdicts_candidate ON verdicts (candidate_digest, policy_digest);
`

// columnsAdded are columns later versions added; a store made before them
// gains them when opened. chain.Hash covers them; records hashed before it
// did verify only while they equal what the hashed report says.
var columnsAdded = []string{
	"candidate_version TEXT NOT NULL DEFAULT ''",
	"platform TEXT NOT NULL DEFAULT ''",
}

// Store is a verdict store in one SQLite file.
type Store struct {
	db   *sql.DB
	path string
}

var _ pipeline.Store = (*Store)(nil)

// Open opens (creating if needed) the store at path. The database runs in
// WAL mode with full sync, and every write takes the write lock when its
// transaction begins, so concurrent writers queue instead of forking the chain.
func Open(ctx context.Context, path string) (*Store, error) {
	return open(ctx, path, true)
}

// OpenExisting opens the store at path for reading: it never creates one,
// and a missing or empty (0-byte, or without a verdicts table) file is an
// error wrapping pipeline.ErrNoStore.
func OpenExisting(ctx context.Context, path string) (*Store, error) {
	return open(ctx, path, false)
}

func open(ctx context.Context, path string, create bool) (*Store, error) {
	if path == "" {
		return nil, errors.New("sqlite store: empty path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite store %s: %w", path, err)
	}
	if create {
		if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
			return nil, fmt.Errorf("sqlite store %s: creating its directory: %w", path, err)
		}
	} else {
		fi, err := os.Stat(abs)
		switch {
		case errors.Is(err, os.ErrNotExist):
			return nil, fmt.Errorf("sqlite store %s: %w: the file does not exist", path, pipeline.ErrNoStore)
		case err != nil:
			return nil, fmt.Errorf("sqlite store %s: %w", path, err)
		case !fi.Mode().IsRegular():
			return nil, fmt.Errorf("sqlite store %s: not a regular file", path)
		case fi.Size() == 0:
			return nil, fmt.Errorf("sqlite store %s: %w: the file is empty", path, pipeline.ErrNoStore)
		}
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(30000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_txlock", "immediate")
	dsn := "file:" + (&url.URL{Path: abs}).EscapedPath() + "?" + q.Encode()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlite store %s: %w", path, err)
	}
	// Switching a new file to WAL takes a lock the busy timeout does not
	// wait for, so several processes opening a fresh store at once retry.
	if !create {
		var n int
		err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'verdicts'`).Scan(&n)
		if err == nil && n == 0 {
			err = fmt.Errorf("%w: the file has no verdicts table", pipeline.ErrNoStore)
		}
		if err == nil {
			err = addColumns(ctx, db)
		}
		if err != nil {
			db.Close()
			return nil, fmt.Errorf("sqlite store %s: %w", path, err)
		}
		return &Store{db: db, path: abs}, nil
	}
	for attempt, wait := 1, 20*time.Millisecond; ; attempt++ {
		_, err = db.ExecContext(ctx, schema)
		if err == nil || !isBusy(err) || attempt == 30 {
			break
		}
		select {
		case <-ctx.Done():
			err = ctx.Err()
		case <-time.After(wait):
			wait = min(wait*2, 500*time.Millisecond)
			continue
		}
		break
	}
	if err == nil {
		err = addColumns(ctx, db)
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite store %s: creating schema: %w", path, err)
	}
	return &Store{db: db, path: abs}, nil
}

func addColumns(ctx context.Context, db *sql.DB) error {
	have := map[string]bool{}
	rows, err := db.QueryContext(ctx, `SELECT name FROM pragma_table_info('verdicts')`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return err
		}
		have[n] = true
	}
	rows.Close()
	for _, col := range columnsAdded {
		name, _, _ := strings.Cut(col, " ")
		if have[name] {
			continue
		}
		if _, err := db.ExecContext(ctx, `ALTER TABLE verdicts ADD COLUMN `+col); err != nil && !strings.Contains(err.Error(), "duplicate column") {
			return err
		}
	}
	return nil
}

// isBusy reports SQLITE_BUSY and its extended codes.
func isBusy(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == 5
}

// Close implements pipeline.Store.
func (s *Store) Close() error { return s.db.Close() }

// Append implements pipeline.Store. Reading the chain head and inserting the
// new record happen in one immediate transaction; chain.Append links it.
func (s *Store) Append(ctx context.Context, r *pipeline.Report) (*pipeline.Record, error) {
	rec, err := chain.NewRecord(r)
	if err != nil {
		return nil, err
	}
	return s.insert(ctx, rec)
}

// StartSegment implements pipeline.Store: it appends, even after a broken
// tail, a record that says a new segment starts here and names the break.
func (s *Store) StartSegment(ctx context.Context, brokenID int64, reason string) (*pipeline.Record, error) {
	rec, err := chain.NewSegmentStart(brokenID, reason)
	if err != nil {
		return nil, err
	}
	return s.insert(ctx, rec)
}

func (s *Store) insert(ctx context.Context, rec *pipeline.Record) (*pipeline.Record, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("storing verdict in %s: %w", s.path, err)
	}
	defer tx.Rollback()
	if err := chain.Append(ctx, sqlTx{tx}, rec, s.path); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("storing verdict in %s: commit: %w", s.path, err)
	}
	return rec, nil
}

// sqlTx is a chain.Tx over an immediate transaction, which holds the
// database's write lock from its first statement.
type sqlTx struct{ tx *sql.Tx }

func (t sqlTx) Seq(ctx context.Context) (int64, error) {
	var seq sql.NullInt64
	err := t.tx.QueryRowContext(ctx, `SELECT seq FROM sqlite_sequence WHERE name = 'verdicts'`).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		err = nil
	}
	return seq.Int64, err
}

func (t sqlTx) Tail(ctx context.Context) ([]pipeline.Record, error) {
	var last pipeline.Record
	err := scanRecord(t.tx.QueryRowContext(ctx, `SELECT `+columns+`, report FROM verdicts ORDER BY id DESC LIMIT 1`), &last, &last.Report)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, nil
	case err != nil:
		return nil, err
	}
	var before pipeline.Record
	err = t.tx.QueryRowContext(ctx, `SELECT id, hash FROM verdicts WHERE id < ? ORDER BY id DESC LIMIT 1`, last.ID).Scan(&before.ID, &before.Hash)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return []pipeline.Record{last}, nil
	case err != nil:
		return nil, fmt.Errorf("reading the record before the chain head: %w", err)
	}
	return []pipeline.Record{last, before}, nil
}

func (t sqlTx) Insert(ctx context.Context, rec *pipeline.Record) error {
	_, err := t.tx.ExecContext(ctx, `INSERT INTO verdicts (id, created_at, candidate_ref, candidate_digest, baseline_ref, baseline_digest, verdict, policy_digest, report, prev_hash, hash, candidate_version, platform)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		rec.ID, rec.CreatedAt.Format(time.RFC3339Nano), rec.CandidateRef, rec.CandidateDigest, rec.BaselineRef, rec.BaselineDigest,
		string(rec.Verdict), rec.PolicyDigest, rec.Report, rec.PrevHash, rec.Hash, rec.CandidateVersion, rec.Platform)
	return err
}

const columns = `id, created_at, candidate_ref, candidate_digest, baseline_ref, baseline_digest, verdict, policy_digest, prev_hash, hash, candidate_version, platform`

type scanner interface{ Scan(...any) error }

func scanRecord(row scanner, rec *pipeline.Record, extra ...any) error {
	var created, verdict string
	dest := append([]any{&rec.ID, &created, &rec.CandidateRef, &rec.CandidateDigest, &rec.BaselineRef, &rec.BaselineDigest,
		&verdict, &rec.PolicyDigest, &rec.PrevHash, &rec.Hash, &rec.CandidateVersion, &rec.Platform}, extra...)
	if err := row.Scan(dest...); err != nil {
		return err
	}
	t, err := time.Parse(time.RFC3339Nano, created)
	if err != nil {
		return fmt.Errorf("record %d: bad created_at %q", rec.ID, created)
	}
	rec.CreatedAt, rec.Verdict = t, pipeline.Verdict(verdict)
	return nil
}

// List implements pipeline.Store.
func (s *Store) List(ctx context.Context, limit int) ([]pipeline.Record, error) {
	if limit <= 0 {
		limit = -1
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+columns+` FROM verdicts ORDER BY id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("listing verdicts in %s: %w", s.path, err)
	}
	defer rows.Close()
	var out []pipeline.Record
	for rows.Next() {
		var rec pipeline.Record
		if err := scanRecord(rows, &rec); err != nil {
			return nil, fmt.Errorf("listing verdicts in %s: %w", s.path, err)
		}
		out = append(out, rec)
	}
	return out, rows.Err()
}

// ErrNotFound is returned by Get for an id the store does not hold.
var ErrNotFound = pipeline.ErrNoRecord

// Get implements pipeline.Store.
func (s *Store) Get(ctx context.Context, id int64) (*pipeline.Record, error) {
	var rec pipeline.Record
	err := scanRecord(s.db.QueryRowContext(ctx, `SELECT `+columns+`, report FROM verdicts WHERE id = ?`, id), &rec, &rec.Report)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("verdict %d in %s: %w", id, s.path, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("reading verdict %d from %s: %w", id, s.path, err)
	}
	return &rec, nil
}

// Verify implements pipeline.Store: chain.Verifier walks every record, in
// id order, and the id sequence tells whether records were deleted from
// the end. Both are read in one read transaction, a snapshot of the
// write-ahead log: a record appended between the two reads would make the
// sequence pass the last record read and look like a cut tail.
func (s *Store) Verify(ctx context.Context) (pipeline.ChainStatus, error) {
	// Read-only: a plain BEGIN, not the IMMEDIATE that appends take, so
	// that verifying never holds the write lock.
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return pipeline.ChainStatus{}, fmt.Errorf("verifying %s: %w", s.path, err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT `+columns+`, report FROM verdicts ORDER BY id`)
	if err != nil {
		return pipeline.ChainStatus{}, fmt.Errorf("verifying %s: %w", s.path, err)
	}
	v := chain.NewVerifier()
	for rows.Next() {
		var rec pipeline.Record
		if err := scanRecord(rows, &rec, &rec.Report); err != nil {
			rows.Close()
			v.Unreadable(err)
			return v.Status(0), nil
		}
		v.Add(&rec)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return pipeline.ChainStatus{}, fmt.Errorf("verifying %s: %w", s.path, err)
	}
	var seq sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT seq FROM sqlite_sequence WHERE name = 'verdicts'`).Scan(&seq); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return pipeline.ChainStatus{}, fmt.Errorf("verifying %s: reading the id sequence: %w", s.path, err)
	}
	return v.Status(seq.Int64), nil
}

// Lookup implements pipeline.Store.
func (s *Store) Lookup(ctx context.Context, candidateDigest, platform, policyDigest string) (*pipeline.Record, error) {
	var rec pipeline.Record
	err := scanRecord(s.db.QueryRowContext(ctx, `SELECT `+columns+` FROM verdicts
		WHERE candidate_digest = ? AND platform = ? AND policy_digest = ? AND verdict IN ('pass', 'review', 'fail') ORDER BY id DESC LIMIT 1`, candidateDigest, platform, policyDigest), &rec)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("looking up %s in %s: %w", candidateDigest, s.path, err)
	}
	return &rec, nil
}

// Passing implements pipeline.Store.
func (s *Store) Passing(ctx context.Context, refPrefix string) ([]pipeline.Record, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+columns+` FROM verdicts
		WHERE verdict = 'pass' AND substr(candidate_ref, 1, ?) = ? ORDER BY id DESC`, len(refPrefix), refPrefix)
	if err != nil {
		return nil, fmt.Errorf("listing passing verdicts in %s: %w", s.path, err)
	}
	defer rows.Close()
	var out []pipeline.Record
	for rows.Next() {
		var rec pipeline.Record
		if err := scanRecord(rows, &rec); err != nil {
			return nil, fmt.Errorf("listing passing verdicts in %s: %w", s.path, err)
		}
		out = append(out, rec)
	}
	return out, rows.Err()
}

// AppendDecision implements pipeline.Store.
func (s *Store) AppendDecision(ctx context.Context, d pipeline.Decision) (*pipeline.Record, error) {
	return chain.AppendDecision(ctx, records{s}, d)
}

// Decision implements pipeline.Store.
func (s *Store) Decision(ctx context.Context, verdictID int64) (*pipeline.Decision, error) {
	return chain.LatestDecisionOf(ctx, records{s}, verdictID)
}

// AppendWaiver implements pipeline.Store.
func (s *Store) AppendWaiver(ctx context.Context, w pipeline.Waiver) (*pipeline.Record, error) {
	return chain.AppendWaiver(ctx, records{s}, w)
}

// Waivers implements pipeline.Store.
func (s *Store) Waivers(ctx context.Context) ([]pipeline.Waiver, error) {
	return chain.Waivers(ctx, records{s}, s.path)
}

// records is the store as chain.Records.
type records struct{ s *Store }

func (r records) Get(ctx context.Context, id int64) (*pipeline.Record, error) {
	return r.s.Get(ctx, id)
}
func (r records) Kind(ctx context.Context, v pipeline.Verdict) ([]pipeline.Record, error) {
	return r.s.kind(ctx, v)
}
func (r records) Insert(ctx context.Context, rec *pipeline.Record) (*pipeline.Record, error) {
	return r.s.insert(ctx, rec)
}

// kind returns, oldest first and with their reports, the records of one
// verdict kind.
func (s *Store) kind(ctx context.Context, v pipeline.Verdict) ([]pipeline.Record, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+columns+`, report FROM verdicts WHERE verdict = ? ORDER BY id`, string(v))
	if err != nil {
		return nil, fmt.Errorf("reading %s records from %s: %w", v, s.path, err)
	}
	defer rows.Close()
	var out []pipeline.Record
	for rows.Next() {
		var rec pipeline.Record
		if err := scanRecord(rows, &rec, &rec.Report); err != nil {
			return nil, fmt.Errorf("reading %s records from %s: %w", v, s.path, err)
		}
		out = append(out, rec)
	}
	return out, rows.Err()
}
