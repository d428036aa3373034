package pipeline

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
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
	// The hash covers them (records hashed before it did are accepted only
	// while they equal what the hashed report says; see chain.HashOK).
	CandidateVersion string `json:"candidate_version,omitempty"`
	Platform         string `json:"platform,omitempty"`
	// Report is the full JSON report.
	Report []byte `json:"-"`
	// PrevHash is the previous record's Hash; Hash covers every field above
	// and PrevHash, so any edit or deletion breaks the chain.
	PrevHash string `json:"prev_hash"`
	Hash     string `json:"hash"`
}

// VerdictSegment is the verdict of a segment start: a record, hashed like
// any other, that a user wrote to carry on appending after a broken chain.
// Its report (SegmentSchema) names the break it follows.
const VerdictSegment Verdict = "segment"

// SegmentSchema is the schema of a segment start's report.
const SegmentSchema = "fwvet/segment/v1"

// SegmentStart is the report of a segment start record.
type SegmentStart struct {
	Schema   string `json:"schema"`
	BrokenID int64  `json:"broken_id"`
	Reason   string `json:"reason"`
}

// ChainHead names a chain's newest record, to be held outside the store
// (as transparency logs hold checkpoints): a store cut back to fewer records
// no longer contains it. Its text form is "ID:sha256:HEX".
type ChainHead struct {
	ID   int64  `json:"id"`
	Hash string `json:"hash"`
}

// String implements fmt.Stringer.
func (h ChainHead) String() string { return fmt.Sprintf("%d:sha256:%s", h.ID, h.Hash) }

// ParseChainHead parses the text form of a ChainHead.
func ParseChainHead(s string) (ChainHead, error) {
	id, hash, ok := strings.Cut(s, ":")
	n, err := strconv.ParseInt(id, 10, 64)
	hash, hasAlg := strings.CutPrefix(hash, "sha256:")
	if _, herr := hex.DecodeString(hash); !ok || err != nil || n <= 0 || !hasAlg || herr != nil || len(hash) != 64 {
		return ChainHead{}, fmt.Errorf("chain head %q: want ID:sha256:HEX (as verdicts verify prints it)", s)
	}
	return ChainHead{ID: n, Hash: hash}, nil
}

// ChainStatus is what verifying a store's chain found.
type ChainStatus struct {
	// Records is how many records verify before the first break.
	Records int `json:"records"`
	// BrokenID is the first record that does not verify, 0 when all do.
	BrokenID int64  `json:"broken_id,omitempty"`
	Reason   string `json:"reason,omitempty"`
	// Head is the newest record of the last segment when that segment
	// verifies; zero otherwise.
	Head ChainHead `json:"head"`
	// Segments counts the segments: 1 plus the segment starts that follow
	// a break (0 for an empty store).
	Segments int `json:"segments"`
	// SegmentStart is the id of the last segment start, 0 when none.
	SegmentStart int64 `json:"segment_start,omitempty"`
	// TailBrokenID and TailReason name the first break in the last
	// segment, which writers must not extend.
	TailBrokenID int64  `json:"tail_broken_id,omitempty"`
	TailReason   string `json:"tail_reason,omitempty"`
}

// OK reports whether the whole chain verified.
func (c ChainStatus) OK() bool { return c.Reason == "" }

// Writable reports whether the last segment verified, so that a record may
// be appended to it.
func (c ChainStatus) Writable() bool { return c.TailReason == "" }

// ErrNoStore is returned when a reading command names a store that does
// not exist or is empty.
var ErrNoStore = errors.New("no verdict store")

// ErrNoRecord is what Get wraps for an id the store does not hold.
var ErrNoRecord = errors.New("no such verdict")

// ErrNotDecidable is wrapped by AppendDecision's error for a record that
// is not a verdict a person may decide (see Decidable).
var ErrNotDecidable = errors.New("not a decidable verdict")

// BrokenChainError is returned when a write would extend a broken chain.
type BrokenChainError struct {
	Path     string
	BrokenID int64
	Reason   string
}

func (e *BrokenChainError) Error() string {
	return fmt.Sprintf("verdict store %s: the chain is broken at record %d (%s); refusing to append to it (start a new segment with --store-new-segment to carry on, after looking at what changed)", e.Path, e.BrokenID, e.Reason)
}

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
	// StartSegment appends a segment start that names the break it
	// follows, so that appends may carry on after a broken chain.
	StartSegment(ctx context.Context, brokenID int64, reason string) (*Record, error)
	// Lookup returns the newest record of a candidate (by digest and
	// platform) vetted under a policy, or nil.
	Lookup(ctx context.Context, candidateDigest, platform, policyDigest string) (*Record, error)
	// Passing returns, newest first and without reports, the records with
	// a pass verdict whose candidate reference starts with refPrefix.
	Passing(ctx context.Context, refPrefix string) ([]Record, error)
	// AppendDecision appends a person's decision on the verdict record
	// d.VerdictID, built by chain.NewDecision: that record must be a
	// review or a fail (Decidable) whose hash verifies, or the decision is
	// refused with an error wrapping ErrNotDecidable (or, for an id the
	// store does not hold, the backend's not-found error). The record's
	// digest, hash and computed verdict are copied into the decision, and
	// At is set to now when zero.
	AppendDecision(ctx context.Context, d Decision) (*Record, error)
	// Decision returns the latest decision on a verdict record, or nil
	// when no one decided it.
	Decision(ctx context.Context, verdictID int64) (*Decision, error)
	// AppendWaiver appends a waiver, built by chain.NewWaiver (which
	// validates it and sets At to now when zero).
	AppendWaiver(ctx context.Context, w Waiver) (*Record, error)
	// Waivers returns every waiver of the chain, oldest first, expired
	// ones included: the deviation register.
	Waivers(ctx context.Context) ([]Waiver, error)
	Close() error
}
