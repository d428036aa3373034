package main_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/fixture"
)

const passwd = "root:x:0:0:root:/root:/bin/sh\n"

func TestVetRegistryImages(t *testing.T) {
	reg := fixture.StartRegistry(t)
	crane := fixture.Tool(t, "crane")
	fixture.Run(t, crane, "append", "--insecure", "-f", fixture.Tar(t, map[string]string{"etc/passwd": passwd, "etc/os-release": "VERSION_ID=1.0.0\n"}), "-t", reg.Host+"/acme/rt:1.0.0")
	fixture.Run(t, crane, "append", "--insecure", "-f", fixture.Tar(t, map[string]string{"etc/passwd": passwd + "toor:x:0:0::/root:/bin/sh\n", "etc/os-release": "VERSION_ID=1.0.1\n"}), "-t", reg.Host+"/acme/rt:1.0.1")
	digest := strings.TrimSpace(fixture.Run(t, crane, "digest", "--insecure", reg.Host+"/acme/rt:1.0.1"))
	e := newEnv(t)
	r, rep := e.vetJSON(reg.Host+"/acme/rt:1.0.1", "--baseline", reg.Host+"/acme/rt:1.0.0", "--insecure-registry", reg.Host, "--no-store")
	if r.code != 2 || !hasFinding(rep, pipeline.IDAccountAdded, "/etc/passwd", false) {
		t.Fatalf("exit %d, findings %+v\n%s", r.code, rep, r.stderr)
	}
	if rep.Candidate.Digest != digest || rep.Candidate.Version != "1.0.1" {
		t.Errorf("candidate %+v, want digest %s", rep.Candidate, digest)
	}

	// Unreachable: exit 1, the registry named.
	host := "127.0.0.1:" + strconv.Itoa(fixture.FreePort(t))
	r = e.run("vet", host+"/acme/rt:1", "--insecure-registry", host, "--no-store")
	if r.code != 1 || !strings.Contains(r.stderr, "registry "+host) {
		t.Errorf("unreachable registry: exit %d, %q", r.code, r.stderr)
	}

	// A blob corrupted on the server: exit 1, never a verdict.
	out := fixture.Run(t, crane, "manifest", "--insecure", reg.Host+"/acme/rt:1.0.0")
	var mf struct {
		Layers []struct {
			Digest string `json:"digest"`
		} `json:"layers"`
	}
	json.Unmarshal([]byte(out), &mf)
	p := reg.BlobPath(mf.Layers[0].Digest)
	b, _ := os.ReadFile(p)
	b[len(b)-10] ^= 0xff
	os.WriteFile(p, b, 0o644)
	fresh := newEnv(t)
	r = fresh.run("vet", reg.Host+"/acme/rt:1.0.0", "--insecure-registry", reg.Host, "--no-store")
	if r.code != 1 || !strings.Contains(r.stderr, mf.Layers[0].Digest) {
		t.Errorf("corrupt blob: exit %d, %q", r.code, r.stderr)
	}
}

func TestVetEveryPlatform(t *testing.T) {
	reg := fixture.StartRegistry(t)
	crane := fixture.Tool(t, "crane")
	var refs []string
	for _, arch := range []string{"amd64", "arm64"} {
		ref := reg.Host + "/acme/img:" + arch
		fixture.Run(t, crane, "append", "--insecure", "-f", fixture.Tar(t, map[string]string{"etc/passwd": passwd, "etc/arch": arch}), "-t", ref)
		fixture.Run(t, crane, "mutate", "--insecure", ref, "--set-platform", "linux/"+arch, "-t", ref)
		refs = append(refs, "-m", ref)
	}
	fixture.Run(t, crane, append([]string{"index", "append", "--insecure", "-t", reg.Host + "/acme/img:multi"}, refs...)...)
	e := newEnv(t)
	r := e.run("vet", reg.Host+"/acme/img:multi", "--insecure-registry", reg.Host, "--no-store", "--format", "json")
	var reps []pipeline.Report
	if err := json.Unmarshal([]byte(r.stdout), &reps); err != nil {
		t.Fatalf("exit %d: not a JSON array of reports (%v)\n%s\n%s", r.code, err, r.stdout, r.stderr)
	}
	if len(reps) != 2 || reps[0].Candidate.Platform != "linux/amd64" || reps[1].Candidate.Platform != "linux/arm64" {
		t.Errorf("reports for %d platforms: %+v", len(reps), reps)
	}
	if r.code != 3 {
		t.Errorf("exit %d, want 3 (review: no baseline)", r.code)
	}
	r, rep := e.vetJSON(reg.Host+"/acme/img:multi", "--insecure-registry", reg.Host, "--no-store", "--platform", "linux/arm64")
	if r.code != 3 || rep.Candidate.Platform != "linux/arm64" {
		t.Errorf("--platform linux/arm64: exit %d, %+v", r.code, rep.Candidate)
	}
}

