package main_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/fixture"
)

// fwvetBin is the binary under test, built once.
var fwvetBin string

func TestMain(m *testing.M) {
	if os.Getenv("FWVET_AIM_MEMORY_CHILD") != "" {
		os.Exit(m.Run()) // TestAimMemory's child (memory_test.go) needs no fwvet binary
	}
	dir, err := os.MkdirTemp("", "fwvet-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fwvetBin = filepath.Join(dir, "fwvet")
	if out, err := exec.Command("go", "build", "-o", fwvetBin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building fwvet: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	fixture.StopPostgres()
	os.RemoveAll(dir)
	os.Exit(code)
}

// env is one isolated fwvet user: its own cache and store.
type env struct {
	t     *testing.T
	dir   string
	store string
}

func newEnv(t *testing.T) *env {
	dir := t.TempDir()
	return &env{t: t, dir: dir, store: "sqlite:" + filepath.Join(dir, "verdicts.db")}
}

type result struct {
	code           int
	stdout, stderr string
	// maxRSS is the process's peak resident memory in bytes.
	maxRSS int64
}

func (e *env) run(args ...string) result {
	e.t.Helper()
	cmd := exec.Command(fwvetBin, append([]string{"--cache-dir", filepath.Join(e.dir, "cache")}, args...)...)
	cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+filepath.Join(e.dir, "data"), "XDG_CACHE_HOME="+filepath.Join(e.dir, "xdgcache"))
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("running fwvet: %v", err)
	}
	var rss int64
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		rss = ru.Maxrss << 10 // kilobytes on Linux
	}
	return result{code: code, stdout: out.String(), stderr: errb.String(), maxRSS: rss}
}

// vetJSON runs vet with --format json and decodes the report.
func (e *env) vetJSON(candidate string, args ...string) (result, *pipeline.Report) {
	e.t.Helper()
	full := []string{"vet", candidate, "--format", "json"}
	if !slices.Contains(args, "--no-store") {
		full = append(full, "--store", e.store)
	}
	r := e.run(append(full, args...)...)
	if r.code == 1 {
		return r, nil
	}
	var rep pipeline.Report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		e.t.Fatalf("report is not JSON (%v):\n%s\nstderr: %s", err, r.stdout, r.stderr)
	}
	return r, &rep
}

func (e *env) manifest(m map[string]any) string {
	e.t.Helper()
	b, _ := json.Marshal(m)
	p := filepath.Join(e.dir, fmt.Sprintf("manifest-%d.json", len(b)))
	if err := os.WriteFile(p, b, 0o644); err != nil {
		e.t.Fatal(err)
	}
	return p
}

func findingsOf(rep *pipeline.Report, id string) []pipeline.Finding {
	var out []pipeline.Finding
	for _, f := range rep.Findings {
		if f.ID == id {
			out = append(out, f)
		}
	}
	return out
}

func hasFinding(rep *pipeline.Report, id, path string, disclosed bool) bool {
	for _, f := range findingsOf(rep, id) {
		if f.Path == path && f.Disclosed == disclosed {
			return true
		}
	}
	return false
}

// The release's own changes, as testdata/manifests/rt3200-1.0.1.json lists them.
var release = map[string]any{
	"vendor": "Acme Networks", "product": "RT-3200", "previous_version": "1.0.0", "version": "1.0.1",
	"changed": []string{"/etc/os-release", "/etc/banner"},
	"added":   []string{"/usr/share/doc/acme"},
	"removed": []string{"/www/help.html"},
}

func with(m map[string]any, key string, extra ...string) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	var list []string
	if l, ok := out[key].([]string); ok {
		list = append(list, l...)
	}
	out[key] = append(list, extra...)
	return out
}

