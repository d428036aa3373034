// Package policy turns checks, findings and changes into a verdict.
//
// A policy is either today's JSON object (fail_on, review_on, severity,
// require_baseline, signature_threshold) or a YAML or JSON document with
// apiVersion fwvet/v1 and kind Policy, which adds a mode, signing
// authorities, provenance expectations, free parameters and CEL rules.
// See DESIGN.md, "Policy files".
package policy

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/fwvet/fwvet/pipeline"
)

// Modes.
const (
	// ModeEnforce: the verdict is the outcome (the default).
	ModeEnforce = "enforce"
	// ModeWarn: the verdict is recorded, but a command exits 0.
	ModeWarn = "warn"
)

// Policy decides a verdict. The zero value is not valid; start from Default
// or Load.
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

	// Mode is ModeWarn, or empty for ModeEnforce.
	Mode string `json:"mode,omitempty"`
	// Params is the free map rules see as params.
	Params map[string]any `json:"params,omitempty"`
	// Rules are the policy's CEL rules, in order. Set them through Load:
	// a rule is compiled there.
	Rules []Rule `json:"rules,omitempty"`

	auth     Authorities
	keyFiles []keyFile // as written, for the digest
	prov     Provenance
	compiled []*compiledRule
}

// Rule is one CEL rule: when Expression evaluates to false, Verdict applies
// with Message as the reason.
type Rule struct {
	Name       string           `json:"name"`
	Expression string           `json:"expression"`
	Verdict    pipeline.Verdict `json:"verdict"`
	Message    string           `json:"message,omitempty"`
}

// Authorities are the signers a policy trusts. Key paths are absolute.
type Authorities struct {
	Keys    []string  `json:"keys,omitempty"`
	Keyless []Keyless `json:"keyless,omitempty"`
	// Threshold is how many of them must have signed; zero means one. It
	// is the policy's authorities.threshold, or else its
	// signature_threshold.
	Threshold int `json:"threshold,omitempty"`
}

// Keyless is one keyless (Fulcio certificate) signer: exactly one of
// Identity and IdentityRegexp, and of Issuer and IssuerRegexp, is set.
type Keyless struct {
	Identity       string `json:"identity,omitempty"`
	IdentityRegexp string `json:"identity_regexp,omitempty"`
	Issuer         string `json:"issuer,omitempty"`
	IssuerRegexp   string `json:"issuer_regexp,omitempty"`
}

// Provenance is what the candidate's provenance must say. Empty fields
// ask nothing.
type Provenance struct {
	PredicateType string   `json:"predicate_type,omitempty"`
	BuilderIDs    []string `json:"builder_ids,omitempty"`
	SourceURI     string   `json:"source_uri,omitempty"`
	Branch        string   `json:"branch,omitempty"`
	Tag           string   `json:"tag,omitempty"`
}

func (p Provenance) isZero() bool {
	return p.PredicateType == "" && len(p.BuilderIDs) == 0 && p.SourceURI == "" && p.Branch == "" && p.Tag == ""
}

// keyFile is a key as the policy names it, and the digest of its content.
type keyFile struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
}

//go:embed default.yaml
var defaultYAML []byte

var defaultPolicy = sync.OnceValue(func() *Policy {
	p, err := parse("default.yaml", "", defaultYAML, &Policy{})
	if err != nil {
		panic("policy: the embedded default policy: " + err.Error())
	}
	return p
})

// Default is the policy of DESIGN.md (default.yaml): fail on any failed
// check or any undisclosed finding of high or critical severity; review on
// any other undisclosed change; otherwise pass. Each call returns a new
// copy, which the caller may change.
func Default() *Policy {
	return defaultPolicy().clone()
}

