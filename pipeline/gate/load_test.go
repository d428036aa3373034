package gate_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivertype"

	"github.com/fwvet/fwvet/pipeline/gate"
)

// The load of BenchmarkVerdictLookup.
const (
	// loadVetted digests are vetted before the clients start, so that
	// their lookups find a verdict; loadUnknown digests are known of
	// nothing (their lookups also search the queue for a job).
	loadVetted  = 8
	loadUnknown = 2
	// submitEvery paces the submissions of small images during the run.
	submitEvery = 200 * time.Millisecond
	// loadWorkers is the harness's Config.Workers.
	loadWorkers = 2
)

// loadClients poll at once, each on a keep-alive connection of its own:
// 200, or FWVET_BENCH_CLIENTS (to see how latency follows the load).
var loadClients = func() int {
	if n, err := strconv.Atoi(os.Getenv("FWVET_BENCH_CLIENTS")); err == nil && n > 0 {
		return n
	}
	return 200
}()

// loadInterval paces each client: its next lookup starts this long after
// its last one did (FWVET_BENCH_INTERVAL, a Go duration), as a rollout
// system polls; zero, the default, polls without pause, which measures
// what the service can answer at most.
var loadInterval = func() time.Duration {
	d, _ := time.ParseDuration(os.Getenv("FWVET_BENCH_INTERVAL"))
	return max(d, 0)
}()

// loadHeavy is a large pair, "BASELINE CANDIDATE" (FWVET_BENCH_HEAVY),
// whose vets run beside the small ones: heavyVets of them are submitted as
// the clients start, as a gate vets real firmware while it is polled.
var loadHeavy = strings.Fields(os.Getenv("FWVET_BENCH_HEAVY"))

const heavyVets = 4

// loadInProcess vets in the service's process (FWVET_BENCH_INPROCESS=1)
// instead of in a process of its own per vet, as fwvet serve does: to
// see what the child processes are for.
var loadInProcess = os.Getenv("FWVET_BENCH_INPROCESS") == "1"

// BenchmarkVerdictLookup is the gate's load benchmark (issue 17, run by
// scripts/bench-gate): loadClients clients on loopback poll GET
// /v1/verdicts/{digest}, each every loadInterval or, by default, without
// pause (each sends its next lookup as soon as the last is answered)
// while a submitter POSTs /v1/vet of a small image every submitEvery,
// which the service's two workers vet meanwhile, each vet in a child
// process as fwvet serve runs them (FWVET_BENCH_INPROCESS=1: in the
// service's process). FWVET_BENCH_HEAVY adds heavyVets vets of a large
// pair, submitted as the clients start.
//
// b.N is the number of lookups of a run, shared by all the clients: ns/op
// is the wall time per lookup at that concurrency (the inverse of the
// throughput), and -benchtime=NNNx fixes the count. A duration (-benchtime
// 20s) works too, but each round of the framework's ramp sets up a service
// of its own; scripts/bench-gate passes a count.
//
// Reported: lookups/s; p50-ms and p99-ms, the latency of every lookup as
// its client saw it; job-start-ms (median) and job-start-max-ms, how long a
// submitted job waited to start once a worker was free for it; queue-wait-ms
// (median), its whole wait from queueing to start, which is what the
// service's fwvet_queue_wait_seconds histogram observes; jobs, how many were
// submitted. Every lookup must be answered 200 with the state its digest
// has (done or unknown: the API answers an unknown digest 200 "unknown",
// not 404), and every submitted job must end done; anything else (a 5xx, a
// transport error) fails the benchmark. The targets (p99 under 10 ms, a job
// started within 100 ms of a free worker) are reported against by the
// script, not asserted.
func BenchmarkVerdictLookup(b *testing.B) {
	for _, pg := range []bool{false, true} {
		b.Run(map[bool]string{false: "sqlite", true: "postgres"}[pg], func(b *testing.B) { verdictLookup(b, pg) })
	}
}

