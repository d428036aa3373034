package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/audit"
)

func newAuditCmd(g *globals) *cobra.Command {
	var (
		pf         pipelineFlags
		baseline   string
		from       string
		repository string
		dsn        string
		force      bool
		newSeg     bool
		shard      string
	)
	cmd := &cobra.Command{
		Use:   "audit REF... | --from FILE | --repository HOST/REPO",
		Short: "Vet many stored images, concurrently and resumably",
		Long: `Audit vets every candidate it is given, --jobs at a time, and records each
verdict in the store. A candidate the store already has a verdict for under
the same policy is skipped unless --force, so an audit that was stopped
finishes the rest when run again. --baseline previous compares each candidate
with the newest earlier version of the same repository that has a pass
verdict. Prints a summary; exits with the worst outcome (1 when a candidate
could not be vetted, then 2 for a fail, 3 for a review, 0 when all pass).`,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			// --jobs bounds the candidates vetted at once; each vet hashes
			// with one worker, so that N jobs keep N cores busy.
			auditJobs := max(pf.jobs, 1)
			pf.jobs = 1
			refs := append([]string(nil), args...)
			if from != "" {
				more, err := readRefs(from)
				if err != nil {
					return &pipeline.InputError{Role: "reference list", Ref: from, Err: err}
				}
				refs = append(refs, more...)
			}
			var sh audit.Shard
			if shard != "" {
				var err error
				if sh, err = audit.ParseShard(shard); err != nil {
					return fmt.Errorf("--shard: %w", err)
				}
			}
			if len(refs) == 0 && repository == "" {
				return fmt.Errorf("audit: no candidates (give references, --from FILE or --repository HOST/REPO)")
			}
			p, err := g.pipeline(ctx, &pf, nil)
			if err != nil {
				return err
			}
			st, err := openStoreForWriting(ctx, dsn, newSeg, g.log)
			if err != nil {
				return err
			}
			defer st.Close()
			p = p.WithStore(st)
			if repository != "" {
				tags, err := p.Resolver().Tags(ctx, repository)
				if err != nil {
					return &pipeline.InputError{Role: "repository", Ref: repository, Err: err}
				}
				for _, t := range tags {
					refs = append(refs, repository+":"+t)
				}
			}
			if len(refs) == 0 {
				return fmt.Errorf("audit: no candidates (give references, --from FILE or --repository HOST/REPO)")
			}
			sum, err := audit.Run(ctx, audit.Options{Refs: refs, Baseline: baseline, Jobs: auditJobs, Force: force, Shard: sh,
				Pipeline: p, Progress: newProgress(g.stderr), Log: g.log})
			if err != nil {
				return err
			}
			if err := pf.attest.write(sum.Attestations()); err != nil {
				return err
			}
			if err := writeSummary(g, sum, pf.format, pf.output); err != nil {
				return err
			}
			if sum.Errors > 0 {
				return fmt.Errorf("%d of %d candidates could not be vetted (see the summary)", sum.Errors, sum.Total)
			}
			if p.Policy().Warn() {
				// The policy only warns: the verdicts are recorded.
				return nil
			}
			return verdictResult(sum.Worst())
		},
	}
	pf.register(cmd, "candidates vetted at once")
	pf.attest.register(cmd)
	f := cmd.Flags()
	f.StringVar(&baseline, "baseline", "", "the baseline of every candidate: a reference, or \"previous\" (the newest earlier version of the same repository with a pass verdict)")
	f.StringVar(&from, "from", "", "read candidate references from this file, one a line (# starts a comment)")
	f.StringVar(&repository, "repository", "", "audit every tag of this repository (HOST/REPO)")
	f.StringVar(&dsn, "store", "", "verdict store DSN, sqlite:PATH (default: sqlite:$XDG_DATA_HOME/fwvet/verdicts.db)")
	f.BoolVar(&newSeg, "store-new-segment", false, "when the store's chain is broken, start a new segment (a hashed record naming the break) instead of refusing to write")
	f.BoolVar(&force, "force", false, "vet again what the store has a verdict for under this policy")
	f.StringVar(&shard, "shard", "", "vet only shard I of N (I/N, 0 <= I < N): the references whose hash falls to it, so that N workers given the same list share it (a Kubernetes Indexed Job: --shard $(JOB_COMPLETION_INDEX)/N)")
	return cmd
}

