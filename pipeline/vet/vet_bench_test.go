package vet_test

import (
	"context"
	"os"
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

// BenchmarkVet runs the whole pipeline on an image pair: the demo pair, or
// the pair FWVET_BENCH_BASELINE and FWVET_BENCH_CANDIDATE name (the large
// images of scripts/bench).
func BenchmarkVet(b *testing.B) {
	base, cand := os.Getenv("FWVET_BENCH_BASELINE"), os.Getenv("FWVET_BENCH_CANDIDATE")
	if base == "" || cand == "" {
		base, cand = fixture.Path(b, "fw/rootfs-1.0.0.sqfs"), fixture.Path(b, "fw/rootfs-1.0.1-backdoor.sqfs")
	}
	log := logrus.New()
	log.SetLevel(logrus.ErrorLevel)
	for b.Loop() {
		c, err := cache.Open(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		work, remove, err := c.WorkDir()
		if err != nil {
			b.Fatal(err)
		}
		u, err := unpack.New(unpack.Options{Limits: pipeline.DefaultLimits(), WorkDir: work, Log: log})
		if err != nil {
			b.Fatal(err)
		}
		res, err := vet.Run(context.Background(), vet.Options{Candidate: cand, Baseline: base, Policy: policy.Default(),
			Fetcher: &source.Local{Cache: c}, Unpacker: u, Analyzers: analyze.Default(), WorkDir: work, Log: log})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(len(res.Report.Findings)), "findings")
		remove()
	}
}
