package gate

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/sirupsen/logrus"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/vet"
)

// kindVet is the River kind of a vet job.
const kindVet = "fwvet_vet"

// VetArgs is a queued vet: what POST /v1/vet asked for.
type VetArgs struct {
	Candidate string `json:"candidate"`
	Baseline  string `json:"baseline,omitempty"`
	// Manifest is the release manifest, a JSON object, or empty.
	Manifest json.RawMessage `json:"manifest,omitempty"`
	// IdempotencyKey makes the job unique: a second submission with the
	// same key is the same job.
	IdempotencyKey string `json:"idempotency_key,omitempty" river:"unique"`
}

// Kind implements river.JobArgs.
func (VetArgs) Kind() string { return kindVet }

// uniqueStates are the states in which a job keeps its idempotency key:
// all of them, until the job is removed (after 30 days).
var uniqueStates = []rivertype.JobState{
	rivertype.JobStateAvailable, rivertype.JobStateCancelled, rivertype.JobStateCompleted,
	rivertype.JobStateDiscarded, rivertype.JobStatePending, rivertype.JobStateRetryable,
	rivertype.JobStateRunning, rivertype.JobStateScheduled,
}

// InsertOpts makes a job with an idempotency key unique by that key.
func (a VetArgs) InsertOpts() river.InsertOpts {
	if a.IdempotencyKey == "" {
		return river.InsertOpts{}
	}
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: uniqueStates}}
}

// jobOutput is what a job records when it ends.
type jobOutput struct {
	// Started is recorded as a vet starts, so that a later run of the job
	// knows that an earlier one may have recorded verdicts.
	Started  bool         `json:"started,omitempty"`
	Verdicts []VerdictRef `json:"verdicts,omitempty"`
	Error    string       `json:"error,omitempty"`
}

// VerdictRef is one verdict of a job: one per platform.
type VerdictRef struct {
	ReportID int64            `json:"report_id"`
	Verdict  pipeline.Verdict `json:"verdict"`
	Digest   string           `json:"digest"`
	Platform string           `json:"platform,omitempty"`
}

type vetWorker struct {
	river.WorkerDefaults[VetArgs]
	s *Service
}

// Work vets one job. A vet that fails ends the job as an error: it is not
// retried, since the same inputs fail the same way. A job cut short by
// the service's end is retried at its next start; a retried job whose
// verdicts were already recorded is not vetted (nor recorded) again.
func (w *vetWorker) Work(ctx context.Context, job *river.Job[VetArgs]) error {
	s := w.s
	log := s.log.WithFields(logrus.Fields{"job": job.ID, "attempt": job.Attempt, "candidate": job.Args.Candidate})
	if job.Attempt == 1 && job.AttemptedAt != nil {
		s.metrics.queueWait.Observe(job.AttemptedAt.Sub(job.ScheduledAt).Seconds())
	}
	var prev jobOutput
	if b := job.Output(); len(b) > 0 {
		_ = json.Unmarshal(b, &prev)
	}
	// River puts a job its client stopped back in the queue without
	// counting the attempt, hence the mark as well as the count.
	if job.Attempt > 1 || prev.Started {
		refs, err := s.recorded(ctx, job)
		if err != nil {
			return err
		}
		if len(refs) > 0 {
			log.Info("verdicts of this job were recorded before it was interrupted: not vetting again")
			return river.RecordOutput(ctx, jobOutput{Started: true, Verdicts: refs})
		}
	}
	if _, err := s.river.JobUpdate(ctx, job.ID, &river.JobUpdateParams{Output: jobOutput{Started: true}}); err != nil {
		return fmt.Errorf("marking the job started: %w", err)
	}
	start := time.Now()
	refs, err := s.vet(ctx, job.ID, job.Args, log)
	s.metrics.vetDuration.Observe(time.Since(start).Seconds())
	if err != nil {
		if ctx.Err() != nil {
			log.WithError(err).Warn("vet interrupted; the job will be retried")
			return err
		}
		log.WithError(err).Warn("no verdict could be reached")
		s.metrics.errors.Inc()
		if oerr := river.RecordOutput(ctx, jobOutput{Started: true, Error: err.Error()}); oerr != nil {
			log.WithError(oerr).Warn("recording the job's error")
		}
		return river.JobCancel(err)
	}
	for _, r := range refs {
		s.metrics.verdicts.WithLabelValues(string(r.Verdict)).Inc()
		log.WithFields(logrus.Fields{"report_id": r.ReportID, "verdict": r.Verdict, "platform": r.Platform}).Info("verdict recorded")
	}
	return river.RecordOutput(ctx, jobOutput{Started: true, Verdicts: refs})
}

