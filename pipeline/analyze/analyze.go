// Package analyze holds fwvet's analyzers, one file each, and runs them.
// Analyzers look at the changes with both versions' bytes at hand and emit
// findings; this file names them all.
package analyze

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
	"sort"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sync/errgroup"

	"github.com/fwvet/fwvet/pipeline"
)

// Default lists every analyzer, in the order their findings are reported.
// This is the one place a new analyzer is registered.
func Default() []pipeline.Analyzer {
	return []pipeline.Analyzer{
		Downgrade{},
		Accounts{},
		Config{},
		SSH{},
		Setuid{},
		Services{},
		ELF{},
		Calls{},
		Packed{},
		CryptoConstants{},
		Endpoints{},
		PrivateKeys{},
		CACerts{},
		KernelModules{},
		Blobs{},
		Files{},
	}
}

// Failure records an analyzer that could not finish.
type Failure struct {
	Analyzer string
	Err      error
}

// Run runs every analyzer. An analyzer that fails or panics does not stop
// the others: its failure is returned so that the caller reports it (an
// analysis that could not complete must not let the verdict pass).
func Run(ctx context.Context, analyzers []pipeline.Analyzer, in *pipeline.AnalysisInput, log logrus.FieldLogger) ([]pipeline.Finding, []Failure) {
	var findings []pipeline.Finding
	var failures []Failure
	if in.Scans == nil {
		start := time.Now()
		scans, err := ScanChanges(ctx, in.Changes, jobs(in))
		log.WithFields(logrus.Fields{"files": len(scans), "took": time.Since(start).Round(time.Millisecond)}).Debug("changed files read")
		if err != nil {
			// Analyzers still run on what was read; the failure keeps the
			// verdict from passing.
			log.WithError(err).Error("reading changed files failed")
			failures = append(failures, Failure{Analyzer: "scan", Err: err})
		}
		// The analyzers see the scans; the caller's input stays as given.
		withScans := *in
		withScans.Scans = scans
		in = &withScans
	}
	for _, a := range analyzers {
		start := time.Now()
		fs, err := runOne(ctx, a, in)
		if err != nil {
			log.WithError(err).WithField("analyzer", a.Name()).Error("analyzer failed")
			failures = append(failures, Failure{Analyzer: a.Name(), Err: err})
			continue
		}
		log.WithFields(logrus.Fields{"analyzer": a.Name(), "findings": len(fs), "took": time.Since(start).Round(time.Millisecond)}).Debug("analyzer done")
		findings = append(findings, fs...)
	}
	sort.SliceStable(findings, func(i, j int) bool { return findings[i].Severity > findings[j].Severity })
	return findings, failures
}

// modifiedELF are the modified changes whose both versions are ELF files.
func modifiedELF(in *pipeline.AnalysisInput) []*pipeline.Change {
	var out []*pipeline.Change
	for _, ch := range in.Changes {
		s := in.Scans[ch.Key]
		if ch.Kind == pipeline.ChangeModified && s != nil && s.Old != nil && s.New != nil && s.Old.Magic == "elf" && s.New.Magic == "elf" {
			out = append(out, ch)
		}
	}
	return out
}

// eachChange analyzes changes jobs(in) at a time; the findings keep the
// order of the changes, whatever order the analyses end in.
func eachChange(ctx context.Context, in *pipeline.AnalysisInput, chs []*pipeline.Change,
	analyze func(context.Context, *pipeline.Change) ([]pipeline.Finding, error)) ([]pipeline.Finding, error) {
	found := make([][]pipeline.Finding, len(chs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(jobs(in))
	for i, ch := range chs {
		g.Go(func() error {
			f, err := analyze(gctx, ch)
			found[i] = f
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	var out []pipeline.Finding
	for _, fs := range found {
		out = append(out, fs...)
	}
	return out, nil
}

// one is an analysis's finding, if any, as a list.
func one(f *pipeline.Finding, err error) ([]pipeline.Finding, error) {
	if f == nil {
		return nil, err
	}
	return []pipeline.Finding{*f}, err
}

// jobs is how many files analysis reads at once.
func jobs(in *pipeline.AnalysisInput) int {
	if in.Jobs > 0 {
		return in.Jobs
	}
	return runtime.GOMAXPROCS(0)
}

func runOne(ctx context.Context, a pipeline.Analyzer, in *pipeline.AnalysisInput) (fs []pipeline.Finding, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("analyzer %s panicked: %v\n%s", a.Name(), r, debug.Stack())
		}
	}()
	return a.Analyze(ctx, in)
}

// finding makes a finding about one change.
func finding(id string, ch *pipeline.Change, msg string, evidence map[string]any) pipeline.Finding {
	f := pipeline.NewFinding(id, ch.Path, ch.Container, msg)
	f.Key = ch.Key
	if evidence != nil {
		f.Evidence = evidence
	}
	return f
}

// mode formats Unix permission bits the way ls and chmod take them.
func mode(m uint32) string { return fmt.Sprintf("%04o", m&pipeline.ModePerm) }

// addedIn is what find sees in a change's new version and not in its old
// one, told apart by id: the keys or certificates an update brings.
func addedIn[T any](ctx context.Context, ch *pipeline.Change, s *pipeline.Scan,
	find func(context.Context, *pipeline.Entry, *pipeline.Profile) ([]T, error), id func(T) string) ([]T, error) {
	if s == nil || s.New == nil {
		return nil, nil
	}
	cur, err := find(ctx, ch.New, s.New)
	if err != nil || len(cur) == 0 {
		return nil, err
	}
	had := map[string]bool{}
	if s.Old != nil {
		old, err := find(ctx, ch.Old, s.Old)
		if err != nil {
			return nil, err
		}
		for _, x := range old {
			had[id(x)] = true
		}
	}
	var out []T
	for _, x := range cur {
		if !had[id(x)] {
			out = append(out, x)
		}
	}
	return out, nil
}
