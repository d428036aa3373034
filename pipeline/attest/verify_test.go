package attest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/fwvet/fwvet/pipeline"
)

// tamper changes one byte of the envelope's payload and re-encodes it.
func tamper(t *testing.T, env []byte) []byte {
	t.Helper()
	var e Envelope
	if err := json.Unmarshal(env, &e); err != nil {
		t.Fatal(err)
	}
	p, err := base64.StdEncoding.DecodeString(e.Payload)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(p, []byte(`"FAILED"`))
	if i < 0 {
		i = bytes.Index(p, []byte(`"PASSED"`))
	}
	p[i+1] ^= 0x01 // PASSED <-> QASSED: still valid JSON, another claim
	e.Payload = base64.StdEncoding.EncodeToString(p)
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestVerifyRejects(t *testing.T) {
	s, _, pub := newECDSA(t)
	_, _, otherPub := newECDSA(t)
	otherDigest := "sha256:" + strings.Repeat("3", 64)
	good := signed(t, s, report(testDigest, pipeline.VerdictPass), Options{})
	failed := signed(t, s, report(testDigest, pipeline.VerdictFail), Options{})
	other := signed(t, s, report(otherDigest, pipeline.VerdictPass), Options{})
	otherID := signed(t, s, report(testDigest, pipeline.VerdictPass), Options{VerifierID: "https://evil.example"})
	want := Expect{Digest: testDigest, PolicyDigest: testPolicy}

	wrongType := func() []byte {
		var e Envelope
		json.Unmarshal(good, &e)
		e.PayloadType = "text/plain"
		b, _ := json.Marshal(e)
		return b
	}()
	for _, tc := range []struct {
		name  string
		env   []byte
		pub   any
		want  Expect
		is    error
		field string
	}{
		{"tampered", tamper(t, good), pub, want, ErrBadSignature, ""},
		{"wrong key", good, otherPub, want, ErrBadSignature, ""},
		{"other digest", other, pub, want, nil, "subject.digest"},
		{"payload type", wrongType, pub, want, nil, "payloadType"},
		{"verifier id", otherID, pub, want, nil, "verifier.id"},
		{"policy", good, pub, Expect{Digest: testDigest, PolicyDigest: "sha256:" + strings.Repeat("9", 64)}, nil, "policy.digest"},
		{"failed verdict", failed, pub, want, nil, "verificationResult"},
		{"not json", []byte("{"), pub, want, ErrMalformed, ""},
		{"no signatures", []byte(`{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[]}`), pub, want, ErrBadSignature, ""},
		{"too big", make([]byte, MaxEnvelopeSize+1), pub, want, ErrMalformed, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Verify(tc.env, tc.pub, tc.want)
			if err == nil {
				t.Fatal("verified")
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v is not %v", err, tc.is)
			}
			if tc.field != "" {
				var me *MismatchError
				if !errors.As(err, &me) || me.Field != tc.field {
					t.Errorf("error %v is not a mismatch of %s", err, tc.field)
				}
			}
		})
	}

	// What is accepted.
	if _, err := Verify(failed, pub, Expect{Digest: testDigest, PolicyDigest: testPolicy, Result: ResultAny}); err != nil {
		t.Errorf("ResultAny on a FAILED summary: %v", err)
	}
	if vs, err := Verify(failed, pub, Expect{Digest: testDigest, PolicyDigest: testPolicy, Result: ResultFailed}); err != nil || vs.Passed() {
		t.Errorf("Result FAILED on a FAILED summary: %v %+v", err, vs)
	}
	if _, err := Verify(good, pub, Expect{Digest: testDigest, UnsafeAnyPolicy: true}); err != nil {
		t.Errorf("UnsafeAnyPolicy: %v", err)
	}
	if _, err := Verify(good, pub, Expect{Digest: testDigest}); err == nil {
		t.Error("no policy digest expected and no UnsafeAnyPolicy: verified")
	}
	if _, err := Verify(good, pub, Expect{PolicyDigest: testPolicy}); err == nil {
		t.Error("no digest expected: verified")
	}
}

func TestVerifyDecision(t *testing.T) {
	s, _, pub := newECDSA(t)
	env := signed(t, s, report(testDigest, pipeline.VerdictReview), Options{Decision: &Decision{By: "alice", At: testNow, Approve: true, Reason: "ok"}})
	vs, err := Verify(env, pub, Expect{Digest: testDigest, PolicyDigest: testPolicy})
	if err != nil {
		t.Fatal(err)
	}
	if vs.Decision == nil || vs.Decision.By != "alice" || !vs.Decision.At.Equal(testNow) || vs.Verdict.Verdict != pipeline.VerdictReview {
		t.Errorf("summary = %+v, decision %+v", vs, vs.Decision)
	}
}