func TestVetVerdicts(t *testing.T) {
	base := fixture.Path(t, "fw/rootfs-1.0.0.sqfs")
	clean := fixture.Path(t, "fw/rootfs-1.0.1.sqfs")
	account := fixture.Path(t, "fw/rootfs-1.0.1-account.sqfs")
	setuid := fixture.Path(t, "fw/rootfs-1.0.1-setuid.sqfs")
	older := fixture.Path(t, "fw/rootfs-0.9.0.sqfs")
	releaseFile := filepath.Join(fixture.Root(t), "testdata", "manifests", "rt3200-1.0.1.json")

	e := newEnv(t)
	rollback := e.manifest(map[string]any{"version": "0.9.0", "previous_version": "1.0.0", "changed": []string{"/etc/os-release"}})
	cases := []struct {
		name      string
		candidate string
		manifest  string
		code      int
		verdict   pipeline.Verdict
		// findings that must be present: id, path, disclosed
		must []struct {
			id, path  string
			disclosed bool
		}
	}{
		{name: "clean update passes", candidate: clean, manifest: releaseFile, code: 0, verdict: pipeline.VerdictPass,
			must: []struct {
				id, path  string
				disclosed bool
			}{{pipeline.IDFileModified, "/etc/os-release", true}, {pipeline.IDFileRemoved, "/www/help.html", true}}},
		{name: "new uid-0 account fails", candidate: account, manifest: releaseFile, code: 2, verdict: pipeline.VerdictFail,
			must: []struct {
				id, path  string
				disclosed bool
			}{{pipeline.IDAccountAdded, "/etc/passwd", false}}},
		{name: "new setuid file fails", candidate: setuid, manifest: releaseFile, code: 2, verdict: pipeline.VerdictFail,
			must: []struct {
				id, path  string
				disclosed bool
			}{{pipeline.IDSetuidAdded, "/usr/libexec/netdiag", false}}},
		{name: "downgrade fails", candidate: older, code: 2, verdict: pipeline.VerdictFail,
			must: []struct {
				id, path  string
				disclosed bool
			}{{pipeline.IDDowngrade, "/etc/os-release", false}}},
		{name: "declared account passes", candidate: account, manifest: e.manifest(with(release, "changed", "/etc/passwd")), code: 0, verdict: pipeline.VerdictPass,
			must: []struct {
				id, path  string
				disclosed bool
			}{{pipeline.IDAccountAdded, "/etc/passwd", true}}},
		{name: "declared setuid file passes", candidate: setuid, manifest: e.manifest(with(release, "added", "/usr/libexec")), code: 0, verdict: pipeline.VerdictPass,
			must: []struct {
				id, path  string
				disclosed bool
			}{{pipeline.IDSetuidAdded, "/usr/libexec/netdiag", true}}},
		{name: "account declared but not the banner asks for review", candidate: account,
			manifest: e.manifest(map[string]any{"version": "1.0.1", "changed": []string{"/etc/os-release", "/etc/passwd"}, "added": []string{"/usr/share/doc/acme"}, "removed": []string{"/www/help.html"}}),
			code:     3, verdict: pipeline.VerdictReview,
			must: []struct {
				id, path  string
				disclosed bool
			}{{pipeline.IDAccountAdded, "/etc/passwd", true}, {pipeline.IDFileModified, "/etc/banner", false}}},
		{name: "declared rollback passes", candidate: older, manifest: rollback, code: 0, verdict: pipeline.VerdictPass,
			must: []struct {
				id, path  string
				disclosed bool
			}{{pipeline.IDDowngrade, "/etc/os-release", true}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"--baseline", base}
			if tc.manifest != "" {
				args = append(args, "--manifest", tc.manifest)
			}
			r, rep := e.vetJSON(tc.candidate, args...)
			if r.code != tc.code {
				t.Fatalf("exit %d, want %d\nstderr: %s\nstdout: %s", r.code, tc.code, r.stderr, r.stdout)
			}
			if rep.Verdict != tc.verdict {
				t.Errorf("verdict %s, want %s (reasons %q)", rep.Verdict, tc.verdict, rep.Reasons)
			}
			for _, m := range tc.must {
				if !hasFinding(rep, m.id, m.path, m.disclosed) {
					t.Errorf("no %s finding at %s with disclosed=%v in %+v", m.id, m.path, m.disclosed, rep.Findings)
				}
			}
			if rep.Schema != pipeline.ReportSchema || rep.Baseline == nil || !strings.HasPrefix(rep.Candidate.Digest, "sha256:") {
				t.Errorf("report header: schema %q baseline %v candidate %+v", rep.Schema, rep.Baseline, rep.Candidate)
			}
		})
	}

	// Every vet above was recorded, and the chain verifies.
	r := e.run("verdicts", "verify", "--store", e.store)
	if r.code != 0 || !strings.Contains(r.stdout, fmt.Sprintf("ok: %d verdicts", len(cases))) {
		t.Errorf("verdicts verify: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

func TestAccountFindingEvidence(t *testing.T) {
	e := newEnv(t)
	r, rep := e.vetJSON(fixture.Path(t, "fw/rootfs-1.0.1-backdoor.sqfs"), "--baseline", fixture.Path(t, "fw/rootfs-1.0.0.sqfs"), "--no-store")
	if r.code != 2 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	fs := findingsOf(rep, pipeline.IDAccountAdded)
	if len(fs) != 2 {
		t.Fatalf("account-added findings: %+v", fs)
	}
	for _, f := range fs {
		if f.Evidence["user"] != "sysdiag" || f.Severity != pipeline.SeverityCritical {
			t.Errorf("finding %+v: want user sysdiag, critical", f)
		}
		if fmt.Sprint(f.Container) != "[rootfs-1.0.1-backdoor.sqfs squashfs]" {
			t.Errorf("container %q", f.Container)
		}
	}
	// The raw JSON: severities by name, container and evidence present.
	raw := map[string]any{}
	json.Unmarshal([]byte(r.stdout), &raw)
	f0 := raw["findings"].([]any)[0].(map[string]any)
	for _, k := range []string{"id", "severity", "path", "container", "message", "disclosed", "evidence"} {
		if _, ok := f0[k]; !ok {
			t.Errorf("finding lacks %q: %v", k, f0)
		}
	}
	if f0["severity"] != "critical" {
		t.Errorf("first finding severity %v, want critical first", f0["severity"])
	}
}

func TestManifestBinding(t *testing.T) {
	e := newEnv(t)
	base := fixture.Path(t, "fw/rootfs-1.0.0.sqfs")
	clean := fixture.Path(t, "fw/rootfs-1.0.1.sqfs")
	_, rep := e.vetJSON(clean, "--baseline", base, "--no-store")
	digest := rep.Candidate.Digest

	right := with(release, "changed")
	right["image_sha256"] = strings.TrimPrefix(digest, "sha256:")
	r, rep := e.vetJSON(clean, "--baseline", base, "--no-store", "--manifest", e.manifest(right))
	if r.code != 0 || rep.Checks[len(rep.Checks)-1].Status != pipeline.CheckPass {
		t.Errorf("manifest bound to this image: exit %d, checks %+v", r.code, rep.Checks)
	}

	wrong := with(release, "changed")
	wrong["image_sha256"] = strings.Repeat("ab", 32)
	r, rep = e.vetJSON(clean, "--baseline", base, "--no-store", "--manifest", e.manifest(wrong))
	if r.code != 2 {
		t.Fatalf("manifest for another image: exit %d, want 2", r.code)
	}
	for _, f := range rep.Findings {
		if f.Disclosed {
			t.Errorf("a manifest for another image disclosed %s %s", f.ID, f.Path)
		}
	}
}

func TestErrorsNameTheInput(t *testing.T) {
	e := newEnv(t)
	base := fixture.Path(t, "fw/rootfs-1.0.0.sqfs")
	badManifest := filepath.Join(e.dir, "bad.json")
	os.WriteFile(badManifest, []byte(`{"changed": ["etc/passwd"]}`), 0o644)
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"missing candidate", []string{"vet", filepath.Join(e.dir, "missing.sqfs"), "--baseline", base}, []string{"candidate", "missing.sqfs", "no such file"}},
		{"missing baseline", []string{"vet", base, "--baseline", filepath.Join(e.dir, "gone.sqfs")}, []string{"baseline", "gone.sqfs", "no such file"}},
		{"unknown format", []string{"vet", fixture.Path(t, "hostile/unknown.bin"), "--baseline", base}, []string{"candidate", "unknown.bin", "unknown format"}},
		{"truncated squashfs", []string{"vet", fixture.Path(t, "hostile/truncated.sqfs"), "--baseline", base}, []string{"truncated.sqfs", "corrupt squashfs", "truncated"}},
		{"corrupt squashfs table", []string{"vet", fixture.Path(t, "hostile/badtable.sqfs"), "--baseline", base}, []string{"badtable.sqfs", "corrupt squashfs"}},
		{"corrupt squashfs data", []string{"vet", fixture.Path(t, "hostile/baddata.sqfs"), "--baseline", base}, []string{"baddata.sqfs", "corrupt squashfs"}},
		{"bad manifest", []string{"vet", base, "--baseline", base, "--manifest", badManifest}, []string{"manifest", "bad.json", "not absolute"}},
		{"bad limit", []string{"vet", base, "--limit", "max-nothing=3"}, []string{"unknown limit"}},
		{"bad format", []string{"vet", base, "--format", "xml"}, []string{"unknown format \"xml\""}},
		{"usage", []string{"vet"}, []string{"accepts 1 arg"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.run(append(tc.args, "--no-store")...)
			if r.code != 1 {
				t.Fatalf("exit %d, want 1\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr %q lacks %q", r.stderr, w)
				}
			}
			if r.stdout != "" {
				t.Errorf("an error printed a report: %q", r.stdout)
			}
		})
	}
}