// readRefs reads one reference a line; blank lines and # comments are skipped.
func readRefs(file string) ([]string, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if i := strings.Index(l, "#"); i >= 0 {
			l = strings.TrimSpace(l[:i])
		}
		if l != "" {
			out = append(out, l)
		}
	}
	return out, sc.Err()
}

// newProgress is a live bar on a terminal, and plain periodic lines
// otherwise (CI logs, pipes).
func newProgress(w io.Writer) audit.Progress {
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return &barProgress{w: w}
	}
	return &lineProgress{w: w, every: 10 * time.Second}
}

type barProgress struct {
	w   io.Writer
	p   *mpb.Progress
	bar *mpb.Bar
}

func (b *barProgress) Start(total int) {
	b.p = mpb.New(mpb.WithOutput(b.w), mpb.WithWidth(40))
	b.bar = b.p.AddBar(int64(total),
		mpb.PrependDecorators(decor.Name("audit "), decor.CountersNoUnit("%d/%d")),
		mpb.AppendDecorators(decor.AverageSpeed(0, "%.1f/s "), decor.Name("ETA "), decor.AverageETA(decor.ET_STYLE_GO)))
}

func (b *barProgress) Done(audit.Outcome) { b.bar.Increment() }

func (b *barProgress) Finish() {
	if !b.bar.Completed() {
		b.bar.Abort(false)
	}
	b.p.Wait()
}

type lineProgress struct {
	w          io.Writer
	every      time.Duration
	mu         sync.Mutex
	total      int
	done       int
	start, was time.Time
}

func (l *lineProgress) Start(total int) {
	l.total, l.start, l.was = total, time.Now(), time.Now()
	fmt.Fprintf(l.w, "audit: %d candidates\n", total)
}

func (l *lineProgress) Done(audit.Outcome) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.done++
	if time.Since(l.was) >= l.every || l.done == l.total {
		l.was = time.Now()
		el := time.Since(l.start)
		rate := float64(l.done) / el.Seconds()
		eta := time.Duration(float64(l.total-l.done) / max(rate, 1e-9) * float64(time.Second))
		fmt.Fprintf(l.w, "audit: %d/%d done, %.1f/s, ETA %s\n", l.done, l.total, rate, eta.Round(time.Second))
	}
}

func (l *lineProgress) Finish() {}

// writeSummary prints the audit's result: a table for people, or JSON.
func writeSummary(g *globals, s *audit.Summary, format, output string) error {
	write := func(w io.Writer) error {
		if format == "json" {
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			return enc.Encode(s)
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "%d candidates in %s: %d pass, %d review, %d fail, %d errors (%d vetted before, skipped)\n\n",
			s.Total, s.Took.Round(time.Millisecond), s.Counts[pipeline.VerdictPass], s.Counts[pipeline.VerdictReview],
			s.Counts[pipeline.VerdictFail], s.Errors, s.Skipped)
		fmt.Fprintln(tw, "VERDICT\tCANDIDATE\tTOP FINDING")
		for _, o := range s.Outcomes {
			if o.Verdict == pipeline.VerdictPass && o.Err == "" {
				continue
			}
			ref := o.Ref
			if o.Platform != "" {
				ref += " [" + o.Platform + "]"
			}
			switch {
			case o.Err != "":
				fmt.Fprintf(tw, "error\t%s\t%s\n", ref, o.Err)
			case o.Top != nil:
				fmt.Fprintf(tw, "%s\t%s\t%s %s: %s\n", o.Verdict, ref, o.Top.ID, o.Top.Path, o.Top.Message)
			case o.Skipped:
				fmt.Fprintf(tw, "%s\t%s\t(vetted before: fwvet verdicts show %d)\n", o.Verdict, ref, o.Record)
			default:
				fmt.Fprintf(tw, "%s\t%s\t\n", o.Verdict, ref)
			}
		}
		return tw.Flush()
	}
	if output == "" {
		return write(g.stdout)
	}
	return writeAtomic(output, write)
}
