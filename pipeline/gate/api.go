package gate

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/sirupsen/logrus"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/source"
)

// Bounds on requests.
const (
	MaxBodyBytes = 1 << 20
	MaxRefBytes  = 1024
	MaxKeyBytes  = 256
)

// The states of a job and of a verdict answer.
const (
	StateQueued  = "queued"
	StateRunning = "running"
	StateDone    = "done"
	StateError   = "error"
	// StatePending and StateUnknown answer for a digest: a job for it is
	// queued or running; nothing is known of it.
	StatePending = "pending"
	StateUnknown = "unknown"
)

// VetRequest is the body of POST /v1/vet.
type VetRequest struct {
	Candidate      string          `json:"candidate"`
	Baseline       string          `json:"baseline,omitempty"`
	Manifest       json.RawMessage `json:"manifest,omitempty"`
	IdempotencyKey string          `json:"idempotency_key,omitempty"`
}

// VetAnswer is the answer to POST /v1/vet.
type VetAnswer struct {
	Job int64 `json:"job"`
	// Duplicate says that the idempotency key named a job already queued.
	Duplicate bool `json:"duplicate,omitempty"`
}

// Job is the answer to GET /v1/jobs/{id}.
type Job struct {
	ID        int64        `json:"id"`
	State     string       `json:"state"`
	Candidate string       `json:"candidate"`
	Baseline  string       `json:"baseline,omitempty"`
	Verdicts  []VerdictRef `json:"verdicts"`
	Error     string       `json:"error,omitempty"`
	CreatedAt time.Time    `json:"created_at"`
	Attempts  int          `json:"attempts"`
}

// Verdict is the answer to GET /v1/verdicts/{digest}. Only state done
// carries a verdict.
type Verdict struct {
	Digest      string             `json:"digest"`
	Platform    string             `json:"platform,omitempty"`
	State       string             `json:"state"`
	Verdict     pipeline.Verdict   `json:"verdict,omitempty"`
	Decision    *pipeline.Decision `json:"decision,omitempty"`
	ReportID    int64              `json:"report_id,omitempty"`
	Attestation json.RawMessage    `json:"attestation,omitempty"`
	// Job is the latest job for the digest when it is pending or failed,
	// and Error why it failed.
	Job          int64  `json:"job,omitempty"`
	Error        string `json:"error,omitempty"`
	PolicyDigest string `json:"policy_digest"`
}

// DecisionRequest is the body of POST /v1/verdicts/{id}/decision.
type DecisionRequest struct {
	Approve bool   `json:"approve"`
	Reason  string `json:"reason"`
	By      string `json:"by"`
}

// errorAnswer is every error's body.
type errorAnswer struct {
	Error string `json:"error"`
}

// Handler is the service's HTTP API.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	s.route(mux, "POST /v1/vet", RoleSubmit, s.postVet)
	s.route(mux, "GET /v1/jobs/{id}", RoleRead, s.getJob)
	s.route(mux, "GET /v1/verdicts/{digest}", RoleRead, s.getVerdict)
	s.route(mux, "POST /v1/verdicts/{id}/decision", RoleReview, s.postDecision)
	s.route(mux, "GET /metrics", RoleRead, s.metrics.handler.ServeHTTP)
	s.pageRoutes(mux)
	return mux
}

// route adds a handler behind the bearer tokens of a role.
func (s *Service) route(mux *http.ServeMux, pattern string, need Role, h http.HandlerFunc) {
	mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		log := s.log.WithFields(logrus.Fields{"method": r.Method, "path": r.URL.Path, "remote": remoteHost(r)})
		auth := r.Header.Get("Authorization")
		tok, ok := strings.CutPrefix(auth, "Bearer ")
		if !ok || tok == "" {
			log.Warn("refused: no bearer token")
			w.Header().Set("WWW-Authenticate", `Bearer realm="fwvet"`)
			writeError(w, http.StatusUnauthorized, "a bearer token is required (fwvet serve token add)")
			return
		}
		role, err := s.tokens.Check(r.Context(), tok)
		if err != nil {
			if !errors.Is(err, errBadToken) {
				log.WithError(err).Error("checking a token")
				writeError(w, http.StatusInternalServerError, "checking the token failed")
				return
			}
			log.Warn("refused: unknown or revoked token")
			w.Header().Set("WWW-Authenticate", `Bearer realm="fwvet", error="invalid_token"`)
			writeError(w, http.StatusUnauthorized, "unknown or revoked token")
			return
		}
		if !role.allows(need) {
			log.WithFields(logrus.Fields{"role": role, "need": need}).Warn("refused: wrong role")
			writeError(w, http.StatusForbidden, fmt.Sprintf("a %s token may not do this: it needs the %s role", role, need))
			return
		}
		h(w, r)
	})
}