func (p *Policy) clone() *Policy {
	c := *p
	c.Severity = maps.Clone(p.Severity)
	c.Params = maps.Clone(p.Params)
	c.Rules = slices.Clone(p.Rules)
	c.compiled = slices.Clone(p.compiled)
	c.keyFiles = slices.Clone(p.keyFiles)
	c.auth.Keys = slices.Clone(p.auth.Keys)
	c.auth.Keyless = slices.Clone(p.auth.Keyless)
	c.prov.BuilderIDs = slices.Clone(p.prov.BuilderIDs)
	return &c
}

// Warn reports whether the policy is in warn mode: its verdict is recorded,
// but does not fail the command.
func (p *Policy) Warn() bool { return p.Mode == ModeWarn }

// Authorities returns the signers the policy trusts, key paths absolute.
func (p *Policy) Authorities() Authorities {
	a := Authorities{Keys: slices.Clone(p.auth.Keys), Keyless: slices.Clone(p.auth.Keyless), Threshold: p.auth.Threshold}
	if a.Threshold == 0 {
		a.Threshold = p.SignatureThreshold
	}
	return a
}

// Provenance returns what the policy asks of the candidate's provenance.
func (p *Policy) Provenance() Provenance {
	v := p.prov
	v.BuilderIDs = slices.Clone(v.BuilderIDs)
	return v
}

// canonical is what Digest hashes. Its first five fields are today's JSON
// policy, in today's order; every later field is omitted when empty, so a
// policy without them hashes as it did before they existed.
type canonical struct {
	FailOn             pipeline.Severity            `json:"fail_on"`
	ReviewOn           pipeline.Severity            `json:"review_on"`
	Severity           map[string]pipeline.Severity `json:"severity,omitempty"`
	RequireBaseline    bool                         `json:"require_baseline"`
	SignatureThreshold int                          `json:"signature_threshold,omitempty"`
	Mode               string                       `json:"mode,omitempty"` // only warn
	Authorities        *canonicalAuthorities        `json:"authorities,omitempty"`
	Provenance         *Provenance                  `json:"provenance,omitempty"`
	Params             map[string]any               `json:"params,omitempty"`
	Rules              []Rule                       `json:"rules,omitempty"`
}

type canonicalAuthorities struct {
	Keys      []keyFile `json:"keys,omitempty"`
	Keyless   []Keyless `json:"keyless,omitempty"`
	Threshold int       `json:"threshold,omitempty"`
}

// Digest identifies the policy: the SHA-256 of its canonical JSON. Keys
// count by the path the policy gives and the digest of their content.
func (p *Policy) Digest() string {
	c := canonical{FailOn: p.FailOn, ReviewOn: p.ReviewOn, Severity: p.Severity, RequireBaseline: p.RequireBaseline,
		SignatureThreshold: p.SignatureThreshold, Params: p.Params, Rules: p.Rules}
	if p.Warn() {
		c.Mode = ModeWarn
	}
	if len(p.keyFiles) > 0 || len(p.auth.Keyless) > 0 || p.auth.Threshold != 0 {
		c.Authorities = &canonicalAuthorities{Keys: p.keyFiles, Keyless: p.auth.Keyless, Threshold: p.auth.Threshold}
	}
	if !p.prov.isZero() {
		prov := p.prov
		c.Provenance = &prov
	}
	b, err := json.Marshal(c) // map keys are sorted by encoding/json
	if err != nil {
		// Load only admits params that encode; a hand-made policy that
		// does not still gets a digest of its own.
		b = []byte(fmt.Sprintf("%#v", c))
	}
	h := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(h[:])
}

// Ranked returns a copy of the findings with the policy's severity
// overrides applied; findings itself is left as it is.
func (p *Policy) Ranked(findings []pipeline.Finding) []pipeline.Finding {
	out := slices.Clone(findings)
	for i := range out {
		if s, ok := p.Severity[out[i].ID]; ok {
			out[i].Severity = s
		}
	}
	return out
}

// Input is what a policy decides on.
type Input struct {
	// Report carries the candidate, the baseline, the checks, the
	// findings (already ranked) and the summary.
	Report *pipeline.Report
	// Changes are every change; nil means Report.Changes.
	Changes []*pipeline.Change
	// HasBaseline: there was a baseline to diff against.
	HasBaseline bool
}

