// Package gate is fwvet's gate service: an HTTP API in front of a durable
// queue of vets. A rollout system submits a candidate (POST /v1/vet), the
// job is queued in a SQLite database beside the verdict store and worked by
// a bounded pool, and the rollout system polls the verdict of a digest
// (GET /v1/verdicts/{digest}) under the service's policy. "pending",
// "unknown" and "error" are answers of their own, never a pass.
//
// The queue is River (github.com/riverqueue/river) on its SQLite driver: a
// maintained durable job queue whose jobs survive a restart, are retried
// when the process running them dies, and are deduplicated by a unique key,
// rather than a hand-written one; its PostgreSQL driver takes the same jobs
// when the store is shared.
package gate

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/sirupsen/logrus"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
	_ "modernc.org/sqlite"             // the "sqlite" database/sql driver

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/store/postgres"
	"github.com/fwvet/fwvet/pipeline/vet"
)

// Defaults of a Config.
const (
	DefaultWorkers    = 2
	DefaultJobTimeout = 30 * time.Minute
	// MaxAttempts bounds how often a job is started: a vet that fails is
	// not retried (its job is an error), so attempts past the first are
	// restarts after the process running it died.
	MaxAttempts = 5
)

// Config is what a gate service needs.
type Config struct {
	// Store records the verdicts; the service does not close it.
	Store pipeline.Store
	// QueuePath is where the job queue and the tokens are kept: a SQLite
	// file, or a postgres:// URL whose database many services and workers
	// share (QueuePath(storeDSN) names the usual one).
	QueuePath string
	// Pipeline builds the pipeline of a job from its release manifest
	// (nil or one file): every pipeline it builds must record in Store and
	// decide by the same policy.
	Pipeline func(manifest []string) (*vet.Pipeline, error)
	// Child, when set, runs each vet in a process of its own (built from
	// the same flags as Pipeline's pipelines); nil vets in this process.
	Child *Child
	// Workers bounds the jobs vetted at once; zero means DefaultWorkers.
	Workers int
	// EnqueueOnly queues jobs without working them (a service whose jobs
	// another process works, and tests of what is answered meanwhile).
	EnqueueOnly bool
	// JobTimeout bounds one vet; zero means DefaultJobTimeout. A job still
	// marked running this long after its start (its process died) is
	// retried by River's rescuer; at start the service also retries the
	// jobs that a previous process left running.
	JobTimeout time.Duration
	// AllowRegistries lists the registries (HOST or HOST:PORT) whose
	// images may be submitted; AllowLocal allows local paths.
	AllowRegistries []string
	AllowLocal      bool
	// WorkDir holds each job's files (its manifest); empty means the
	// system's temporary directory.
	WorkDir string
	Log     logrus.FieldLogger
}

// Service is a running gate: its queue, its tokens and its API.
type Service struct {
	cfg          Config
	db           *sql.DB
	unlock       func()
	river        *river.Client[*sql.Tx]
	tokens       *Tokens
	metrics      *metrics
	policyDigest string
	base         *vet.Pipeline
	log          logrus.FieldLogger
	started      bool
	// pg: the queue is a shared PostgreSQL database; where names it in
	// errors, without its password.
	pg    bool
	where string
}

// QueuePath is the queue database that belongs to a store DSN: the
// store's file with "-queue.db" appended, or the same PostgreSQL
// database, where River's tables sit beside the verdicts.
func QueuePath(storeDSN string) (string, error) {
	if isPostgres(storeDSN) {
		return storeDSN, nil
	}
	path := strings.TrimPrefix(storeDSN, "sqlite:")
	if path == "" || strings.Contains(storeDSN, "://") {
		return "", fmt.Errorf("store %q: the gate's queue needs a SQLite (sqlite:PATH) or a PostgreSQL (postgres://…) store", storeDSN)
	}
	return path + "-queue.db", nil
}

func isPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// openDB opens a queue database: a PostgreSQL one, or a SQLite file,
// created when missing, with one connection (SQLite allows one writer;
// River's driver asks for one).
func openDB(ctx context.Context, path string) (*sql.DB, error) {
	if isPostgres(path) {
		db, err := sql.Open("pgx", path)
		if err != nil {
			return nil, fmt.Errorf("queue %s: %w", postgres.Redact(path), err)
		}
		db.SetMaxOpenConns(16)
		db.SetMaxIdleConns(16) // as the store does: a new connection is a new backend
		if err := db.PingContext(ctx); err != nil {
			db.Close()
			return nil, fmt.Errorf("queue %s: %w", postgres.Redact(path), err)
		}
		return db, nil
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
		return nil, fmt.Errorf("queue %s: %w", path, err)
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(30000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: abs}).EscapedPath()+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("queue %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("queue %s: %w", path, err)
	}
	return db, nil
}

// Open opens (creating and migrating it when needed) the queue of a gate
// and builds its service; Start starts its workers.
func Open(ctx context.Context, cfg Config) (*Service, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("gate: a store is required")
	case cfg.Pipeline == nil:
		return nil, errors.New("gate: a pipeline is required")
	case cfg.QueuePath == "":
		return nil, errors.New("gate: a queue path is required")
	case cfg.Log == nil:
		return nil, errors.New("gate: a logger is required")
	}
	if cfg.Workers <= 0 {
		cfg.Workers = DefaultWorkers
	}
	if cfg.JobTimeout <= 0 {
		cfg.JobTimeout = DefaultJobTimeout
	}
	if len(cfg.AllowRegistries) == 0 && !cfg.AllowLocal {
		cfg.Log.Warn("no registry is allowed, nor local paths: every submission will be refused")
	}
	base, err := cfg.Pipeline(nil)
	if err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg, base: base, policyDigest: base.Policy().Digest(), log: cfg.Log, pg: isPostgres(cfg.QueuePath)}
	s.where = cfg.QueuePath
	if s.pg {
		s.where = postgres.Redact(cfg.QueuePath)
	} else {
		// One SQLite queue, one process: a job it finds running at
		// start was left so by a process that died.
		if s.unlock, err = lockFile(cfg.QueuePath + ".lock"); err != nil {
			return nil, err
		}
	}
	if err := s.open(ctx); err != nil {
		s.closeDB()
		return nil, err
	}
	return s, nil
}

func (s *Service) open(ctx context.Context) error {
	var err error
	if s.db, err = openDB(ctx, s.cfg.QueuePath); err != nil {
		return err
	}
	var driver riverdriver.Driver[*sql.Tx] = riversqlite.New(s.db)
	if s.pg {
		driver = riverdatabasesql.New(s.db)
	}
	mig, err := rivermigrate.New(driver, &rivermigrate.Config{Logger: s.slog()})
	if err != nil {
		return fmt.Errorf("queue %s: %w", s.where, err)
	}
	if _, err := mig.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("queue %s: migrating: %w", s.where, err)
	}
	if s.tokens, err = newTokens(ctx, s.db, s.pg); err != nil {
		return fmt.Errorf("queue %s: %w", s.where, err)
	}
	if err := migrateGate(ctx, s.db, s.pg); err != nil {
		return fmt.Errorf("queue %s: %w", s.where, err)
	}
	if !s.cfg.EnqueueOnly && !s.pg {
		// The lock file makes this process the queue's only one: a job
		// it finds running was left so by a process that died. A shared
		// PostgreSQL queue has other live workers: River's rescuer retries
		// what a dead one left, once it outlived the job timeout.
		if err := s.rescue(ctx); err != nil {
			return fmt.Errorf("queue %s: %w", s.where, err)
		}
	}
	s.metrics = newMetrics(s)
	workers := river.NewWorkers()
	river.AddWorker(workers, &vetWorker{s: s})
	rc := &river.Config{
		Logger:     s.slog(),
		Workers:    workers,
		JobTimeout: s.cfg.JobTimeout,
		// A job whose worker died runs again once it outlived the job
		// timeout by a margin (River's rescuer looks every 30 s).
		RescueStuckJobsAfter:        s.cfg.JobTimeout + min(time.Minute, s.cfg.JobTimeout),
		MaxAttempts:                 MaxAttempts,
		CompletedJobRetentionPeriod: 30 * 24 * time.Hour,
		CancelledJobRetentionPeriod: 30 * 24 * time.Hour,
		DiscardedJobRetentionPeriod: 30 * 24 * time.Hour,
		// Polled, not notified (SQLite has no LISTEN): a job queued while a
		// worker is free waits for the next poll, so the interval is what
		// a job waits at most to start (the target is 100 ms). A poll is
		// one indexed query.
		FetchCooldown:     20 * time.Millisecond,
		FetchPollInterval: 50 * time.Millisecond,
		PollOnly:          true,
	}
	if !s.cfg.EnqueueOnly {
		rc.Queues = map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: s.cfg.Workers}}
	}
	if s.river, err = river.NewClient(driver, rc); err != nil {
		return fmt.Errorf("queue %s: %w", s.where, err)
	}
	return nil
}

