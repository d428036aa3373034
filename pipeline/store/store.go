// Package store opens the verdict store that a DSN names.
package store

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/store/postgres"
	"github.com/fwvet/fwvet/pipeline/store/sqlite"
)

// DefaultPath is the SQLite store in the user's data directory:
// $XDG_DATA_HOME/fwvet/verdicts.db, or ~/.local/share/fwvet/verdicts.db.
func DefaultPath() (string, error) {
	dir := os.Getenv("XDG_DATA_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("finding the data directory: %w", err)
		}
		dir = filepath.Join(home, ".local", "share")
	}
	return filepath.Join(dir, "fwvet", "verdicts.db"), nil
}

// DefaultDSN is the DSN of the default store.
func DefaultDSN() (string, error) {
	p, err := DefaultPath()
	if err != nil {
		return "", err
	}
	return "sqlite:" + p, nil
}

// Open opens the store a DSN names: "sqlite:PATH" (a bare path is taken as
// a SQLite file too).
func Open(ctx context.Context, dsn string) (pipeline.Store, error) {
	switch {
	case strings.HasPrefix(dsn, "sqlite:"):
		return sqlite.Open(ctx, strings.TrimPrefix(dsn, "sqlite:"))
	case isPostgres(dsn):
		return postgres.Open(ctx, dsn, true)
	case strings.Contains(dsn, "://"):
		return nil, fmt.Errorf("store %q: unknown store type (want sqlite:PATH or postgres://…)", redact(dsn))
	default:
		return sqlite.Open(ctx, dsn)
	}
}

func isPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// OpenExisting opens, for reading, the store a DSN names; it never creates
// one, and a missing or empty store is an error wrapping pipeline.ErrNoStore.
func OpenExisting(ctx context.Context, dsn string) (pipeline.Store, error) {
	switch {
	case strings.HasPrefix(dsn, "sqlite:"):
		return sqlite.OpenExisting(ctx, strings.TrimPrefix(dsn, "sqlite:"))
	case isPostgres(dsn):
		return postgres.Open(ctx, dsn, false)
	case strings.Contains(dsn, "://"):
		return Open(ctx, dsn) // no other type is supported: Open says why
	default:
		return sqlite.OpenExisting(ctx, dsn)
	}
}

// redact hides passwords in a URL-style DSN, in the user info and in the
// query ("?password=").
func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(unparseable DSN)"
	}
	q := u.Query()
	for k := range q {
		if strings.EqualFold(k, "password") {
			q.Set(k, "xxxxx")
		}
	}
	u.RawQuery = q.Encode()
	return u.Redacted()
}