// vet runs the pipeline on a job, in a work directory of its own.
func (s *Service) vet(ctx context.Context, id int64, a VetArgs, log logrus.FieldLogger) ([]VerdictRef, error) {
	dir, err := os.MkdirTemp(s.cfg.WorkDir, fmt.Sprintf("fwvet-job-%d-", id))
	if err != nil {
		return nil, err
	}
	defer func() {
		if err := os.RemoveAll(dir); err != nil {
			log.WithError(err).Warn("removing the job's directory")
		}
	}()
	var manifest []string
	if len(a.Manifest) > 0 {
		path := filepath.Join(dir, "manifest.json")
		if err := os.WriteFile(path, a.Manifest, 0o600); err != nil {
			return nil, err
		}
		manifest = []string{path}
	}
	var outs []Outcome
	if s.cfg.Child != nil {
		job := ChildJob{Job: id, Candidate: a.Candidate, Baseline: a.Baseline, PolicyDigest: s.policyDigest}
		if len(manifest) > 0 {
			job.Manifest = manifest[0]
		}
		outs, err = s.cfg.Child.vet(ctx, job)
	} else {
		var p *vet.Pipeline
		if p, err = s.cfg.Pipeline(manifest); err == nil {
			outs, err = vetHere(ctx, p, s.policyDigest, a.Candidate, a.Baseline)
		}
	}
	if err != nil {
		return nil, err
	}
	refs := make([]VerdictRef, 0, len(outs))
	for _, o := range outs {
		if o.Attestation != nil {
			if _, err := s.db.ExecContext(ctx, bind(s.pg, `INSERT INTO gate_attestations (record_id, envelope) VALUES (?, ?)
				ON CONFLICT (record_id) DO UPDATE SET envelope = excluded.envelope`), o.ReportID, o.Attestation); err != nil {
				return nil, fmt.Errorf("keeping the signed verdict: %w", err)
			}
		}
		refs = append(refs, o.VerdictRef)
	}
	return refs, nil
}

// recordedScan bounds the newest records searched for a retried job's.
const recordedScan = 1000

// recorded finds the verdicts a retried job recorded before it was
// interrupted: records of its candidate and baseline, under the service's
// policy, made since the job was queued. (The store and the queue are two
// databases, so the job cannot note its records in the transaction that
// appends them; this search makes a restart record nothing twice.)
func (s *Service) recorded(ctx context.Context, job *river.Job[VetArgs]) ([]VerdictRef, error) {
	recs, err := s.cfg.Store.List(ctx, recordedScan)
	if err != nil {
		return nil, err
	}
	since := job.CreatedAt.Add(-time.Second)
	var out []VerdictRef
	seen := map[string]bool{}
	for _, r := range recs {
		if r.CreatedAt.Before(since) {
			break
		}
		if !pipeline.IsVerdict(r.Verdict) || r.CandidateRef != job.Args.Candidate || r.BaselineRef != job.Args.Baseline ||
			r.PolicyDigest != s.policyDigest || seen[r.Platform] {
			continue
		}
		seen[r.Platform] = true
		out = append(out, VerdictRef{ReportID: r.ID, Verdict: r.Verdict, Digest: r.CandidateDigest, Platform: r.Platform})
	}
	return out, nil
}
