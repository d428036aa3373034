// Package postgres keeps verdicts in a PostgreSQL database, as an
// append-only hash chain that many gates and workers share: one writer
// at a time extends the chain, every reader sees whole records.
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/store/chain"
)

// schema is the store's tables. verdicts_seq holds the highest id ever
// handed out: PostgreSQL's own sequences are not transactional (a rolled
// back insert would leave a gap that looks like a deleted record), and
// its row lock is what makes writers take turns.
const schema = `
CREATE TABLE IF NOT EXISTS verdicts (
	id                BIGINT PRIMARY KEY,
	created_at        TEXT NOT NULL,
	candidate_ref     TEXT NOT NULL,
	candidate_digest  TEXT NOT NULL,
	baseline_ref      TEXT NOT NULL,
	baseline_digest   TEXT NOT NULL,
	verdict           TEXT NOT NULL,
	policy_digest     TEXT NOT NULL,
	report            BYTEA NOT NULL,
	prev_hash         TEXT NOT NULL,
	hash              TEXT NOT NULL UNIQUE,
	candidate_version TEXT NOT NULL DEFAULT '',
	platform          TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS verdicts_candidate ON verdicts (candidate_digest, policy_digest);
CREATE INDEX IF NOT EXISTS verdicts_kind ON verdicts (verdict, id);
CREATE TABLE IF NOT EXISTS verdicts_seq (
	one BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
	seq BIGINT NOT NULL
);
INSERT INTO verdicts_seq (one, seq) VALUES (TRUE, 0) ON CONFLICT DO NOTHING;
`

// schemaLock serializes schema creation between processes that open a
// fresh database at once (CREATE TABLE IF NOT EXISTS is not safe against
// itself).
const schemaLock = 0x66777665 // "fwve"

// ErrNotFound is returned by Get for an id the store does not hold.
var ErrNotFound = pipeline.ErrNoRecord

// Store is a verdict store in one PostgreSQL database.
type Store struct {
	db *sql.DB
	// where names the store in errors, without its password.
	where string
}

var _ pipeline.Store = (*Store)(nil)

// Open opens the store a postgres:// URL names, creating its tables when
// create is set; otherwise a database without them is an error wrapping
// pipeline.ErrNoStore.
func Open(ctx context.Context, dsn string, create bool) (*Store, error) {
	where := Redact(dsn)
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres store %s: %w", where, err)
	}
	db.SetMaxOpenConns(16)
	// Keep them: database/sql keeps 2 idle by default, so a burst of
	// lookups opened and closed connections, and each costs PostgreSQL a
	// new backend process (the gate's p99 was 180 ms at 190 lookups/s).
	db.SetMaxIdleConns(16)
	db.SetConnMaxIdleTime(time.Minute)
	s := &Store{db: db, where: where}
	if err := s.init(ctx, create); err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres store %s: %w", where, err)
	}
	return s, nil
}

func (s *Store) init(ctx context.Context, create bool) error {
	if !create {
		var ok bool
		err := s.db.QueryRowContext(ctx, `SELECT to_regclass('verdicts') IS NOT NULL AND to_regclass('verdicts_seq') IS NOT NULL`).Scan(&ok)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w: the database has no verdicts table", pipeline.ErrNoStore)
		}
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, schemaLock); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, schema); err != nil {
		return fmt.Errorf("creating schema: %w", err)
	}
	return tx.Commit()
}

// Redact hides the password of a postgres:// URL, for messages.
func Redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(unparseable DSN)"
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// Close implements pipeline.Store.
func (s *Store) Close() error { return s.db.Close() }

// Append implements pipeline.Store.
func (s *Store) Append(ctx context.Context, r *pipeline.Report) (*pipeline.Record, error) {
	rec, err := chain.NewRecord(r)
	if err != nil {
		return nil, err
	}
	return s.insert(ctx, rec)
}

// StartSegment implements pipeline.Store.
func (s *Store) StartSegment(ctx context.Context, brokenID int64, reason string) (*pipeline.Record, error) {
	rec, err := chain.NewSegmentStart(brokenID, reason)
	if err != nil {
		return nil, err
	}
	return s.insert(ctx, rec)
}

// insert links and writes a record in one transaction that holds the
// sequence row's lock from its first statement, so that writers take turns.
func (s *Store) insert(ctx context.Context, rec *pipeline.Record) (*pipeline.Record, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("storing verdict in %s: %w", s.where, err)
	}
	defer tx.Rollback()
	if err := chain.Append(ctx, &pgTx{tx: tx}, rec, s.where); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("storing verdict in %s: commit: %w", s.where, err)
	}
	return rec, nil
}

// pgTx is a chain.Tx over a transaction.
type pgTx struct{ tx *sql.Tx }

func (t *pgTx) Seq(ctx context.Context) (int64, error) {
	var seq int64
	err := t.tx.QueryRowContext(ctx, `SELECT seq FROM verdicts_seq WHERE one FOR UPDATE`).Scan(&seq)
	return seq, err
}

