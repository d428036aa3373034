// Package vet runs the whole pipeline for one candidate: fetch, unpack, diff
// against the baseline, analyze, disclose, decide, record.
package vet

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sync/errgroup"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/analyze"
	"github.com/fwvet/fwvet/pipeline/diff"
	"github.com/fwvet/fwvet/pipeline/disclose"
	"github.com/fwvet/fwvet/pipeline/policy"
	"github.com/fwvet/fwvet/pipeline/version"
	"github.com/fwvet/fwvet/pipeline/waiver"
)

// Unpacker turns an artifact into a tree.
type Unpacker interface {
	Unpack(ctx context.Context, art *pipeline.Artifact) (*pipeline.Tree, error)
}

// Options say what to vet and with which stages.
type Options struct {
	Candidate string
	// Baseline is empty when there is none.
	Baseline string
	// Manifest names what declares the intended changes: nothing, one JSON
	// release manifest, or two SBOMs, the baseline's then the candidate's.
	Manifest []string
	Policy   *policy.Policy

	Fetcher   pipeline.Fetcher
	Unpacker  Unpacker
	Analyzers []pipeline.Analyzer
	// Verifiers check the candidate's signatures and provenance.
	Verifiers []pipeline.Verifier
	// Store records the verdict when set.
	Store pipeline.Store
	// WithChanges puts every change in the report.
	WithChanges bool
	// Explain names a modified binary whose function-level diff goes in
	// the report; an error when there is no such binary to explain.
	Explain string
	// WorkDir takes the temporary files of analysis.
	WorkDir string
	// Jobs bounds the changed files analysis reads at once; zero means
	// GOMAXPROCS.
	Jobs int

	Tool pipeline.Tool
	Log  logrus.FieldLogger
}

// Result is a report and, when stored, its record; when signed, its
// verification summary (a DSSE envelope).
type Result struct {
	Report      *pipeline.Report
	Record      *pipeline.Record
	Attestation []byte
}

