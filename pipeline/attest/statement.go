// Package attest turns a verdict into a signed SLSA Verification Summary
// (an in-toto Statement v1 with the https://slsa.dev/verification_summary/v1
// predicate, in a DSSE envelope), attaches it to the candidate in its
// registry, and finds and checks such summaries again, so that a later
// rollout stage can take fwvet's signed word instead of re-running it.
//
// The statement is built from plain structs whose JSON names are exactly
// those of the in-toto and SLSA specifications, so that fwvet controls
// every byte it signs and can carry its own fields (the decision) beside
// the standard ones.
package attest

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/fwvet/fwvet/pipeline"
)

// Type names fixed by the specifications.
const (
	// StatementType is the in-toto Statement v1 type.
	StatementType = "https://in-toto.io/Statement/v1"
	// PredicateType is the SLSA Verification Summary v1 predicate type.
	PredicateType = "https://slsa.dev/verification_summary/v1"
	// PayloadType is the DSSE payload type of an in-toto statement.
	PayloadType = "application/vnd.in-toto+json"
	// DefaultVerifierID is verifier.id when Options.VerifierID is empty.
	DefaultVerifierID = "https://github.com/fwvet/fwvet"
	// DecisionKey is the predicate key of a person's decision. SLSA VSA
	// consumers ignore keys they do not know; a URI-like key cannot collide
	// with a field a later VSA version adds.
	DecisionKey = "fwvet.dev/decision"
	// VerdictKey is the predicate key of fwvet's own verdict: the computed
	// verdict, the report's reasons and the report's digest.
	VerdictKey = "fwvet.dev/verdict"
)

// Verification results of a summary.
const (
	ResultPassed = "PASSED"
	ResultFailed = "FAILED"
)

// fwvet's verified levels. SLSA reserves the SLSA_ prefix; these never use it.
const (
	// LevelNoUndisclosedChanges: the computed verdict was pass, so every
	// change was declared by the vendor's manifest.
	LevelNoUndisclosedChanges = "FWVET_NO_UNDISCLOSED_CHANGES"
	// LevelSigned: the signature check passed.
	LevelSigned = "FWVET_SIGNED"
	// LevelProvenanceVerified: the provenance check passed.
	LevelProvenanceVerified = "FWVET_PROVENANCE_VERIFIED"
)

// Check names, as the verifiers name their checks.
const (
	checkSignature  = "signature"
	checkProvenance = "provenance"
)

// ResourceDescriptor is an in-toto ResourceDescriptor, with the fields a
// summary uses.
type ResourceDescriptor struct {
	Name   string            `json:"name,omitempty"`
	URI    string            `json:"uri,omitempty"`
	Digest map[string]string `json:"digest,omitempty"`
}

// Decision is a person's decision on a verdict (fwvet verdicts decide).
type Decision struct {
	By      string    `json:"by"`
	At      time.Time `json:"at"`
	Approve bool      `json:"approve"`
	Reason  string    `json:"reason"`
}

// Options are what a statement takes besides the report.
type Options struct {
	// VerifierID is verifier.id; DefaultVerifierID when empty.
	VerifierID string
	// Version is fwvet's version, recorded as verifier.version.fwvet;
	// the report's tool version when empty.
	Version string
	// Now is timeVerified; time.Now when zero.
	Now time.Time
	// PolicyURI names the policy (a file path or URL); its digest is the
	// report's policy digest.
	PolicyURI string
	// Inputs are the signatures and provenance that were checked.
	Inputs []ResourceDescriptor
	// Decision, when set, decides the result: an approval is PASSED and a
	// rejection FAILED, whatever the computed verdict.
	Decision *Decision
}

// Verifier is the predicate's verifier.
type Verifier struct {
	ID      string            `json:"id"`
	Version map[string]string `json:"version,omitempty"`
}

// VerdictInfo is fwvet's own account of the verdict (under VerdictKey).
type VerdictInfo struct {
	Verdict pipeline.Verdict `json:"verdict"`
	Reasons []string         `json:"reasons,omitempty"`
	// ReportDigest is "sha256:HEX" of the report's JSON encoding.
	ReportDigest string `json:"report_digest,omitempty"`
}

// Predicate is a SLSA Verification Summary v1, with fwvet's fields.
type Predicate struct {
	Verifier           Verifier             `json:"verifier"`
	TimeVerified       string               `json:"timeVerified"`
	ResourceURI        string               `json:"resourceUri"`
	Policy             ResourceDescriptor   `json:"policy"`
	InputAttestations  []ResourceDescriptor `json:"inputAttestations,omitempty"`
	VerificationResult string               `json:"verificationResult"`
	VerifiedLevels     []string             `json:"verifiedLevels"`
	// SLSA's optional fields, unused by fwvet, kept for decoding others'.
	DependencyLevels map[string]uint64 `json:"dependencyLevels,omitempty"`
	SLSAVersion      string            `json:"slsaVersion,omitempty"`
	// fwvet's fields.
	FwvetVerdict  *VerdictInfo `json:"fwvet.dev/verdict,omitempty"`
	FwvetDecision *Decision    `json:"fwvet.dev/decision,omitempty"`
}

