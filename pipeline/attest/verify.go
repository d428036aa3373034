package attest

import (
	"bytes"
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
)

// Errors a caller branches on (with errors.Is).
var (
	// ErrNoAttestation: the subject has no verification summary at all.
	ErrNoAttestation = errors.New("no verification summary is attached")
	// ErrBadSignature: no signature of the envelope verifies with the key.
	ErrBadSignature = errors.New("the signature does not verify with the key")
	// ErrMalformed: the envelope or its statement cannot be decoded.
	ErrMalformed = errors.New("malformed attestation")
)

// ResultAny, as Expect.Result, accepts a summary whatever its result.
const ResultAny = "*"

// MismatchError is a verified summary that says something else than
// expected: Field names what (payloadType, _type, predicateType,
// subject.digest, verifier.id, policy.digest, verificationResult).
type MismatchError struct {
	Field string
	Want  string
	Got   string
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("attestation %s is %q, want %q", e.Field, clip(e.Got), e.Want)
}

// clip shortens what an attestation says for an error message.
func clip(s string) string {
	const limit = 200
	if len(s) <= limit {
		return s
	}
	return s[:limit] + "…"
}

// Expect is what a verified summary must say.
type Expect struct {
	// Digest is the subject's digest, "sha256:HEX". Required.
	Digest string
	// VerifierID is verifier.id; DefaultVerifierID when empty.
	VerifierID string
	// PolicyDigest is the policy's digest ("sha256:HEX" or HEX). Required
	// unless UnsafeAnyPolicy is set.
	PolicyDigest string
	// UnsafeAnyPolicy accepts a summary reached under any policy.
	UnsafeAnyPolicy bool
	// Result is the verificationResult wanted: PASSED when empty, so that
	// a summary of a failed verdict is never taken by accident; ResultAny
	// accepts either (the result is in VerifiedSummary).
	Result string
}

// VerifiedSummary is what a verified summary says.
type VerifiedSummary struct {
	// KeyID names the key that verified (see KeyID).
	KeyID     string
	Statement *InTotoStatement
	// Result is verificationResult, PASSED or FAILED.
	Result string
	Levels []string
	// Verdict is fwvet's computed verdict, when the summary carries it.
	Verdict *VerdictInfo
	// Decision is a person's decision, when there was one.
	Decision *Decision
}

// Passed reports whether the summary's result is PASSED.
func (v *VerifiedSummary) Passed() bool { return v.Result == ResultPassed }

// VerifierForKey loads the verifier of a public key, with sigstore's
// default algorithm for it (ECDSA P-256 with SHA-256, RSA PKCS#1 v1.5 with
// SHA-256, pure Ed25519), which is what LoadSigner signs with.
func VerifierForKey(pub crypto.PublicKey) (signature.Verifier, error) {
	v, err := signature.LoadDefaultVerifier(pub)
	if err != nil {
		return nil, fmt.Errorf("attest: unsupported public key: %w", err)
	}
	return v, nil
}

// LoadPublicKey reads a PEM public key file.
func LoadPublicKey(path string) (crypto.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(b)
	if err != nil {
		return nil, fmt.Errorf("public key %s: %w", path, err)
	}
	return pub, nil
}

// Verify checks a DSSE envelope holding a verification summary with the
// public key pub, and that it says what want says.
func Verify(envelope []byte, pub crypto.PublicKey, want Expect) (*VerifiedSummary, error) {
	v, err := VerifierForKey(pub)
	if err != nil {
		return nil, err
	}
	return VerifyWith(envelope, v, want)
}