// Run vets one candidate. It returns an error (an *pipeline.InputError for a
// bad input) when no verdict can be reached; otherwise a report whose
// verdict may be pass, review or fail.
func Run(ctx context.Context, o Options) (*Result, error) {
	if o.Fetcher == nil || o.Unpacker == nil || o.Policy == nil || o.Log == nil {
		return nil, errors.New("vet: fetcher, unpacker, policy and log are required")
	}
	manifest, err := loadManifest(o.Manifest)
	if err != nil {
		return nil, err
	}

	sides := []*side{{role: "candidate", ref: o.Candidate}}
	if o.Baseline != "" {
		sides = append(sides, &side{role: "baseline", ref: o.Baseline})
	}
	defer func() {
		for _, s := range sides {
			if s.tree != nil {
				s.tree.Close()
			}
		}
	}()
	// The sides are fetched at once but unpacked one at a time: an unpack
	// already keeps o.Jobs workers busy, and two at once would hold both
	// walks' entries together, the peak of a diff of two large images.
	unpacking := make(chan struct{}, 1)
	g, gctx := errgroup.WithContext(ctx)
	for _, s := range sides {
		g.Go(func() error { return s.load(gctx, o, unpacking) })
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	cand := sides[0]
	var base *side
	if len(sides) > 1 {
		base = sides[1]
	}

	if manifest != nil {
		// A version the image does not carry is the one its manifest declares.
		if cand.version == nil && manifest.Version != "" {
			cand.version = &pipeline.Version{Value: manifest.Version, Source: "manifest"}
		}
		if base != nil && base.version == nil && manifest.PreviousVersion != "" {
			base.version = &pipeline.Version{Value: manifest.PreviousVersion, Source: "manifest"}
		}
	}
	rep := &pipeline.Report{
		Schema:       pipeline.ReportSchema,
		Tool:         o.Tool,
		Candidate:    cand.subject(),
		PolicyDigest: o.Policy.Digest(),
	}
	if base != nil {
		s := base.subject()
		rep.Baseline = &s
	}
	rep.Checks = check(ctx, o.Verifiers, cand.art, o.Log)
	var pairing *diff.Pairing
	if base != nil && !cand.tree.Incomplete {
		pairing = diff.Pair(base.tree, cand.tree)
	}
	var unchanged, baseUnchanged func(pipeline.Problem) bool
	if pairing != nil {
		unchanged, baseUnchanged = pairing.Unchanged, pairing.BaseUnchanged
	}
	rep.Checks = append(rep.Checks, cand.unpackCheck(unchanged))
	rep.Findings = append(rep.Findings, unsafeFindings(cand.tree, pairing)...)
	var changes []*pipeline.Change
	switch {
	case cand.tree.Incomplete:
		o.Log.Warn("candidate only partly unpacked: changes are not assessed")
	case base == nil:
	default:
		rep.Checks = append(rep.Checks, base.unpackCheck(baseUnchanged))
		changes = pairing.Changes()
		in := &pipeline.AnalysisInput{Baseline: base.tree, Candidate: cand.tree, Changes: changes,
			BaselineVersion: base.version, CandidateVersion: cand.version, WorkDir: o.WorkDir, Jobs: o.Jobs}
		findings, failures := analyze.Run(ctx, o.Analyzers, in, o.Log)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		rep.Findings = append(rep.Findings, findings...)
		rep.Checks = append(rep.Checks, analyzeCheck(failures))
		if o.Explain != "" {
			if rep.Explain, err = analyze.Explain(ctx, in, o.Explain); err != nil {
				return nil, fmt.Errorf("explaining %s: %w", o.Explain, err)
			}
		}
	}
	if o.Explain != "" && rep.Explain == nil {
		return nil, fmt.Errorf("explaining %s: %w: the changes were not assessed (no baseline, or the candidate was only partly unpacked)", o.Explain, analyze.ErrNotExplainable)
	}
	if manifest != nil {
		subj := disclose.Subject{Digests: []string{cand.art.Digest}, CandidateVersion: cand.version}
		for _, f := range cand.art.Files {
			subj.Digests = append(subj.Digests, f.Digest)
		}
		if base != nil {
			subj.BaselineVersion = base.version
		}
		d := manifest.Disclose(subj, changes, rep.Findings)
		rep.Checks = append(rep.Checks, d.Check)
		changes, rep.Findings = d.Changes, d.Findings
	}
	rep.Findings = o.Policy.Ranked(rep.Findings)
	if o.Store != nil {
		product := ""
		if manifest != nil {
			product = manifest.Product
		}
		if rep.Findings, rep.Waivers, err = waive(ctx, o.Store, rep.Findings, cand.art.Digest, product); err != nil {
			return nil, err
		}
	}
	rep.Summary = pipeline.Summarize(changes)
	decision, err := o.Policy.Decide(ctx, policy.Input{Report: rep, Changes: changes, HasBaseline: base != nil})
	if err != nil {
		return nil, err
	}
	rep.Verdict, rep.Reasons = decision.Verdict, decision.Reasons
	if decision.Mode == policy.ModeWarn {
		rep.PolicyMode = policy.ModeWarn
	}
	if o.WithChanges {
		rep.Changes = changes
	}
	res := &Result{Report: rep}
	if o.Store != nil {
		rec, err := o.Store.Append(ctx, rep)
		if err != nil {
			return nil, err
		}
		res.Record = rec
	}
	o.Log.WithFields(logrus.Fields{"verdict": rep.Verdict, "findings": len(rep.Findings), "changes": len(changes)}).Info("vetted")
	return res, nil
}

// waive marks the findings that a waiver in the store covers, and returns
// the waivers that applied, each once. The findings given are left as
// they were.
func waive(ctx context.Context, st pipeline.Store, findings []pipeline.Finding, digest, product string) ([]pipeline.Finding, []pipeline.Waiver, error) {
	ws, err := st.Waivers(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("reading the store's waivers: %w", err)
	}
	applied := waiver.Apply(ws, findings, digest, product, time.Now())
	if len(applied) == 0 {
		return findings, nil, nil
	}
	out := make([]pipeline.Finding, len(findings))
	copy(out, findings)
	var used []pipeline.Waiver
	seen := map[int64]bool{}
	for _, a := range applied {
		out[a.Finding].Waived = true
		if !seen[a.Waiver.RecordID] {
			seen[a.Waiver.RecordID] = true
			used = append(used, a.Waiver)
		}
	}
	return out, used, nil
}

// loadManifest reads the release manifest, or derives one from an SBOM
// pair; nil when no file is given.
func loadManifest(files []string) (*disclose.Manifest, error) {
	switch len(files) {
	case 0:
		return nil, nil
	case 1:
		m, err := disclose.Load(files[0])
		if err != nil {
			return nil, &pipeline.InputError{Role: "manifest", Ref: files[0], Err: err}
		}
		return m, nil
	case 2:
		// Its errors are *pipeline.InputError already, naming the file at fault.
		return disclose.LoadSBOMPair(files[0], files[1])
	}
	return nil, &pipeline.InputError{Role: "manifest", Ref: strings.Join(files, ", "),
		Err: fmt.Errorf("%d files given: want one release manifest, or two SBOMs (the baseline's, then the candidate's)", len(files))}
}

// side is the candidate or the baseline on its way through fetch and unpack.
type side struct {
	role, ref string
	art       *pipeline.Artifact
	tree      *pipeline.Tree
	version   *pipeline.Version
}

func (s *side) load(ctx context.Context, o Options, unpacking chan struct{}) error {
	if err := s.fetchUnpack(ctx, o, unpacking); err != nil {
		return err
	}
	if !s.tree.Incomplete {
		v, err := version.FromTree(ctx, s.tree)
		if err != nil {
			return &pipeline.InputError{Role: s.role, Ref: s.ref, Err: fmt.Errorf("reading its version: %w", err)}
		}
		s.version = v
	}
	if s.version == nil && s.art.Annotations[pipeline.AnnotationVersion] != "" {
		s.version = &pipeline.Version{Value: s.art.Annotations[pipeline.AnnotationVersion], Source: "annotation " + pipeline.AnnotationVersion}
	}
	return nil
}

// fetchUnpack fetches the side's reference and unpacks it once it holds
// the unpacking slot, if there is one.
func (s *side) fetchUnpack(ctx context.Context, o Options, unpacking chan struct{}) error {
	log := o.Log.WithFields(logrus.Fields{"role": s.role, "ref": s.ref})
	start := time.Now()
	art, err := o.Fetcher.Fetch(ctx, s.ref)
	if err != nil {
		return &pipeline.InputError{Role: s.role, Ref: s.ref, Err: err}
	}
	log.WithFields(logrus.Fields{"digest": art.Digest, "size": art.Size}).Debug("fetched")
	if unpacking != nil {
		select {
		case unpacking <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	tree, err := o.Unpacker.Unpack(ctx, art)
	if unpacking != nil {
		<-unpacking
	}
	if err != nil {
		return &pipeline.InputError{Role: s.role, Ref: s.ref, Err: err}
	}
	s.art, s.tree = named(art, tree), tree
	log.WithFields(logrus.Fields{"entries": tree.Len(), "problems": len(tree.Problems), "formats": tree.Formats,
		"took": time.Since(start).Round(time.Millisecond)}).Info("unpacked")
	return nil
}

// named is the artifact with a digest: a local directory, which the
// fetcher cannot name, is named by what it holds. The fetcher's artifact
// is left as it was.
func named(art *pipeline.Artifact, tree *pipeline.Tree) *pipeline.Artifact {
	if art.Digest != "" {
		return art
	}
	a := *art
	a.Digest, a.Size = tree.Digest(), tree.Bytes
	return &a
}

func (s *side) subject() pipeline.Subject {
	sub := pipeline.Subject{Ref: s.ref, Digest: s.art.Digest, Size: s.art.Size, Platform: s.art.Platform}
	if s.version != nil {
		sub.Version = s.version.Value
	}
	return sub
}

// unpackCheck passes when everything was read; it is an error when the
// tree is incomplete, a nested container could not be read, or a limit
// kept bytes from being read (a container stopped part way, one nested too
// deep to open, a file too large), since what was not read cannot be
// vetted, whatever a policy makes of the unsafe-entry finding. Only a
// problem that unchanged reports (nil without a pairing), one inside or
// at a container whose bytes are equal on both sides, is not held against
// either side. Refused hostile entries are findings, not errors.
func (s *side) unpackCheck(unchanged func(pipeline.Problem) bool) pipeline.Check {
	c := pipeline.Check{Name: "unpack"}
	if s.role == "baseline" {
		c.Name = "unpack-baseline"
	}
	var corrupt, limits []string
	unsafe, same := 0, 0
	for _, p := range s.tree.Problems {
		w := pipeline.Where(p.Container, p.Path)
		switch {
		case p.Kind == pipeline.ProblemUnsafe:
			unsafe++
		case unchanged != nil && unchanged(p):
			same++
		case p.Kind == pipeline.ProblemCorrupt:
			corrupt = append(corrupt, w+": "+p.Reason)
		case p.Kind == pipeline.ProblemLimit:
			limits = append(limits, w+": "+p.Reason)
		default:
			// Fail closed on a kind this check does not know.
			corrupt = append(corrupt, w+": "+string(p.Kind)+": "+p.Reason)
		}
	}
	formats := strings.Join(s.tree.Formats, ", ")
	if formats == "" {
		formats = "a directory" // a local tree: nothing was unpacked
	}
	base := fmt.Sprintf("%d entries in %s", s.tree.Len(), formats)
	switch {
	case s.tree.Incomplete:
		c.Status, c.Detail = pipeline.CheckError, fmt.Sprintf("unpacking stopped early (%s); only %s were seen", first(limits), base)
	case len(corrupt) > 0:
		c.Status, c.Detail = pipeline.CheckError, fmt.Sprintf("%d nested container%s could not be read (%s); %s", len(corrupt), plural(len(corrupt)), first(corrupt), base)
	case len(limits) > 0:
		c.Status, c.Detail = pipeline.CheckError, fmt.Sprintf("%s not read to the end: %d limit%s hit (%s); %s", s.role, len(limits), plural(len(limits)), first(limits), base)
	default:
		c.Status, c.Detail = pipeline.CheckPass, base
		if unsafe > 0 {
			c.Detail += fmt.Sprintf("; %d entr%s refused (see unsafe-entry findings)", unsafe, map[bool]string{true: "y", false: "ies"}[unsafe == 1])
		}
		if same > 0 {
			c.Detail += fmt.Sprintf("; %d problem%s in containers equal on both sides", same, plural(same))
		}
	}
	return c
}

func first(s []string) string {
	switch len(s) {
	case 0:
		return ""
	case 1:
		return s[0]
	}
	return fmt.Sprintf("%s, and %d more", s[0], len(s)-1)
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// unsafeFindings reports each refused entry and each limit hit of the
// candidate as an unsafe-entry finding, but for those the baseline holds
// at the same place (pairing is nil without a baseline): what an update
// leaves as it was is not a change.
func unsafeFindings(t *pipeline.Tree, pairing *diff.Pairing) []pipeline.Finding {
	var out []pipeline.Finding
	for _, p := range t.Problems {
		if p.Kind == pipeline.ProblemCorrupt || pairing != nil && pairing.SameProblem(p) {
			continue
		}
		f := pipeline.NewFinding(pipeline.IDUnsafeEntry, p.Path, p.Container, p.Reason)
		f.Evidence = map[string]any{"kind": string(p.Kind)}
		if p.Limit != "" {
			f.Evidence["limit"] = p.Limit
		}
		out = append(out, f)
	}
	return out
}

func analyzeCheck(failures []analyze.Failure) pipeline.Check {
	if len(failures) == 0 {
		return pipeline.Check{Name: "analyze", Status: pipeline.CheckPass, Detail: "every analyzer finished"}
	}
	var parts []string
	for _, f := range failures {
		parts = append(parts, f.Analyzer+": "+strings.SplitN(f.Err.Error(), "\n", 2)[0])
	}
	return pipeline.Check{Name: "analyze", Status: pipeline.CheckError, Detail: strings.Join(parts, "; ")}
}
