package vet

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/attest"
	"github.com/fwvet/fwvet/verifiers"
)

// Attestation says how verdicts are signed; the zero value signs none.
type Attestation struct {
	// Signer signs each verdict as a SLSA verification summary.
	Signer signature.Signer
	// Attach pushes each signed verdict to the candidate's repository, as
	// an OCI referrer and as cosign's .att image; the candidate must be a
	// registry image.
	Attach bool
	// PolicyURI names the policy in the summary (its digest is the
	// report's); VerifierID is verifier.id, attest.DefaultVerifierID when
	// empty.
	PolicyURI  string
	VerifierID string
}

// maxInputFile bounds a key, signature or bundle file hashed as an input
// of a signed verdict; the verifiers bound what they read the same way.
const maxInputFile = 64 << 20

// inputs are the files the verifiers check signatures and provenance
// with, by digest, for a summary's inputAttestations.
func inputs(o verifiers.Options) ([]attest.ResourceDescriptor, error) {
	var files []struct{ name, path string }
	add := func(name, path string) {
		if path != "" {
			files = append(files, struct{ name, path string }{name, path})
		}
	}
	for _, k := range o.Keys {
		add("key", k)
	}
	add("signature", o.Signature)
	add("bundle", o.Bundle)
	add("trusted-root", o.TrustedRoot)
	out := make([]attest.ResourceDescriptor, 0, len(files))
	for _, f := range files {
		d, err := fileSHA256(f.path)
		if err != nil {
			return nil, fmt.Errorf("hashing the %s %s for signed verdicts: %w", f.name, f.path, err)
		}
		out = append(out, attest.ResourceDescriptor{Name: f.name, URI: "file:" + f.path, Digest: map[string]string{"sha256": d}})
	}
	return out, nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(f, maxInputFile+1))
	if err != nil {
		return "", err
	}
	if n > maxInputFile {
		return "", fmt.Errorf("larger than %d bytes", maxInputFile)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Sign signs a verdict, decided by a person when d is not nil, and, when
// the Config asks, attaches it to the report's candidate.
func (p *Pipeline) Sign(ctx context.Context, rep *pipeline.Report, d *pipeline.Decision) ([]byte, error) {
	a := p.cfg.Attest
	if a.Signer == nil {
		return nil, errors.New("signing a verdict needs a signing key")
	}
	o := attest.Options{VerifierID: a.VerifierID, PolicyURI: a.PolicyURI, Inputs: p.inputs}
	if d != nil {
		o.Decision = &attest.Decision{By: d.By, At: d.At, Approve: d.Approve, Reason: d.Reason}
	}
	ref := rep.Candidate.Ref
	stmt, err := attest.Statement(rep, o)
	if err != nil {
		return nil, fmt.Errorf("signing the verdict: %w", err)
	}
	env, err := attest.Sign(ctx, stmt, a.Signer)
	if err != nil {
		return nil, fmt.Errorf("signing the verdict: %w", err)
	}
	if !a.Attach {
		return env, nil
	}
	subject, opts, err := p.resolver.Subject(ctx, ref, rep.Candidate.Digest)
	if err != nil {
		return nil, &pipeline.InputError{Role: "candidate", Ref: ref, Err: fmt.Errorf("attaching the signed verdict: %w", err)}
	}
	if err := attest.Attach(ctx, subject, env, opts...); err != nil {
		return nil, err
	}
	p.cfg.Log.WithField("subject", subject.String()).Info("signed verdict attached")
	return env, nil
}
