package attest

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fwvet/fwvet/pipeline"
)

func TestStatementFields(t *testing.T) {
	r := report(testDigest, pipeline.VerdictPass, pass("signature"), pass("provenance"))
	b, err := Statement(r, Options{
		Now:       testNow,
		PolicyURI: "file:///etc/fwvet/policy.yaml",
		Inputs:    []ResourceDescriptor{{URI: "oci://registry.example/fw/rt3200:sha256-1111.sig", Digest: map[string]string{"sha256": "33"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	// Decode generically: the JSON names are the contract, not the structs.
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	get := func(path string) any {
		var v any = m
		for _, k := range strings.Split(path, "|") {
			v = v.(map[string]any)[k]
		}
		return v
	}
	for path, want := range map[string]any{
		"_type":                               StatementType,
		"predicateType":                       PredicateType,
		"predicate|verifier|id":               DefaultVerifierID,
		"predicate|verifier|version|fwvet":    "0.1.0",
		"predicate|timeVerified":              "2026-12-02T23:00:00Z",
		"predicate|resourceUri":               r.Candidate.Ref,
		"predicate|policy|uri":                "file:///etc/fwvet/policy.yaml",
		"predicate|policy|digest|sha256":      strings.TrimPrefix(testPolicy, "sha256:"),
		"predicate|verificationResult":        "PASSED",
		"predicate|fwvet.dev/verdict|verdict": "pass",
	} {
		if got := get(path); !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %v, want %v", path, got, want)
		}
	}
	subj := m["subject"].([]any)[0].(map[string]any)
	if subj["name"] != r.Candidate.Ref || subj["digest"].(map[string]any)["sha256"] != strings.TrimPrefix(testDigest, "sha256:") {
		t.Errorf("subject = %v", subj)
	}
	if in := get("predicate|inputAttestations").([]any); len(in) != 1 {
		t.Errorf("inputAttestations = %v", in)
	}
	if _, ok := get("predicate").(map[string]any)[DecisionKey]; ok {
		t.Errorf("a statement without a decision has %s", DecisionKey)
	}
}

func TestStatementResultAndLevels(t *testing.T) {
	approve := &Decision{By: "alice", At: testNow, Approve: true, Reason: "vendor confirmed"}
	reject := &Decision{By: "bob", At: testNow, Approve: false, Reason: "no"}
	fail := pipeline.Check{Name: "signature", Status: pipeline.CheckFail}
	for _, tc := range []struct {
		name     string
		report   *pipeline.Report
		decision *Decision
		result   string
		levels   []string
	}{
		{"pass all", report(testDigest, pipeline.VerdictPass, pass("signature"), pass("provenance")), nil, ResultPassed,
			[]string{LevelNoUndisclosedChanges, LevelSigned, LevelProvenanceVerified}},
		{"pass unsigned", report(testDigest, pipeline.VerdictPass, pipeline.Check{Name: "signature", Status: pipeline.CheckSkip}), nil, ResultPassed,
			[]string{LevelNoUndisclosedChanges}},
		{"review", report(testDigest, pipeline.VerdictReview, pass("signature")), nil, ResultFailed, []string{LevelSigned}},
		{"fail", report(testDigest, pipeline.VerdictFail, fail, pass("provenance")), nil, ResultFailed, []string{LevelProvenanceVerified}},
		{"signature passed once failed once", report(testDigest, pipeline.VerdictFail, pass("signature"), fail), nil, ResultFailed, []string{}},
		{"review approved", report(testDigest, pipeline.VerdictReview), approve, ResultPassed, []string{}},
		{"pass rejected", report(testDigest, pipeline.VerdictPass), reject, ResultFailed, []string{LevelNoUndisclosedChanges}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := NewStatement(tc.report, Options{Now: testNow, Decision: tc.decision})
			if err != nil {
				t.Fatal(err)
			}
			p := st.Predicate
			if p.VerificationResult != tc.result {
				t.Errorf("verificationResult = %s, want %s", p.VerificationResult, tc.result)
			}
			if !reflect.DeepEqual(p.VerifiedLevels, tc.levels) {
				t.Errorf("verifiedLevels = %v, want %v", p.VerifiedLevels, tc.levels)
			}
			if hasPrefixAny(p.VerifiedLevels, "SLSA_") {
				t.Errorf("verifiedLevels %v has a SLSA_ level", p.VerifiedLevels)
			}
			if p.FwvetVerdict.Verdict != tc.report.Verdict {
				t.Errorf("fwvet verdict = %s, want the computed %s", p.FwvetVerdict.Verdict, tc.report.Verdict)
			}
			if tc.decision != nil && (p.FwvetDecision == nil || p.FwvetDecision.By != tc.decision.By) {
				t.Errorf("decision = %+v, want %+v", p.FwvetDecision, tc.decision)
			}
			b, _ := json.Marshal(st)
			if tc.decision != nil && !strings.Contains(string(b), `"`+DecisionKey+`":{"by":"`+tc.decision.By) {
				t.Errorf("statement lacks the decision under %s: %s", DecisionKey, b)
			}
			if !strings.Contains(string(b), `"verifiedLevels":[`) {
				t.Errorf("verifiedLevels is not a list: %s", b)
			}
		})
	}
}

func TestStatementOptionsAndErrors(t *testing.T) {
	st, err := NewStatement(report(testDigest, pipeline.VerdictPass), Options{VerifierID: "https://gate.example/fwvet", Version: "9.9.9"})
	if err != nil {
		t.Fatal(err)
	}
	if st.Predicate.Verifier.ID != "https://gate.example/fwvet" || st.Predicate.Verifier.Version["fwvet"] != "9.9.9" {
		t.Errorf("verifier = %+v", st.Predicate.Verifier)
	}
	if tv, err := time.Parse(time.RFC3339, st.Predicate.TimeVerified); err != nil || time.Since(tv) > time.Minute {
		t.Errorf("timeVerified = %q (%v), want now", st.Predicate.TimeVerified, err)
	}
	for _, d := range []string{"", "sha512:" + strings.Repeat("a", 128), "sha256:zz", "sha256:abcd"} {
		if _, err := Statement(report(d, pipeline.VerdictPass), Options{}); err == nil {
			t.Errorf("digest %q: no error", d)
		}
	}
	r := report(testDigest, pipeline.VerdictPass)
	r.PolicyDigest = strings.TrimPrefix(testPolicy, "sha256:") // bare hex, as some stores keep it
	st, err = NewStatement(r, Options{})
	if err != nil || st.Predicate.Policy.Digest["sha256"] != strings.TrimPrefix(testPolicy, "sha256:") {
		t.Errorf("bare policy digest: %v, %+v", err, st)
	}
}