// migrateGate creates the gate's own table: the signed verdicts, which the
// verdict store does not keep.
func migrateGate(ctx context.Context, db *sql.DB, pg bool) error {
	q := `CREATE TABLE IF NOT EXISTS gate_attestations (record_id INTEGER PRIMARY KEY, envelope BLOB NOT NULL)`
	if pg {
		q = `CREATE TABLE IF NOT EXISTS gate_attestations (record_id BIGINT PRIMARY KEY, envelope BYTEA NOT NULL)`
	}
	_, err := db.ExecContext(ctx, q)
	return err
}

// bind numbers a query's ? placeholders as PostgreSQL wants them ($1…).
func bind(pg bool, q string) string {
	if !pg {
		return q
	}
	var b strings.Builder
	n := 0
	for _, c := range q {
		if c == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

// rescue makes the jobs a dead process left running available again. River's
// rescuer would too, but only once they outlived the job timeout.
func (s *Service) rescue(ctx context.Context) error {
	res, err := s.db.ExecContext(ctx, `UPDATE river_job SET state = 'available', scheduled_at = datetime('now', 'subsec')
		WHERE state = 'running' AND kind = ?`, kindVet)
	if err != nil {
		return fmt.Errorf("retrying interrupted jobs: %w", err)
	}
	if n, _ := res.RowsAffected(); n > 0 {
		s.log.WithField("jobs", n).Warn("retrying jobs interrupted by the end of a previous process")
	}
	return nil
}

// slog is River's logger: warnings and errors, into the service's log.
func (s *Service) slog() *slog.Logger {
	w := s.log.WithField("component", "queue").WriterLevel(logrus.WarnLevel)
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// Start starts working jobs (none for an EnqueueOnly service). The
// workers run until Close, whatever becomes of ctx.
func (s *Service) Start(ctx context.Context) error {
	if s.cfg.EnqueueOnly {
		return nil
	}
	if err := s.river.Start(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("starting the queue: %w", err)
	}
	s.started = true
	return nil
}

// Close stops working jobs: running ones may finish until ctx is done,
// then they are cancelled and left to be retried by the next start.
func (s *Service) Close(ctx context.Context) error {
	var err error
	if s.started {
		if err = s.river.Stop(ctx); err != nil {
			hard, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err = s.river.StopAndCancel(hard)
			cancel()
		}
		s.started = false
	}
	s.closeDB()
	return err
}

func (s *Service) closeDB() {
	if s.db != nil {
		s.db.Close()
		s.db = nil
	}
	if s.unlock != nil {
		s.unlock()
		s.unlock = nil
	}
}

// Tokens are the service's bearer tokens.
func (s *Service) Tokens() *Tokens { return s.tokens }

// PolicyDigest is the digest of the policy the service answers under.
func (s *Service) PolicyDigest() string { return s.policyDigest }
