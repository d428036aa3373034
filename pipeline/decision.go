package pipeline

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/bmatcuk/doublestar/v4"
)

// A person's decision on a verdict and a waiver of findings are records of
// the verdict chain, hashed like any other, with their own verdict kind so
// that no query for verdicts (Lookup, Passing) ever returns them.
const (
	// VerdictDecision is the verdict kind of a decision record.
	VerdictDecision Verdict = "decision"
	// VerdictWaiver is the verdict kind of a waiver record.
	VerdictWaiver Verdict = "waiver"
)

// Schemas of the report of a decision and of a waiver record.
const (
	DecisionSchema = "fwvet/decision/v1"
	WaiverSchema   = "fwvet/waiver/v1"
)

// Bounds on the free text of decisions and waivers.
const (
	MaxReasonLen = 2000 // bytes
	MaxByLen     = 200  // bytes
)

// Decidable reports whether a record is a verdict a person may decide: a
// review or a fail. A pass needs no decision (it is refused: a person who
// distrusts a pass re-vets under a stricter policy), and segment starts,
// decisions and waivers are not verdicts.
func Decidable(v Verdict) bool { return v == VerdictReview || v == VerdictFail }

// IsVerdict reports whether v is a verdict fwvet computes (pass, review or
// fail), not another kind of record of the chain.
func IsVerdict(v Verdict) bool {
	return v == VerdictPass || v == VerdictReview || v == VerdictFail
}

// Decision is a person's decision on a stored verdict: the report of a
// decision record. The latest decision on a verdict wins; earlier ones stay
// in the chain.
type Decision struct {
	Schema string `json:"schema"`
	// RecordID is the id of the decision record itself. It is not part of
	// the stored body (zero when written); reading a decision fills it.
	RecordID int64 `json:"record_id,omitempty"`
	// VerdictID is the decided verdict's record; CandidateDigest and
	// VerdictHash are that record's, copied when the decision is made.
	VerdictID       int64  `json:"verdict_id"`
	CandidateDigest string `json:"candidate_digest"`
	VerdictHash     string `json:"verdict_hash"`
	// Computed is the verdict fwvet reached, that the person decided on.
	Computed Verdict   `json:"computed"`
	Approve  bool      `json:"approve"`
	Reason   string    `json:"reason"`
	By       string    `json:"by"`
	At       time.Time `json:"at"`
}

// Verdict is the decided verdict: pass when approved, fail when rejected.
func (d Decision) Verdict() Verdict {
	if d.Approve {
		return VerdictPass
	}
	return VerdictFail
}

// Action is "approve" or "reject".
func (d Decision) Action() string {
	if d.Approve {
		return "approve"
	}
	return "reject"
}

// Validate checks the fields a person gives: the verdict id, the reason and
// who decided.
func (d Decision) Validate() error {
	if d.VerdictID <= 0 {
		return fmt.Errorf("decision: verdict id %d: want a positive number", d.VerdictID)
	}
	if err := checkText("reason", d.Reason, MaxReasonLen, true); err != nil {
		return fmt.Errorf("decision: %w", err)
	}
	if err := checkText("by", d.By, MaxByLen, false); err != nil {
		return fmt.Errorf("decision: %w", err)
	}
	return nil
}

// WaiverScope is what a waiver covers: either every finding of one
// candidate digest, or one finding id on a path (exact, or a glob as in
// release manifests) for one product.
type WaiverScope struct {
	Digest    string `json:"digest,omitempty"`
	FindingID string `json:"finding_id,omitempty"`
	Path      string `json:"path,omitempty"`
	// Product is the product of the release manifest the finding was
	// vetted under. Empty covers only vets without a product: a waiver
	// never widens to every product.
	Product string `json:"product,omitempty"`
}

// String describes the scope.
func (s WaiverScope) String() string {
	if s.Digest != "" {
		return "digest " + s.Digest
	}
	out := s.FindingID + " on " + s.Path
	if s.Product != "" {
		out += " for " + s.Product
	} else {
		out += " (no product)"
	}
	return out
}

// DateLayout is the layout of a waiver's Until.
const DateLayout = "2006-01-02"

// Waiver is a recorded deviation: the report of a waiver record.
type Waiver struct {
	Schema string `json:"schema"`
	// RecordID is the id of the waiver record; like Decision.RecordID it
	// is filled when read, not stored.
	RecordID int64       `json:"record_id,omitempty"`
	Scope    WaiverScope `json:"scope"`
	// Until is the last day (YYYY-MM-DD, UTC) the waiver applies on.
	// Required for finding waivers; a digest waiver without one never
	// expires (the digest names one immutable candidate).
	Until  string    `json:"until,omitempty"`
	Reason string    `json:"reason"`
	By     string    `json:"by"`
	At     time.Time `json:"at"`
}

