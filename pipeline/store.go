package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// Record is one stored verdict: the full report and its place in the chain.
type Record struct {
	ID              int64     `json:"id"`
	CreatedAt       time.Time `json:"created_at"`
	CandidateRef    string    `json:"candidate_ref"`
	CandidateDigest string    `json:"candidate_digest"`
	BaselineRef     string    `json:"baseline_ref,omitempty"`
	BaselineDigest  string    `json:"baseline_digest,omitempty"`
	Verdict         Verdict   `json:"verdict"`
	PolicyDigest    string    `json:"policy_digest"`
	// CandidateVersion and Platform come from the report, kept beside it
	// so that an audit can find the previous version without reading it.
	CandidateVersion string `json:"candidate_version,omitempty"`
	Platform         string `json:"platform,omitempty"`
	// Report is the full JSON report.
	Report []byte `json:"-"`
	// PrevHash is the previous record's Hash; Hash covers every field above
	// and PrevHash, so any edit or deletion breaks the chain.
	PrevHash string `json:"prev_hash"`
	Hash     string `json:"hash"`
}

// ChainStatus is what verifying a store's chain found.
type ChainStatus struct {
	Records int `json:"records"`
	// BrokenID is the first record that does not verify, 0 when all do.
	BrokenID int64  `json:"broken_id,omitempty"`
	Reason   string `json:"reason,omitempty"`
}

// OK reports whether the whole chain verified.
func (c ChainStatus) OK() bool { return c.Reason == "" }

// Store keeps verdicts in an append-only, tamper-evident chain.
type Store interface {
	// Append adds a verdict atomically: a crash leaves either the whole
	// record or nothing.
	Append(ctx context.Context, r *Report) (*Record, error)
	// List returns records newest first, without their reports.
	List(ctx context.Context, limit int) ([]Record, error)
	// Get returns one record with its report.
	Get(ctx context.Context, id int64) (*Record, error)
	// Verify walks the chain from the first record.
	Verify(ctx context.Context) (ChainStatus, error)
	// Lookup returns the newest record of a candidate (by digest and
	// platform) vetted under a policy, or nil.
	Lookup(ctx context.Context, candidateDigest, platform, policyDigest string) (*Record, error)
	// Passing returns, newest first and without reports, the records with
	// a pass verdict whose candidate reference starts with refPrefix.
	Passing(ctx context.Context, refPrefix string) ([]Record, error)
	Close() error
}

// Genesis is the PrevHash of the first record.
var Genesis = strings.Repeat("0", 64)

// RecordHash computes a record's hash over its fields, its report and the
// previous hash. Each field is length-prefixed so that no two different
// records encode alike.
func RecordHash(r *Record) string {
	h := sha256.New()
	h.Write([]byte("fwvet/verdict/v1\x00"))
	var n [8]byte
	field := func(b []byte) {
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	field([]byte(fmt.Sprint(r.ID)))
	field([]byte(r.CreatedAt.UTC().Format(time.RFC3339Nano)))
	for _, s := range []string{r.CandidateRef, r.CandidateDigest, r.BaselineRef, r.BaselineDigest, string(r.Verdict), r.PolicyDigest} {
		field([]byte(s))
	}
	field(r.Report)
	field([]byte(r.PrevHash))
	return hex.EncodeToString(h.Sum(nil))
}
