package vet_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/analyze"
	"github.com/fwvet/fwvet/pipeline/cache"
	"github.com/fwvet/fwvet/pipeline/fixture"
	"github.com/fwvet/fwvet/pipeline/policy"
	"github.com/fwvet/fwvet/pipeline/source"
	"github.com/fwvet/fwvet/pipeline/unpack"
	"github.com/fwvet/fwvet/pipeline/vet"
)

type corpusCase struct {
	Name      string      `json:"name"`
	Clean     bool        `json:"clean"`
	Baseline  string      `json:"baseline"`
	Candidate string      `json:"candidate"`
	Manifest  string      `json:"manifest"`
	SBOM      []string    `json:"sbom"`
	Expect    [][2]string `json:"expect"`
}

// TestCorpus holds the analyzers to the corpus of scripts/mkcorpus: every
// planted change found with its id and path (recall must be 100%), and no
// clean update with an undisclosed finding above low. It reports precision
// and recall over the corpus.
func TestCorpus(t *testing.T) {
	var corpus struct {
		Baseline string       `json:"baseline"`
		Cases    []corpusCase `json:"cases"`
	}
	b, err := os.ReadFile(filepath.Join(fixture.Root(t), "testdata", "corpus", "cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &corpus); err != nil {
		t.Fatal(err)
	}
	log := logrus.New()
	log.SetLevel(logrus.ErrorLevel)
	var tp, fn, fp, falseOnClean int
	planted := map[string]bool{}
	for _, c := range corpus.Cases {
		t.Run(c.Name, func(t *testing.T) {
			base, cand := c.Baseline, c.Candidate
			if base == "" {
				base = corpus.Baseline
			}
			if cand == "" {
				cand = "corpus/" + c.Name + ".sqfs"
			}
			var manifests []string
			if c.Manifest != "" {
				manifests = append(manifests, filepath.Join(fixture.Root(t), "testdata", c.Manifest))
			}
			for _, s := range c.SBOM {
				manifests = append(manifests, fixture.Path(t, s))
			}
			rep := runVet(t, log, fixture.Path(t, base), fixture.Path(t, cand), manifests)
			expected := map[[2]string]bool{}
			for _, e := range c.Expect {
				expected[e] = true
				planted[e[0]] = true
			}
			found := map[[2]string]bool{}
			for _, f := range rep.Findings {
				key := [2]string{f.ID, f.Path}
				switch {
				case expected[key]:
					found[key] = true
				case c.Clean && !f.Disclosed && f.Severity > pipeline.SeverityLow:
					falseOnClean++
					t.Errorf("clean update: undisclosed %s %s finding at %s: %s", f.Severity, f.ID, f.Path, f.Message)
				case !c.Clean && f.Severity > pipeline.SeverityLow:
					fp++
					t.Logf("unexpected %s %s at %s: %s", f.Severity, f.ID, f.Path, f.Message)
				}
			}
			for e := range expected {
				if found[e] {
					tp++
				} else {
					fn++
					t.Errorf("planted %s at %s not found; findings: %s", e[0], e[1], summary(rep.Findings))
				}
			}
			switch {
			case c.Clean && rep.Verdict == pipeline.VerdictFail:
				t.Errorf("clean update failed: %q", rep.Reasons)
			case !c.Clean && rep.Verdict == pipeline.VerdictPass:
				t.Errorf("planted change passed")
			}
		})
	}
	// Every finding id of DESIGN.md has a planted change.
	for id := range pipeline.DefaultSeverity {
		if !planted[id] && id != pipeline.IDFileAdded && id != pipeline.IDFileModified && id != pipeline.IDFileRemoved && id != pipeline.IDMetadataChanged {
			t.Errorf("no planted change in the corpus for %s", id)
		}
	}
	recall := float64(tp) / float64(max(tp+fn, 1))
	precision := float64(tp) / float64(max(tp+fp+falseOnClean, 1))
	t.Logf("corpus: recall %.1f%% (%d of %d planted changes), precision %.1f%% (%d unexpected findings above low), %d false findings on clean updates",
		100*recall, tp, tp+fn, 100*precision, fp+falseOnClean, falseOnClean)
	if fn > 0 || falseOnClean > 0 {
		t.Errorf("recall %.1f%% (want 100%%), %d false findings above low on clean updates (want 0)", 100*recall, falseOnClean)
	}
}

func runVet(t *testing.T, log *logrus.Logger, base, cand string, manifests []string) *pipeline.Report {
	t.Helper()
	return runVetPolicy(t, log, base, cand, manifests, policy.Default())
}

// runVetPolicy vets cand against base under pol, with every change in the
// report.
func runVetPolicy(t *testing.T, log *logrus.Logger, base, cand string, manifests []string, pol *policy.Policy) *pipeline.Report {
	t.Helper()
	c, err := cache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	work, remove, err := c.WorkDir()
	if err != nil {
		t.Fatal(err)
	}
	defer remove()
	u, err := unpack.New(unpack.Options{Limits: pipeline.DefaultLimits(), WorkDir: work, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	res, err := vet.Run(context.Background(), vet.Options{Candidate: cand, Baseline: base, Manifest: manifests, Policy: pol,
		Fetcher: &source.Local{Cache: c}, Unpacker: u, Analyzers: analyze.Default(), WorkDir: work, Log: log, WithChanges: true})
	if err != nil {
		t.Fatal(err)
	}
	return res.Report
}

func summary(fs []pipeline.Finding) string {
	var parts []string
	for _, f := range fs {
		if f.Severity > pipeline.SeverityInfo {
			parts = append(parts, fmt.Sprintf("%s %s", f.ID, f.Path))
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, "; ")
}
