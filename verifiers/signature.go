package verifiers

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
	"github.com/sigstore/sigstore-go/pkg/verify"

	"github.com/fwvet/fwvet/pipeline"
)

// signatureVerifier checks that enough authorities signed the artifact.
type signatureVerifier struct {
	o         Options
	auths     []*authority
	threshold int
	evidence  *gathered
}

var _ pipeline.Verifier = (*signatureVerifier)(nil)

// Name implements pipeline.Verifier.
func (*signatureVerifier) Name() string { return "signature" }

// statement is an in-toto statement, as far as fwvet reads it.
type statement struct {
	Type          string `json:"_type"`
	PredicateType string `json:"predicateType"`
	Subject       []struct {
		Name   string            `json:"name"`
		Digest map[string]string `json:"digest"`
	} `json:"subject"`
	Predicate json.RawMessage `json:"predicate"`
	// cert is the summary of the certificate sigstore-go verified the
	// statement's signature with; nil when a key signed it.
	cert *certificate.Summary
}

// names reports whether the statement's subjects include the digest.
func (s *statement) names(digest string) bool {
	h := strings.TrimPrefix(digest, "sha256:")
	for _, sub := range s.Subject {
		if strings.EqualFold(sub.Digest["sha256"], h) {
			return true
		}
	}
	return false
}

// Verify implements pipeline.Verifier.
func (v *signatureVerifier) Verify(ctx context.Context, art *pipeline.Artifact) pipeline.Check {
	c := pipeline.Check{Name: "signature"}
	ev, err := v.evidence.get(ctx, v.o, art)
	if err != nil {
		c.Status, c.Detail = pipeline.CheckError, "finding signatures: "+err.Error()
		return c
	}
	if len(ev) == 0 {
		c.Status, c.Detail = pipeline.CheckFail, fmt.Sprintf("no signature found for %s", art.Digest)
		return c
	}
	var signed, unsigned []string
	for _, a := range v.auths {
		ok, why := v.signedBy(ctx, a, ev, art)
		if ok != "" {
			signed = append(signed, a.name+" ("+ok+")")
		} else {
			unsigned = append(unsigned, a.name+": "+why)
		}
	}
	if len(signed) >= v.threshold {
		c.Status = pipeline.CheckPass
		c.Detail = fmt.Sprintf("%d of %d authorities signed %s (%d needed): %s", len(signed), len(v.auths), art.Digest, v.threshold, strings.Join(signed, "; "))
		return c
	}
	c.Status = pipeline.CheckFail
	c.Detail = fmt.Sprintf("%d of %d authorities signed %s, %d needed: %s", len(signed), len(v.auths), art.Digest, v.threshold, strings.Join(unsigned, "; "))
	return c
}

// signedBy returns what, among the evidence, this authority signed for the
// artifact, or why nothing.
func (v *signatureVerifier) signedBy(ctx context.Context, a *authority, ev []evidence, art *pipeline.Artifact) (string, string) {
	var whys []string
	for _, e := range ev {
		st, err := verifyEvidence(ctx, a, e, art)
		if err == nil {
			what := "signature"
			if st != nil && st.PredicateType != CosignSignPredicate {
				what = "attestation " + st.PredicateType
			}
			return what + " in " + e.source, ""
		}
		whys = append(whys, e.source+": "+err.Error())
	}
	return "", strings.Join(whys, "; ")
}

