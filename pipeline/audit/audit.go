// Package audit vets many candidates at once, as a sweep over what a
// registry stores: concurrently, resumably (what the store already holds a
// verdict for under the same policy is skipped), with progress.
package audit

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/sirupsen/logrus"
	"golang.org/x/sync/errgroup"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/source"
	"github.com/fwvet/fwvet/pipeline/version"
	"github.com/fwvet/fwvet/pipeline/vet"
)

// PreviousBaseline is the baseline rule that picks, for each candidate, the
// newest earlier version of the same product that has a pass verdict.
const PreviousBaseline = "previous"

// Options configure an audit.
type Options struct {
	// Refs are the candidates.
	Refs []string
	// Baseline is a reference, PreviousBaseline, or empty for none.
	Baseline string
	// Jobs bounds the candidates vetted at once.
	Jobs int
	// Force vets candidates the store already has a verdict for.
	Force bool
	// Shard, when its Count is above one, keeps only this shard's share
	// of the references.
	Shard Shard
	// Pipeline vets each candidate and records its verdict in its store,
	// which also tells what was vetted before under its policy.
	Pipeline *vet.Pipeline
	Progress Progress
	Log      logrus.FieldLogger
}

// Progress hears about the audit as it goes.
type Progress interface {
	Start(total int)
	Done(o Outcome)
	Finish()
}

// Outcome is what became of one candidate.
type Outcome struct {
	Ref      string           `json:"ref"`
	Platform string           `json:"platform,omitempty"`
	Digest   string           `json:"digest,omitempty"`
	Verdict  pipeline.Verdict `json:"verdict,omitempty"`
	// Skipped: the store already had this verdict under the same policy.
	Skipped  bool   `json:"skipped,omitempty"`
	Record   int64  `json:"record,omitempty"`
	Baseline string `json:"baseline,omitempty"`
	// Top is the worst undisclosed finding, for a verdict that is not a pass.
	Top *pipeline.Finding `json:"top_finding,omitempty"`
	Err string            `json:"error,omitempty"`
	// Attestation is the signed verdict, when the pipeline signs them.
	Attestation []byte `json:"-"`
}

// Summary is the audit's result.
type Summary struct {
	Total    int                      `json:"total"`
	Counts   map[pipeline.Verdict]int `json:"counts"`
	Errors   int                      `json:"errors"`
	Skipped  int                      `json:"skipped"`
	Outcomes []Outcome                `json:"outcomes"`
	Took     time.Duration            `json:"took_ns"`
}

// Worst is the worst verdict reached; the candidates that could not be
// vetted are counted in Errors, not here.
func (s *Summary) Worst() pipeline.Verdict {
	var vs []pipeline.Verdict
	for v, n := range s.Counts {
		if n > 0 {
			vs = append(vs, v)
		}
	}
	return pipeline.Worst(vs...)
}

// Attestations are the signed verdicts of this audit's vets.
func (s *Summary) Attestations() [][]byte {
	var out [][]byte
	for _, oc := range s.Outcomes {
		if oc.Attestation != nil {
			out = append(out, oc.Attestation)
		}
	}
	return out
}

// Shard is one of Count parts of an audit: the references whose hash
// falls to Index. A reference always falls to the same shard, whatever the
// order or length of the list, so that N workers (a Kubernetes Indexed
// Job's pods) given the same list vet each reference once between them.
type Shard struct{ Index, Count int }

// ParseShard reads "I/N", 0 <= I < N.
func ParseShard(s string) (Shard, error) {
	i, n, ok := strings.Cut(s, "/")
	sh := Shard{}
	var err1, err2 error
	sh.Index, err1 = strconv.Atoi(i)
	sh.Count, err2 = strconv.Atoi(n)
	if !ok || err1 != nil || err2 != nil || sh.Count < 1 || sh.Index < 0 || sh.Index >= sh.Count || sh.Count > 1<<20 {
		return Shard{}, fmt.Errorf("shard %q: want I/N with 0 <= I < N (as a Kubernetes Indexed Job's JOB_COMPLETION_INDEX, of N completions)", s)
	}
	return sh, nil
}

// Has reports whether a reference belongs to the shard.
func (sh Shard) Has(ref string) bool {
	if sh.Count <= 1 {
		return true
	}
	h := fnv.New64a()
	h.Write([]byte(ref))
	return h.Sum64()%uint64(sh.Count) == uint64(sh.Index)
}

