package gate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/fwvet/fwvet/pipeline/vet"
)

// Child runs each vet in a process of its own, at a lower CPU priority
// than the service's. In one process a vet starves the API: Go's
// scheduler lets a goroutine that computes run for 10 ms before it gives
// its thread to a lookup, and a vet's hashing and its collector keep every
// thread busy, so that lookups polled every second while a 32 MB image
// was vetted four times (two at once) answered in 30 ms at the median and
// 127 to 148 ms at p99 (against 0.5 and 2 ms without those vets, and 0.6
// and 5.6 ms with them in children, on SQLite). In a child the kernel's scheduler puts
// the service's threads first, the vet's memory is the child's (returned
// when it exits), and a vet that crashes on hostile input, or that the
// kernel kills for its memory, ends its job as an error instead of
// taking the gate down with it.
//
// The child is Path with Args (fwvet vet-job and the service's pipeline
// flags); it reads a ChildJob as JSON from its standard input, vets it
// and writes a ChildAnswer to its standard output (RunChild does both).
type Child struct {
	Path string
	Args []string
	// Env is added to the service's environment.
	Env []string
	// Nice is added to the child's niceness (ChildNice, say; at most 19).
	Nice int
	// Stderr takes the child's log; nil discards it.
	Stderr io.Writer
}

// ChildNice is how much lower than the service's fwvet serve puts a vet's
// CPU priority by default: at 19 a busy vet thread weighs 15 against a
// service thread's 1024, so that the vets take what the service (and a
// PostgreSQL server beside it) leave, which is all of the CPUs while no
// lookup is being answered. With four vets of a 32 MB image beside
// lookups polled every second, on a PostgreSQL store on the same two
// cores, the lookups' p99 was 10 to 12 ms at 19 and 14 ms at 10 (21 to
// 60 ms at 10 before the autogroup was lowered too).
const ChildNice = 19

// ChildJob is what a child vets.
type ChildJob struct {
	Job       int64  `json:"job"`
	Candidate string `json:"candidate"`
	Baseline  string `json:"baseline,omitempty"`
	// Manifest is the path of the job's manifest file, or empty.
	Manifest string `json:"manifest,omitempty"`
	// PolicyDigest is the service's policy: a child whose policy file
	// now reads otherwise refuses to vet.
	PolicyDigest string `json:"policy_digest"`
}

// ChildAnswer is what a child says: the verdicts it recorded, or why it
// reached none.
type ChildAnswer struct {
	Outcomes []Outcome `json:"outcomes,omitempty"`
	Error    string    `json:"error,omitempty"`
}

// Outcome is one platform's verdict, as a vet recorded it.
type Outcome struct {
	VerdictRef
	// Attestation is the signed verdict, when the pipeline signs.
	Attestation []byte `json:"attestation,omitempty"`
}

// maxAnswerBytes bounds what the service reads of a child's answer: a
// few signed verdicts.
const maxAnswerBytes = 64 << 20

// vet runs one job in a child process and waits for it. An error is
// the vet's (the child answered one) or the child's end (a crash, a
// kill): either way no verdict was reached; when ctx ends, the child is
// killed.
func (c *Child) vet(ctx context.Context, job ChildJob) ([]Outcome, error) {
	in, err := json.Marshal(job)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, c.Path, c.Args...)
	cmd.Env = append(os.Environ(), c.Env...)
	cmd.Stdin = bytes.NewReader(in)
	var out bytes.Buffer
	cmd.Stdout = &limitedBuffer{b: &out, n: maxAnswerBytes}
	crash := &crashLine{}
	cmd.Stderr = crash
	if c.Stderr != nil {
		cmd.Stderr = io.MultiWriter(c.Stderr, crash)
	}
	cmd.WaitDelay = 5 * time.Second
	isolate(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the vet process %s: %w", c.Path, err)
	}
	if c.Nice > 0 {
		lowerPriority(cmd.Process.Pid, c.Nice)
	}
	werr := cmd.Wait()
	if ctx.Err() != nil {
		return nil, fmt.Errorf("vet process: %w", ctx.Err())
	}
	var a ChildAnswer
	if derr := json.Unmarshal(out.Bytes(), &a); derr != nil || a.Error == "" && len(a.Outcomes) == 0 {
		// No answer: the child died before it could give one.
		why := "gave no answer"
		if werr != nil {
			why = werr.Error()
		}
		if line := crash.line(); line != "" {
			why += ": " + line
		}
		return nil, fmt.Errorf("the vet process %s", why)
	}
	if a.Error != "" {
		return nil, errors.New(a.Error)
	}
	return a.Outcomes, nil
}