func remoteHost(r *http.Request) string {
	if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return h
	}
	return r.RemoteAddr
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, errorAnswer{Error: msg})
}

// decodeBody decodes a JSON body strictly: one object of at most
// MaxBodyBytes, with no unknown fields. It answers the error itself.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			err = errors.New("data after the JSON object")
		}
	}
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the body is larger than %d bytes", MaxBodyBytes))
		return false
	case err != nil:
		writeError(w, http.StatusBadRequest, "malformed request: "+err.Error())
		return false
	}
	return true
}

func (s *Service) postVet(w http.ResponseWriter, r *http.Request) {
	var req VetRequest
	if !decodeBody(w, r, &req) {
		return
	}
	if err := s.validate(&req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	var manifest json.RawMessage
	if len(req.Manifest) > 0 && !bytes.Equal(bytes.TrimSpace(req.Manifest), []byte("null")) {
		var buf bytes.Buffer
		if err := json.Compact(&buf, req.Manifest); err != nil {
			writeError(w, http.StatusBadRequest, "manifest: "+err.Error())
			return
		}
		manifest = buf.Bytes()
	}
	res, err := s.river.Insert(r.Context(), VetArgs{Candidate: req.Candidate, Baseline: req.Baseline, Manifest: manifest, IdempotencyKey: req.IdempotencyKey}, nil)
	if err != nil {
		s.log.WithError(err).Error("queueing a job")
		writeError(w, http.StatusInternalServerError, "queueing the job failed")
		return
	}
	s.log.WithFields(logrus.Fields{"job": res.Job.ID, "candidate": req.Candidate, "duplicate": res.UniqueSkippedAsDuplicate}).Info("job queued")
	writeJSON(w, http.StatusAccepted, VetAnswer{Job: res.Job.ID, Duplicate: res.UniqueSkippedAsDuplicate})
}

// validate checks a request's fields and that its references are allowed.
func (s *Service) validate(req *VetRequest) error {
	if req.Candidate == "" {
		return errors.New("candidate: required")
	}
	if len(req.IdempotencyKey) > MaxKeyBytes {
		return fmt.Errorf("idempotency_key: longer than %d bytes", MaxKeyBytes)
	}
	if m := bytes.TrimSpace(req.Manifest); len(m) > 0 && m[0] != '{' && !bytes.Equal(m, []byte("null")) {
		return errors.New("manifest: want a JSON object (the release manifest itself)")
	}
	for _, f := range []struct{ field, ref string }{{"candidate", req.Candidate}, {"baseline", req.Baseline}} {
		if f.ref == "" {
			continue
		}
		if err := s.allowed(f.ref); err != nil {
			return fmt.Errorf("%s: %w", f.field, err)
		}
	}
	return nil
}

// allowed checks one reference: its length, and that its registry is one
// the service allows (or, for a local path, that local paths are).
func (s *Service) allowed(ref string) error {
	if len(ref) > MaxRefBytes {
		return fmt.Errorf("the reference is longer than %d bytes", MaxRefBytes)
	}
	if strings.ContainsFunc(ref, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return errors.New("the reference contains control characters")
	}
	if !source.IsRegistry(ref) {
		if !s.cfg.AllowLocal {
			return fmt.Errorf("%q is a local path, and this service vets only images of its allowed registries", ref)
		}
		return nil
	}
	nref, err := name.ParseReference(strings.TrimPrefix(ref, "registry:"))
	if err != nil {
		return fmt.Errorf("%q: %w", ref, err)
	}
	reg := nref.Context().RegistryStr()
	host := reg
	if h, _, err := net.SplitHostPort(reg); err == nil {
		host = h
	}
	for _, a := range s.cfg.AllowRegistries {
		if a == reg || a == host {
			return nil
		}
	}
	return fmt.Errorf("registry %s is not allowed by this service", reg)
}

// jobState is the API's state of a River job.
func jobState(st rivertype.JobState) string {
	switch st {
	case rivertype.JobStateRunning:
		return StateRunning
	case rivertype.JobStateCompleted:
		return StateDone
	case rivertype.JobStateCancelled, rivertype.JobStateDiscarded:
		return StateError
	default: // available, pending, retryable, scheduled
		return StateQueued
	}
}

// jobView is the API's view of a River job.
func jobView(row *rivertype.JobRow) (*Job, error) {
	var a VetArgs
	if err := json.Unmarshal(row.EncodedArgs, &a); err != nil {
		return nil, fmt.Errorf("job %d: %w", row.ID, err)
	}
	j := &Job{ID: row.ID, State: jobState(row.State), Candidate: a.Candidate, Baseline: a.Baseline, Verdicts: []VerdictRef{},
		CreatedAt: row.CreatedAt, Attempts: row.Attempt}
	var out jobOutput
	if b := row.Output(); len(b) > 0 {
		if err := json.Unmarshal(b, &out); err != nil {
			return nil, fmt.Errorf("job %d: output: %w", row.ID, err)
		}
	}
	if j.State == StateDone {
		j.Verdicts = append(j.Verdicts, out.Verdicts...)
	}
	if j.State == StateError {
		j.Error = out.Error
		if j.Error == "" && len(row.Errors) > 0 {
			j.Error = row.Errors[len(row.Errors)-1].Error
		}
		if j.Error == "" {
			j.Error = "the job was " + string(row.State)
		}
	}
	return j, nil
}

func (s *Service) getJob(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		writeError(w, http.StatusBadRequest, "job id: want a positive integer")
		return
	}
	row, err := s.river.JobGet(r.Context(), id)
	if errors.Is(err, rivertype.ErrNotFound) || (err == nil && row.Kind != kindVet) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no job %d", id))
		return
	}
	if err != nil {
		s.log.WithError(err).Error("reading a job")
		writeError(w, http.StatusInternalServerError, "reading the job failed")
		return
	}
	j, err := jobView(row)
	if err != nil {
		s.log.WithError(err).Error("reading a job")
		writeError(w, http.StatusInternalServerError, "reading the job failed")
		return
	}
	writeJSON(w, http.StatusOK, j)
}

