package pipeline

import (
	"bytes"
	"encoding/json"
	"io"
)

// ReportSchema names the JSON report format. Fields are only ever added.
const ReportSchema = "fwvet/report/v1"

// Verdict is the policy's decision.
type Verdict string

// Verdicts.
const (
	VerdictPass   Verdict = "pass"
	VerdictReview Verdict = "review"
	VerdictFail   Verdict = "fail"
)

// Worst is the worst of verdicts: fail, then review, then pass; pass for
// none. A verdict it does not know counts as a fail.
func Worst(vs ...Verdict) Verdict {
	w := VerdictPass
	for _, v := range vs {
		switch {
		case v == VerdictPass:
		case v == VerdictReview:
			if w == VerdictPass {
				w = VerdictReview
			}
		default:
			return VerdictFail
		}
	}
	return w
}

// Tool names the program that wrote a report.
type Tool struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// Subject describes the candidate or the baseline in a report.
type Subject struct {
	Ref     string `json:"ref"`
	Digest  string `json:"digest"`
	Size    int64  `json:"size"`
	Version string `json:"version"`
	// Platform is the platform of a multi-platform image that was vetted.
	Platform string `json:"platform,omitempty"`
}

// Report is the full outcome of vetting one candidate.
type Report struct {
	Schema    string    `json:"schema"`
	Tool      Tool      `json:"tool"`
	Candidate Subject   `json:"candidate"`
	Baseline  *Subject  `json:"baseline"`
	Checks    []Check   `json:"checks"`
	Summary   Summary   `json:"summary"`
	Findings  []Finding `json:"findings"`
	Verdict   Verdict   `json:"verdict"`
	Reasons   []string  `json:"reasons"`
	// PolicyDigest identifies the policy that reached the verdict.
	PolicyDigest string `json:"policy_digest,omitempty"`
	// Changes lists every change, for reviewers and for diff output.
	Changes []*Change `json:"changes,omitempty"`
	// Explain is the function-level diff of one binary, when asked for
	// (fwvet diff --explain PATH).
	Explain *FunctionDiff `json:"explain,omitempty"`
	// Waivers are the recorded waivers that covered findings of this vet.
	Waivers []Waiver `json:"waivers,omitempty"`
	// PolicyMode is "warn" when the policy only warns: the verdict is
	// recorded and the command exits 0. Empty means enforce.
	PolicyMode string `json:"policy_mode,omitempty"`
}

// MarshalJSON keeps empty lists as [] so consumers need not check for null.
func (r Report) MarshalJSON() ([]byte, error) {
	type plain Report
	p := plain(r)
	if p.Checks == nil {
		p.Checks = []Check{}
	}
	if p.Findings == nil {
		p.Findings = []Finding{}
	}
	if p.Reasons == nil {
		p.Reasons = []string{}
	}
	return marshalNoEscape(p)
}

// Encoder writes a report in one output format.
type Encoder interface {
	Encode(w io.Writer, r *Report) error
}

// marshalNoEscape encodes like json.Marshal but leaves &, < and > as they
// are: reports carry URLs and shell snippets, and are not embedded in HTML.
func marshalNoEscape(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