// RunChild is the child's side: it reads a ChildJob from in, vets it with
// the pipeline newPipeline builds for it (its manifest, its job id in the
// log), and writes a ChildAnswer to out. It returns an error only when it
// could not read the job or write the answer; a vet's error is the answer.
func RunChild(ctx context.Context, in io.Reader, out io.Writer, newPipeline func(job ChildJob, manifest []string) (*vet.Pipeline, error)) error {
	var job ChildJob
	dec := json.NewDecoder(io.LimitReader(in, MaxBodyBytes+MaxRefBytes*4))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&job); err != nil {
		return fmt.Errorf("reading the job from standard input: %w", err)
	}
	var manifest []string
	if job.Manifest != "" {
		manifest = []string{job.Manifest}
	}
	var a ChildAnswer
	p, err := newPipeline(job, manifest)
	if err == nil {
		a.Outcomes, err = vetHere(ctx, p, job.PolicyDigest, job.Candidate, job.Baseline)
	}
	if err != nil {
		a.Error = err.Error()
	}
	if err := json.NewEncoder(out).Encode(a); err != nil {
		return fmt.Errorf("writing the answer: %w", err)
	}
	return nil
}

// vetHere vets a job in this process, under the policy of digest policy.
func vetHere(ctx context.Context, p *vet.Pipeline, policy, candidate, baseline string) ([]Outcome, error) {
	if d := p.Policy().Digest(); d != policy {
		return nil, fmt.Errorf("the policy changed since the service started (%s, not %s): restart the service to answer under the new one", d, policy)
	}
	res, err := p.Vet(ctx, candidate, baseline)
	if err != nil {
		return nil, err
	}
	out := make([]Outcome, 0, len(res))
	for _, r := range res {
		if r.Record == nil {
			return nil, errors.New("the pipeline recorded no verdict")
		}
		out = append(out, Outcome{
			VerdictRef:  VerdictRef{ReportID: r.Record.ID, Verdict: r.Report.Verdict, Digest: r.Report.Candidate.Digest, Platform: r.Report.Candidate.Platform},
			Attestation: r.Attestation,
		})
	}
	return out, nil
}

// limitedBuffer keeps the first n bytes written to it and fails past them.
type limitedBuffer struct {
	b *bytes.Buffer
	n int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if l.b.Len()+len(p) > l.n {
		return 0, fmt.Errorf("the vet process's answer is larger than %d bytes", l.n)
	}
	return l.b.Write(p)
}

// crashLine remembers what a dying Go process says first ("panic: …",
// "fatal error: …", "runtime: out of memory…") or, failing that, the last
// line it wrote, at most maxCrashLine bytes of it.
type crashLine struct {
	mu      sync.Mutex
	partial []byte
	first   string
	last    string
}

const maxCrashLine = 512

func (c *crashLine) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	rest := p
	for len(rest) > 0 {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			if room := maxCrashLine - len(c.partial); room > 0 {
				c.partial = append(c.partial, rest[:min(room, len(rest))]...)
			}
			break
		}
		if room := maxCrashLine - len(c.partial); room > 0 {
			c.partial = append(c.partial, rest[:min(room, i)]...)
		}
		c.end()
		rest = rest[i+1:]
	}
	return len(p), nil
}

// end takes the line gathered so far.
func (c *crashLine) end() {
	line := strings.TrimSpace(string(c.partial))
	c.partial = c.partial[:0]
	if line == "" {
		return
	}
	c.last = line
	if c.first == "" {
		for _, p := range []string{"panic: ", "fatal error: ", "runtime: "} {
			if strings.HasPrefix(line, p) {
				c.first = line
			}
		}
	}
}

func (c *crashLine) line() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.partial) > 0 {
		c.end()
	}
	if c.first != "" {
		return c.first
	}
	return c.last
}