// getVerdict answers what a rollout system polls: the latest verdict of a
// digest under the service's policy; else whether a job for it is pending
// or failed; else that nothing is known of it. A job is "for" a digest
// when its candidate is the digest itself or a reference pinned to it
// (REPO@DIGEST).
func (s *Service) getVerdict(w http.ResponseWriter, r *http.Request) {
	digest := r.PathValue("digest")
	platform := r.URL.Query().Get("platform")
	if digest == "" || len(digest) > MaxRefBytes || len(platform) > 100 {
		writeError(w, http.StatusBadRequest, "digest: want an image digest (sha256:…)")
		return
	}
	ctx := r.Context()
	v := &Verdict{Digest: digest, Platform: platform, State: StateUnknown, PolicyDigest: s.policyDigest}
	rec, err := s.cfg.Store.Lookup(ctx, digest, platform, s.policyDigest)
	if err != nil {
		s.log.WithError(err).Error("looking up a verdict")
		writeError(w, http.StatusInternalServerError, "looking up the verdict failed")
		return
	}
	if rec != nil {
		v.State, v.Verdict, v.ReportID, v.Platform = StateDone, rec.Verdict, rec.ID, rec.Platform
		if v.Decision, err = s.cfg.Store.Decision(ctx, rec.ID); err != nil {
			s.log.WithError(err).Error("reading a decision")
			writeError(w, http.StatusInternalServerError, "reading the decision failed")
			return
		}
		if v.Attestation, err = s.attestation(ctx, rec.ID); err != nil {
			s.log.WithError(err).Error("reading a signed verdict")
			writeError(w, http.StatusInternalServerError, "reading the signed verdict failed")
			return
		}
		writeJSON(w, http.StatusOK, v)
		return
	}
	row, err := s.latestJob(ctx, digest)
	if err != nil {
		s.log.WithError(err).Error("looking up jobs")
		writeError(w, http.StatusInternalServerError, "looking up jobs failed")
		return
	}
	if row != nil {
		j, err := jobView(row)
		if err != nil {
			s.log.WithError(err).Error("reading a job")
			writeError(w, http.StatusInternalServerError, "reading the job failed")
			return
		}
		switch j.State {
		case StateQueued, StateRunning:
			v.State, v.Job = StatePending, j.ID
		case StateError:
			v.State, v.Job, v.Error = StateError, j.ID, j.Error
		}
		// A job done without a record under this policy for the digest
		// (another platform, say) leaves the digest unknown.
	}
	writeJSON(w, http.StatusOK, v)
}