// Expires is when the waiver stops applying: the end of its Until day, UTC.
// It is zero for a waiver without an end.
func (w Waiver) Expires() time.Time {
	if w.Until == "" {
		return time.Time{}
	}
	d, err := time.Parse(DateLayout, w.Until)
	if err != nil {
		return time.Unix(0, 0).UTC() // an unreadable date has expired
	}
	return d.UTC().AddDate(0, 0, 1)
}

// Expired reports whether the waiver no longer applies at now.
func (w Waiver) Expired(now time.Time) bool {
	e := w.Expires()
	return !e.IsZero() && !now.Before(e)
}

var (
	digestRE    = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
	findingIDRE = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)
)

// Validate checks a waiver's scope, date and text. It does not compare the
// date with today: recording a waiver that already expired is allowed (the
// register shows it expired), and the CLI refuses it.
func (w Waiver) Validate() error {
	s := w.Scope
	switch {
	case s.Digest != "" && (s.FindingID != "" || s.Path != "" || s.Product != ""):
		return errors.New("waiver: a digest waiver covers a whole candidate; it takes no finding id, path or product")
	case s.Digest != "":
		if !digestRE.MatchString(s.Digest) {
			return fmt.Errorf("waiver: digest %q: want sha256: and 64 lowercase hex digits", s.Digest)
		}
	case s.FindingID == "" || s.Path == "":
		return errors.New("waiver: give either a candidate digest, or a finding id and a path")
	default:
		if !findingIDRE.MatchString(s.FindingID) || len(s.FindingID) > 64 {
			return fmt.Errorf("waiver: finding id %q is not a finding id (such as account-added)", s.FindingID)
		}
		if !strings.HasPrefix(s.Path, "/") || len(s.Path) > 4096 || !doublestar.ValidatePattern(s.Path) {
			return fmt.Errorf("waiver: path %q: want an absolute path or glob inside the image", s.Path)
		}
		if err := checkText("product", s.Product, MaxByLen, false); s.Product != "" && err != nil {
			return fmt.Errorf("waiver: %w", err)
		}
		if w.Until == "" {
			return errors.New("waiver: a finding waiver needs an end date (until)")
		}
	}
	if w.Until != "" {
		if d, err := time.Parse(DateLayout, w.Until); err != nil || d.Format(DateLayout) != w.Until {
			return fmt.Errorf("waiver: until %q: want a date, YYYY-MM-DD", w.Until)
		}
	}
	if err := checkText("reason", w.Reason, MaxReasonLen, true); err != nil {
		return fmt.Errorf("waiver: %w", err)
	}
	if err := checkText("by", w.By, MaxByLen, false); err != nil {
		return fmt.Errorf("waiver: %w", err)
	}
	return nil
}

// checkText requires a non-blank, valid UTF-8 text of at most max bytes
// without control characters (but for newlines and tabs when multiline).
func checkText(name, s string, max int, multiline bool) error {
	switch {
	case strings.TrimSpace(s) == "":
		return fmt.Errorf("%s is required", name)
	case len(s) > max:
		return fmt.Errorf("%s is %d bytes long, over the limit of %d", name, len(s), max)
	case !utf8.ValidString(s):
		return fmt.Errorf("%s is not valid UTF-8", name)
	}
	for _, r := range s {
		if unicode.IsControl(r) && !(multiline && (r == '\n' || r == '\t')) {
			return fmt.Errorf("%s holds a control character (%U)", name, r)
		}
	}
	return nil
}

// ParseDecision reads the decision a decision record holds.
func ParseDecision(rec *Record) (*Decision, error) {
	if rec.Verdict != VerdictDecision {
		return nil, fmt.Errorf("record %d is a %s, not a decision", rec.ID, rec.Verdict)
	}
	var d Decision
	if err := json.Unmarshal(rec.Report, &d); err != nil || d.Schema != DecisionSchema {
		return nil, fmt.Errorf("record %d: not a readable %s decision", rec.ID, DecisionSchema)
	}
	d.RecordID = rec.ID
	return &d, nil
}

// ParseWaiver reads the waiver a waiver record holds.
func ParseWaiver(rec *Record) (*Waiver, error) {
	if rec.Verdict != VerdictWaiver {
		return nil, fmt.Errorf("record %d is a %s, not a waiver", rec.ID, rec.Verdict)
	}
	var w Waiver
	if err := json.Unmarshal(rec.Report, &w); err != nil || w.Schema != WaiverSchema {
		return nil, fmt.Errorf("record %d: not a readable %s waiver", rec.ID, WaiverSchema)
	}
	w.RecordID = rec.ID
	return &w, nil
}
