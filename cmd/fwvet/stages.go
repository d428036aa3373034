package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/analyze"
	"github.com/fwvet/fwvet/pipeline/cache"
	"github.com/fwvet/fwvet/pipeline/policy"
	"github.com/fwvet/fwvet/pipeline/report"
	"github.com/fwvet/fwvet/pipeline/source"
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

// verifiers builds the verifiers the flags ask for.
func (v *verifyFlags) verifiers(res *source.Resolver, pol *policy.Policy) ([]pipeline.Verifier, error) {
	o := v.o
	o.Registry = res
	o.Threshold = pol.SignatureThreshold
	return verifiers.New(o)
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
	f.StringVar(&p.policy, "policy", "", "policy file (JSON); default: the policy of DESIGN.md")
	f.StringVar(&p.format, "format", "text", "report format: text, json or sarif")
	f.StringVarP(&p.output, "output", "o", "", "write the report to this file instead of stdout")
	f.StringArrayVar(&p.limits, "limit", nil, "change an unpack limit, as name=value (repeatable): "+fmt.Sprint(pipeline.LimitNames))
	f.IntVar(&p.jobs, "jobs", 0, jobsHelp+" (default: the number of CPUs)")
	p.fetch.register(cmd)
	p.verify.register(cmd)
}

// stages builds the pipeline's stages from the flags. cleanup removes the
// run's work directory.
func (g *globals) stages(p *pipelineFlags) (o vet.Options, cleanup func(), err error) {
	pol := policy.Default()
	if p.policy != "" {
		if pol, err = policy.Load(p.policy); err != nil {
			return o, nil, &pipeline.InputError{Role: "policy", Ref: p.policy, Err: err}
		}
	}
	if _, err := report.ForFormat(p.format); err != nil {
		return o, nil, fmt.Errorf("--format: %w", err)
	}
	lim := pipeline.DefaultLimits()
	for _, l := range p.limits {
		if err := lim.Set(l); err != nil {
			return o, nil, fmt.Errorf("--limit: %w", err)
		}
	}
	c, err := g.openCache()
	if err != nil {
		return o, nil, err
	}
	work, remove, err := c.WorkDir()
	if err != nil {
		return o, nil, err
	}
	cleanup = func() {
		if err := remove(); err != nil {
			g.log.WithError(err).Warn("removing work directory")
		}
	}
	u, err := unpack.New(unpack.Options{Limits: lim, WorkDir: work, Jobs: p.jobs, Log: g.log, Sink: p.sink, NoHash: p.noHash})
	if err != nil {
		cleanup()
		return o, nil, err
	}
	res, err := source.NewResolver(source.Options{Cache: c, Insecure: p.fetch.insecure, Platform: p.fetch.platform, MaxRootfsBytes: lim.MaxTotalBytes, NoLocalDigest: p.noHash})
	if err != nil {
		cleanup()
		return o, nil, fmt.Errorf("fetch flags: %w", err)
	}
	vs, err := p.verify.verifiers(res, pol)
	if err != nil {
		cleanup()
		return o, nil, err
	}
	return vet.Options{
		Manifest:  p.manifest,
		Policy:    pol,
		Fetcher:   res,
		Unpacker:  u,
		Analyzers: analyze.Default(),
		Verifiers: vs,
		WorkDir:   work,
		Jobs:      p.jobs,
		Tool:      pipeline.Tool{Name: "fwvet", Version: version},
		Log:       g.log,
	}, cleanup, nil
}

func (g *globals) openCache() (*cache.Cache, error) {
	dir := g.cacheDir
	if dir == "" {
		var err error
		if dir, err = cache.DefaultDir(); err != nil {
			return nil, err
		}
	}
	return cache.Open(dir)
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

// worst is the verdict of several reports: the worst of theirs.
func worst(reps []*pipeline.Report) pipeline.Verdict {
	rank := map[pipeline.Verdict]int{pipeline.VerdictPass: 0, pipeline.VerdictReview: 1, pipeline.VerdictFail: 2}
	v := pipeline.VerdictPass
	for _, r := range reps {
		if rank[r.Verdict] > rank[v] {
			v = r.Verdict
		}
	}
	return v
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
