package vet_test

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/cache"
	"github.com/fwvet/fwvet/pipeline/policy"
	"github.com/fwvet/fwvet/pipeline/source"
	"github.com/fwvet/fwvet/pipeline/unpack"
	"github.com/fwvet/fwvet/pipeline/vet"
)

// inTurn is an Unpacker that records how many unpacks ran at once.
type inTurn struct {
	next          vet.Unpacker
	running, most atomic.Int32
	calls         atomic.Int32
}

func (u *inTurn) Unpack(ctx context.Context, art *pipeline.Artifact) (*pipeline.Tree, error) {
	n := u.running.Add(1)
	defer u.running.Add(-1)
	u.calls.Add(1)
	for {
		m := u.most.Load()
		if n <= m || u.most.CompareAndSwap(m, n) {
			break
		}
	}
	// Long enough for the other side's fetch to finish and overlap, were
	// the unpacks not taken in turn.
	time.Sleep(100 * time.Millisecond)
	return u.next.Unpack(ctx, art)
}

// TestSidesUnpackedInTurn: a diff unpacks its two sides one after the
// other, so that it never holds both walks at once; both are unpacked.
func TestSidesUnpackedInTurn(t *testing.T) {
	log := logrus.New()
	log.SetLevel(logrus.ErrorLevel)
	dir := t.TempDir()
	side := func(version string) string {
		root := filepath.Join(dir, version)
		if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, "etc", "banner"), []byte("router "+version+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return root
	}
	c, err := cache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	u, err := unpack.New(unpack.Options{Limits: pipeline.DefaultLimits(), WorkDir: t.TempDir(), Log: log})
	if err != nil {
		t.Fatal(err)
	}
	counting := &inTurn{next: u}
	res, err := vet.Run(context.Background(), vet.Options{Candidate: side("1.0.1"), Baseline: side("1.0.0"),
		Policy: policy.Default(), Fetcher: &source.Local{Cache: c}, Unpacker: counting, Log: log, WithChanges: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := counting.calls.Load(); got != 2 {
		t.Errorf("%d unpacks, want 2", got)
	}
	if got := counting.most.Load(); got != 1 {
		t.Errorf("%d unpacks ran at once, want 1", got)
	}
	if s := res.Report.Summary; s.Modified != 1 {
		t.Errorf("summary %+v, want /etc/banner modified", s)
	}
}