// lookupTarget is a digest's URL and what its answer must say.
type lookupTarget struct {
	url  string
	want []byte
}

func verdictLookup(b *testing.B, pg bool) {
	if len(loadHeavy) != 0 && len(loadHeavy) != 2 {
		b.Fatalf("FWVET_BENCH_HEAVY = %q: want BASELINE CANDIDATE", loadHeavy)
	}
	h := newHarness(b, options{allowLocal: true, postgres: pg, child: !loadInProcess})
	base := filepath.Join(h.dir, "base")
	if err := writeImage(base, rootLine); err != nil {
		b.Fatal(err)
	}
	var ids []int64
	for i := range loadVetted {
		cand := filepath.Join(h.dir, fmt.Sprintf("vetted%d", i))
		if err := writeImage(cand, rootLine+fmt.Sprintf("v%d:x:%d:100::/:/bin/sh\n", i, 2000+i)); err != nil {
			b.Fatal(err)
		}
		ids = append(ids, h.submitJob(gate.VetRequest{Candidate: cand, Baseline: base}))
	}
	var targets []lookupTarget
	for _, id := range ids {
		j := h.wait(id)
		if j.State != gate.StateDone || len(j.Verdicts) != 1 {
			b.Fatalf("job %d = %+v\nlog:\n%s", id, j, h.logs)
		}
		targets = append(targets, lookupTarget{h.srv.URL + "/v1/verdicts/" + j.Verdicts[0].Digest, []byte(`"state": "done"`)})
	}
	for i := range loadUnknown {
		digest := "sha256:" + strings.Repeat(fmt.Sprintf("%02x", 0xf0+i), 32)
		targets = append(targets, lookupTarget{h.srv.URL + "/v1/verdicts/" + digest, []byte(`"state": "unknown"`)})
	}

	var (
		failed  atomic.Bool
		errOnce sync.Once
		loadErr error
	)
	fail := func(err error) {
		errOnce.Do(func() { loadErr = err })
		failed.Store(true)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// The submitter: a small image of its own every submitEvery, from
	// the start of the lookups to their end.
	stop, subDone := make(chan struct{}), make(chan struct{})
	var submitted []int64
	submitter := func() {
		defer close(subDone)
		cl := &http.Client{Timeout: 30 * time.Second}
		defer cl.CloseIdleConnections()
		tick := time.NewTicker(submitEvery)
		defer tick.Stop()
		for k := range heavyVets * len(loadHeavy) / 2 {
			// A key of its own: the same pair four times is four jobs.
			id, err := postVet(ctx, cl, h.srv.URL, h.submit, gate.VetRequest{Candidate: loadHeavy[1], Baseline: loadHeavy[0], IdempotencyKey: fmt.Sprintf("heavy-%d", k)})
			if err != nil {
				fail(err)
				return
			}
			submitted = append(submitted, id)
		}
		for i := 0; ; i++ {
			cand := filepath.Join(h.dir, fmt.Sprintf("load%d", i))
			if err := writeImage(cand, rootLine+fmt.Sprintf("u%d:x:%d:100::/:/bin/sh\n", i, 3000+i)); err != nil {
				fail(err)
				return
			}
			id, err := postVet(ctx, cl, h.srv.URL, h.submit, gate.VetRequest{Candidate: cand, Baseline: base})
			if err != nil {
				fail(err)
				return
			}
			submitted = append(submitted, id)
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}

	var next atomic.Int64
	lat := make([][]time.Duration, loadClients)
	per := b.N/loadClients + 1
	auth := "Bearer " + h.read
	var wg sync.WaitGroup
	b.ResetTimer()
	t0 := time.Now()
	go submitter()
	for c := range loadClients {
		wg.Go(func() {
			cl := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
				MaxIdleConns: 4, MaxIdleConnsPerHost: 4, IdleConnTimeout: time.Minute, DisableCompression: true,
			}}
			defer cl.CloseIdleConnections()
			mine := make([]time.Duration, 0, per)
			var body bytes.Buffer
			if loadInterval > 0 {
				// Spread the clients over the interval, as independent
				// pollers are.
				time.Sleep(loadInterval * time.Duration(c) / time.Duration(loadClients))
			}
			for !failed.Load() {
				n := next.Add(1)
				if n > int64(b.N) {
					break
				}
				tg := targets[int(n)%len(targets)]
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, tg.url, nil)
				if err != nil {
					fail(err)
					break
				}
				req.Header.Set("Authorization", auth)
				sent := time.Now()
				resp, err := cl.Do(req)
				if err != nil {
					fail(fmt.Errorf("client %d: GET %s: %w", c, tg.url, err))
					break
				}
				body.Reset()
				_, err = body.ReadFrom(resp.Body)
				resp.Body.Close()
				d := time.Since(sent)
				if err != nil {
					fail(fmt.Errorf("client %d: GET %s: reading the answer: %w", c, tg.url, err))
					break
				}
				if resp.StatusCode != http.StatusOK || !bytes.Contains(body.Bytes(), tg.want) {
					fail(fmt.Errorf("client %d: GET %s = %d, want 200 with %s: %s", c, tg.url, resp.StatusCode, tg.want, body.Bytes()))
					break
				}
				mine = append(mine, d)
				if rest := loadInterval - d; rest > 0 {
					time.Sleep(rest)
				}
			}
			lat[c] = mine
		})
	}
	wg.Wait()
	elapsed := time.Since(t0)
	b.StopTimer()
	close(stop)
	<-subDone
	if loadErr != nil {
		b.Fatalf("%v\nlog:\n%s", loadErr, lastLines(h.logs.String(), 20))
	}
	for _, id := range submitted {
		if j := h.wait(id); j.State != gate.StateDone || len(j.Verdicts) != 1 {
			b.Fatalf("submitted job %d = %+v\nlog:\n%s", id, j, lastLines(h.logs.String(), 20))
		}
	}

	all := make([]time.Duration, 0, b.N)
	for _, l := range lat {
		all = append(all, l...)
	}
	if len(all) != b.N {
		b.Fatalf("%d lookups answered, want %d", len(all), b.N)
	}
	waits, starts := jobWaits(b, h, submitted)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "lookups/s")
	b.ReportMetric(ms(quantile(all, 0.50)), "p50-ms")
	b.ReportMetric(ms(quantile(all, 0.99)), "p99-ms")
	b.ReportMetric(ms(quantile(starts, 0.50)), "job-start-ms")
	b.ReportMetric(ms(quantile(starts, 1)), "job-start-max-ms")
	b.ReportMetric(ms(quantile(waits, 0.50)), "queue-wait-ms")
	b.ReportMetric(float64(len(submitted)), "jobs")
	b.ReportMetric(float64(loadClients), "clients")
	b.ReportMetric(ms(loadInterval), "interval-ms")
	b.ReportMetric(float64(heavyVets*len(loadHeavy)/2), "heavy-vets")
	b.ReportMetric(map[bool]float64{false: 1, true: 0}[loadInProcess], "child")
}

