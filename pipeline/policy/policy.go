// Package policy turns checks and findings into a verdict.
package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/fwvet/fwvet/pipeline"
)

// Policy decides a verdict. The zero value is not valid; start from Default.
type Policy struct {
	// FailOn: an undisclosed finding at or above this severity fails.
	FailOn pipeline.Severity `json:"fail_on"`
	// ReviewOn: an undisclosed finding at or above this severity (and below
	// FailOn) asks for review.
	ReviewOn pipeline.Severity `json:"review_on"`
	// Severity overrides the default severity of finding ids.
	Severity map[string]pipeline.Severity `json:"severity,omitempty"`
	// RequireBaseline: without a baseline, changes cannot be assessed and
	// the verdict is at best review.
	RequireBaseline bool `json:"require_baseline"`
	// SignatureThreshold is how many of the signing authorities given
	// (keys, a keyless identity) must have signed: k of n. Zero means one.
	SignatureThreshold int `json:"signature_threshold,omitempty"`
}

// Default is the policy of DESIGN.md: fail on any failed check or any
// undisclosed finding of high or critical severity; review on any other
// undisclosed change; otherwise pass.
func Default() *Policy {
	return &Policy{FailOn: pipeline.SeverityHigh, ReviewOn: pipeline.SeverityInfo, RequireBaseline: true}
}

// Load reads a policy file: a JSON object whose fields override Default.
func Load(file string) (*Policy, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	p := Default()
	dec := json.NewDecoder(io.LimitReader(f, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(p); err != nil {
		return nil, fmt.Errorf("not a policy: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("not a policy: trailing data after the object")
	}
	if p.SignatureThreshold < 0 {
		return nil, fmt.Errorf("signature_threshold %d is negative", p.SignatureThreshold)
	}
	if p.ReviewOn > p.FailOn {
		return nil, fmt.Errorf("review_on (%s) is above fail_on (%s)", p.ReviewOn, p.FailOn)
	}
	for id := range p.Severity {
		if _, ok := pipeline.DefaultSeverity[id]; !ok {
			return nil, fmt.Errorf("severity: unknown finding id %q", id)
		}
	}
	return p, nil
}

// Digest identifies the policy: the SHA-256 of its canonical JSON.
func (p *Policy) Digest() string {
	b, _ := json.Marshal(p) // map keys are sorted by encoding/json
	h := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(h[:])
}

// Rank applies the policy's severity overrides to the findings.
func (p *Policy) Rank(findings []pipeline.Finding) {
	for i := range findings {
		if s, ok := p.Severity[findings[i].ID]; ok {
			findings[i].Severity = s
		}
	}
}

// Decide returns the verdict and the reasons for it. A check that failed or
// could not complete fails the verdict: a verification that cannot complete
// never passes.
func (p *Policy) Decide(checks []pipeline.Check, findings []pipeline.Finding, summary pipeline.Summary, hasBaseline bool) (pipeline.Verdict, []string) {
	var failReasons, reviewReasons []string
	for _, c := range checks {
		switch c.Status {
		case pipeline.CheckPass, pipeline.CheckSkip:
		case pipeline.CheckFail:
			failReasons = append(failReasons, fmt.Sprintf("check %s failed: %s", c.Name, c.Detail))
		case pipeline.CheckError:
			failReasons = append(failReasons, fmt.Sprintf("check %s could not complete: %s", c.Name, c.Detail))
		default:
			// Fail closed on a status this policy does not know.
			failReasons = append(failReasons, fmt.Sprintf("check %s has unknown status %q: %s", c.Name, c.Status, c.Detail))
		}
	}
	var fails, reviews []pipeline.Finding
	for _, f := range findings {
		switch {
		case f.Disclosed:
		case f.Severity >= p.FailOn:
			fails = append(fails, f)
		case f.Severity >= p.ReviewOn:
			reviews = append(reviews, f)
		}
	}
	if len(fails) > 0 {
		failReasons = append(failReasons, fmt.Sprintf("%d undisclosed finding%s of %s severity or above: %s",
			len(fails), plural(len(fails)), p.FailOn, summarize(fails)))
	}
	if len(reviews) > 0 {
		reviewReasons = append(reviewReasons, fmt.Sprintf("%d undisclosed finding%s below %s severity: %s",
			len(reviews), plural(len(reviews)), p.FailOn, summarize(reviews)))
	}
	if len(reviews) == 0 && summary.Undisclosed > 0 && p.ReviewOn == pipeline.SeverityInfo {
		reviewReasons = append(reviewReasons, fmt.Sprintf("%d undisclosed change%s", summary.Undisclosed, plural(summary.Undisclosed)))
	}
	if !hasBaseline && p.RequireBaseline {
		reviewReasons = append(reviewReasons, "no baseline: what the update changes was not assessed")
	}
	switch {
	case len(failReasons) > 0:
		return pipeline.VerdictFail, failReasons
	case len(reviewReasons) > 0:
		return pipeline.VerdictReview, reviewReasons
	}
	return pipeline.VerdictPass, []string{"every check passed and every change is disclosed"}
}

// summarize names the ids and paths of findings, the worst first, briefly.
func summarize(fs []pipeline.Finding) string {
	sort.SliceStable(fs, func(i, j int) bool { return fs[i].Severity > fs[j].Severity })
	const show = 5
	var parts []string
	for i, f := range fs {
		if i == show {
			parts = append(parts, fmt.Sprintf("and %d more", len(fs)-show))
			break
		}
		if f.Path != "" {
			parts = append(parts, f.ID+" "+f.Path)
		} else {
			parts = append(parts, f.ID)
		}
	}
	return strings.Join(parts, ", ")
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