func TestHostileCandidates(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		file  string
		limit string
		check pipeline.CheckStatus
	}{
		{"hostile/bomb.tar.gz", "max-ratio", pipeline.CheckError},
		// What lies past the depth limit is not read: the check cannot pass.
		{"hostile/nest50.tar.gz", "max-depth", pipeline.CheckError},
		{"hostile/dotdot.tar", "", pipeline.CheckPass},
		{"hostile/symlink-write.tar", "", pipeline.CheckPass},
		{"hostile/traversal.zip", "", pipeline.CheckPass},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			r, rep := e.vetJSON(fixture.Path(t, tc.file), "--no-store")
			if r.code != 2 || rep.Verdict != pipeline.VerdictFail {
				t.Fatalf("exit %d verdict %v, want 2 fail\n%s", r.code, rep, r.stderr)
			}
			unsafe := findingsOf(rep, pipeline.IDUnsafeEntry)
			if len(unsafe) == 0 {
				t.Fatal("no unsafe-entry finding")
			}
			if tc.limit != "" && unsafe[0].Evidence["limit"] != tc.limit {
				t.Errorf("unsafe-entry evidence %v, want limit %s", unsafe[0].Evidence, tc.limit)
			}
			if rep.Checks[0].Name != "unpack" || rep.Checks[0].Status != tc.check {
				t.Errorf("unpack check %+v, want %s", rep.Checks[0], tc.check)
			}
			// Gigabytes of zeros or fifty levels of nesting must not cost memory.
			if r.maxRSS == 0 || r.maxRSS > 256<<20 {
				t.Errorf("peak memory %d MiB, want under 256 MiB", r.maxRSS>>20)
			}
		})
	}
}

