package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/attest"
	"github.com/fwvet/fwvet/pipeline/policy"
	"github.com/fwvet/fwvet/pipeline/report"
	"github.com/fwvet/fwvet/pipeline/store"
	"github.com/fwvet/fwvet/pipeline/unpack"
	"github.com/fwvet/fwvet/pipeline/vet"
	"github.com/fwvet/fwvet/verifiers"
)

// pipelineFlags are the flags of the commands that run the pipeline.
type pipelineFlags struct {
	manifest []string
	policy   string
	format   string
	output   string
	limits   []string
	jobs     int
	fetch    fetchFlags
	verify   verifyFlags
	// sink receives the unpacked files as they are read, and noHash skips
	// hashing them and the artifact (fwvet unpack, which only extracts).
	sink   unpack.Sink
	noHash bool
	// withChanges puts every change in the report (fwvet diff), and
	// explain names a binary whose function-level diff it adds.
	withChanges bool
	explain     string
	attest      attestFlags
}

// attestFlags say how verdicts are signed (vet and audit).
type attestFlags struct {
	signKey string
	attach  bool
	out     string
}

func (a *attestFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&a.signKey, "sign-key", "", "sign each verdict as a SLSA verification summary with this PEM private key (ECDSA, Ed25519, RSA, or cosign's encrypted key with COSIGN_PASSWORD) or KMS URI")
	f.BoolVar(&a.attach, "attach", false, "push each signed verdict to the candidate's repository as an OCI referrer and cosign's .att image (needs --sign-key)")
	f.StringVar(&a.out, "attestation-out", "", "write the signed verdicts (DSSE envelopes, one a line) to this file (needs --sign-key)")
}

// options loads the signing key the flags name, if any.
func (a *attestFlags) options(ctx context.Context, policyURI string) (vet.Attestation, error) {
	if a.signKey == "" {
		if a.attach || a.out != "" {
			return vet.Attestation{}, errors.New("--attach and --attestation-out need --sign-key")
		}
		return vet.Attestation{}, nil
	}
	s, err := attest.LoadSigner(ctx, a.signKey)
	if err != nil {
		return vet.Attestation{}, &pipeline.InputError{Role: "signing key", Ref: a.signKey, Err: err}
	}
	return vet.Attestation{Signer: s, Attach: a.attach, PolicyURI: policyURI}, nil
}

// write writes signed verdicts, one envelope a line.
func (a *attestFlags) write(envs [][]byte) error {
	if a.out == "" {
		return nil
	}
	return writeAtomic(a.out, func(w io.Writer) error {
		for _, env := range envs {
			var line bytes.Buffer
			if err := json.Compact(&line, env); err != nil {
				return err
			}
			line.WriteByte('\n')
			if _, err := w.Write(line.Bytes()); err != nil {
				return err
			}
		}
		return nil
	})
}

// verifyFlags are the signature and provenance flags, named as cosign and
// slsa-verifier name them.
type verifyFlags struct{ o verifiers.Options }

func (v *verifyFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringArrayVar(&v.o.Keys, "key", nil, "PEM public key of a signing authority (repeatable; the policy's signature_threshold says how many must have signed)")
	f.StringVar(&v.o.Signature, "signature", "", "detached signature of a file (cosign sign-blob), checked with --key")
	f.StringVar(&v.o.Bundle, "bundle", "", "Sigstore bundle (v0.1 to v0.3) of the artifact")
	f.StringVar(&v.o.TrustedRoot, "trusted-root", "", "trusted_root.json for keyless signatures: Fulcio CAs, Rekor and CT logs, timestamp authorities (read offline)")
	f.StringVar(&v.o.CertIdentity, "certificate-identity", "", "the identity (SAN) a keyless signing certificate must name")
	f.StringVar(&v.o.CertIdentityRegexp, "certificate-identity-regexp", "", "a regular expression the keyless signing identity must match")
	f.StringVar(&v.o.CertOIDCIssuer, "certificate-oidc-issuer", "", "the OIDC issuer a keyless signing certificate must name")
	f.StringVar(&v.o.CertOIDCIssuerRegexp, "certificate-oidc-issuer-regexp", "", "a regular expression the keyless OIDC issuer must match")
	f.StringVar(&v.o.BuilderID, "builder-id", "", "the SLSA builder id the provenance must name and a keyless signing certificate must bind (its SAN, Build Signer or Build Config URI): exact, the same id at any version, or a prefix ending in *")
	f.StringVar(&v.o.SourceURI, "source-uri", "", "the source repository the provenance must name (e.g. github.com/org/repo)")
	f.StringVar(&v.o.SourceBranch, "source-branch", "", "the branch the provenance must name")
	f.StringVar(&v.o.SourceTag, "source-tag", "", "the tag the provenance must name")
}

// fetchFlags say how references are fetched.
type fetchFlags struct {
	insecure []string
	platform string
}

func (f *fetchFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringArrayVar(&f.insecure, "insecure-registry", nil, "reach this registry (HOST: any port, or HOST:PORT) over plain HTTP; every other registry, loopback and private addresses included, is HTTPS only (repeatable)")
	cmd.Flags().StringVar(&f.platform, "platform", "", "the platform of a multi-platform image to vet, as os/arch[/variant]; default: every platform")
}

