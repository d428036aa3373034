package gate_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sirupsen/logrus"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/fixture"
	"github.com/fwvet/fwvet/pipeline/gate"
	"github.com/fwvet/fwvet/pipeline/store"
	"github.com/fwvet/fwvet/pipeline/vet"
)

const (
	rootLine = "root:x:0:0:root:/root:/bin/sh\n"
	evilLine = "backdoor:x:0:0::/root:/bin/sh\n"
)

// firmware writes a tiny root file system: /etc/passwd and /etc/os-release.
func firmware(t *testing.T, dir, passwd string) string {
	t.Helper()
	for name, body := range map[string]string{"etc/passwd": passwd, "etc/os-release": "VERSION_ID=1.0.0\n", "bin/app": "app 1.0\n"} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// harness is a gate service on real SQLite files, behind httptest.
type harness struct {
	t                    testing.TB
	dir                  string
	dsn                  string
	st                   pipeline.Store
	svc                  *gate.Service
	srv                  *httptest.Server
	read, submit, review string
	log                  *logrus.Logger
	logs                 *bytes.Buffer
}

type options struct {
	// postgres puts the store and the queue in a PostgreSQL database.
	postgres    bool
	enqueueOnly bool
	allowLocal  bool
	registries  []string
	signer      signature.Signer
	// jobStarted, when set, is sent to as a job builds its pipeline,
	// which then waits for release to be closed.
	jobStarted chan struct{}
	release    chan struct{}
	// child vets each job in a process of its own, as fwvet serve does:
	// this test binary, which TestMain turns into the child (crash: one
	// that panics before it answers).
	child, crash bool
}

func newHarness(t testing.TB, o options) *harness {
	h := &harness{t: t, dir: t.TempDir(), logs: &bytes.Buffer{}}
	h.dsn = "sqlite:" + filepath.Join(h.dir, "verdicts.db")
	if o.postgres {
		h.dsn = fixture.PostgresDSN(t)
	}
	h.log = logrus.New()
	h.log.SetOutput(h.logs)
	h.log.SetLevel(logrus.InfoLevel)
	h.open(o)
	ctx := context.Background()
	var err error
	for _, r := range []struct {
		role gate.Role
		tok  *string
	}{{gate.RoleRead, &h.read}, {gate.RoleSubmit, &h.submit}, {gate.RoleReview, &h.review}} {
		if *r.tok, err = h.svc.Tokens().Add(ctx, r.role); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(h.close)
	return h
}

// open opens the store and the service on the harness's files.
func (h *harness) open(o options) {
	t := h.t
	ctx := context.Background()
	dsn := h.dsn
	st, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	h.st = st
	qp, err := gate.QueuePath(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cache := filepath.Join(h.dir, "cache")
	calls := 0
	svc, err := gate.Open(ctx, gate.Config{
		Store:     st,
		QueuePath: qp,
		Pipeline: func(manifest []string) (*vet.Pipeline, error) {
			if calls++; calls > 1 && o.jobStarted != nil {
				o.jobStarted <- struct{}{}
				<-o.release
			}
			return vet.New(vet.Config{Manifest: manifest, Store: st, CacheDir: cache, Jobs: 2, Attest: vet.Attestation{Signer: o.signer},
				Tool: pipeline.Tool{Name: "fwvet", Version: "test"}, Log: h.log})
		},
		Child:           h.child(o),
		Workers:         2,
		EnqueueOnly:     o.enqueueOnly,
		AllowLocal:      o.allowLocal,
		AllowRegistries: o.registries,
		WorkDir:         h.dir,
		Log:             h.log,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	h.svc = svc
	h.srv = httptest.NewServer(svc.Handler())
}

// The environment of a child vet process (TestMain).
const (
	childDSN   = "FWVET_GATE_TEST_CHILD_DSN"
	childCache = "FWVET_GATE_TEST_CHILD_CACHE"
	childCrash = "FWVET_GATE_TEST_CHILD_CRASH"
)

// child is the harness's gate.Child, or nil for vets in this process.
func (h *harness) child(o options) *gate.Child {
	if !o.child && !o.crash {
		return nil
	}
	c := &gate.Child{Path: os.Args[0], Args: []string{"-test.run=^$"}, Nice: gate.ChildNice,
		Env: []string{childDSN + "=" + h.dsn, childCache + "=" + filepath.Join(h.dir, "cache")}}
	if o.crash {
		c.Env = append(c.Env, childCrash+"=1")
	}
	return c
}

// runChild is the test binary as a child vet process: the harness's
// pipeline, on the store and cache its environment names.
func runChild() int {
	ctx := context.Background()
	if os.Getenv(childCrash) != "" {
		panic("a parser met input it did not expect")
	}
	st, err := store.OpenExisting(ctx, os.Getenv(childDSN))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer st.Close()
	log := logrus.New()
	log.SetLevel(logrus.WarnLevel)
	err = gate.RunChild(ctx, os.Stdin, os.Stdout, func(job gate.ChildJob, manifest []string) (*vet.Pipeline, error) {
		return vet.New(vet.Config{Manifest: manifest, Store: st, CacheDir: os.Getenv(childCache), Jobs: 2,
			Tool: pipeline.Tool{Name: "fwvet", Version: "test"}, Log: log.WithField("job", job.Job)})
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func (h *harness) close() { h.closeWithin(30 * time.Second) }

// closeWithin closes the service, letting running jobs finish for d.
func (h *harness) closeWithin(d time.Duration) {
	if h.svc == nil {
		return
	}
	h.srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if err := h.svc.Close(ctx); err != nil {
		h.t.Errorf("closing the service: %v", err)
	}
	h.st.Close()
	h.svc = nil
}

// do sends a request and decodes a JSON answer into out (when not nil).
func (h *harness) do(method, path, token string, body any, out any) int {
	h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			h.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, h.srv.URL+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			h.t.Fatalf("%s %s: %d, answer is not JSON (%v): %s", method, path, resp.StatusCode, err, data)
		}
	}
	return resp.StatusCode
}

func (h *harness) submitJob(req gate.VetRequest) int64 {
	h.t.Helper()
	var a gate.VetAnswer
	if code := h.do("POST", "/v1/vet", h.submit, req, &a); code != http.StatusAccepted || a.Job <= 0 {
		h.t.Fatalf("POST /v1/vet = %d %+v", code, a)
	}
	return a.Job
}

// wait polls a job until it is done or an error.
func (h *harness) wait(id int64) gate.Job {
	h.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		var j gate.Job
		if code := h.do("GET", fmt.Sprintf("/v1/jobs/%d", id), h.read, nil, &j); code != http.StatusOK {
			h.t.Fatalf("GET job %d = %d", id, code)
		}
		if j.State == gate.StateDone || j.State == gate.StateError {
			return j
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("job %d still %s\nlog:\n%s", id, j.State, h.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (h *harness) verdict(digest, token string) gate.Verdict {
	h.t.Helper()
	var v gate.Verdict
	if code := h.do("GET", "/v1/verdicts/"+digest, token, nil, &v); code != http.StatusOK {
		h.t.Fatalf("GET verdict %s = %d %+v", digest, code, v)
	}
	return v
}

func (h *harness) records() []pipeline.Record {
	h.t.Helper()
	recs, err := h.st.List(context.Background(), 100)
	if err != nil {
		h.t.Fatal(err)
	}
	return recs
}

func (h *harness) metrics() string {
	h.t.Helper()
	req, _ := http.NewRequest("GET", h.srv.URL+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+h.read)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		h.t.Fatalf("GET /metrics = %d: %s", resp.StatusCode, b)
	}
	return string(b)
}

func TestSubmitVetPoll(t *testing.T) {
	for _, c := range []struct {
		name      string
		pg, child bool
	}{{"sqlite", false, false}, {"postgres", true, false}, {"sqlite-child", false, true}} {
		t.Run(c.name, func(t *testing.T) { submitVetPoll(t, c.pg, c.child) })
	}
}

func submitVetPoll(t *testing.T, pg, child bool) {
	h := newHarness(t, options{allowLocal: true, postgres: pg, child: child})
	base := firmware(t, filepath.Join(h.dir, "base"), rootLine)
	cand := firmware(t, filepath.Join(h.dir, "cand"), rootLine+evilLine)

	id := h.submitJob(gate.VetRequest{Candidate: cand, Baseline: base})
	j := h.wait(id)
	if j.State != gate.StateDone || len(j.Verdicts) != 1 {
		t.Fatalf("job = %+v\nlog:\n%s", j, h.logs)
	}
	got := j.Verdicts[0]
	if got.Verdict != pipeline.VerdictFail || got.Digest == "" || got.ReportID <= 0 || j.Candidate != cand || j.Baseline != base {
		t.Fatalf("job = %+v, want a fail verdict with a digest and a report", j)
	}
	v := h.verdict(got.Digest, h.read)
	if v.State != gate.StateDone || v.Verdict != pipeline.VerdictFail || v.ReportID != got.ReportID || v.Decision != nil || v.PolicyDigest == "" {
		t.Errorf("verdict = %+v, want done, fail, report %d", v, got.ReportID)
	}
	if recs := h.records(); len(recs) != 1 || recs[0].ID != got.ReportID {
		t.Errorf("store holds %d records, want the one job's", len(recs))
	}

	// A reviewer decides it; a read token may not.
	dec := gate.DecisionRequest{Approve: true, Reason: "the account is the vendor's support login", By: "alice@example.com"}
	path := fmt.Sprintf("/v1/verdicts/%d/decision", got.ReportID)
	if code := h.do("POST", path, h.read, dec, nil); code != http.StatusForbidden {
		t.Errorf("decision with a read token = %d, want 403", code)
	}
	if code := h.do("POST", path, h.submit, dec, nil); code != http.StatusForbidden {
		t.Errorf("decision with a submit token = %d, want 403", code)
	}
	var d pipeline.Decision
	if code := h.do("POST", path, h.review, dec, &d); code != http.StatusCreated || !d.Approve || d.By != dec.By {
		t.Fatalf("decision = %d %+v", code, d)
	}
	if code := h.do("POST", "/v1/verdicts/999/decision", h.review, dec, nil); code != http.StatusNotFound {
		t.Errorf("decision on a missing verdict = %d, want 404", code)
	}
	if code := h.do("POST", path, h.review, gate.DecisionRequest{Approve: true}, nil); code != http.StatusBadRequest {
		t.Errorf("decision without a reason = %d, want 400", code)
	}
	v = h.verdict(got.Digest, h.review)
	if v.State != gate.StateDone || v.Verdict != pipeline.VerdictFail || v.Decision == nil || !v.Decision.Approve || v.Decision.Reason != dec.Reason {
		t.Errorf("verdict after the decision = %+v, want the fail verdict with the approval", v)
	}

	m := h.metrics()
	for _, want := range []string{
		`fwvet_verdicts_total{verdict="fail"} 1`,
		`fwvet_verdicts_total{verdict="pass"} 0`,
		`fwvet_jobs{state="done"} 1`,
		`fwvet_jobs{state="queued"} 0`,
		`fwvet_queue_wait_seconds_count 1`,
		`fwvet_vet_duration_seconds_count 1`,
		`fwvet_decisions_total{action="approve"} 1`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q:\n%s", want, grepFwvet(m))
		}
	}
}

func grepFwvet(m string) string {
	var out []string
	for _, l := range strings.Split(m, "\n") {
		if strings.HasPrefix(l, "fwvet_") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestManifest: an inline release manifest that declares the change makes
// the same candidate pass.
func TestManifest(t *testing.T) {
	h := newHarness(t, options{allowLocal: true})
	base := firmware(t, filepath.Join(h.dir, "base"), rootLine)
	cand := firmware(t, filepath.Join(h.dir, "cand"), rootLine+evilLine)
	manifest := json.RawMessage(`{"version": "1.0.0", "changed": ["/etc/passwd"]}`)
	j := h.wait(h.submitJob(gate.VetRequest{Candidate: cand, Baseline: base, Manifest: manifest}))
	if j.State != gate.StateDone || len(j.Verdicts) != 1 || j.Verdicts[0].Verdict == pipeline.VerdictFail {
		t.Fatalf("job = %+v, want a verdict other than fail\nlog:\n%s", j, h.logs)
	}
	same := h.wait(h.submitJob(gate.VetRequest{Candidate: base, Baseline: base}))
	if same.State != gate.StateDone || len(same.Verdicts) != 1 || same.Verdicts[0].Verdict == pipeline.VerdictFail {
		t.Fatalf("identical = %+v, want pass or review", same)
	}
	t.Logf("declared change: %s; identical: %s", j.Verdicts[0].Verdict, same.Verdicts[0].Verdict)
	if same.Verdicts[0].Verdict == pipeline.VerdictPass {
		var ans map[string]string
		code := h.do("POST", fmt.Sprintf("/v1/verdicts/%d/decision", same.Verdicts[0].ReportID), h.review,
			gate.DecisionRequest{Approve: true, Reason: "r", By: "b"}, &ans)
		if code != http.StatusConflict || !strings.Contains(ans["error"], "passed") {
			t.Errorf("deciding a pass = %d %v, want 409", code, ans)
		}
	}
}

// TestPending: a queued job's digest answers pending, never a verdict; a
// digest nothing is known of answers unknown.
func TestPending(t *testing.T) {
	h := newHarness(t, options{enqueueOnly: true, registries: []string{"registry.example"}})
	digest := "sha256:" + strings.Repeat("ab", 32)
	id := h.submitJob(gate.VetRequest{Candidate: "registry.example/fw/rt3200@" + digest})
	v := h.verdict(digest, h.read)
	if v.State != gate.StatePending || v.Verdict != "" || v.Job != id {
		t.Errorf("verdict of a queued digest = %+v, want pending with job %d and no verdict", v, id)
	}
	var j gate.Job
	if code := h.do("GET", fmt.Sprintf("/v1/jobs/%d", id), h.read, nil, &j); code != http.StatusOK || j.State != gate.StateQueued || len(j.Verdicts) != 0 {
		t.Errorf("job = %d %+v, want queued", code, j)
	}
	other := "sha256:" + strings.Repeat("cd", 32)
	if v := h.verdict(other, h.read); v.State != gate.StateUnknown || v.Verdict != "" {
		t.Errorf("verdict of an unknown digest = %+v, want unknown", v)
	}
	if code := h.do("GET", "/v1/jobs/12345", h.read, nil, nil); code != http.StatusNotFound {
		t.Errorf("missing job = %d, want 404", code)
	}
	if m := h.metrics(); !strings.Contains(m, `fwvet_jobs{state="queued"} 1`) {
		t.Errorf("metrics lack the queued job:\n%s", grepFwvet(m))
	}
}

// TestVetError: a job that cannot vet is an error, never a pass, and its
// digest's answer says so.
func TestVetError(t *testing.T) {
	for _, child := range []bool{false, true} {
		h := newHarness(t, options{allowLocal: true, child: child})
		base := firmware(t, filepath.Join(h.dir, "base"), rootLine)
		missing := filepath.Join(h.dir, "no-such-firmware.bin")
		j := h.wait(h.submitJob(gate.VetRequest{Candidate: missing, Baseline: base}))
		if j.State != gate.StateError || j.Error == "" || len(j.Verdicts) != 0 {
			t.Fatalf("job (child %v) = %+v, want an error with its reason", child, j)
		}
		if !strings.Contains(j.Error, "no-such-firmware.bin") {
			t.Errorf("error %q (child %v) does not name the candidate", j.Error, child)
		}
		if recs := h.records(); len(recs) != 0 {
			t.Errorf("store holds %d records (child %v), want none", len(recs), child)
		}
	}
	// A digest whose latest job failed answers error.
	h2 := newHarness(t, options{registries: []string{"127.0.0.1"}})
	digest := "sha256:" + strings.Repeat("ef", 32)
	// Port 1 on loopback refuses: the fetch fails, over plain HTTPS.
	j := h2.wait(h2.submitJob(gate.VetRequest{Candidate: "127.0.0.1:1/fw@" + digest}))
	if j.State != gate.StateError {
		t.Fatalf("job = %+v, want error", j)
	}
	if v := h2.verdict(digest, h2.read); v.State != gate.StateError || v.Verdict != "" || v.Error == "" {
		t.Errorf("verdict = %+v, want error with its reason and no verdict", v)
	}
	if m := h2.metrics(); !strings.Contains(m, `fwvet_jobs{state="error"} 1`) || !strings.Contains(m, "fwvet_vet_errors_total 1") {
		t.Errorf("metrics lack the failed job:\n%s", grepFwvet(m))
	}
}

// TestChildCrash: a vet process that dies before it answers (a panic on
// input a parser did not expect) ends its job as an error that says how
// it died; the service goes on.
func TestChildCrash(t *testing.T) {
	h := newHarness(t, options{allowLocal: true, crash: true})
	base := firmware(t, filepath.Join(h.dir, "base"), rootLine)
	cand := firmware(t, filepath.Join(h.dir, "cand"), rootLine+evilLine)
	for range 2 {
		j := h.wait(h.submitJob(gate.VetRequest{Candidate: cand, Baseline: base}))
		if j.State != gate.StateError || len(j.Verdicts) != 0 ||
			!strings.Contains(j.Error, "exit status 2") || !strings.Contains(j.Error, "panic: a parser met input it did not expect") {
			t.Fatalf("job = %+v, want an error with the exit status and the panic", j)
		}
	}
	if recs := h.records(); len(recs) != 0 {
		t.Errorf("store holds %d records, want none", len(recs))
	}
	if m := h.metrics(); !strings.Contains(m, "fwvet_vet_errors_total 2") {
		t.Errorf("metrics lack the failed jobs:\n%s", grepFwvet(m))
	}
}

func TestIdempotencyKey(t *testing.T) {
	h := newHarness(t, options{enqueueOnly: true, allowLocal: true})
	req := gate.VetRequest{Candidate: "/fw/a.bin", IdempotencyKey: "rollout-42"}
	first := h.submitJob(req)
	var a gate.VetAnswer
	if code := h.do("POST", "/v1/vet", h.submit, req, &a); code != http.StatusAccepted || a.Job != first || !a.Duplicate {
		t.Errorf("repeated POST = %d %+v, want job %d again", code, a, first)
	}
	req.IdempotencyKey = "rollout-43"
	if other := h.submitJob(req); other == first {
		t.Errorf("another key gave the same job %d", first)
	}
	req.IdempotencyKey = ""
	if a, b := h.submitJob(req), h.submitJob(req); a == b {
		t.Errorf("two POSTs without a key gave one job %d", a)
	}
}

func TestAuth(t *testing.T) {
	h := newHarness(t, options{enqueueOnly: true, allowLocal: true})
	body := gate.VetRequest{Candidate: "/fw/a.bin"}
	digest := "/v1/verdicts/sha256:" + strings.Repeat("00", 32)
	for _, tc := range []struct {
		name, method, path, token string
		body                      any
		want                      int
	}{
		{"healthz needs no token", "GET", "/healthz", "", nil, 200},
		{"no token", "GET", digest, "", nil, 401},
		{"unknown token", "GET", digest, "fwvet_notatoken", nil, 401},
		{"read token reads", "GET", digest, h.read, nil, 200},
		{"submit token reads", "GET", digest, h.submit, nil, 200},
		{"review token reads", "GET", digest, h.review, nil, 200},
		{"read token may not submit", "POST", "/v1/vet", h.read, body, 403},
		{"review token may not submit", "POST", "/v1/vet", h.review, body, 403},
		{"submit token submits", "POST", "/v1/vet", h.submit, body, 202},
		{"no token may not submit", "POST", "/v1/vet", "", body, 401},
		{"metrics need a token", "GET", "/metrics", "", nil, 401},
		{"metrics with a read token", "GET", "/metrics", h.read, nil, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code := h.do(tc.method, tc.path, tc.token, tc.body, nil); code != tc.want {
				t.Errorf("%s %s = %d, want %d", tc.method, tc.path, code, tc.want)
			}
		})
	}
	if !strings.Contains(h.logs.String(), "refused: no bearer token") || !strings.Contains(h.logs.String(), "refused: wrong role") {
		t.Errorf("refusals are not logged:\n%s", h.logs)
	}
	// A revoked token is refused.
	if n, err := h.svc.Tokens().Revoke(context.Background(), gate.ID(h.read)); err != nil || n != 1 {
		t.Fatalf("Revoke = %d, %v", n, err)
	}
	if code := h.do("GET", digest, h.read, nil, nil); code != 401 {
		t.Errorf("revoked token = %d, want 401", code)
	}
	if code := h.do("GET", digest, h.submit, nil, nil); code != 200 {
		t.Errorf("another token after a revocation = %d, want 200", code)
	}
}

func TestBadRequests(t *testing.T) {
	h := newHarness(t, options{enqueueOnly: true, registries: []string{"registry.example", "127.0.0.1:5000"}})
	big := `{"candidate": "registry.example/fw:1", "manifest": {"x": "` + strings.Repeat("a", gate.MaxBodyBytes) + `"}}`
	for _, tc := range []struct {
		name, body string
		want       int
		reason     string
	}{
		{"too large", big, 413, "larger than"},
		{"unknown field", `{"candidate": "registry.example/fw:1", "priority": 1}`, 400, "unknown field"},
		{"malformed", `{"candidate": `, 400, "malformed"},
		{"two objects", `{"candidate": "registry.example/fw:1"} {}`, 400, "after"},
		{"no candidate", `{"baseline": "registry.example/fw:1"}`, 400, "candidate: required"},
		{"long reference", `{"candidate": "registry.example/fw:` + strings.Repeat("a", 1100) + `"}`, 400, "longer than"},
		{"registry not allowed", `{"candidate": "evil.example/fw:1"}`, 400, "not allowed"},
		{"baseline registry not allowed", `{"candidate": "registry.example/fw:2", "baseline": "127.0.0.1:5001/fw:1"}`, 400, "not allowed"},
		{"local path not allowed", `{"candidate": "/srv/fw/image.bin"}`, 400, "local path"},
		{"manifest not an object", `{"candidate": "registry.example/fw:1", "manifest": "m.json"}`, 400, "manifest"},
		{"allowed", `{"candidate": "registry.example/fw:1", "baseline": "127.0.0.1:5000/fw:0"}`, 202, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ans map[string]any
			code := h.do("POST", "/v1/vet", h.submit, tc.body, &ans)
			if code != tc.want {
				t.Fatalf("POST = %d %v, want %d", code, ans, tc.want)
			}
			if tc.reason != "" {
				if msg, _ := ans["error"].(string); !strings.Contains(msg, tc.reason) {
					t.Errorf("reason %q does not say %q", msg, tc.reason)
				}
			}
		})
	}
}

// TestRestart: a job queued when the service stops is vetted by the next
// one, once.
func TestRestart(t *testing.T) {
	h := newHarness(t, options{enqueueOnly: true, allowLocal: true})
	base := firmware(t, filepath.Join(h.dir, "base"), rootLine)
	cand := firmware(t, filepath.Join(h.dir, "cand"), rootLine+evilLine)
	id := h.submitJob(gate.VetRequest{Candidate: cand, Baseline: base})
	h.close()
	h.open(options{allowLocal: true})
	j := h.wait(id)
	if j.State != gate.StateDone || len(j.Verdicts) != 1 || j.Verdicts[0].Verdict != pipeline.VerdictFail {
		t.Fatalf("job after the restart = %+v", j)
	}
	if recs := h.records(); len(recs) != 1 {
		t.Errorf("store holds %d records, want 1", len(recs))
	}
}

// TestInterrupted: a job that recorded its verdict and was then cut short
// (its process died before River marked it completed) is retried at the
// next start, and records nothing twice.
func TestInterrupted(t *testing.T) {
	h := newHarness(t, options{allowLocal: true})
	base := firmware(t, filepath.Join(h.dir, "base"), rootLine)
	cand := firmware(t, filepath.Join(h.dir, "cand"), rootLine+evilLine)
	id := h.submitJob(gate.VetRequest{Candidate: cand, Baseline: base})
	first := h.wait(id)
	if first.State != gate.StateDone {
		t.Fatalf("job = %+v", first)
	}
	h.close()
	// What a kill after the append leaves: the job still running.
	db, err := sql.Open("sqlite", filepath.Join(h.dir, "verdicts.db-queue.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE river_job SET state = 'running', finalized_at = NULL, metadata = jsonb('{}') WHERE id = ?`, id); err != nil {
		t.Fatal(err)
	}
	db.Close()
	h.open(options{allowLocal: true})
	j := h.wait(id)
	if j.State != gate.StateDone || j.Attempts != 2 || len(j.Verdicts) != 1 || j.Verdicts[0].ReportID != first.Verdicts[0].ReportID {
		t.Fatalf("retried job = %+v, want done on attempt 2 with report %d", j, first.Verdicts[0].ReportID)
	}
	if recs := h.records(); len(recs) != 1 {
		t.Errorf("store holds %d records, want 1", len(recs))
	}
	for _, want := range []string{"retrying jobs interrupted", "not vetting again"} {
		if !strings.Contains(h.logs.String(), want) {
			t.Errorf("the log does not say %q:\n%s", want, h.logs)
		}
	}
}

// TestOneServicePerQueue: a second service on the same queue is refused.
func TestOneServicePerQueue(t *testing.T) {
	h := newHarness(t, options{enqueueOnly: true})
	_, err := gate.Open(context.Background(), gate.Config{Store: h.st, QueuePath: filepath.Join(h.dir, "verdicts.db-queue.db"),
		Pipeline: func([]string) (*vet.Pipeline, error) {
			return vet.New(vet.Config{Store: h.st, CacheDir: filepath.Join(h.dir, "cache"), Log: h.log})
		}, Log: h.log})
	if err == nil || !strings.Contains(err.Error(), "another fwvet serve") {
		t.Errorf("second Open = %v, want refused", err)
	}
}

// TestSignedVerdict: with a signing key, the verdict answer carries the
// signed verdict (a DSSE envelope).
func TestSignedVerdict(t *testing.T) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sv, err := signature.LoadECDSASignerVerifier(k, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, options{allowLocal: true, signer: sv})
	base := firmware(t, filepath.Join(h.dir, "base"), rootLine)
	cand := firmware(t, filepath.Join(h.dir, "cand"), rootLine+evilLine)
	j := h.wait(h.submitJob(gate.VetRequest{Candidate: cand, Baseline: base}))
	if j.State != gate.StateDone || len(j.Verdicts) != 1 {
		t.Fatalf("job = %+v\nlog:\n%s", j, h.logs)
	}
	v := h.verdict(j.Verdicts[0].Digest, h.read)
	var env struct {
		PayloadType string `json:"payloadType"`
		Payload     string `json:"payload"`
		Signatures  []struct {
			Sig string `json:"sig"`
		} `json:"signatures"`
	}
	if err := json.Unmarshal(v.Attestation, &env); err != nil || env.PayloadType == "" || env.Payload == "" || len(env.Signatures) == 0 {
		t.Errorf("attestation = %s (%v), want a DSSE envelope", v.Attestation, err)
	}
}

// TestConcurrentSubmissions: many clients at once are all answered, and
// each job is vetted and recorded once.
func TestConcurrentSubmissions(t *testing.T) {
	for _, pg := range []bool{false, true} {
		t.Run(map[bool]string{false: "sqlite", true: "postgres"}[pg], func(t *testing.T) { concurrentSubmissions(t, pg) })
	}
}

func concurrentSubmissions(t *testing.T, pg bool) {
	const n = 24
	h := newHarness(t, options{allowLocal: true, postgres: pg})
	base := firmware(t, filepath.Join(h.dir, "base"), rootLine)
	cands := make([]string, n)
	for i := range cands {
		cands[i] = firmware(t, filepath.Join(h.dir, fmt.Sprintf("cand%d", i)), rootLine+fmt.Sprintf("u%d:x:%d:100::/:/bin/sh\n", i, 1000+i))
	}
	ids := make([]int64, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			ids[i] = h.submitJob(gate.VetRequest{Candidate: cands[i], Baseline: base, IdempotencyKey: fmt.Sprint("c", i)})
		})
	}
	wg.Wait()
	seen := map[int64]bool{}
	for i, id := range ids {
		if seen[id] {
			t.Fatalf("job %d given twice", id)
		}
		seen[id] = true
		if j := h.wait(id); j.State != gate.StateDone || len(j.Verdicts) != 1 || j.Candidate != cands[i] {
			t.Fatalf("job %d = %+v", id, j)
		}
	}
	recs := h.records()
	if len(recs) != n {
		t.Fatalf("store holds %d records, want %d", len(recs), n)
	}
	byRef := map[string]int{}
	for _, r := range recs {
		byRef[r.CandidateRef]++
	}
	for _, c := range cands {
		if byRef[c] != 1 {
			t.Errorf("%s recorded %d times", c, byRef[c])
		}
	}
}

// TestShutdownMidVet: a job cut short by the service's end (its vet
// cancelled) is retried by the next start, and recorded once.
func TestShutdownMidVet(t *testing.T) {
	started, release := make(chan struct{}, 1), make(chan struct{})
	h := newHarness(t, options{allowLocal: true, jobStarted: started, release: release})
	base := firmware(t, filepath.Join(h.dir, "base"), rootLine)
	cand := firmware(t, filepath.Join(h.dir, "cand"), rootLine+evilLine)
	id := h.submitJob(gate.VetRequest{Candidate: cand, Baseline: base})
	select {
	case <-started:
	case <-time.After(30 * time.Second):
		t.Fatal("the job did not start")
	}
	var j gate.Job
	if h.do("GET", fmt.Sprintf("/v1/jobs/%d", id), h.read, nil, &j); j.State != gate.StateRunning {
		t.Errorf("job = %+v, want running", j)
	}
	time.AfterFunc(500*time.Millisecond, func() { close(release) })
	h.closeWithin(100 * time.Millisecond)
	h.open(options{allowLocal: true})
	if recs := h.records(); len(recs) != 0 {
		t.Fatalf("the cancelled vet recorded %d verdicts", len(recs))
	}
	j = h.wait(id)
	if j.State != gate.StateDone || len(j.Verdicts) != 1 || j.Verdicts[0].Verdict != pipeline.VerdictFail {
		t.Fatalf("job after the restart = %+v, want done\nlog:\n%s", j, h.logs)
	}
	// The second run knew of the first (it may have recorded a verdict).
	if !strings.Contains(h.logs.String(), "vet interrupted") {
		t.Errorf("the log does not tell of the interrupted vet:\n%s", h.logs)
	}
	if recs := h.records(); len(recs) != 1 {
		t.Errorf("store holds %d records, want 1", len(recs))
	}
}

func TestMain(m *testing.M) {
	if os.Getenv(childDSN) != "" {
		os.Exit(runChild())
	}
	code := m.Run()
	fixture.StopPostgres()
	os.Exit(code)
}