// Decision is a policy's verdict and the reasons for it.
type Decision struct {
	Verdict pipeline.Verdict
	Reasons []string
	// Mode is ModeEnforce or ModeWarn.
	Mode string
}

// Decider decides verdicts; *Policy is one.
type Decider interface {
	Decide(ctx context.Context, in Input) (Decision, error)
	Digest() string
}

var _ Decider = (*Policy)(nil)

// Decide returns the verdict and the reasons for it. The thresholds come
// first: a check that failed or could not complete fails the verdict (a
// verification that cannot complete never passes), then undisclosed
// findings and changes by severity, then the baseline. Then each rule: a
// rule whose expression is false adds its message at its verdict, and a
// rule that cannot be evaluated fails. The worst verdict wins, with the
// reasons for it. An error is returned only for an invalid input.
func (p *Policy) Decide(ctx context.Context, in Input) (Decision, error) {
	if in.Report == nil {
		return Decision{}, errors.New("policy: Decide without a report")
	}
	if len(p.compiled) != len(p.Rules) {
		return Decision{}, errors.New("policy: rules were not compiled (load policies with Load)")
	}
	d := Decision{Mode: ModeEnforce}
	if p.Warn() {
		d.Mode = ModeWarn
	}
	rep := in.Report
	failReasons, reviewReasons := p.thresholds(rep.Checks, rep.Findings, rep.Summary, in.HasBaseline)
	if len(p.compiled) > 0 {
		changes := in.Changes
		if changes == nil {
			changes = rep.Changes
		}
		act := newActivation(rep, changes, p.Params)
		for _, r := range p.compiled {
			switch v, reason := r.eval(ctx, act); v {
			case pipeline.VerdictPass:
			case pipeline.VerdictReview:
				reviewReasons = append(reviewReasons, reason)
			default:
				failReasons = append(failReasons, reason)
			}
		}
	}
	switch {
	case len(failReasons) > 0:
		d.Verdict, d.Reasons = pipeline.VerdictFail, failReasons
	case len(reviewReasons) > 0:
		d.Verdict, d.Reasons = pipeline.VerdictReview, reviewReasons
	default:
		d.Verdict, d.Reasons = pipeline.VerdictPass, []string{"every check passed and every change is disclosed"}
	}
	return d, nil
}

// thresholds is the policy without rules: the reasons to fail and to ask
// for review.
func (p *Policy) thresholds(checks []pipeline.Check, findings []pipeline.Finding, summary pipeline.Summary, hasBaseline bool) (failReasons, reviewReasons []string) {
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
		case f.Disclosed, f.Waived:
			// Declared by the vendor, or accepted by a recorded waiver.
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
	return failReasons, reviewReasons
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

// maxReportSize bounds a saved report ReadReport reads.
const maxReportSize = 1 << 30

// ReadReport reads a saved report (JSON, schema fwvet/report/v1).
func ReadReport(r io.Reader) (*pipeline.Report, error) {
	var rep pipeline.Report
	dec := json.NewDecoder(io.LimitReader(r, maxReportSize))
	if err := dec.Decode(&rep); err != nil {
		return nil, fmt.Errorf("not a report: %w", err)
	}
	if rep.Schema != pipeline.ReportSchema {
		return nil, fmt.Errorf("not a report: schema %q, want %s", rep.Schema, pipeline.ReportSchema)
	}
	return &rep, nil
}

// DecideReport decides again on a saved report: its checks, its findings
// with this policy's severity overrides applied (over those of the policy
// that wrote it), its summary and, when it lists them, its changes. The
// report is left as it is.
func (p *Policy) DecideReport(ctx context.Context, rep *pipeline.Report) (Decision, error) {
	r := *rep
	r.Findings = p.Ranked(rep.Findings)
	return p.Decide(ctx, Input{Report: &r, Changes: rep.Changes, HasBaseline: rep.Baseline != nil})
}