func TestUnpackCommand(t *testing.T) {
	e := newEnv(t)
	out := filepath.Join(e.dir, "out")
	r := e.run("unpack", fixture.Path(t, "fw/rootfs-1.0.0.sqfs"), out)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	fi, err := os.Stat(filepath.Join(out, "usr", "bin", "passwd"))
	if err != nil || fi.Mode()&os.ModeSetuid != 0 {
		t.Errorf("usr/bin/passwd: %v %v (setuid must be stripped)", fi, err)
	}
	if !strings.Contains(r.stdout, "/usr/bin/passwd (mode 4755)") || !strings.Contains(r.stdout, "/dev/console") {
		t.Errorf("summary does not list stripped bits and nodes:\n%s", r.stdout)
	}

	// A zip that climbs out: refused, reported, nothing outside the target.
	out2 := filepath.Join(e.dir, "zip")
	r = e.run("unpack", fixture.Path(t, "hostile/traversal.zip"), out2)
	if r.code != 2 || !strings.Contains(r.stdout, "climbs out") {
		t.Errorf("traversal.zip: exit %d\n%s", r.code, r.stdout)
	}
	if _, err := os.Stat("/tmp/fwvet-zip-escape"); err == nil {
		t.Error("/tmp/fwvet-zip-escape was written")
	}
	var outside []string
	filepath.Walk(e.dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() && !strings.HasPrefix(p, out) && !strings.HasPrefix(p, out2) && !strings.HasPrefix(p, filepath.Join(e.dir, "cache")) {
			outside = append(outside, p)
		}
		return nil
	})
	if len(outside) > 0 {
		t.Errorf("files written outside the targets: %v", outside)
	}
	if ents, _ := os.ReadDir(filepath.Join(e.dir, "cache", "work")); len(ents) != 0 {
		t.Errorf("work directories left behind: %v", ents)
	}
}