// unit is one candidate: a reference and, for a multi-platform image, one
// of its platforms.
type unit = vet.Target

// Run audits every candidate. An error returned means the audit itself
// could not go on (a cancelled context, a store that fails); a candidate
// that cannot be vetted is an outcome with an error.
func Run(ctx context.Context, o Options) (*Summary, error) {
	if o.Pipeline == nil || o.Pipeline.Store() == nil || o.Log == nil {
		return nil, errors.New("audit: a pipeline with a store, and a log, are required")
	}
	start := time.Now()
	units, outcomes := expand(ctx, o)
	if o.Progress != nil {
		o.Progress.Start(len(units) + len(outcomes))
		for _, oc := range outcomes {
			o.Progress.Done(oc)
		}
	}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(o.Jobs, 1))
	flights := &flights{m: map[string]*flight{}}
	for _, u := range units {
		g.Go(func() error {
			oc, err := vetOne(gctx, o, u, flights)
			if err != nil {
				return err
			}
			mu.Lock()
			outcomes = append(outcomes, oc)
			mu.Unlock()
			if o.Progress != nil {
				o.Progress.Done(oc)
			}
			return nil
		})
	}
	err := g.Wait()
	if o.Progress != nil {
		o.Progress.Finish()
	}
	if err != nil {
		return nil, err
	}
	sort.Slice(outcomes, func(i, j int) bool {
		if outcomes[i].Ref != outcomes[j].Ref {
			return outcomes[i].Ref < outcomes[j].Ref
		}
		return outcomes[i].Platform < outcomes[j].Platform
	})
	s := &Summary{Total: len(outcomes), Counts: map[pipeline.Verdict]int{}, Outcomes: outcomes, Took: time.Since(start)}
	for _, oc := range outcomes {
		switch {
		case oc.Err != "":
			s.Errors++
		default:
			s.Counts[oc.Verdict]++
		}
		if oc.Skipped {
			s.Skipped++
		}
	}
	return s, nil
}

// expand turns references into units, one per platform of a
// multi-platform image; references that cannot be resolved are outcomes.
// References are resolved --jobs at a time: on a warm audit resolving is
// all there is to do.
func expand(ctx context.Context, o Options) ([]unit, []Outcome) {
	var refs []string
	seen := map[string]bool{}
	for _, ref := range o.Refs {
		if !seen[ref] && o.Shard.Has(ref) {
			seen[ref] = true
			refs = append(refs, ref)
		}
	}
	type expanded struct {
		units []unit
		bad   []Outcome
	}
	out := make([]expanded, len(refs))
	var g errgroup.Group
	g.SetLimit(max(o.Jobs, 1))
	for i, ref := range refs {
		g.Go(func() error {
			e := &out[i]
			plats, err := o.Pipeline.Platforms(ctx, ref)
			if err != nil {
				e.bad = append(e.bad, Outcome{Ref: ref, Err: err.Error()})
			}
			for _, p := range plats {
				e.units = append(e.units, unit{Candidate: ref, Platform: p, Baseline: o.Baseline})
			}
			return nil
		})
	}
	g.Wait()
	var units []unit
	var bad []Outcome
	for _, e := range out {
		units = append(units, e.units...)
		bad = append(bad, e.bad...)
	}
	return units, bad
}

// flights holds, for each digest and platform of this run, the one vet
// of it: references of one digest (its tags) met at the same moment are
// vetted once, and the others report that vet.
type flights struct {
	mu sync.Mutex
	m  map[string]*flight
}

type flight struct {
	done chan struct{}
	ref  string
	oc   Outcome
}

// claim returns the flight of a digest and whether the caller leads it:
// the leader vets and calls land; the others wait for it.
func (fs *flights) claim(ref, digest, platform string) (*flight, bool) {
	key := digest + "\x00" + platform
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if f, ok := fs.m[key]; ok {
		return f, false
	}
	f := &flight{done: make(chan struct{}), ref: ref}
	fs.m[key] = f
	return f, true
}

func (f *flight) land(oc Outcome) {
	f.oc = oc
	close(f.done)
}

