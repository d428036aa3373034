package vet

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/sirupsen/logrus"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/analyze"
	"github.com/fwvet/fwvet/pipeline/attest"
	"github.com/fwvet/fwvet/pipeline/cache"
	"github.com/fwvet/fwvet/pipeline/policy"
	"github.com/fwvet/fwvet/pipeline/source"
	"github.com/fwvet/fwvet/pipeline/unpack"
	"github.com/fwvet/fwvet/verifiers"
)

// Config is what a run needs, as plain values: what the CLI's flags say,
// and what the gate service's configuration and requests will say. The
// zero value vets with the default policy, limits and cache.
type Config struct {
	// Manifest names what declares the intended changes: nothing, one JSON
	// release manifest, or two SBOMs, the baseline's then the candidate's.
	Manifest []string
	// Policy decides the verdict; nil means policy.Default().
	Policy *policy.Policy
	// Verify asks for signature and provenance checks; its Registry and
	// Threshold are filled in from the resolver and the policy.
	Verify verifiers.Options
	// Limits bound unpacking; nil means pipeline.DefaultLimits().
	Limits *pipeline.Limits
	// CacheDir holds fetched blobs and work directories; empty means
	// cache.DefaultDir().
	CacheDir string
	// Insecure lists the registries that may be reached over plain HTTP.
	Insecure []string
	// Platform pins the platform of multi-platform images; empty vets
	// every platform.
	Platform string
	// Jobs bounds the files hashed and analyzed at once; zero means
	// GOMAXPROCS.
	Jobs int
	// WithChanges puts every change in the report.
	WithChanges bool
	// Explain names a modified binary whose function-level diff goes in
	// the report (fwvet diff --explain).
	Explain string
	// Store records each verdict when set.
	Store pipeline.Store
	// Sink receives the unpacked files as they are read, and NoHash skips
	// hashing them and the artifact: for extraction, which only writes.
	Sink   unpack.Sink
	NoHash bool
	// Attest signs verdicts, and attaches them to their candidates.
	Attest Attestation

	Tool pipeline.Tool
	Log  logrus.FieldLogger
}

// Pipeline is a Config's stages, built once and shared by its runs: the
// resolver and its cache, the verifiers, the analyzers. Each run unpacks
// into a work directory of its own, so runs may go on at the same time.
type Pipeline struct {
	cfg       Config
	policy    *policy.Policy
	limits    pipeline.Limits
	cache     *cache.Cache
	resolver  *source.Resolver
	verifiers []pipeline.Verifier
	// inputs are the files the verifiers check with, for signed verdicts.
	inputs []attest.ResourceDescriptor
}