func TestDiffCommand(t *testing.T) {
	e := newEnv(t)
	report := filepath.Join(e.dir, "diff.json")
	r := e.run("diff", fixture.Path(t, "fw/rootfs-1.0.0.sqfs"), fixture.Path(t, "fw/rootfs-1.0.1.sqfs"), "--format", "json", "-o", report)
	if r.code != 3 {
		t.Fatalf("undisclosed changes without a manifest: exit %d, want 3 (review)\n%s", r.code, r.stderr)
	}
	if r.stdout != "" {
		t.Errorf("-o still printed to stdout: %q", r.stdout)
	}
	var rep struct {
		Changes []pipeline.Change `json:"changes"`
		Summary pipeline.Summary  `json:"summary"`
	}
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Changes) != 5 || rep.Summary.Added != 2 || rep.Summary.Removed != 1 || rep.Summary.Modified != 2 {
		t.Errorf("changes %+v summary %+v", rep.Changes, rep.Summary)
	}
	// A diff records nothing.
	if _, err := os.Stat(filepath.Join(e.dir, "data", "fwvet", "verdicts.db")); err == nil {
		t.Error("diff wrote a verdict store")
	}
}

// TestDiffExplain: --explain puts the function-level diff of one binary
// in the report and prints it; a path that is no modified binary is an
// error naming it, with nothing on stdout.
func TestDiffExplain(t *testing.T) {
	e := newEnv(t)
	tree := func(name, httpd string) string {
		dir := filepath.Join(e.dir, name)
		if err := os.MkdirAll(filepath.Join(dir, "usr", "sbin"), 0o755); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(fixture.Path(t, "fw/calls/"+httpd))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "usr", "sbin", "httpd"), b, 0o755); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	base, plant := tree("base", "arm64-base"), tree("plant", "arm64-plant")
	r := e.run("diff", base, plant, "--explain", "/usr/sbin/httpd", "--format", "json")
	if r.code != 2 {
		t.Fatalf("exit %d, want 2 (the plant's elf-call-added)\n%s", r.code, r.stderr)
	}
	var rep pipeline.Report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatal(err)
	}
	x := rep.Explain
	if x == nil || x.Path != "/usr/sbin/httpd" || x.Architecture != "aarch64" || x.SameCode || len(x.Changed) == 0 {
		t.Fatalf("explain = %+v", x)
	}
	if !slices.ContainsFunc(x.Changed, func(f pipeline.FunctionChange) bool { return slices.Contains(f.CallsAdded, "system") }) {
		t.Errorf("no changed function newly calls system: %+v", x.Changed)
	}
	r = e.run("diff", base, plant, "--explain", "/usr/sbin/httpd")
	if !strings.Contains(r.stdout, "Functions of") || !strings.Contains(r.stdout, "newly calls") {
		t.Errorf("text report lacks the function diff:\n%s", r.stdout)
	}
	r = e.run("diff", base, plant, "--explain", "/usr/sbin/telnetd", "--format", "json")
	if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, "/usr/sbin/telnetd") {
		t.Errorf("explaining a path that is not there: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

func TestStoreDetectsAnEditedRow(t *testing.T) {
	e := newEnv(t)
	base := fixture.Path(t, "fw/rootfs-1.0.0.sqfs")
	for _, c := range []string{"fw/rootfs-1.0.1.sqfs", "fw/rootfs-1.0.1-account.sqfs", "fw/rootfs-1.0.1-setuid.sqfs"} {
		e.run("vet", fixture.Path(t, c), "--baseline", base, "--store", e.store)
	}
	if r := e.run("verdicts", "list", "--store", e.store, "--format", "json"); r.code != 0 || strings.Count(r.stdout, `"id"`) != 3 {
		t.Fatalf("verdicts list: exit %d\n%s", r.code, r.stdout)
	}
	if r := e.run("verdicts", "show", "2", "--store", e.store, "--format", "json"); r.code != 0 || !strings.Contains(r.stdout, `"account-added"`) {
		t.Fatalf("verdicts show 2: exit %d\n%s", r.code, r.stdout)
	}
	// Someone turns the fail into a pass behind fwvet's back.
	db, err := sql.Open("sqlite", strings.TrimPrefix(e.store, "sqlite:"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(context.Background(), `UPDATE verdicts SET verdict = 'pass' WHERE id = 2`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	r := e.run("verdicts", "verify", "--store", e.store)
	if r.code != 2 || !strings.Contains(r.stdout, "BROKEN at verdict 2") {
		t.Errorf("verify after an edit: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

func TestLogsAndVersion(t *testing.T) {
	e := newEnv(t)
	r := e.run("version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "fwvet 0.1.0") {
		t.Errorf("version: %d %q", r.code, r.stdout)
	}
	r = e.run("--log-level", "info", "--log-format", "json", "vet", fixture.Path(t, "fw/rootfs-1.0.1.sqfs"),
		"--baseline", fixture.Path(t, "fw/rootfs-1.0.0.sqfs"), "--no-store", "--format", "json")
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	if len(lines) < 2 {
		t.Fatalf("expected info logs on stderr, got %q", r.stderr)
	}
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil || m["level"] == nil || m["msg"] == nil {
			t.Errorf("log line is not a JSON log entry: %q", l)
		}
	}
	if !json.Valid([]byte(r.stdout)) {
		t.Error("logs leaked into the report on stdout")
	}
}

func TestSARIFOutput(t *testing.T) {
	e := newEnv(t)
	r := e.run("vet", fixture.Path(t, "fw/rootfs-1.0.1-backdoor.sqfs"), "--baseline", fixture.Path(t, "fw/rootfs-1.0.0.sqfs"),
		"--no-store", "--format", "sarif")
	if r.code != 2 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var log struct {
		Version string `json:"version"`
		Runs    []struct {
			Tool struct {
				Driver struct {
					Rules []struct {
						ID string `json:"id"`
					} `json:"rules"`
				} `json:"driver"`
			} `json:"tool"`
			Results []struct {
				RuleID    string `json:"ruleId"`
				Level     string `json:"level"`
				Locations []struct {
					PhysicalLocation struct {
						ArtifactLocation struct {
							URI string `json:"uri"`
						} `json:"artifactLocation"`
					} `json:"physicalLocation"`
				} `json:"locations"`
			} `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &log); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	if log.Version != "2.1.0" || len(log.Runs) != 1 || len(log.Runs[0].Tool.Driver.Rules) != len(pipeline.DefaultSeverity) {
		t.Fatalf("SARIF header: version %q, %d runs", log.Version, len(log.Runs))
	}
	found := false
	for _, res := range log.Runs[0].Results {
		if res.RuleID == pipeline.IDAccountAdded && res.Level == "error" && len(res.Locations) == 1 &&
			res.Locations[0].PhysicalLocation.ArtifactLocation.URI == "etc/passwd" {
			found = true
		}
	}
	if !found {
		t.Errorf("no account-added error result at etc/passwd:\n%s", r.stdout[:min(len(r.stdout), 2000)])
	}
}

// TestRawFlashUpdate: a vendor's raw flash dump vetted against the previous
// one. The root file system carved out of each is diffed file by file, and
// the 8 KiB of random bytes added in the erased gap before it is an opaque
// blob finding that gives its offset; fwvet unpack lists the regions.
func TestRawFlashUpdate(t *testing.T) {
	e := newEnv(t)
	r, rep := e.vetJSON(fixture.Path(t, "fw/flash-1.0.1-blob.bin"), "--baseline", fixture.Path(t, "fw/flash-1.0.0.bin"), "--no-store")
	if r.code != 3 {
		t.Fatalf("exit %d, want 3 (review): %s", r.code, r.stderr)
	}
	blobs := findingsOf(rep, pipeline.IDHighEntropyBlobAdded)
	if len(blobs) != 1 || blobs[0].Path != "/blob-2" || fmt.Sprint(blobs[0].Evidence["offset"]) != "466944" {
		t.Fatalf("high-entropy-blob-added findings: %+v, want one for /blob-2 at offset 0x72000", blobs)
	}
	banner := false
	for _, f := range findingsOf(rep, pipeline.IDFileModified) {
		if f.Path == "/etc/banner" && fmt.Sprint(f.Container) == "[flash-1.0.1-blob.bin raw /squashfs-1 squashfs]" {
			banner = true
		}
	}
	if !banner {
		t.Error("no file-modified finding for /etc/banner inside the carved squashfs")
	}

	r = e.run("unpack", fixture.Path(t, "fw/flash-1.0.1-blob.bin"), filepath.Join(e.dir, "out"))
	if r.code != 0 {
		t.Fatalf("unpack: exit %d: %s", r.code, r.stderr)
	}
	for _, line := range []string{"0x00000200", "/uimage-1  uimage", "0x00072000       8192  flash-1.0.1-blob.bin › raw › /blob-2  blob, entropy 7.9"} {
		if !strings.Contains(r.stdout, line) {
			t.Errorf("unpack output lacks %q:\n%s", line, r.stdout)
		}
	}
	if _, err := os.Stat(filepath.Join(e.dir, "out", "squashfs-1.d", "etc", "banner")); err != nil {
		t.Errorf("the carved squashfs was not extracted: %v", err)
	}
}