// InTotoStatement is an in-toto Statement v1 whose predicate is a summary.
type InTotoStatement struct {
	Type          string               `json:"_type"`
	Subject       []ResourceDescriptor `json:"subject"`
	PredicateType string               `json:"predicateType"`
	Predicate     Predicate            `json:"predicate"`
}

// SHA256Hex returns the hex of a "sha256:HEX" digest, or an error.
func SHA256Hex(digest string) (string, error) {
	h, ok := strings.CutPrefix(digest, "sha256:")
	if !ok {
		return "", fmt.Errorf("digest %q is not a sha256 digest", digest)
	}
	if b, err := hex.DecodeString(h); err != nil || len(b) != 32 {
		return "", fmt.Errorf("digest %q: want sha256: and 64 hex digits", digest)
	}
	return strings.ToLower(h), nil
}

// NewStatement builds the statement of a verdict.
func NewStatement(rep *pipeline.Report, o Options) (*InTotoStatement, error) {
	if rep == nil {
		return nil, errors.New("attest: no report")
	}
	hexDigest, err := SHA256Hex(rep.Candidate.Digest)
	if err != nil {
		return nil, fmt.Errorf("attest: candidate %s: %w", rep.Candidate.Ref, err)
	}
	id := o.VerifierID
	if id == "" {
		id = DefaultVerifierID
	}
	version := o.Version
	if version == "" {
		version = rep.Tool.Version
	}
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	policy := ResourceDescriptor{URI: o.PolicyURI}
	if rep.PolicyDigest != "" {
		ph, err := policyHex(rep.PolicyDigest)
		if err != nil {
			return nil, fmt.Errorf("attest: policy digest: %w", err)
		}
		policy.Digest = map[string]string{"sha256": ph}
	}
	name := rep.Candidate.Ref
	if name == "" {
		name = rep.Candidate.Digest
	}
	reportJSON, err := json.Marshal(rep)
	if err != nil {
		return nil, fmt.Errorf("attest: encoding the report: %w", err)
	}
	p := Predicate{
		Verifier:           Verifier{ID: id},
		TimeVerified:       now.UTC().Format(time.RFC3339),
		ResourceURI:        rep.Candidate.Ref,
		Policy:             policy,
		InputAttestations:  o.Inputs,
		VerificationResult: Result(rep.Verdict, o.Decision),
		VerifiedLevels:     Levels(rep),
		FwvetVerdict: &VerdictInfo{
			Verdict:      rep.Verdict,
			Reasons:      rep.Reasons,
			ReportDigest: "sha256:" + sha256Hex(reportJSON),
		},
	}
	if version != "" {
		p.Verifier.Version = map[string]string{"fwvet": version}
	}
	if o.Decision != nil {
		d := *o.Decision
		d.At = d.At.UTC()
		p.FwvetDecision = &d
	}
	return &InTotoStatement{
		Type:          StatementType,
		Subject:       []ResourceDescriptor{{Name: name, Digest: map[string]string{"sha256": hexDigest}}},
		PredicateType: PredicateType,
		Predicate:     p,
	}, nil
}

// Statement builds and encodes the statement of a verdict.
func Statement(rep *pipeline.Report, o Options) ([]byte, error) {
	st, err := NewStatement(rep, o)
	if err != nil {
		return nil, err
	}
	return json.Marshal(st)
}

// policyHex accepts a policy digest as "sha256:HEX" or bare HEX.
func policyHex(d string) (string, error) {
	if !strings.Contains(d, ":") {
		d = "sha256:" + d
	}
	return SHA256Hex(d)
}

// Result is the verification result of a verdict and an optional decision:
// a decision wins; otherwise only a pass verdict is PASSED.
func Result(v pipeline.Verdict, d *Decision) string {
	if d != nil {
		if d.Approve {
			return ResultPassed
		}
		return ResultFailed
	}
	if v == pipeline.VerdictPass {
		return ResultPassed
	}
	return ResultFailed
}

// Levels are the fwvet levels a report reached, never nil.
func Levels(rep *pipeline.Report) []string {
	levels := []string{}
	if rep.Verdict == pipeline.VerdictPass {
		levels = append(levels, LevelNoUndisclosedChanges)
	}
	if checkPassed(rep, checkSignature) {
		levels = append(levels, LevelSigned)
	}
	if checkPassed(rep, checkProvenance) {
		levels = append(levels, LevelProvenanceVerified)
	}
	return levels
}

// checkPassed reports whether a check of that name passed and none of that
// name failed.
func checkPassed(rep *pipeline.Report, name string) bool {
	passed := false
	for _, c := range rep.Checks {
		if c.Name != name {
			continue
		}
		if c.Status != pipeline.CheckPass {
			return false
		}
		passed = true
	}
	return passed
}