// jobWaits measures, from the queue's job rows, how long each submitted
// job waited: wait, from its queueing (ScheduledAt) to its start
// (AttemptedAt, set as a worker takes it), and start, the part of that
// wait after a worker was free for it. A job queued while both workers
// were vetting waits for one of them, and that is the vet's duration, not
// the queue's delay: its start is counted from the moment fewer than
// loadWorkers other jobs were running or waiting ahead of it (the
// FinalizedAt of the one that ended), which is what the target "a queued
// job starts within 100 ms of a free worker" bounds. River takes these times itself (SQLite's to the
// millisecond), in this process and on this machine's clock.
func jobWaits(b *testing.B, h *harness, submitted []int64) (wait, start []time.Duration) {
	b.Helper()
	rows, err := queueJobs(h)
	if err != nil {
		b.Fatal(err)
	}
	byID := map[int64]*rivertype.JobRow{}
	for _, r := range rows {
		if r.AttemptedAt == nil || r.FinalizedAt == nil {
			b.Fatalf("job %d is %s: not started or not finished", r.ID, r.State)
		}
		byID[r.ID] = r
	}
	for _, id := range submitted {
		r := byID[id]
		if r == nil {
			b.Fatalf("job %d is not in the queue", id)
		}
		at := *r.AttemptedAt
		// The moments a worker may have become free for r: its queueing,
		// and each end of another job before r started.
		free := []time.Time{r.ScheduledAt}
		for _, o := range rows {
			if f := *o.FinalizedAt; o.ID != id && f.After(r.ScheduledAt) && !f.After(at) {
				free = append(free, f)
			}
		}
		slices.SortFunc(free, time.Time.Compare)
		ready := free[len(free)-1]
		for _, t := range free {
			busy := 0
			for _, o := range rows {
				running := !o.AttemptedAt.After(t) && o.FinalizedAt.After(t)
				// A job queued before r and still waiting takes the
				// next free worker first.
				ahead := o.ID < id && !o.ScheduledAt.After(t) && o.AttemptedAt.After(t)
				if o.ID != id && (running || ahead) {
					busy++
				}
			}
			if busy < loadWorkers {
				ready = t
				break
			}
		}
		wait = append(wait, max(0, at.Sub(r.ScheduledAt)))
		start = append(start, max(0, at.Sub(ready)))
	}
	return wait, start
}

