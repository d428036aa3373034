// Package chain is the hash chain that every verdict store keeps: how a
// record is built from a report, how it is linked to the record before it
// and hashed, and how a sequence of records is verified. A backend only
// stores rows and serializes writers; it never computes a hash itself, so
// that every backend detects the same edits and deletions.
package chain

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/fwvet/fwvet/pipeline"
)

// Genesis is the PrevHash of the first record.
var Genesis = strings.Repeat("0", 64)

// Hash computes a record's hash over every stored field, its report and
// the previous hash. Each field is length-prefixed so that no two
// different records encode alike.
func Hash(r *pipeline.Record) string {
	return hash(r, "fwvet/verdict/v2\x00", r.CandidateVersion, r.Platform)
}

// HashV1 is the hash of records written before Hash covered
// CandidateVersion and Platform. HashOK accepts it only when those two
// columns equal what the record's (hashed) report says.
func HashV1(r *pipeline.Record) string { return hash(r, "fwvet/verdict/v1\x00") }

func hash(r *pipeline.Record, domain string, extra ...string) string {
	h := sha256.New()
	h.Write([]byte(domain))
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
	for _, s := range extra {
		field([]byte(s))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// HashOK reports whether a record hashes to its stored hash: the current
// form, or the form from before the hash covered CandidateVersion and
// Platform provided that those columns equal what the hashed report says.
func HashOK(r *pipeline.Record) bool {
	if Hash(r) == r.Hash {
		return true
	}
	if HashV1(r) != r.Hash {
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

// NewRecord is the unlinked record of a report: every column but the id,
// the time and the hashes.
func NewRecord(r *pipeline.Report) (*pipeline.Record, error) {
	report, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encoding report: %w", err)
	}
	rec := &pipeline.Record{
		CandidateRef:     r.Candidate.Ref,
		CandidateDigest:  r.Candidate.Digest,
		Verdict:          r.Verdict,
		PolicyDigest:     r.PolicyDigest,
		Report:           report,
		CandidateVersion: r.Candidate.Version,
		Platform:         r.Candidate.Platform,
	}
	if r.Baseline != nil {
		rec.BaselineRef, rec.BaselineDigest = r.Baseline.Ref, r.Baseline.Digest
	}
	return rec, nil
}

// NewSegmentStart is the unlinked record that starts a new segment after
// the break it names.
func NewSegmentStart(brokenID int64, reason string) (*pipeline.Record, error) {
	report, err := json.Marshal(pipeline.SegmentStart{Schema: pipeline.SegmentSchema, BrokenID: brokenID, Reason: reason})
	if err != nil {
		return nil, fmt.Errorf("encoding segment start: %w", err)
	}
	return &pipeline.Record{Verdict: pipeline.VerdictSegment, Report: report}, nil
}

// NewDecision is the unlinked record of a person's decision on target,
// the verdict record d.VerdictID names (read by the backend). It refuses a
// target that is not Decidable or whose hash does not verify, with an
// error wrapping pipeline.ErrNotDecidable, and a decision that does not
// validate. It copies the target's candidate digest, hash and verdict into
// the decision, and sets At to now when zero. The record carries the
// target's candidate columns (for listings); its verdict kind keeps it out
// of Lookup and Passing.
func NewDecision(target *pipeline.Record, d pipeline.Decision) (*pipeline.Record, error) {
	if err := d.Validate(); err != nil {
		return nil, err
	}
	switch {
	case target == nil || target.ID != d.VerdictID:
		return nil, fmt.Errorf("deciding verdict %d: no such record", d.VerdictID)
	case !pipeline.Decidable(target.Verdict):
		why := "only a review or a fail verdict can be decided"
		if target.Verdict == pipeline.VerdictPass {
			why = "it passed: only a review or a fail verdict can be decided"
		} else if !pipeline.IsVerdict(target.Verdict) {
			why = fmt.Sprintf("it is a %s record, not a verdict", target.Verdict)
		}
		return nil, fmt.Errorf("deciding record %d: %w: %s", target.ID, pipeline.ErrNotDecidable, why)
	case !HashOK(target):
		return nil, fmt.Errorf("deciding record %d: %w: its contents do not match its hash (run verdicts verify)", target.ID, pipeline.ErrNotDecidable)
	}
	d.Schema, d.RecordID = pipeline.DecisionSchema, 0
	d.CandidateDigest, d.VerdictHash, d.Computed = target.CandidateDigest, target.Hash, target.Verdict
	if d.At.IsZero() {
		d.At = time.Now()
	}
	d.At = d.At.UTC().Truncate(time.Second)
	report, err := json.Marshal(d)
	if err != nil {
		return nil, fmt.Errorf("encoding decision: %w", err)
	}
	return &pipeline.Record{
		Verdict:          pipeline.VerdictDecision,
		CandidateRef:     target.CandidateRef,
		CandidateDigest:  target.CandidateDigest,
		CandidateVersion: target.CandidateVersion,
		Platform:         target.Platform,
		PolicyDigest:     target.PolicyDigest,
		Report:           report,
	}, nil
}

// NewWaiver is the unlinked record of a waiver. It validates the waiver
// and sets At to now when zero. A digest waiver's record carries the
// digest in its candidate digest column.
func NewWaiver(w pipeline.Waiver) (*pipeline.Record, error) {
	if err := w.Validate(); err != nil {
		return nil, err
	}
	w.Schema, w.RecordID = pipeline.WaiverSchema, 0
	if w.At.IsZero() {
		w.At = time.Now()
	}
	w.At = w.At.UTC().Truncate(time.Second)
	report, err := json.Marshal(w)
	if err != nil {
		return nil, fmt.Errorf("encoding waiver: %w", err)
	}
	return &pipeline.Record{Verdict: pipeline.VerdictWaiver, CandidateDigest: w.Scope.Digest, Report: report}, nil
}

// LatestDecision picks, from decision records in any order, the latest
// decision on verdictID (the one with the highest record id), or nil.
// Backends read the decision records and leave the choice to it.
func LatestDecision(recs []pipeline.Record, verdictID int64) (*pipeline.Decision, error) {
	var best *pipeline.Decision
	for i := range recs {
		d, err := pipeline.ParseDecision(&recs[i])
		if err != nil {
			return nil, err
		}
		if d.VerdictID == verdictID && (best == nil || d.RecordID > best.RecordID) {
			best = d
		}
	}
	return best, nil
}

// Tx is one write transaction of a backend, which holds the store's write
// lock from before Tail is read until Insert commits, so that two writers
// never link to the same record.
type Tx interface {
	// Seq is the highest id the store ever handed out (0 for none): it
	// stays above the last id when records are deleted from the end.
	Seq(ctx context.Context) (int64, error)
	// Tail returns the newest record in full and, when there is one, the
	// id and hash of the record before it; nothing for an empty store.
	Tail(ctx context.Context) ([]pipeline.Record, error)
	// Insert stores the linked record.
	Insert(ctx context.Context, rec *pipeline.Record) error
}

// Append links rec to the chain that tx sees and inserts it: it sets the
// record's id, time and hashes. Unless rec starts a segment, a write onto
// a broken tail fails with a *pipeline.BrokenChainError, and a store whose
// every record was deleted is not started afresh. where names the store
// in errors.
func Append(ctx context.Context, tx Tx, rec *pipeline.Record, where string) error {
	segment := rec.Verdict == pipeline.VerdictSegment
	seq, err := tx.Seq(ctx)
	if err != nil {
		return fmt.Errorf("storing verdict in %s: reading the id sequence: %w", where, err)
	}
	tail, err := tx.Tail(ctx)
	if err != nil {
		return fmt.Errorf("storing verdict in %s: reading the chain head: %w", where, err)
	}
	rec.CreatedAt = time.Now().UTC().Truncate(time.Microsecond)
	if len(tail) == 0 {
		if seq > 0 && !segment {
			return fmt.Errorf("storing verdict in %s: the store held %d records and is now empty; refusing to start a new chain over a deleted one", where, seq)
		}
		rec.ID, rec.PrevHash = seq+1, Genesis
	} else {
		if !segment {
			if id, reason := checkTail(tail, seq); reason != "" {
				return &pipeline.BrokenChainError{Path: where, BrokenID: id, Reason: reason}
			}
		}
		// The new record's id keeps a gap left by deleted records, for
		// Verify to see.
		rec.ID, rec.PrevHash = max(tail[0].ID, seq)+1, tail[0].Hash
	}
	rec.Hash = Hash(rec)
	if err := tx.Insert(ctx, rec); err != nil {
		return fmt.Errorf("storing verdict in %s: %w", where, err)
	}
	return nil
}

// checkTail checks the newest record (tail[0]) against its contents, its
// link to the one before it (tail[1], only its id and hash, when there is
// one) and the id sequence. It returns the broken record and why, or ""
// when it holds.
func checkTail(tail []pipeline.Record, seq int64) (int64, string) {
	last := &tail[0]
	switch {
	case seq > last.ID:
		return last.ID + 1, fmt.Sprintf("the store once held record %d but now ends at %d: records were deleted", seq, last.ID)
	case !HashOK(last):
		return last.ID, "its contents do not match its hash: the record was edited"
	case len(tail) == 1 && last.Verdict != pipeline.VerdictSegment && (last.ID != 1 || last.PrevHash != Genesis):
		return last.ID, "it is the only record but does not start the chain"
	case len(tail) == 2 && last.Verdict != pipeline.VerdictSegment && last.ID != tail[1].ID+1:
		return last.ID, fmt.Sprintf("records %d to %d are missing", tail[1].ID+1, last.ID-1)
	case len(tail) == 2 && last.PrevHash != tail[1].Hash:
		return last.ID, "its previous hash does not match the record before it"
	}
	return 0, ""
}

// Verifier walks a chain record by record, oldest first, in constant
// memory. Every record must follow the previous one by id, name its hash
// and hash to what it holds. A segment start (a record with the segment
// verdict whose own hash verifies and that links to the stored hash of the
// record before it) begins a new segment: breaks before it are still
// reported, but do not count against the last segment.
type Verifier struct {
	st       pipeline.ChainStatus
	prevID   int64
	prevHash string
	stopped  bool
}

// NewVerifier starts a walk at the genesis.
func NewVerifier() *Verifier { return &Verifier{prevHash: Genesis} }

func (v *Verifier) brk(id int64, reason string) {
	if v.st.Reason == "" {
		v.st.BrokenID, v.st.Reason = id, reason
	}
	if v.st.TailReason == "" {
		v.st.TailBrokenID, v.st.TailReason = id, reason
	}
}

// Add takes the next record, with its report.
func (v *Verifier) Add(rec *pipeline.Record) {
	if v.stopped {
		return
	}
	if v.st.Segments == 0 {
		v.st.Segments = 1
	}
	if rec.Verdict == pipeline.VerdictSegment && rec.ID > v.prevID && rec.PrevHash == v.prevHash && HashOK(rec) {
		if rec.ID != v.prevID+1 {
			v.brk(v.prevID+1, fmt.Sprintf("records %d to %d are missing", v.prevID+1, rec.ID-1))
		}
		if v.prevID != 0 {
			v.st.Segments++
		}
		v.st.SegmentStart, v.st.TailBrokenID, v.st.TailReason = rec.ID, 0, ""
	} else {
		switch {
		case rec.ID != v.prevID+1:
			v.brk(rec.ID, fmt.Sprintf("records %d to %d are missing", v.prevID+1, rec.ID-1))
		case rec.PrevHash != v.prevHash:
			v.brk(rec.ID, "its previous hash does not match the record before it")
		case !HashOK(rec):
			v.brk(rec.ID, "its contents do not match its hash: the record was edited")
		}
	}
	if v.st.Reason == "" {
		v.st.Records++
	}
	if v.st.TailReason == "" {
		v.st.Head = pipeline.ChainHead{ID: rec.ID, Hash: rec.Hash}
	}
	v.prevID, v.prevHash = rec.ID, rec.Hash
}

// Unreadable ends the walk at a record the backend could not read.
func (v *Verifier) Unreadable(err error) {
	if v.stopped {
		return
	}
	v.brk(v.prevID+1, fmt.Sprintf("unreadable record after %d: %v", v.prevID, err))
	v.stopped = true
}

// Status ends the walk: seq is the highest id the store ever handed out,
// so that records deleted from the end are reported.
func (v *Verifier) Status(seq int64) pipeline.ChainStatus {
	if !v.stopped && seq > v.prevID {
		v.brk(v.prevID+1, fmt.Sprintf("the store once held record %d but now ends at %d: records were deleted", seq, v.prevID))
	}
	st := v.st
	if st.TailReason != "" {
		st.Head = pipeline.ChainHead{}
	}
	return st
}

// Records is what a backend gives the record kinds built on the chain:
// reading one record, reading every record of a kind (oldest first, with
// reports), and appending a record through Append.
type Records interface {
	Get(ctx context.Context, id int64) (*pipeline.Record, error)
	Kind(ctx context.Context, v pipeline.Verdict) ([]pipeline.Record, error)
	Insert(ctx context.Context, rec *pipeline.Record) (*pipeline.Record, error)
}

// AppendDecision appends a person's decision on the verdict it names.
func AppendDecision(ctx context.Context, b Records, d pipeline.Decision) (*pipeline.Record, error) {
	target, err := b.Get(ctx, d.VerdictID)
	if err != nil {
		return nil, err
	}
	rec, err := NewDecision(target, d)
	if err != nil {
		return nil, err
	}
	return b.Insert(ctx, rec)
}

// LatestDecisionOf is the latest decision on a verdict, or nil.
func LatestDecisionOf(ctx context.Context, b Records, verdictID int64) (*pipeline.Decision, error) {
	recs, err := b.Kind(ctx, pipeline.VerdictDecision)
	if err != nil {
		return nil, err
	}
	return LatestDecision(recs, verdictID)
}

// AppendWaiver appends a waiver.
func AppendWaiver(ctx context.Context, b Records, w pipeline.Waiver) (*pipeline.Record, error) {
	rec, err := NewWaiver(w)
	if err != nil {
		return nil, err
	}
	return b.Insert(ctx, rec)
}

// Waivers are every waiver recorded, oldest first; where names the store
// in errors.
func Waivers(ctx context.Context, b Records, where string) ([]pipeline.Waiver, error) {
	recs, err := b.Kind(ctx, pipeline.VerdictWaiver)
	if err != nil {
		return nil, err
	}
	out := []pipeline.Waiver{}
	for i := range recs {
		w, err := pipeline.ParseWaiver(&recs[i])
		if err != nil {
			return nil, fmt.Errorf("reading the waivers of %s: %w", where, err)
		}
		out = append(out, *w)
	}
	return out, nil
}
