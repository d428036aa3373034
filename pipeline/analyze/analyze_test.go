package analyze

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/fwvet/fwvet/pipeline"
)

// fileEntry is a top-level regular file (Key == Path) whose bytes are content.
func fileEntry(path, content string, mode uint32) *pipeline.Entry {
	sum := sha256.Sum256([]byte(content))
	e := &pipeline.Entry{Path: path, Key: path, Type: pipeline.TypeFile, Mode: mode,
		Size: int64(len(content)), SHA256: hex.EncodeToString(sum[:])}
	e.SetOpen(func(context.Context) (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader(content)), nil
	})
	return e
}

func dirEntry(path string, mode uint32) *pipeline.Entry {
	return &pipeline.Entry{Path: path, Key: path, Type: pipeline.TypeDir, Mode: mode}
}

func added(e *pipeline.Entry) *pipeline.Change {
	return &pipeline.Change{Kind: pipeline.ChangeAdded, Path: e.Path, Container: e.Container, Key: e.Key, New: e}
}

func removed(e *pipeline.Entry) *pipeline.Change {
	return &pipeline.Change{Kind: pipeline.ChangeRemoved, Path: e.Path, Container: e.Container, Key: e.Key, Old: e}
}

// changed builds the change diff would make between two entries at one key.
func changed(o, n *pipeline.Entry, fields ...string) *pipeline.Change {
	kind := pipeline.ChangeMetadata
	for _, f := range fields {
		if f == "content" || f == "type" {
			kind = pipeline.ChangeModified
		}
	}
	return &pipeline.Change{Kind: kind, Path: n.Path, Container: n.Container, Key: n.Key, Old: o, New: n, Fields: fields}
}

func input(changes ...*pipeline.Change) *pipeline.AnalysisInput {
	return &pipeline.AnalysisInput{
		Baseline:  pipeline.NewTree(nil, nil),
		Candidate: pipeline.NewTree(nil, nil),
		Changes:   changes,
	}
}

func quietLog() logrus.FieldLogger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}

type fakeAnalyzer struct {
	name     string
	findings []pipeline.Finding
	err      error
	panic    any
}

func (f fakeAnalyzer) Name() string { return f.name }

func (f fakeAnalyzer) Analyze(context.Context, *pipeline.AnalysisInput) ([]pipeline.Finding, error) {
	if f.panic != nil {
		panic(f.panic)
	}
	return f.findings, f.err
}

func TestRun(t *testing.T) {
	low := pipeline.NewFinding(pipeline.IDMetadataChanged, "/a", nil, "low")
	crit := pipeline.NewFinding(pipeline.IDAccountAdded, "/etc/passwd", nil, "crit")
	info := pipeline.NewFinding(pipeline.IDFileAdded, "/b", nil, "info")
	high := pipeline.NewFinding(pipeline.IDSetuidAdded, "/c", nil, "high")
	boom := errors.New("boom")

	tests := []struct {
		name         string
		analyzers    []pipeline.Analyzer
		wantIDs      []string // in order
		wantFailures map[string]string
	}{
		{
			name: "all succeed, sorted by severity",
			analyzers: []pipeline.Analyzer{
				fakeAnalyzer{name: "one", findings: []pipeline.Finding{low, info}},
				fakeAnalyzer{name: "two", findings: []pipeline.Finding{crit}},
				fakeAnalyzer{name: "three", findings: []pipeline.Finding{high}},
			},
			wantIDs: []string{pipeline.IDAccountAdded, pipeline.IDSetuidAdded, pipeline.IDMetadataChanged, pipeline.IDFileAdded},
		},
		{
			name: "a panic is a failure, the others still report",
			analyzers: []pipeline.Analyzer{
				fakeAnalyzer{name: "first", findings: []pipeline.Finding{info}},
				fakeAnalyzer{name: "crasher", panic: "index out of range"},
				fakeAnalyzer{name: "last", findings: []pipeline.Finding{crit}},
			},
			wantIDs:      []string{pipeline.IDAccountAdded, pipeline.IDFileAdded},
			wantFailures: map[string]string{"crasher": "panicked: index out of range"},
		},
		{
			name: "a panic with an error value",
			analyzers: []pipeline.Analyzer{
				fakeAnalyzer{name: "crasher", panic: boom},
				fakeAnalyzer{name: "ok", findings: []pipeline.Finding{high}},
			},
			wantIDs:      []string{pipeline.IDSetuidAdded},
			wantFailures: map[string]string{"crasher": "boom"},
		},
		{
			name: "an error is a failure and its findings are dropped",
			analyzers: []pipeline.Analyzer{
				fakeAnalyzer{name: "broken", findings: []pipeline.Finding{high}, err: boom},
				fakeAnalyzer{name: "ok", findings: []pipeline.Finding{low}},
			},
			wantIDs:      []string{pipeline.IDMetadataChanged},
			wantFailures: map[string]string{"broken": "boom"},
		},
		{
			name: "everything fails",
			analyzers: []pipeline.Analyzer{
				fakeAnalyzer{name: "a", panic: 42},
				fakeAnalyzer{name: "b", err: boom},
			},
			wantFailures: map[string]string{"a": "42", "b": "boom"},
		},
		{
			name: "no analyzers",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			findings, failures := Run(context.Background(), tt.analyzers, input(), quietLog())
			var ids []string
			for _, f := range findings {
				ids = append(ids, f.ID)
			}
			if strings.Join(ids, ",") != strings.Join(tt.wantIDs, ",") {
				t.Errorf("findings = %v, want %v", ids, tt.wantIDs)
			}
			if len(failures) != len(tt.wantFailures) {
				t.Fatalf("failures = %v, want %d", failures, len(tt.wantFailures))
			}
			for _, f := range failures {
				want, ok := tt.wantFailures[f.Analyzer]
				if !ok {
					t.Errorf("unexpected failure of %s: %v", f.Analyzer, f.Err)
					continue
				}
				if f.Err == nil || !strings.Contains(f.Err.Error(), want) {
					t.Errorf("failure of %s = %v, want it to mention %q", f.Analyzer, f.Err, want)
				}
			}
		})
	}
}