// register adds the flags; jobsHelp says what --jobs bounds.
func (p *pipelineFlags) register(cmd *cobra.Command, jobsHelp string) {
	f := cmd.Flags()
	f.StringArrayVar(&p.manifest, "manifest", nil, "vendor release manifest (JSON) declaring the intended changes; or give it twice: the baseline's SBOM, then the candidate's (SPDX 2.3 or CycloneDX 1.5+, JSON), and the declared changes are their difference")
	f.StringVar(&p.policy, "policy", "", "policy file: YAML or JSON (apiVersion fwvet/v1, with CEL rules), or a JSON threshold policy; default: the built-in default policy")
	f.StringVar(&p.format, "format", "text", "report format: text, json or sarif")
	f.StringVarP(&p.output, "output", "o", "", "write the report to this file instead of stdout")
	f.StringArrayVar(&p.limits, "limit", nil, "change an unpack limit, as name=value (repeatable): "+fmt.Sprint(pipeline.LimitNames))
	f.IntVar(&p.jobs, "jobs", 0, jobsHelp+" (default: the number of CPUs)")
	p.fetch.register(cmd)
	p.verify.register(cmd)
}

// pipeline builds the pipeline the flags describe, recording verdicts in
// st when it is not nil.
func (g *globals) pipeline(ctx context.Context, p *pipelineFlags, st pipeline.Store) (*vet.Pipeline, error) {
	cfg, err := g.config(ctx, p)
	if err != nil {
		return nil, err
	}
	cfg.Store = st
	return vet.New(cfg)
}

// config maps the flags to the pipeline's options. It reads the policy
// and the signing key, so that a bad one is an error before anything is
// opened, fetched or written.
func (g *globals) config(ctx context.Context, p *pipelineFlags) (vet.Config, error) {
	pol := policy.Default()
	if p.policy != "" {
		var err error
		if pol, err = policy.Load(p.policy); err != nil {
			return vet.Config{}, &pipeline.InputError{Role: "policy", Ref: p.policy, Err: err}
		}
	}
	if _, err := report.ForFormat(p.format); err != nil {
		return vet.Config{}, fmt.Errorf("--format: %w", err)
	}
	lim := pipeline.DefaultLimits()
	for _, l := range p.limits {
		if err := lim.Set(l); err != nil {
			return vet.Config{}, fmt.Errorf("--limit: %w", err)
		}
	}
	policyURI := "fwvet:default"
	if p.policy != "" {
		if abs, err := filepath.Abs(p.policy); err == nil {
			policyURI = "file:" + abs
		}
	}
	att, err := p.attest.options(ctx, policyURI)
	if err != nil {
		return vet.Config{}, err
	}
	return vet.Config{
		Attest:      att,
		Manifest:    p.manifest,
		Policy:      pol,
		Verify:      p.verify.o,
		Limits:      &lim,
		CacheDir:    g.cacheDir,
		Insecure:    p.fetch.insecure,
		Platform:    p.fetch.platform,
		Jobs:        p.jobs,
		WithChanges: p.withChanges,
		Explain:     p.explain,
		Sink:        p.sink,
		NoHash:      p.noHash,
		Tool:        pipeline.Tool{Name: "fwvet", Version: version},
		Log:         g.log,
	}, nil
}

// openStore opens the store a --store flag names, or the default one.
func openStore(ctx context.Context, dsn string) (pipeline.Store, error) {
	if dsn == "" {
		var err error
		if dsn, err = store.DefaultDSN(); err != nil {
			return nil, err
		}
	}
	return store.Open(ctx, dsn)
}

// writeReport encodes the reports (one per platform vetted) to stdout, or
// to a file written whole or not at all.
func (g *globals) writeReport(reps []*pipeline.Report, format, output string) error {
	enc, err := report.ForFormat(format)
	if err != nil {
		return err
	}
	if output == "" {
		return report.EncodeAll(enc, g.stdout, reps)
	}
	return writeAtomic(output, func(w io.Writer) error { return report.EncodeAll(enc, w, reps) })
}

// enforced is the worst verdict of the results whose policy enforces it:
// a policy in warn mode records its verdict, and the command exits 0.
func enforced(res []*vet.Result) pipeline.Verdict {
	var vs []pipeline.Verdict
	for _, r := range res {
		if r.Report.PolicyMode != policy.ModeWarn {
			vs = append(vs, r.Report.Verdict)
		}
	}
	return pipeline.Worst(vs...)
}

// attestations collects the signed verdicts of results.
func attestations(res []*vet.Result) [][]byte {
	var out [][]byte
	for _, r := range res {
		if r.Attestation != nil {
			out = append(out, r.Attestation)
		}
	}
	return out
}

// reports collects the reports of results.
func reports(res []*vet.Result) []*pipeline.Report {
	out := make([]*pipeline.Report, len(res))
	for i, r := range res {
		out[i] = r.Report
	}
	return out
}

func writeAtomic(path string, write func(io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := write(tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
