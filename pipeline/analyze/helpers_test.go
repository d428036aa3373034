package analyze

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/fwvet/fwvet/pipeline"
)

// symlinkEntry is a top-level symlink (Key == Path).
func symlinkEntry(path, target string) *pipeline.Entry {
	return &pipeline.Entry{Path: path, Key: path, Type: pipeline.TypeSymlink, Mode: 0o777, LinkTarget: target}
}

// scanned is input(changes...) with the shared pass done, as Run does it,
// and a work directory of the test's own.
func scanned(t *testing.T, changes ...*pipeline.Change) *pipeline.AnalysisInput {
	t.Helper()
	in := input(changes...)
	scans, err := ScanChanges(context.Background(), in.Changes, 2)
	if err != nil {
		t.Fatalf("ScanChanges: %v", err)
	}
	in.Scans = scans
	in.WorkDir = t.TempDir()
	return in
}

// analyzeWith runs one analyzer over in and fails the test on an error.
func analyzeWith(t *testing.T, a pipeline.Analyzer, in *pipeline.AnalysisInput) []pipeline.Finding {
	t.Helper()
	fs, err := a.Analyze(context.Background(), in)
	if err != nil {
		t.Fatalf("%s: %v", a.Name(), err)
	}
	return fs
}

// only returns the one finding of fs, which must have the given id and
// severity and be about the change ch.
func only(t *testing.T, fs []pipeline.Finding, id string, sev pipeline.Severity, ch *pipeline.Change) pipeline.Finding {
	t.Helper()
	if len(fs) != 1 {
		t.Fatalf("%d findings, want 1 %s: %s", len(fs), id, marshal(t, fs))
	}
	f := fs[0]
	if f.ID != id || f.Severity != sev {
		t.Errorf("finding = %s/%s, want %s/%s", f.ID, f.Severity, id, sev)
	}
	if f.Path != ch.Path || f.Key != ch.Key {
		t.Errorf("finding is about %q (key %q), want %q", f.Path, f.Key, ch.Path)
	}
	return f
}

// none fails the test when fs holds any finding.
func none(t *testing.T, fs []pipeline.Finding) {
	t.Helper()
	if len(fs) != 0 {
		t.Errorf("%d findings, want none: %s", len(fs), marshal(t, fs))
	}
}

// contains fails the test when s lacks any of the substrings.
func contains(t *testing.T, what, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("%s %q does not contain %q", what, s, sub)
		}
	}
}

// gccCache keeps what gccBuild built, so that tests sharing a program
// compile it once per process.
var gccCache = struct {
	sync.Mutex
	m map[string][]byte
}{m: map[string][]byte{}}

// gccBuild compiles C source with gcc and the given flags (-c for an object
// file) in a directory of the test's own, and returns the output's bytes.
func gccBuild(t *testing.T, src string, flags ...string) []byte {
	t.Helper()
	key := strings.Join(flags, "\x00") + "\x00\x00" + src
	gccCache.Lock()
	defer gccCache.Unlock()
	if b, ok := gccCache.m[key]; ok {
		return b
	}
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("gcc is not installed (make test installs it)")
	}
	dir := t.TempDir()
	c := filepath.Join(dir, "prog.c")
	if err := os.WriteFile(c, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "prog.out")
	args := append(append([]string{"-w", "-O1", "-o", out}, flags...), c)
	cmd := exec.Command(gcc, args...)
	cmd.Dir = dir
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gcc %s: %v\n%s", strings.Join(args, " "), err, msg)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	gccCache.m[key] = b
	return b
}