// latestJob is the newest job whose candidate is digest or is pinned to it.
func (s *Service) latestJob(ctx context.Context, digest string) (*rivertype.JobRow, error) {
	suffix := "@" + digest
	where := "(args ->> '$.candidate' = @ref OR substr(args ->> '$.candidate', -@n) = @suffix)"
	if s.pg {
		where = "(args ->> 'candidate' = @ref OR right(args ->> 'candidate', @n) = @suffix)"
	}
	p := river.NewJobListParams().Kinds(kindVet).
		Where(where, river.NamedArgs{"ref": digest, "n": len(suffix), "suffix": suffix}).
		OrderBy(river.JobListOrderByID, river.SortOrderDesc).First(1)
	res, err := s.river.JobList(ctx, p)
	if err != nil {
		return nil, err
	}
	if len(res.Jobs) == 0 {
		return nil, nil
	}
	return res.Jobs[0], nil
}

// attestation is the signed verdict kept for a record, or nil.
func (s *Service) attestation(ctx context.Context, recordID int64) (json.RawMessage, error) {
	var env []byte
	err := s.db.QueryRowContext(ctx, bind(s.pg, `SELECT envelope FROM gate_attestations WHERE record_id = ?`), recordID).Scan(&env)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil || !json.Valid(env) {
		return nil, err
	}
	return json.RawMessage(env), nil
}

func (s *Service) postDecision(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		writeError(w, http.StatusBadRequest, "verdict id: want the report_id of a verdict")
		return
	}
	var req DecisionRequest
	if !decodeBody(w, r, &req) {
		return
	}
	d := pipeline.Decision{VerdictID: id, Approve: req.Approve, Reason: req.Reason, By: req.By}
	if err := d.Validate(); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	ctx := r.Context()
	rec, err := s.cfg.Store.Get(ctx, id)
	if err != nil || rec == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no verdict %d", id))
		return
	}
	if rec.PolicyDigest != s.policyDigest && pipeline.IsVerdict(rec.Verdict) {
		s.log.WithField("verdict", id).Info("deciding a verdict reached under another policy")
	}
	drec, err := s.cfg.Store.AppendDecision(ctx, d)
	if errors.Is(err, pipeline.ErrNotDecidable) {
		writeError(w, http.StatusConflict, err.Error())
		return
	}
	if err != nil {
		s.log.WithError(err).Error("recording a decision")
		writeError(w, http.StatusInternalServerError, "recording the decision failed")
		return
	}
	dec, err := s.cfg.Store.Decision(ctx, id)
	if err != nil || dec == nil {
		s.log.WithError(err).Error("reading a decision back")
		writeError(w, http.StatusInternalServerError, "reading the decision back failed")
		return
	}
	s.metrics.decisions.WithLabelValues(dec.Action()).Inc()
	s.log.WithFields(logrus.Fields{"verdict": id, "decision": drec.ID, "action": dec.Action(), "by": dec.By}).Info("decision recorded")
	writeJSON(w, http.StatusCreated, dec)
}