// verifyEvidence checks one signature or attestation against an authority
// and the artifact; for a statement it returns it.
func verifyEvidence(ctx context.Context, a *authority, e evidence, art *pipeline.Artifact) (*statement, error) {
	digest, err := digestBytes(art.Digest)
	if err != nil {
		return nil, err
	}
	switch {
	case e.raw != nil:
		if art.IsDir || art.Path == "" {
			return nil, errors.New("a detached signature signs a file's bytes; this artifact is not one file")
		}
		if a.key == nil {
			if e.keyless.cert == "" {
				return nil, errors.New("a bare signature needs a key")
			}
			// The artifact's digest was computed as it was fetched.
			b, err := e.keyless.bundle(messageSignature(digest, e.raw))
			if err != nil {
				return nil, err
			}
			_, err = a.verifyBundle(b, digest)
			return nil, err
		}
		f, err := os.Open(art.Path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if err := a.key.VerifySignature(bytesReader(e.raw), pipeline.ContextReader(ctx, f)); err != nil {
			return nil, fmt.Errorf("does not verify with this key: %w", err)
		}
		return nil, nil
	case e.simple != nil:
		if a.key == nil {
			sum := sha256.Sum256(e.simple.payload)
			b, err := e.keyless.bundle(messageSignature(sum[:], e.simple.sig))
			if err != nil {
				return nil, err
			}
			if _, err := a.verifyBundle(b, sum[:]); err != nil {
				return nil, err
			}
		} else if err := a.verifyRaw(e.simple.sig, e.simple.payload); err != nil {
			return nil, fmt.Errorf("does not verify with this key: %w", err)
		}
		var p struct {
			Critical struct {
				Image struct {
					Digest string `json:"docker-manifest-digest"`
				} `json:"image"`
				Type string `json:"type"`
			} `json:"critical"`
		}
		if err := json.Unmarshal(e.simple.payload, &p); err != nil {
			return nil, fmt.Errorf("payload is not simple signing JSON: %w", err)
		}
		if p.Critical.Image.Digest != art.Digest {
			return nil, fmt.Errorf("signs %s, not %s", p.Critical.Image.Digest, art.Digest)
		}
		return nil, nil
	case e.dsse != nil:
		payload, err := base64.StdEncoding.DecodeString(e.dsse.Payload)
		if err != nil {
			return nil, fmt.Errorf("DSSE payload: %w", err)
		}
		if a.key == nil {
			content, err := dsseContent(e.dsse, payload)
			if err != nil {
				return nil, err
			}
			b, err := e.keyless.bundle(content)
			if err != nil {
				return nil, err
			}
			res, err := a.verifyBundle(b, digest)
			if err != nil {
				return nil, err
			}
			return statementOf(res)
		}
		ok := false
		for _, s := range e.dsse.Signatures {
			sig, err := base64.StdEncoding.DecodeString(s.Sig)
			if err == nil && a.verifyRaw(sig, pae(e.dsse.PayloadType, payload)) == nil {
				ok = true
			}
		}
		if !ok {
			return nil, errors.New("no signature of the envelope verifies with this key")
		}
		var st statement
		if err := json.Unmarshal(payload, &st); err != nil {
			return nil, fmt.Errorf("not an in-toto statement: %w", err)
		}
		if !st.names(art.Digest) {
			return nil, fmt.Errorf("its statement is about %s, not %s", subjects(&st), art.Digest)
		}
		return &st, nil
	case e.bundle != nil:
		res, err := a.verifyBundle(e.bundle, digest)
		if err != nil {
			return nil, err
		}
		return statementOf(res)
	}
	return nil, errors.New("empty evidence")
}

// statementOf is the in-toto statement sigstore-go verified, if any, with
// the certificate it verified it with.
func statementOf(res *verify.VerificationResult) (*statement, error) {
	if res.Statement == nil {
		return nil, nil
	}
	b, err := json.Marshal(struct {
		Type          string `json:"_type"`
		PredicateType string `json:"predicateType"`
	}{res.Statement.Type, res.Statement.PredicateType})
	if err != nil {
		return nil, err
	}
	var st statement
	json.Unmarshal(b, &st)
	if res.Signature != nil {
		st.cert = res.Signature.Certificate
	}
	st.Predicate, err = res.Statement.Predicate.MarshalJSON()
	if err != nil {
		return nil, err
	}
	for _, s := range res.Statement.Subject {
		st.Subject = append(st.Subject, struct {
			Name   string            `json:"name"`
			Digest map[string]string `json:"digest"`
		}{s.Name, s.Digest})
	}
	return &st, nil
}

func subjects(st *statement) string {
	var out []string
	for _, s := range st.Subject {
		out = append(out, "sha256:"+s.Digest["sha256"])
	}
	if len(out) == 0 {
		return "no subject"
	}
	return strings.Join(out, ", ")
}