func storeCount(t *testing.T, dsn string) int {
	t.Helper()
	db, err := sql.Open("sqlite", strings.TrimPrefix(dsn, "sqlite:")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(context.Background(), `SELECT count(*) FROM verdicts`).Scan(&n); err != nil {
		return 0
	}
	return n
}

// TestAuditKilledAndResumed: an audit of 100 images with --jobs 4, killed
// part way, finishes the rest when run again and ends with exactly 100
// verdicts.
func TestAuditKilledAndResumed(t *testing.T) {
	reg := fixture.StartRegistry(t)
	crane := fixture.Tool(t, "crane")
	var refs []string
	for i := 0; i < 100; i++ {
		ref := fmt.Sprintf("%s/acme/fleet:1.0.%d", reg.Host, i)
		files := map[string]string{"etc/passwd": passwd, "etc/os-release": fmt.Sprintf("VERSION_ID=1.0.%d\n", i), "etc/serial": strconv.Itoa(i)}
		if i%10 == 7 {
			files["etc/passwd"] = passwd + "svc:x:0:0::/:/bin/sh\n"
		}
		fixture.Run(t, crane, "append", "--insecure", "-f", fixture.Tar(t, files), "-t", ref)
		refs = append(refs, ref)
	}
	e := newEnv(t)
	list := filepath.Join(e.dir, "refs.txt")
	os.WriteFile(list, []byte("# the fleet\n"+strings.Join(refs, "\n")+"\n"), 0o644)
	base := fixture.Tar(t, map[string]string{"etc/passwd": passwd, "etc/os-release": "VERSION_ID=1.0.0\n"})
	args := []string{"--cache-dir", filepath.Join(e.dir, "cache"), "audit", "--from", list, "--jobs", "4", "--baseline", base,
		"--insecure-registry", reg.Host, "--store", e.store}

	cmd := exec.Command(fwvetBin, args...)
	cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+filepath.Join(e.dir, "data"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for storeCount(t, e.store) < 20 {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("the audit stored fewer than 20 verdicts in two minutes")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	killedAt := storeCount(t, e.store)
	if killedAt >= 100 {
		t.Fatalf("the audit finished (%d verdicts) before it could be killed", killedAt)
	}

	r := e.run(args[2:]...)
	if r.code != 2 {
		t.Errorf("resumed audit: exit %d, want 2 (ten images add a uid-0 account)\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if n := storeCount(t, e.store); n != 100 {
		t.Errorf("%d verdicts in the store after the resumed audit, want exactly 100 (killed at %d)", n, killedAt)
	}
	if !strings.Contains(r.stdout, fmt.Sprintf("(%d vetted before, skipped)", killedAt)) {
		t.Errorf("the resumed audit did not skip the %d verdicts already stored:\n%s", killedAt, r.stdout)
	}
	// Every image differs from the baseline in undeclared files (review);
	// ten add a uid-0 account (fail).
	if !strings.Contains(r.stdout, "0 pass, 90 review, 10 fail, 0 errors") {
		t.Errorf("summary:\n%s", r.stdout)
	}
	// Without a terminal, progress comes as plain lines on stderr.
	if !strings.Contains(r.stderr, "audit: 100 candidates") || !strings.Contains(r.stderr, "audit: 100/100 done") {
		t.Errorf("progress lines missing from stderr:\n%s", r.stderr)
	}
	if v := e.run("verdicts", "verify", "--store", e.store); v.code != 0 {
		t.Errorf("chain after a killed audit: %s", v.stdout)
	}
}

// TestAuditOneDigestOnce: tags of one image audited at the same moment are
// vetted once; the other tags report that verdict as already vetted.
func TestAuditOneDigestOnce(t *testing.T) {
	reg := fixture.StartRegistry(t)
	crane := fixture.Tool(t, "crane")
	img := reg.Host + "/acme/rt:1.0.1"
	fixture.Run(t, crane, "append", "--insecure", "-f", fixture.Tar(t, map[string]string{"etc/passwd": passwd, "etc/os-release": "VERSION_ID=1.0.1\n"}), "-t", img)
	refs := []string{img}
	for _, tag := range []string{"latest", "stable", "1.0", "1", "prod", "canary", "lts"} {
		fixture.Run(t, crane, "tag", "--insecure", img, tag)
		refs = append(refs, reg.Host+"/acme/rt:"+tag)
	}
	e := newEnv(t)
	base := fixture.Tar(t, map[string]string{"etc/passwd": passwd, "etc/os-release": "VERSION_ID=1.0.0\n"})
	args := append([]string{"audit", "--jobs", strconv.Itoa(len(refs)), "--baseline", base, "--insecure-registry", reg.Host, "--store", e.store}, refs...)
	r := e.run(args...)
	if r.code != 3 {
		t.Errorf("exit %d, want 3 (review: an undeclared change)\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if n := storeCount(t, e.store); n != 1 {
		t.Errorf("%d verdicts stored for %d tags of one digest, want 1", n, len(refs))
	}
	if want := fmt.Sprintf("(%d vetted before, skipped)", len(refs)-1); !strings.Contains(r.stdout, want) {
		t.Errorf("summary lacks %q:\n%s", want, r.stdout)
	}
}