func TestRunKeepsErrorChain(t *testing.T) {
	boom := errors.New("boom")
	_, failures := Run(context.Background(), []pipeline.Analyzer{fakeAnalyzer{name: "x", err: boom}}, input(), quietLog())
	if len(failures) != 1 || !errors.Is(failures[0].Err, boom) {
		t.Errorf("failures = %v, want the analyzer's error", failures)
	}
}

func TestDefaultAnalyzers(t *testing.T) {
	seen := map[string]bool{}
	for _, a := range Default() {
		if a.Name() == "" || seen[a.Name()] {
			t.Errorf("analyzer name %q empty or repeated", a.Name())
		}
		seen[a.Name()] = true
	}
	for _, name := range []string{"downgrade", "accounts", "setuid", "files"} {
		if !seen[name] {
			t.Errorf("Default() lacks the %s analyzer", name)
		}
	}
}

// TestDefaultEndToEnd runs the registered analyzers over a small set of
// changes: each kind yields its finding, and nothing fails.
func TestDefaultEndToEnd(t *testing.T) {
	oldPasswd := fileEntry("/etc/passwd", "root:x:0:0:root:/root:/bin/sh\n", 0o644)
	newPasswd := fileEntry("/etc/passwd", "root:x:0:0:root:/root:/bin/sh\nsupport:x:0:0::/tmp:/bin/sh\n", 0o644)
	in := input(
		changed(oldPasswd, newPasswd, "content"),
		added(fileEntry("/usr/bin/helper", "ELF", 0o4755)),
	)
	in.BaselineVersion = &pipeline.Version{Value: "2.0", Source: "/etc/os-release"}
	in.CandidateVersion = &pipeline.Version{Value: "1.9", Source: "/etc/os-release"}
	findings, failures := Run(context.Background(), Default(), in, quietLog())
	if len(failures) != 0 {
		t.Fatalf("failures: %v", failures)
	}
	count := map[string]int{}
	for _, f := range findings {
		count[f.ID]++
	}
	want := map[string]int{pipeline.IDDowngrade: 1, pipeline.IDAccountAdded: 1, pipeline.IDSetuidAdded: 1, pipeline.IDFileModified: 1, pipeline.IDFileAdded: 1}
	for id, n := range want {
		if count[id] != n {
			t.Errorf("%d %s findings, want %d (all: %v)", count[id], id, n, count)
		}
	}
	if len(findings) != 5 {
		t.Errorf("%d findings, want 5: %v", len(findings), count)
	}
	for i := 1; i < len(findings); i++ {
		if findings[i].Severity > findings[i-1].Severity {
			t.Errorf("findings not sorted by severity: %s after %s", findings[i].Severity, findings[i-1].Severity)
		}
	}
}

// TestJobs: --jobs reaches analysis; without it, analysis uses every CPU.
func TestJobs(t *testing.T) {
	if got := jobs(&pipeline.AnalysisInput{Jobs: 1}); got != 1 {
		t.Errorf("jobs with Jobs 1 = %d", got)
	}
	if got := jobs(&pipeline.AnalysisInput{}); got != runtime.GOMAXPROCS(0) {
		t.Errorf("jobs with no Jobs = %d, want GOMAXPROCS %d", got, runtime.GOMAXPROCS(0))
	}
}