// VerifyWith is Verify with a sigstore verifier (a KMS key, another algorithm).
func VerifyWith(envelope []byte, v signature.Verifier, want Expect) (*VerifiedSummary, error) {
	wantHex, err := SHA256Hex(want.Digest)
	if err != nil {
		return nil, fmt.Errorf("attest: expected subject: %w", err)
	}
	var wantPolicy string
	if !want.UnsafeAnyPolicy {
		if want.PolicyDigest == "" {
			return nil, errors.New("attest: no expected policy digest (set Expect.UnsafeAnyPolicy to accept any policy)")
		}
		if wantPolicy, err = policyHex(want.PolicyDigest); err != nil {
			return nil, fmt.Errorf("attest: expected policy: %w", err)
		}
	}
	wantID := want.VerifierID
	if wantID == "" {
		wantID = DefaultVerifierID
	}
	wantResult := want.Result
	if wantResult == "" {
		wantResult = ResultPassed
	}

	env, payload, err := ParseEnvelope(envelope)
	if err != nil {
		return nil, err
	}
	if env.PayloadType != PayloadType {
		return nil, &MismatchError{Field: "payloadType", Want: PayloadType, Got: env.PayloadType}
	}
	keyID, err := verifySignatures(env, payload, v)
	if err != nil {
		return nil, err
	}

	var st InTotoStatement
	if err := json.Unmarshal(payload, &st); err != nil {
		return nil, fmt.Errorf("%w: the payload is not an in-toto statement: %v", ErrMalformed, err)
	}
	if st.Type != StatementType {
		return nil, &MismatchError{Field: "_type", Want: StatementType, Got: st.Type}
	}
	if st.PredicateType != PredicateType {
		return nil, &MismatchError{Field: "predicateType", Want: PredicateType, Got: st.PredicateType}
	}
	var got []string
	found := false
	for _, s := range st.Subject {
		h := strings.ToLower(s.Digest["sha256"])
		got = append(got, "sha256:"+h)
		if h == wantHex {
			found = true
		}
	}
	if !found {
		return nil, &MismatchError{Field: "subject.digest", Want: "sha256:" + wantHex, Got: strings.Join(got, ",")}
	}
	p := st.Predicate
	if p.Verifier.ID != wantID {
		return nil, &MismatchError{Field: "verifier.id", Want: wantID, Got: p.Verifier.ID}
	}
	if !want.UnsafeAnyPolicy {
		if g := strings.ToLower(p.Policy.Digest["sha256"]); g != wantPolicy {
			return nil, &MismatchError{Field: "policy.digest", Want: "sha256:" + wantPolicy, Got: "sha256:" + g}
		}
	}
	if p.VerificationResult != ResultPassed && p.VerificationResult != ResultFailed {
		return nil, fmt.Errorf("%w: verificationResult %q is neither PASSED nor FAILED", ErrMalformed, p.VerificationResult)
	}
	if wantResult != ResultAny && p.VerificationResult != wantResult {
		return nil, &MismatchError{Field: "verificationResult", Want: wantResult, Got: p.VerificationResult}
	}
	return &VerifiedSummary{
		KeyID:     keyID,
		Statement: &st,
		Result:    p.VerificationResult,
		Levels:    p.VerifiedLevels,
		Verdict:   p.FwvetVerdict,
		Decision:  p.FwvetDecision,
	}, nil
}

// verifySignatures returns the key id of the first signature that verifies.
func verifySignatures(env *Envelope, payload []byte, v signature.Verifier) (string, error) {
	pae := PAE(env.PayloadType, payload)
	var errs []error
	for i, s := range env.Signatures {
		sig, err := decodeB64(s.Sig)
		if err != nil {
			errs = append(errs, fmt.Errorf("signature %d: not base64", i))
			continue
		}
		if err := v.VerifySignature(bytes.NewReader(sig), bytes.NewReader(pae)); err != nil {
			errs = append(errs, fmt.Errorf("signature %d: %v", i, err))
			continue
		}
		keyID := s.KeyID
		if pub, err := v.PublicKey(); err == nil {
			keyID = KeyID(pub)
		}
		return keyID, nil
	}
	return "", fmt.Errorf("%w (%v)", ErrBadSignature, errors.Join(errs...))
}

// AttestationError is one attestation VerifyRef rejected, and why.
type AttestationError struct {
	// Index is its place in what Find returned.
	Index int
	Err   error
}

func (e *AttestationError) Error() string {
	return fmt.Sprintf("attestation %d: %v", e.Index+1, e.Err)
}

func (e *AttestationError) Unwrap() error { return e.Err }

// RejectedError is VerifyRef's answer when attestations were found but
// none verified; it unwraps to each one's error.
type RejectedError struct {
	Subject  string
	Rejected []*AttestationError
}

func (e *RejectedError) Error() string {
	parts := make([]string, len(e.Rejected))
	for i, r := range e.Rejected {
		parts[i] = r.Error()
	}
	return fmt.Sprintf("%s: none of the %d verification summaries verifies: %s", e.Subject, len(e.Rejected), strings.Join(parts, "; "))
}

func (e *RejectedError) Unwrap() []error {
	errs := make([]error, len(e.Rejected))
	for i, r := range e.Rejected {
		errs[i] = r
	}
	return errs
}

// RefResult is what VerifyRef found: the summary that verified, and why
// each other one did not.
type RefResult struct {
	*VerifiedSummary
	Rejected []*AttestationError
}

// VerifyRef finds the summaries attached to subject and checks them with
// the PEM public key in pubKeyPEMFile: it succeeds when one verifies.
// With none attached the error is ErrNoAttestation; with none verifying it
// is a *RejectedError.
func VerifyRef(ctx context.Context, subject name.Digest, pubKeyPEMFile string, want Expect, opts ...remote.Option) (*RefResult, error) {
	pub, err := LoadPublicKey(pubKeyPEMFile)
	if err != nil {
		return nil, err
	}
	v, err := VerifierForKey(pub)
	if err != nil {
		return nil, err
	}
	if want.Digest == "" {
		want.Digest = subject.DigestStr()
	}
	envs, err := Find(ctx, subject, opts...)
	if err != nil {
		return nil, err
	}
	res := &RefResult{}
	for i, env := range envs {
		vs, err := VerifyWith(env, v, want)
		if err != nil {
			res.Rejected = append(res.Rejected, &AttestationError{Index: i, Err: err})
			continue
		}
		if res.VerifiedSummary == nil {
			res.VerifiedSummary = vs
		}
	}
	if res.VerifiedSummary == nil {
		return nil, &RejectedError{Subject: subject.String(), Rejected: res.Rejected}
	}
	return res, nil
}
