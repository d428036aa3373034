package gate

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/riverqueue/river/rivertype"
)

// metrics are the service's Prometheus metrics, in a registry of its own.
type metrics struct {
	reg         *prometheus.Registry
	handler     http.Handler
	verdicts    *prometheus.CounterVec
	decisions   *prometheus.CounterVec
	errors      prometheus.Counter
	queueWait   prometheus.Histogram
	vetDuration prometheus.Histogram
}

// durationBuckets span a vet: from a small directory to a large image.
var durationBuckets = []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800}

func newMetrics(s *Service) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.verdicts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fwvet_verdicts_total", Help: "Verdicts recorded by this process's jobs, by verdict.",
	}, []string{"verdict"})
	m.decisions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fwvet_decisions_total", Help: "Reviewers' decisions recorded through this process, by action.",
	}, []string{"action"})
	m.errors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "fwvet_vet_errors_total", Help: "Jobs of this process that reached no verdict.",
	})
	m.queueWait = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "fwvet_queue_wait_seconds", Help: "Time from a job's queueing to its first start.", Buckets: durationBuckets,
	})
	m.vetDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "fwvet_vet_duration_seconds", Help: "Time a job's vet took (fetch, unpack, diff, analysis, policy, record).", Buckets: durationBuckets,
	})
	for _, v := range []string{"pass", "review", "fail"} {
		m.verdicts.WithLabelValues(v)
	}
	m.reg.MustRegister(m.verdicts, m.decisions, m.errors, m.queueWait, m.vetDuration, &jobsCollector{s: s},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorLog: nil})
	return m
}

// jobsCollector counts the queue's jobs by state when scraped.
type jobsCollector struct{ s *Service }

var jobsDesc = prometheus.NewDesc("fwvet_jobs", "Jobs in the queue, by state (queued, running, done, error).", []string{"state"}, nil)

func (c *jobsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- jobsDesc }

func (c *jobsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	counts := map[string]float64{StateQueued: 0, StateRunning: 0, StateDone: 0, StateError: 0}
	rows, err := c.s.db.QueryContext(ctx, bind(c.s.pg, `SELECT state, count(*) FROM river_job WHERE kind = ? GROUP BY state`), kindVet)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(jobsDesc, err)
		return
	}
	defer rows.Close()
	for rows.Next() {
		var st string
		var n float64
		if err := rows.Scan(&st, &n); err != nil {
			ch <- prometheus.NewInvalidMetric(jobsDesc, err)
			return
		}
		counts[jobState(rivertypeState(st))] += n
	}
	if err := rows.Err(); err != nil {
		ch <- prometheus.NewInvalidMetric(jobsDesc, err)
		return
	}
	for st, n := range counts {
		ch <- prometheus.MustNewConstMetric(jobsDesc, prometheus.GaugeValue, n, st)
	}
}

func rivertypeState(s string) rivertype.JobState { return rivertype.JobState(s) }
