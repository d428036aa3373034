package gate

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Role is what a token may do. A submit or a review token also reads.
type Role string

// The roles.
const (
	RoleRead   Role = "read"
	RoleSubmit Role = "submit"
	RoleReview Role = "review"
)

// ParseRole parses a role name.
func ParseRole(s string) (Role, error) {
	switch r := Role(s); r {
	case RoleRead, RoleSubmit, RoleReview:
		return r, nil
	}
	return "", fmt.Errorf("role %q: want read, submit or review", s)
}

// allows reports whether a token of role r may do what needs role need.
func (r Role) allows(need Role) bool {
	return r == need || need == RoleRead
}

// tokenPrefix starts every token, so that a leaked one is recognizable.
const tokenPrefix = "fwvet_"

// Tokens are bearer tokens, kept as their SHA-256 only.
type Tokens struct {
	db *sql.DB
	pg bool
}

func newTokens(ctx context.Context, db *sql.DB, pg bool) (*Tokens, error) {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS gate_tokens (
		hash TEXT PRIMARY KEY,
		role TEXT NOT NULL,
		created_at TEXT NOT NULL,
		revoked_at TEXT
	)`); err != nil {
		return nil, fmt.Errorf("creating the token table: %w", err)
	}
	return &Tokens{db: db, pg: pg}, nil
}

// OpenTokens opens the tokens of the queue database at path (creating it
// when missing), for the token commands; close the returned closer.
func OpenTokens(ctx context.Context, path string) (*Tokens, func() error, error) {
	db, err := openDB(ctx, path)
	if err != nil {
		return nil, nil, err
	}
	t, err := newTokens(ctx, db, isPostgres(path))
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return t, db.Close, nil
}

func hashToken(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
}

// ID is how a token is named once created: the first 12 hex digits of its
// hash, which say nothing of the token.
func ID(tok string) string { return hashToken(tok)[:12] }

// Add creates a token of a role and returns it: it is not kept, only its
// hash is.
func (t *Tokens) Add(ctx context.Context, role Role) (string, error) {
	if _, err := ParseRole(string(role)); err != nil {
		return "", err
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	tok := tokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	if _, err := t.db.ExecContext(ctx, bind(t.pg, `INSERT INTO gate_tokens (hash, role, created_at) VALUES (?, ?, ?)`),
		hashToken(tok), string(role), time.Now().UTC().Format(time.RFC3339)); err != nil {
		return "", fmt.Errorf("adding a token: %w", err)
	}
	return tok, nil
}

// Revoke revokes the tokens whose id (ID) starts with idPrefix (at least
// 8 hex digits) and says how many it revoked.
func (t *Tokens) Revoke(ctx context.Context, idPrefix string) (int64, error) {
	idPrefix = strings.ToLower(idPrefix)
	if _, err := hex.DecodeString(idPrefix); err != nil || len(idPrefix) < 8 || len(idPrefix) > 64 {
		return 0, fmt.Errorf("token id %q: want 8 to 64 hex digits, as token add printed them", idPrefix)
	}
	res, err := t.db.ExecContext(ctx, bind(t.pg, `UPDATE gate_tokens SET revoked_at = ? WHERE revoked_at IS NULL AND substr(hash, 1, ?) = ?`),
		time.Now().UTC().Format(time.RFC3339), len(idPrefix), idPrefix)
	if err != nil {
		return 0, fmt.Errorf("revoking a token: %w", err)
	}
	return res.RowsAffected()
}

// errBadToken is a token that is unknown or revoked.
var errBadToken = errors.New("unknown or revoked token")

// Check returns the role of a token.
func (t *Tokens) Check(ctx context.Context, tok string) (Role, error) {
	if !strings.HasPrefix(tok, tokenPrefix) || len(tok) > 200 {
		return "", errBadToken
	}
	var role string
	err := t.db.QueryRowContext(ctx, bind(t.pg, `SELECT role FROM gate_tokens WHERE hash = ? AND revoked_at IS NULL`), hashToken(tok)).Scan(&role)
	if errors.Is(err, sql.ErrNoRows) {
		return "", errBadToken
	}
	if err != nil {
		return "", err
	}
	return Role(role), nil
}