// queueJobs lists the vet jobs of the harness's queue, through a River
// client of its own on the same database (the service does not expose its
// own).
func queueJobs(h *harness) ([]*rivertype.JobRow, error) {
	qp, err := gate.QueuePath(h.dsn)
	if err != nil {
		return nil, err
	}
	var (
		db  *sql.DB
		drv riverdriver.Driver[*sql.Tx]
	)
	if strings.HasPrefix(qp, "postgres") {
		if db, err = sql.Open("pgx", qp); err != nil {
			return nil, err
		}
		drv = riverdatabasesql.New(db)
	} else {
		if db, err = sql.Open("sqlite", qp); err != nil {
			return nil, err
		}
		db.SetMaxOpenConns(1)
		drv = riversqlite.New(db)
	}
	defer db.Close()
	rc, err := river.NewClient(drv, &river.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return nil, err
	}
	const most = 10_000
	res, err := rc.JobList(context.Background(), river.NewJobListParams().Kinds(gate.VetArgs{}.Kind()).First(most))
	if err != nil {
		return nil, err
	}
	if len(res.Jobs) == most {
		return nil, fmt.Errorf("more than %d jobs in the queue", most-1)
	}
	return res.Jobs, nil
}

// postVet submits a job as a rollout system does.
func postVet(ctx context.Context, cl *http.Client, url, token string, v gate.VetRequest) (int64, error) {
	body, err := json.Marshal(v)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/v1/vet", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := cl.Do(req)
	if err != nil {
		return 0, fmt.Errorf("POST /v1/vet: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, fmt.Errorf("POST /v1/vet: %w", err)
	}
	var a gate.VetAnswer
	if resp.StatusCode != http.StatusAccepted || json.Unmarshal(data, &a) != nil || a.Job <= 0 {
		return 0, fmt.Errorf("POST /v1/vet = %d: %s", resp.StatusCode, data)
	}
	return a.Job, nil
}

// writeImage writes a tiny root file system, as firmware does, from any
// goroutine.
func writeImage(dir, passwd string) error {
	for name, body := range map[string]string{"etc/passwd": passwd, "etc/os-release": "VERSION_ID=1.0.0\n", "bin/app": "app 1.0\n"} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// quantile is the nearest-rank q-quantile of ds (q = 1: the largest); it
// sorts ds.
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	i := int(math.Ceil(q*float64(len(ds)))) - 1
	return ds[min(max(i, 0), len(ds)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// lastLines is the end of a log.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
