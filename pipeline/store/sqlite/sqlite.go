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
// gains them when opened. RecordHash covers them; records hashed before it
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
// new record happen in one immediate transaction. The last record is checked
// first (its hash against its contents, its link to the record before it,
// the id sequence): a write onto a broken tail fails with a
// *pipeline.BrokenChainError.
func (s *Store) Append(ctx context.Context, r *pipeline.Report) (*pipeline.Record, error) {
	report, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encoding report: %w", err)
	}
	rec := &pipeline.Record{
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
	return s.insert(ctx, rec, false)
}

// StartSegment implements pipeline.Store: it appends, even after a broken
// tail, a record that says a new segment starts here and names the break.
func (s *Store) StartSegment(ctx context.Context, brokenID int64, reason string) (*pipeline.Record, error) {
	report, err := json.Marshal(pipeline.SegmentStart{Schema: pipeline.SegmentSchema, BrokenID: brokenID, Reason: reason})
	if err != nil {
		return nil, fmt.Errorf("encoding segment start: %w", err)
	}
	return s.insert(ctx, &pipeline.Record{Verdict: pipeline.VerdictSegment, Report: report}, true)
}

func (s *Store) insert(ctx context.Context, rec *pipeline.Record, segment bool) (*pipeline.Record, error) {
	rec.CreatedAt = time.Now().UTC().Truncate(time.Microsecond)
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("storing verdict in %s: %w", s.path, err)
	}
	defer tx.Rollback()
	// The highest id ever used: records deleted from the end leave it above
	// the last id, and the new record's id keeps that gap for Verify to see.
	var seq sql.NullInt64
	if serr := tx.QueryRowContext(ctx, `SELECT seq FROM sqlite_sequence WHERE name = 'verdicts'`).Scan(&seq); serr != nil && !errors.Is(serr, sql.ErrNoRows) {
		return nil, fmt.Errorf("storing verdict in %s: reading the id sequence: %w", s.path, serr)
	}
	// The last record in full, and only the id and hash of the one before.
	var tail []pipeline.Record
	var last pipeline.Record
	err = scanRecord(tx.QueryRowContext(ctx, `SELECT `+columns+`, report FROM verdicts ORDER BY id DESC LIMIT 1`), &last, &last.Report)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return nil, fmt.Errorf("storing verdict in %s: reading the chain head: %w", s.path, err)
	default:
		tail = append(tail, last)
		var before pipeline.Record
		err = tx.QueryRowContext(ctx, `SELECT id, hash FROM verdicts WHERE id < ? ORDER BY id DESC LIMIT 1`, last.ID).Scan(&before.ID, &before.Hash)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return nil, fmt.Errorf("storing verdict in %s: reading the record before the chain head: %w", s.path, err)
		default:
			tail = append(tail, before)
		}
	}
	if len(tail) == 0 {
		if seq.Int64 > 0 && !segment {
			return nil, fmt.Errorf("storing verdict in %s: the store held %d records and is now empty; refusing to start a new chain over a deleted one", s.path, seq.Int64)
		}
		rec.ID, rec.PrevHash = seq.Int64+1, pipeline.Genesis
	} else {
		if !segment {
			if id, reason := checkTail(tail, seq.Int64); reason != "" {
				return nil, &pipeline.BrokenChainError{Path: s.path, BrokenID: id, Reason: reason}
			}
		}
		rec.ID, rec.PrevHash = max(tail[0].ID, seq.Int64)+1, tail[0].Hash
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

// checkTail checks the newest record (tail[0]) against its contents, its
// link to the one before it (tail[1], only its id and hash, when there is
// one) and the id
// sequence. It returns the broken record and why, or "" when it holds.
func checkTail(tail []pipeline.Record, seq int64) (int64, string) {
	last := &tail[0]
	switch {
	case seq > last.ID:
		return last.ID + 1, fmt.Sprintf("the store once held record %d but now ends at %d: records were deleted", seq, last.ID)
	case !hashOK(last):
		return last.ID, "its contents do not match its hash: the record was edited"
	case len(tail) == 1 && last.Verdict != pipeline.VerdictSegment && (last.ID != 1 || last.PrevHash != pipeline.Genesis):
		return last.ID, "it is the only record but does not start the chain"
	case len(tail) == 2 && last.Verdict != pipeline.VerdictSegment && last.ID != tail[1].ID+1:
		return last.ID, fmt.Sprintf("records %d to %d are missing", tail[1].ID+1, last.ID-1)
	case len(tail) == 2 && last.PrevHash != tail[1].Hash:
		return last.ID, "its previous hash does not match the record before it"
	}
	return 0, ""
}

// hashOK reports whether a record hashes to its stored hash: the current
// form, or the form from before the hash covered CandidateVersion and
// Platform provided that those columns equal what the hashed report says.
func hashOK(r *pipeline.Record) bool {
	if pipeline.RecordHash(r) == r.Hash {
		return true
	}
	if pipeline.RecordHashV1(r) != r.Hash {
		return false
	}
	var rep struct {
		Candidate struct {
			Version  string `json:"version"`
			Platform string `json:"platform"`
		} `json:"candidate"`
	}
	return json.Unmarshal(r.Report, &rep) == nil &&
		rep.Candidate.Version == r.CandidateVersion && rep.Candidate.Platform == r.Platform
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
// not have held more records than it holds now. A segment start (a record
// with the segment verdict whose own hash verifies and that links to the
// stored hash of the record before it) begins a new segment: breaks before
// it are still reported, but do not count against the last segment.
func (s *Store) Verify(ctx context.Context) (pipeline.ChainStatus, error) {
	var st pipeline.ChainStatus
	rows, err := s.db.QueryContext(ctx, `SELECT `+columns+`, report FROM verdicts ORDER BY id`)
	if err != nil {
		return st, fmt.Errorf("verifying %s: %w", s.path, err)
	}
	defer rows.Close()
	brk := func(id int64, reason string) {
		if st.Reason == "" {
			st.BrokenID, st.Reason = id, reason
		}
		if st.TailReason == "" {
			st.TailBrokenID, st.TailReason = id, reason
		}
	}
	prevID, prevHash := int64(0), pipeline.Genesis
	for rows.Next() {
		var rec pipeline.Record
		if err := scanRecord(rows, &rec, &rec.Report); err != nil {
			brk(prevID+1, fmt.Sprintf("unreadable record after %d: %v", prevID, err))
			st.Head = pipeline.ChainHead{}
			return st, nil
		}
		if st.Segments == 0 {
			st.Segments = 1
		}
		if rec.Verdict == pipeline.VerdictSegment && rec.ID > prevID && rec.PrevHash == prevHash && hashOK(&rec) {
			if rec.ID != prevID+1 {
				brk(prevID+1, fmt.Sprintf("records %d to %d are missing", prevID+1, rec.ID-1))
			}
			if prevID != 0 {
				st.Segments++
			}
			st.SegmentStart, st.TailBrokenID, st.TailReason = rec.ID, 0, ""
		} else {
			switch {
			case rec.ID != prevID+1:
				brk(rec.ID, fmt.Sprintf("records %d to %d are missing", prevID+1, rec.ID-1))
			case rec.PrevHash != prevHash:
				brk(rec.ID, "its previous hash does not match the record before it")
			case !hashOK(&rec):
				brk(rec.ID, "its contents do not match its hash: the record was edited")
			}
		}
		if st.Reason == "" {
			st.Records++
		}
		if st.TailReason == "" {
			st.Head = pipeline.ChainHead{ID: rec.ID, Hash: rec.Hash}
		}
		prevID, prevHash = rec.ID, rec.Hash
	}
	if err := rows.Err(); err != nil {
		return st, fmt.Errorf("verifying %s: %w", s.path, err)
	}
	var seq sql.NullInt64
	if err := s.db.QueryRowContext(ctx, `SELECT seq FROM sqlite_sequence WHERE name = 'verdicts'`).Scan(&seq); err == nil && seq.Int64 > prevID {
		brk(prevID+1, fmt.Sprintf("the store once held record %d but now ends at %d: records were deleted", seq.Int64, prevID))
	}
	if st.TailReason != "" {
		st.Head = pipeline.ChainHead{}
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
