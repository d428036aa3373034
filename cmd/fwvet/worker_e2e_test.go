package main_test

import (
	"bytes"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fwvet/fwvet/pipeline/fixture"
)

// TestSharedQueue: a gate and three fwvet worker processes share one
// PostgreSQL store and queue; 60 submissions are each vetted and recorded
// exactly once, though one worker is killed with SIGKILL part way, and
// the chain verifies.
func TestSharedQueue(t *testing.T) {
	e := newEnv(t)
	e.store = fixture.PostgresDSN(t)
	submit, read := e.token("submit"), e.token("read")
	common := []string{"--allow-local", "--workers", "2", "--job-timeout", "5s", "--jobs", "1"}
	srv := startServe(t, e, nil, common...)
	workers := make([]*exec.Cmd, 3)
	logs := make([]*bytes.Buffer, 3)
	for i := range workers {
		cmd := exec.Command(fwvetBin, append([]string{"--cache-dir", filepath.Join(e.dir, fmt.Sprintf("cache-%d", i)), "--log-level", "info",
			"worker", "--store", e.store}, common...)...)
		logs[i] = &bytes.Buffer{}
		cmd.Stderr = logs[i]
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		workers[i] = cmd
		t.Cleanup(func() {
			if cmd.ProcessState == nil {
				cmd.Process.Signal(syscall.SIGTERM)
				cmd.Wait()
			}
		})
	}
	base := servedFirmware(t, filepath.Join(e.dir, "base"), "root:x:0:0:root:/root:/bin/sh\n")
	const n = 60
	jobs := make([]int64, n)
	for i := range jobs {
		cand := servedFirmware(t, filepath.Join(e.dir, fmt.Sprintf("rt3200-1.0.%d", i)), fmt.Sprintf("root:x:0:0:root:/root:/bin/sh\nu%d:x:%d:100::/:/bin/sh\n", i, 1000+i))
		var sub struct{ Job int64 }
		if code := srv.call("POST", "/v1/vet", submit, map[string]any{"candidate": cand, "baseline": base}, &sub); code != http.StatusAccepted {
			t.Fatalf("POST %d = %d", i, code)
		}
		jobs[i] = sub.Job
		if i == 10 {
			// One worker dies without a word, jobs in hand or not.
			workers[0].Process.Signal(syscall.SIGKILL)
			workers[0].Wait()
		}
	}
	deadline := time.Now().Add(150 * time.Second)
	for _, id := range jobs {
		for {
			var job struct{ State, Error string }
			if code := srv.call("GET", fmt.Sprintf("/v1/jobs/%d", id), read, nil, &job); code != http.StatusOK {
				t.Fatalf("GET job %d = %d", id, code)
			}
			if job.State == "done" {
				break
			}
			if job.State == "error" {
				t.Fatalf("job %d: %s", id, job.Error)
			}
			if time.Now().After(deadline) {
				t.Fatalf("job %d still %s\nserve: %s\nworker 1: %s", id, job.State, srv.stderr, logs[1])
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	list := e.run("verdicts", "list", "--store", e.store, "--limit", "0", "--format", "json")
	if got := strings.Count(list.stdout, `"candidate_digest"`); list.code != 0 || got != n {
		t.Errorf("the store holds %d records for %d submissions (exit %d)", got, n, list.code)
	}
	for i := range n {
		if c := strings.Count(list.stdout, fmt.Sprintf(`rt3200-1.0.%d"`, i)); c != 1 {
			t.Errorf("rt3200-1.0.%d recorded %d times", i, c)
		}
	}
	if v := e.run("verdicts", "verify", "--store", e.store); v.code != 0 || !strings.Contains(v.stdout, fmt.Sprintf("ok: %d verdicts", n)) {
		t.Errorf("verify: exit %d %s%s", v.code, v.stdout, v.stderr)
	}
	worked := 0
	for i, l := range logs[1:] {
		if strings.Contains(l.String(), "vetted") {
			worked++
		} else {
			t.Logf("worker %d vetted nothing:\n%s", i+1, l)
		}
	}
	if worked == 0 {
		t.Error("no surviving worker vetted a job: the queue is not shared")
	}
	if r := e.run("worker", "--store", "sqlite:"+filepath.Join(e.dir, "x.db")); r.code != 1 || !strings.Contains(r.stderr, "PostgreSQL") {
		t.Errorf("worker on a SQLite store: exit %d %s", r.code, r.stderr)
	}
}
