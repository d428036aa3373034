// Package sqlite keeps verdicts in a SQLite file through the pure-Go
// modernc.org/sqlite driver, as an append-only hash chain.
package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"modernc.org/sqlite" // also registers the database/sql driver "sqlite"

	"github.com/fwvet/fwvet/pipeline"
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
// gains them when opened. They are read from the report, which the hash
// covers, so they are not hashed themselves.
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
	if path == "" {
		return nil, errors.New("sqlite store: empty path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite store %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
		return nil, fmt.Errorf("sqlite store %s: creating its directory: %w", path, err)
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
// new record happen in one immediate transaction.
func (s *Store) Append(ctx context.Context, r *pipeline.Report) (*pipeline.Record, error) {
	report, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encoding report: %w", err)
	}
	rec := &pipeline.Record{
		CreatedAt:       time.Now().UTC().Truncate(time.Microsecond),
		CandidateRef:    r.Candidate.Ref,
		CandidateDigest: r.Candidate.Digest,
		Verdict:         r.Verdict,
		PolicyDigest:    r.PolicyDigest,
		Report:          report,
	}
	if r.Baseline != nil {
		rec.BaselineRef, rec.BaselineDigest = r.Baseline.Ref, r.Baseline.Digest
	}
	rec.CandidateVersion, rec.Platform = r.Candidate.Version, r.Candidate.Platform
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("storing verdict in %s: %w", s.path, err)
	}
	defer tx.Rollback()
	var lastID sql.NullInt64
	var lastHash sql.NullString
	err = tx.QueryRowContext(ctx, `SELECT id, hash FROM verdicts ORDER BY id DESC LIMIT 1`).Scan(&lastID, &lastHash)
	// The highest id ever used: records deleted from the end leave it above
	// the last id, and the new record's id keeps that gap for Verify to see.
	var seq sql.NullInt64
	if serr := tx.QueryRowContext(ctx, `SELECT seq FROM sqlite_sequence WHERE name = 'verdicts'`).Scan(&seq); serr != nil && !errors.Is(serr, sql.ErrNoRows) {
		return nil, fmt.Errorf("storing verdict in %s: reading the id sequence: %w", s.path, serr)
	}
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if seq.Int64 > 0 {
			return nil, fmt.Errorf("storing verdict in %s: the store held %d records and is now empty; refusing to start a new chain over a deleted one", s.path, seq.Int64)
		}
		rec.ID, rec.PrevHash = 1, pipeline.Genesis
	case err != nil:
		return nil, fmt.Errorf("storing verdict in %s: reading the chain head: %w", s.path, err)
	default:
		rec.ID, rec.PrevHash = max(lastID.Int64, seq.Int64)+1, lastHash.String
	}
	rec.Hash = pipeline.RecordHash(rec)
	_, err = tx.ExecContext(ctx, `INSERT INTO verdicts (id, created_at, candidate_ref, candidate_digest, baseline_ref, baseline_digest, verdict, policy_digest, report, prev_hash, hash, candidate_version, platform)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		rec.ID, rec.CreatedAt.Format(time.RFC3339Nano), rec.CandidateRef, rec.CandidateDigest, rec.BaselineRef, rec.BaselineDigest,
		string(rec.Verdict), rec.PolicyDigest, rec.Report, rec.PrevHash, rec.Hash, rec.CandidateVersion, rec.Platform)
	if err != nil {
		return nil, fmt.Errorf("storing verdict in %s: %w", s.path, err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("storing verdict in %s: commit: %w", s.path, err)
	}
	return rec, nil
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
var ErrNotFound = errors.New("no such verdict")

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

// Verify implements pipeline.Store: every record must follow the previous
// one by id, name its hash, and hash to what it holds; and the store must
// not have held more records than it holds now.
func (s *Store) Verify(ctx context.Context) (pipeline.ChainStatus, error) {
	var st pipeline.ChainStatus
	rows, err := s.db.QueryContext(ctx, `SELECT `+columns+`, report FROM verdicts ORDER BY id`)
	if err != nil {
		return st, fmt.Errorf("verifying %s: %w", s.path, err)
	}
	defer rows.Close()
	prevID, prevHash := int64(0), pipeline.Genesis
	for rows.Next() {
		var rec pipeline.Record
		if err := scanRecord(rows, &rec, &rec.Report); err != nil {
			st.BrokenID, st.Reason = prevID+1, fmt.Sprintf("unreadable record after %d: %v", prevID, err)
			return st, nil
		}
		switch {
		case rec.ID != prevID+1:
			st.BrokenID, st.Reason = rec.ID, fmt.Sprintf("records %d to %d are missing", prevID+1, rec.ID-1)
		case rec.PrevHash != prevHash:
			st.BrokenID, st.Reason = rec.ID, "its previous hash does not match the record before it"
		case pipeline.RecordHash(&rec) != rec.Hash:
			st.BrokenID, st.Reason = rec.ID, "its contents do not match its hash: the record was edited"
		}
		if st.Reason != "" {
			return st, nil
		}
		st.Records++
		prevID, prevHash = rec.ID, rec.Hash
	}
	if err := rows.Err(); err != nil {
		return st, fmt.Errorf("verifying %s: %w", s.path, err)
	}
	var seq sql.NullInt64
	if err := s.db.QueryRowContext(ctx, `SELECT seq FROM sqlite_sequence WHERE name = 'verdicts'`).Scan(&seq); err == nil && seq.Int64 > prevID {
		st.BrokenID, st.Reason = prevID+1, fmt.Sprintf("the store once held record %d but now ends at %d: records were deleted", seq.Int64, prevID)
	}
	return st, nil
}

// Lookup implements pipeline.Store.
func (s *Store) Lookup(ctx context.Context, candidateDigest, platform, policyDigest string) (*pipeline.Record, error) {
	var rec pipeline.Record
	err := scanRecord(s.db.QueryRowContext(ctx, `SELECT `+columns+` FROM verdicts
		WHERE candidate_digest = ? AND platform = ? AND policy_digest = ? ORDER BY id DESC LIMIT 1`, candidateDigest, platform, policyDigest), &rec)
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