// New builds the pipeline a Config describes. Its errors name the option
// at fault; a policy given here is used as it is.
func New(cfg Config) (*Pipeline, error) {
	if cfg.Log == nil {
		return nil, errors.New("vet: a logger is required")
	}
	p := &Pipeline{cfg: cfg, policy: cfg.Policy, limits: pipeline.DefaultLimits()}
	if p.policy == nil {
		p.policy = policy.Default()
	}
	if cfg.Limits != nil {
		p.limits = *cfg.Limits
	}
	dir := cfg.CacheDir
	if dir == "" {
		var err error
		if dir, err = cache.DefaultDir(); err != nil {
			return nil, err
		}
	}
	c, err := cache.Open(dir)
	if err != nil {
		return nil, err
	}
	p.cache = c
	p.resolver, err = source.NewResolver(source.Options{Cache: c, Insecure: cfg.Insecure, Platform: cfg.Platform,
		MaxRootfsBytes: p.limits.MaxTotalBytes, NoLocalDigest: cfg.NoHash})
	if err != nil {
		return nil, fmt.Errorf("fetch options: %w", err)
	}
	vo, err := verifyOptions(cfg.Verify, p.policy)
	if err != nil {
		return nil, err
	}
	vo.Registry = p.resolver
	if p.verifiers, err = verifiers.New(vo); err != nil {
		return nil, err
	}
	cfg.Verify = vo
	if cfg.Attest.Attach && cfg.Attest.Signer == nil {
		return nil, errors.New("attaching verdicts needs a signing key")
	}
	if cfg.Attest.Signer != nil {
		if p.inputs, err = inputs(cfg.Verify); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// verifyOptions are the signature and provenance checks asked for: the
// policy's authorities and provenance, with what the caller gives added
// (keys) or, where only one can be checked, given instead.
func verifyOptions(o verifiers.Options, pol *policy.Policy) (verifiers.Options, error) {
	a, prov := pol.Authorities(), pol.Provenance()
	o.Keys = append(slices.Clone(a.Keys), o.Keys...)
	if o.Threshold == 0 {
		o.Threshold = a.Threshold
	}
	switch {
	case len(a.Keyless) > 1:
		return o, fmt.Errorf("policy: %d keyless authorities; this build checks one keyless identity", len(a.Keyless))
	case len(a.Keyless) == 1 && !o.WantsIdentity():
		k := a.Keyless[0]
		o.CertIdentity, o.CertIdentityRegexp, o.CertOIDCIssuer, o.CertOIDCIssuerRegexp = k.Identity, k.IdentityRegexp, k.Issuer, k.IssuerRegexp
	}
	switch {
	case len(prov.BuilderIDs) > 1:
		return o, fmt.Errorf("policy: %d provenance builder ids; this build checks one (a prefix ending in * matches many)", len(prov.BuilderIDs))
	case len(prov.BuilderIDs) == 1 && o.BuilderID == "":
		o.BuilderID = prov.BuilderIDs[0]
	}
	switch prov.PredicateType {
	case "", verifiers.SLSAv02, verifiers.SLSAv1:
		// The provenance verifier reads both.
	default:
		return o, fmt.Errorf("policy: provenance predicate type %q: this build checks SLSA provenance (%s, %s)", prov.PredicateType, verifiers.SLSAv1, verifiers.SLSAv02)
	}
	if o.SourceURI == "" {
		o.SourceURI = prov.SourceURI
	}
	if o.SourceBranch == "" {
		o.SourceBranch = prov.Branch
	}
	if o.SourceTag == "" {
		o.SourceTag = prov.Tag
	}
	return o, nil
}

// Policy is the policy the pipeline decides by.
func (p *Pipeline) Policy() *policy.Policy { return p.policy }

// Resolver fetches and describes references, for callers that list or
// resolve them before vetting (an audit of a repository's tags).
func (p *Pipeline) Resolver() *source.Resolver { return p.resolver }

// WithStore is the pipeline recording its verdicts in st: front ends
// build the pipeline first, so that bad options are refused before a
// store is opened or created.
func (p *Pipeline) WithStore(st pipeline.Store) *Pipeline {
	q := *p
	q.cfg.Store = st
	return &q
}

// Store is where the pipeline records verdicts, or nil.
func (p *Pipeline) Store() pipeline.Store { return p.cfg.Store }

// Verifiers are the signature and provenance checks the Config asks for.
func (p *Pipeline) Verifiers() []pipeline.Verifier { return p.verifiers }

// Platforms lists what to vet a reference as: each platform of a
// multi-platform image, or the one "" for anything else (or when the
// Config pins a platform).
func (p *Pipeline) Platforms(ctx context.Context, ref string) ([]string, error) {
	plats, err := p.resolver.Platforms(ctx, ref)
	if err != nil {
		return nil, err
	}
	if len(plats) == 0 {
		return []string{""}, nil
	}
	return plats, nil
}

// Describe resolves a target's candidate without fetching its layers: its
// digest, and for an image its repository and version annotation.
func (p *Pipeline) Describe(ctx context.Context, t Target) (*source.Description, error) {
	r, err := p.resolverFor(t.Platform)
	if err != nil {
		return nil, err
	}
	return r.Describe(ctx, t.Candidate)
}

func (p *Pipeline) resolverFor(platform string) (*source.Resolver, error) {
	if platform == "" {
		return p.resolver, nil
	}
	return p.resolver.ForPlatform(platform)
}

// Target is one vet: a candidate, its baseline (empty for none) and, for
// a multi-platform image, the platform vetted.
type Target struct {
	Candidate, Baseline, Platform string
}

// Vet vets a candidate against a baseline: each platform of a
// multi-platform image on its own, baseline included.
func (p *Pipeline) Vet(ctx context.Context, candidate, baseline string) ([]*Result, error) {
	plats, err := p.Platforms(ctx, candidate)
	if err != nil {
		return nil, &pipeline.InputError{Role: "candidate", Ref: candidate, Err: err}
	}
	out := make([]*Result, 0, len(plats))
	for _, plat := range plats {
		res, err := p.VetTarget(ctx, Target{Candidate: candidate, Baseline: baseline, Platform: plat}, p.cfg.Log)
		if err != nil {
			if plat != "" {
				err = fmt.Errorf("platform %s: %w", plat, err)
			}
			return nil, err
		}
		out = append(out, res)
	}
	return out, nil
}

// VetTarget vets one target, logging to log.
func (p *Pipeline) VetTarget(ctx context.Context, t Target, log logrus.FieldLogger) (*Result, error) {
	if p.cfg.Attest.Attach && !source.IsRegistry(t.Candidate) {
		return nil, &pipeline.InputError{Role: "candidate", Ref: t.Candidate,
			Err: fmt.Errorf("a signed verdict is attached to an image in a registry: %w (write it to a file instead)", source.ErrNotRegistry)}
	}
	o, done, err := p.options(t.Platform, log)
	if err != nil {
		return nil, err
	}
	defer done()
	o.Candidate, o.Baseline = t.Candidate, t.Baseline
	res, err := Run(ctx, o)
	if err != nil || p.cfg.Attest.Signer == nil {
		return res, err
	}
	if res.Attestation, err = p.Sign(ctx, res.Report, nil); err != nil {
		return nil, err
	}
	return res, nil
}

// Verify checks a reference's signatures and provenance only. The
// report's verdict is the policy's over those checks; an error means the
// reference could not be fetched.
func (p *Pipeline) Verify(ctx context.Context, ref string) (*pipeline.Report, error) {
	if len(p.verifiers) == 0 {
		return nil, errors.New("nothing to verify: give a key, or a trusted root with a certificate identity and OIDC issuer")
	}
	art, err := p.resolver.Fetch(ctx, ref)
	if err != nil {
		return nil, &pipeline.InputError{Role: "artifact", Ref: ref, Err: err}
	}
	rep := &pipeline.Report{Schema: pipeline.ReportSchema, Tool: p.cfg.Tool, PolicyDigest: p.policy.Digest(),
		Candidate: pipeline.Subject{Ref: ref, Digest: art.Digest, Size: art.Size, Platform: art.Platform}}
	rep.Checks = check(ctx, p.verifiers, art, p.cfg.Log)
	d, err := p.policy.Decide(ctx, policy.Input{Report: rep, HasBaseline: true})
	if err != nil {
		return nil, err
	}
	rep.Verdict, rep.Reasons = d.Verdict, d.Reasons
	if rep.Verdict == pipeline.VerdictPass {
		rep.Reasons = []string{"every requested check passed"}
	}
	return rep, nil
}

// Unpacked is a reference fetched and unpacked; Close releases its tree
// and work directory.
type Unpacked struct {
	Artifact *pipeline.Artifact
	Tree     *pipeline.Tree
	done     func()
}

// Close releases the tree and the work directory.
func (u *Unpacked) Close() {
	u.Tree.Close()
	u.done()
}

// Unpack fetches and unpacks one reference, for callers that look at the
// tree themselves (extraction, equivalence).
func (p *Pipeline) Unpack(ctx context.Context, role, ref string) (*Unpacked, error) {
	o, done, err := p.options("", p.cfg.Log)
	if err != nil {
		return nil, err
	}
	s := &side{role: role, ref: ref}
	if err := s.fetchUnpack(ctx, o, nil); err != nil {
		done()
		return nil, err
	}
	return &Unpacked{Artifact: s.art, Tree: s.tree, done: done}, nil
}

// options are the stages of one run: a work directory of its own and an
// unpacker writing into it; done removes the directory.
func (p *Pipeline) options(platform string, log logrus.FieldLogger) (o Options, done func(), err error) {
	fetcher, err := p.resolverFor(platform)
	if err != nil {
		return o, nil, err
	}
	if platform != "" {
		log = log.WithField("platform", platform)
	}
	work, remove, err := p.cache.WorkDir()
	if err != nil {
		return o, nil, err
	}
	done = func() {
		if err := remove(); err != nil {
			log.WithError(err).Warn("removing work directory")
		}
	}
	u, err := unpack.New(unpack.Options{Limits: p.limits, WorkDir: work, Jobs: p.cfg.Jobs, Log: log, Sink: p.cfg.Sink, NoHash: p.cfg.NoHash})
	if err != nil {
		done()
		return o, nil, err
	}
	return Options{
		Manifest:    p.cfg.Manifest,
		Policy:      p.policy,
		Fetcher:     fetcher,
		Unpacker:    u,
		Analyzers:   analyze.Default(),
		Verifiers:   p.verifiers,
		Store:       p.cfg.Store,
		WithChanges: p.cfg.WithChanges,
		Explain:     p.cfg.Explain,
		WorkDir:     work,
		Jobs:        p.cfg.Jobs,
		Tool:        p.cfg.Tool,
		Log:         log,
	}, done, nil
}

// check runs the verifiers on an artifact, logging each outcome.
func check(ctx context.Context, vs []pipeline.Verifier, art *pipeline.Artifact, log logrus.FieldLogger) []pipeline.Check {
	var out []pipeline.Check
	for _, v := range vs {
		c := v.Verify(ctx, art)
		log.WithFields(logrus.Fields{"check": c.Name, "status": c.Status}).Info(c.Detail)
		out = append(out, c)
	}
	return out
}
