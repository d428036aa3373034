package main_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/fwvet/fwvet/pipeline/fixture"
)

// TestSharedPostgresStore: three audits at once, as three workers of one
// batch, record their verdicts in one PostgreSQL store; the chain holds
// every verdict once and verifies, and a vet with the same store reads the
// waivers the others recorded.
func TestSharedPostgresStore(t *testing.T) {
	dsn := fixture.PostgresDSN(t)
	e := newEnv(t)
	base := fixture.Tar(t, map[string]string{"etc/passwd": passwd, "etc/fw-release": "1.0.0\n"})
	var shards [3][]string
	for i := 0; i < 30; i++ {
		files := map[string]string{"etc/passwd": passwd, "etc/fw-release": fmt.Sprintf("1.0.%d\n", i+1)}
		if i%10 == 3 {
			files["etc/passwd"] = passwd + "svc:x:0:0::/:/bin/sh\n"
		}
		// Files, not directories: a file has a digest before it is
		// unpacked, which is what lets an audit skip what it vetted.
		shards[i%3] = append(shards[i%3], fixture.Tar(t, files))
	}
	var wg sync.WaitGroup
	results := make([]result, len(shards))
	for i, refs := range shards {
		list := writeFile(t, filepath.Join(e.dir, fmt.Sprintf("shard-%d.txt", i)), strings.Join(refs, "\n")+"\n")
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := &env{t: t, dir: filepath.Join(e.dir, fmt.Sprintf("worker-%d", i)), store: dsn}
			os.MkdirAll(w.dir, 0o755)
			results[i] = w.run("audit", "--from", list, "--jobs", "2", "--baseline", base, "--store", dsn)
		}()
	}
	wg.Wait()
	for i, r := range results {
		// Each shard holds one image that adds a uid-0 account.
		if r.code != 2 || !strings.Contains(r.stdout, "0 pass, 9 review, 1 fail, 0 errors") {
			t.Errorf("worker %d: exit %d\n%s\n%s", i, r.code, r.stdout, r.stderr)
		}
	}
	v := e.run("verdicts", "verify", "--store", dsn)
	if v.code != 0 || !strings.Contains(v.stdout, "ok: 30 verdicts, chain intact") {
		t.Errorf("verify: exit %d\n%s%s", v.code, v.stdout, v.stderr)
	}
	// Run again: every candidate was vetted under this policy already.
	again := e.run("audit", "--from", filepath.Join(e.dir, "shard-0.txt"), "--baseline", base, "--store", dsn)
	if !strings.Contains(again.stdout, "(10 vetted before, skipped)") {
		t.Errorf("a second audit vetted again what the shared store holds:\n%s", again.stdout)
	}
	list := e.run("verdicts", "list", "--store", dsn, "--limit", "0", "--format", "json")
	if list.code != 0 || strings.Count(list.stdout, `"candidate_digest"`) != 30 {
		t.Errorf("list: exit %d, %d records", list.code, strings.Count(list.stdout, `"candidate_digest"`))
	}
}