// vetOne vets one unit, unless the store has its verdict already or
// another reference of this run vets the same digest. Only a failure of
// the audit itself is returned as an error.
func vetOne(ctx context.Context, o Options, u unit, fs *flights) (oc Outcome, err error) {
	oc = Outcome{Ref: u.Candidate, Platform: u.Platform}
	log := o.Log.WithFields(logrus.Fields{"ref": u.Candidate, "platform": u.Platform})
	desc, err := o.Pipeline.Describe(ctx, u)
	if err != nil {
		oc.Err = err.Error()
		return oc, ctx.Err()
	}
	oc.Digest = desc.Digest
	if desc.Digest != "" {
		f, lead := fs.claim(u.Candidate, desc.Digest, u.Platform)
		if !lead {
			select {
			case <-f.done:
			case <-ctx.Done():
				return oc, ctx.Err()
			}
			first := f.oc
			oc.Verdict, oc.Record, oc.Baseline, oc.Top = first.Verdict, first.Record, first.Baseline, first.Top
			if first.Err != "" {
				oc.Err = fmt.Sprintf("the same image as %s, which could not be vetted: %s", f.ref, first.Err)
			} else {
				oc.Skipped = true
				log.WithField("same_as", f.ref).Debug("the same image as another reference of this audit; vetted once")
			}
			return oc, nil
		}
		defer func() { f.land(oc) }()
	}
	if !o.Force && desc.Digest != "" {
		rec, err := o.Pipeline.Store().Lookup(ctx, desc.Digest, u.Platform, o.Pipeline.Policy().Digest())
		if err != nil {
			return oc, err
		}
		if rec != nil {
			oc.Skipped, oc.Verdict, oc.Record, oc.Baseline = true, rec.Verdict, rec.ID, rec.BaselineRef
			log.WithField("record", rec.ID).Debug("vetted before under this policy; skipped")
			return oc, nil
		}
	}
	if u.Baseline == PreviousBaseline {
		if u.Baseline, err = previous(ctx, o.Pipeline.Store(), u.Candidate, desc); err != nil {
			oc.Err = err.Error()
			return oc, ctx.Err()
		}
	}
	oc.Baseline = u.Baseline
	res, err := o.Pipeline.VetTarget(ctx, u, log)
	if err != nil {
		if ctx.Err() != nil {
			return oc, ctx.Err()
		}
		oc.Err = err.Error()
		log.WithError(err).Warn("could not be vetted")
		return oc, nil
	}
	oc.Verdict = res.Report.Verdict
	if res.Record != nil {
		oc.Record = res.Record.ID
	}
	oc.Top = top(res.Report.Findings)
	oc.Attestation = res.Attestation
	return oc, nil
}

// top is the worst undisclosed finding.
func top(fs []pipeline.Finding) *pipeline.Finding {
	var best *pipeline.Finding
	for i := range fs {
		f := &fs[i]
		if !f.Disclosed && (best == nil || f.Severity > best.Severity) {
			best = f
		}
	}
	if best == nil {
		return nil
	}
	c := *best
	c.Evidence = nil
	return &c
}

// previous finds the baseline of the "previous" rule: the newest version
// of the same repository, older than the candidate, with a pass verdict.
func previous(ctx context.Context, st pipeline.Store, ref string, desc *source.Description) (string, error) {
	if desc.Repository == "" {
		return "", fmt.Errorf("--baseline previous needs images in a registry: %s is not one", ref)
	}
	if desc.Version == "" {
		return "", fmt.Errorf("--baseline previous: %s states no version (no %s annotation, and its tag is not a version)", ref, pipeline.AnnotationVersion)
	}
	recs, err := st.Passing(ctx, desc.Repository)
	if err != nil {
		return "", err
	}
	var best *pipeline.Record
	for i := range recs {
		r := &recs[i]
		if repositoryOf(r.CandidateRef) != desc.Repository || r.CandidateVersion == "" {
			continue
		}
		if c, err := version.Compare(r.CandidateVersion, desc.Version); err != nil || c >= 0 {
			continue
		}
		if best == nil {
			best = r
		} else if c, err := version.Compare(r.CandidateVersion, best.CandidateVersion); err == nil && c > 0 {
			best = r
		}
	}
	if best == nil {
		return "", fmt.Errorf("--baseline previous: no earlier version of %s than %s has a pass verdict in the store", desc.Repository, desc.Version)
	}
	return desc.Repository + "@" + best.CandidateDigest, nil
}

// repositoryOf is the "host/repo" of a reference, or "" for a local one.
func repositoryOf(ref string) string {
	ref = strings.TrimPrefix(ref, "registry:")
	r, err := name.ParseReference(ref)
	if err != nil {
		return ""
	}
	return r.Context().Name()
}