func (t *pgTx) Tail(ctx context.Context) ([]pipeline.Record, error) {
	var last pipeline.Record
	err := scanRecord(t.tx.QueryRowContext(ctx, `SELECT `+columns+`, report FROM verdicts ORDER BY id DESC LIMIT 1`), &last, &last.Report)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, nil
	case err != nil:
		return nil, err
	}
	var before pipeline.Record
	err = t.tx.QueryRowContext(ctx, `SELECT id, hash FROM verdicts WHERE id < $1 ORDER BY id DESC LIMIT 1`, last.ID).Scan(&before.ID, &before.Hash)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return []pipeline.Record{last}, nil
	case err != nil:
		return nil, fmt.Errorf("reading the record before the chain head: %w", err)
	}
	return []pipeline.Record{last, before}, nil
}

func (t *pgTx) Insert(ctx context.Context, rec *pipeline.Record) error {
	if _, err := t.tx.ExecContext(ctx, `INSERT INTO verdicts (id, created_at, candidate_ref, candidate_digest, baseline_ref, baseline_digest, verdict, policy_digest, report, prev_hash, hash, candidate_version, platform)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
		rec.ID, rec.CreatedAt.Format(time.RFC3339Nano), rec.CandidateRef, rec.CandidateDigest, rec.BaselineRef, rec.BaselineDigest,
		string(rec.Verdict), rec.PolicyDigest, rec.Report, rec.PrevHash, rec.Hash, rec.CandidateVersion, rec.Platform); err != nil {
		return err
	}
	_, err := t.tx.ExecContext(ctx, `UPDATE verdicts_seq SET seq = GREATEST(seq, $1) WHERE one`, rec.ID)
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

// records runs a query of records, with their reports when withReport.
func (s *Store) records(ctx context.Context, what string, withReport bool, query string, args ...any) ([]pipeline.Record, error) {
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("%s in %s: %w", what, s.where, err)
	}
	defer rows.Close()
	var out []pipeline.Record
	for rows.Next() {
		var rec pipeline.Record
		var extra []any
		if withReport {
			extra = append(extra, &rec.Report)
		}
		if err := scanRecord(rows, &rec, extra...); err != nil {
			return nil, fmt.Errorf("%s in %s: %w", what, s.where, err)
		}
		out = append(out, rec)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s in %s: %w", what, s.where, err)
	}
	return out, nil
}

// List implements pipeline.Store.
func (s *Store) List(ctx context.Context, limit int) ([]pipeline.Record, error) {
	if limit <= 0 {
		return s.records(ctx, "listing verdicts", false, `SELECT `+columns+` FROM verdicts ORDER BY id DESC`)
	}
	return s.records(ctx, "listing verdicts", false, `SELECT `+columns+` FROM verdicts ORDER BY id DESC LIMIT $1`, limit)
}

// Get implements pipeline.Store.
func (s *Store) Get(ctx context.Context, id int64) (*pipeline.Record, error) {
	var rec pipeline.Record
	err := scanRecord(s.db.QueryRowContext(ctx, `SELECT `+columns+`, report FROM verdicts WHERE id = $1`, id), &rec, &rec.Report)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("verdict %d in %s: %w", id, s.where, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("reading verdict %d from %s: %w", id, s.where, err)
	}
	return &rec, nil
}

// Verify implements pipeline.Store. It reads in one repeatable-read
// transaction, so that appends going on meanwhile neither show half nor
// look like a cut tail.
func (s *Store) Verify(ctx context.Context) (pipeline.ChainStatus, error) {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return pipeline.ChainStatus{}, fmt.Errorf("verifying %s: %w", s.where, err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT `+columns+`, report FROM verdicts ORDER BY id`)
	if err != nil {
		return pipeline.ChainStatus{}, fmt.Errorf("verifying %s: %w", s.where, err)
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
		return pipeline.ChainStatus{}, fmt.Errorf("verifying %s: %w", s.where, err)
	}
	var seq int64
	if err := tx.QueryRowContext(ctx, `SELECT seq FROM verdicts_seq WHERE one`).Scan(&seq); err != nil {
		return pipeline.ChainStatus{}, fmt.Errorf("verifying %s: reading the id sequence: %w", s.where, err)
	}
	return v.Status(seq), nil
}

// Lookup implements pipeline.Store.
func (s *Store) Lookup(ctx context.Context, candidateDigest, platform, policyDigest string) (*pipeline.Record, error) {
	var rec pipeline.Record
	err := scanRecord(s.db.QueryRowContext(ctx, `SELECT `+columns+` FROM verdicts
		WHERE candidate_digest = $1 AND platform = $2 AND policy_digest = $3 AND verdict IN ('pass', 'review', 'fail') ORDER BY id DESC LIMIT 1`,
		candidateDigest, platform, policyDigest), &rec)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("looking up %s in %s: %w", candidateDigest, s.where, err)
	}
	return &rec, nil
}

// Passing implements pipeline.Store.
func (s *Store) Passing(ctx context.Context, refPrefix string) ([]pipeline.Record, error) {
	return s.records(ctx, "listing passing verdicts", false, `SELECT `+columns+` FROM verdicts
		WHERE verdict = 'pass' AND left(candidate_ref, $1) = $2 ORDER BY id DESC`, len([]rune(refPrefix)), refPrefix)
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
	return chain.Waivers(ctx, records{s}, s.where)
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
	return s.records(ctx, "reading "+string(v)+" records", true, `SELECT `+columns+`, report FROM verdicts WHERE verdict = $1 ORDER BY id`, string(v))
}
