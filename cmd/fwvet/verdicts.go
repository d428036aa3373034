package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/store"
	"github.com/fwvet/fwvet/pipeline/vet"
)

func newVerdictsCmd(g *globals) *cobra.Command {
	var dsn string
	cmd := &cobra.Command{
		Use:   "verdicts",
		Short: "List, show, verify and decide stored verdicts; record and list waivers",
	}
	cmd.PersistentFlags().StringVar(&dsn, "store", "", "verdict store DSN, sqlite:PATH (default: sqlite:$XDG_DATA_HOME/fwvet/verdicts.db)")

	var limit int
	var format string
	list := &cobra.Command{
		Use:   "list",
		Short: "List stored verdicts, newest first, with the latest decision on each",
		Args:  cobra.NoArgs,
		RunE: withStore(&dsn, func(cmd *cobra.Command, st pipeline.Store, _ []string) error {
			recs, err := st.List(cmd.Context(), limit)
			if err != nil {
				return err
			}
			// Every decision is newer than the verdict it decides, so the
			// decisions of the verdicts listed are listed too.
			decided := map[int64]*pipeline.Decision{}
			bodies := map[int64]string{}
			for _, r := range recs {
				if r.Verdict != pipeline.VerdictDecision && r.Verdict != pipeline.VerdictWaiver {
					continue
				}
				full, err := st.Get(cmd.Context(), r.ID)
				if err != nil {
					return err
				}
				if r.Verdict == pipeline.VerdictWaiver {
					if w, err := pipeline.ParseWaiver(full); err == nil {
						bodies[r.ID] = "waiver: " + w.Scope.String()
					} else {
						bodies[r.ID] = "unreadable waiver"
					}
					continue
				}
				d, err := pipeline.ParseDecision(full)
				if err != nil {
					bodies[r.ID] = "unreadable decision"
					continue
				}
				bodies[r.ID] = fmt.Sprintf("on %d: %s by %s", d.VerdictID, d.Action(), d.By)
				if decided[d.VerdictID] == nil { // newest first: the first one seen wins
					decided[d.VerdictID] = d
				}
			}
			if format == "json" {
				out := []listedRecord{}
				for _, r := range recs {
					out = append(out, listedRecord{Record: r, Decision: newDecisionView(decided[r.ID])})
				}
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(out)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tTIME\tVERDICT\tDECISION\tCANDIDATE\tDIGEST\tBASELINE")
			for _, r := range recs {
				dec, cand := "-", r.CandidateRef
				if d := decided[r.ID]; d != nil {
					dec = fmt.Sprintf("%s (%s by %s)", d.Verdict(), pastTense(d), d.By)
				}
				if b, ok := bodies[r.ID]; ok {
					dec = b
					if r.Verdict == pipeline.VerdictWaiver {
						dec, cand = "-", b
					}
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.CreatedAt.Format("2006-01-02 15:04:05"), r.Verdict, dec,
					cand, shortDigest(r.CandidateDigest), r.BaselineRef)
			}
			return tw.Flush()
		}),
	}
	list.Flags().IntVar(&limit, "limit", 50, "at most this many records (0: all)")
	list.Flags().StringVar(&format, "format", "text", "text or json")

	var showFormat string
	show := &cobra.Command{
		Use:   "show ID",
		Short: "Print a stored verdict's full report, and the decision on it",
		Long: `Show prints a stored verdict's report. When a person decided the verdict
(verdicts decide), the decided verdict is shown beside the computed one: in text
above the report, and in json as a top-level "decision" object added to the report
as stored (whose own "verdict" stays the computed one). A record that is not a
verdict (a decision, a waiver, a segment start) is shown as its stored JSON body.`,
		Args: cobra.ExactArgs(1),
		RunE: withStore(&dsn, func(cmd *cobra.Command, st pipeline.Store, args []string) error {
			id, err := parseRecordID(args[0])
			if err != nil {
				return err
			}
			rec, err := st.Get(cmd.Context(), id)
			if err != nil {
				return err
			}
			if !pipeline.IsVerdict(rec.Verdict) {
				if showFormat == "json" {
					_, err := g.stdout.Write(append(rec.Report, '\n'))
					return err
				}
				fmt.Fprintf(g.stdout, "record %d (%s), recorded %s, hash %s\n\n", rec.ID, rec.Verdict, rec.CreatedAt.Format("2006-01-02 15:04:05 MST"), rec.Hash)
				var body bytes.Buffer
				if err := json.Indent(&body, rec.Report, "", "  "); err != nil {
					return fmt.Errorf("record %d: stored body is not readable: %w", id, err)
				}
				_, err := fmt.Fprintln(g.stdout, body.String())
				return err
			}
			var rep pipeline.Report
			if err := json.Unmarshal(rec.Report, &rep); err != nil {
				return fmt.Errorf("verdict %d: stored report is not readable: %w", id, err)
			}
			d, err := st.Decision(cmd.Context(), id)
			if err != nil {
				return err
			}
			if showFormat == "json" {
				out := rec.Report
				if d != nil {
					if out, err = withDecision(rec.Report, newDecisionView(d)); err != nil {
						return fmt.Errorf("verdict %d: %w", id, err)
					}
				}
				_, err := g.stdout.Write(append(out, '\n'))
				return err
			}
			fmt.Fprintf(g.stdout, "verdict %d, recorded %s, hash %s\n", rec.ID, rec.CreatedAt.Format("2006-01-02 15:04:05 MST"), rec.Hash)
			if d != nil {
				fmt.Fprintf(g.stdout, "DECIDED: %s (computed: %s), %s by %s at %s (decision %d)\nreason: %s\n",
					d.Verdict(), rec.Verdict, pastTense(d), d.By, d.At.UTC().Format("2006-01-02 15:04:05 MST"), d.RecordID, d.Reason)
			}
			fmt.Fprintln(g.stdout)
			return g.writeReport([]*pipeline.Report{&rep}, "text", "")
		}),
	}
	show.Flags().StringVar(&showFormat, "format", "text", "text or json (the report exactly as stored, plus the decision on it)")

	decide := newDecideCmd(g, &dsn)
	waive, waivers := newWaiveCmd(g, &dsn), newWaiversCmd(g, &dsn)

	var head string
	var lastSegment bool
	verify := &cobra.Command{
		Use:   "verify",
		Short: "Check that no stored verdict was edited or deleted",
		Long: `Verify walks the hash chain from the first verdict and reports the first broken one,
and every segment a user started after a break (--store-new-segment). It prints the
chain's head (ID:sha256:HASH); keep it outside the store and pass it back with --head
to detect records cut from the end. Exits 2 when the chain is broken or no longer
contains the head, 1 when the store does not exist or holds no verdicts.

A break stays in the chain for good, so after a new segment verify exits 2 every time.
Once the break is dealt with, --last-segment checks only the last segment: it still
prints the earlier breaks, but exits 0 when the last segment verifies.`,
		Args: cobra.NoArgs,
		RunE: withStore(&dsn, func(cmd *cobra.Command, st pipeline.Store, _ []string) error {
			var want pipeline.ChainHead
			if head != "" {
				var err error
				if want, err = pipeline.ParseChainHead(head); err != nil {
					return fmt.Errorf("--head: %w", err)
				}
			}
			res, err := st.Verify(cmd.Context())
			if err != nil {
				return err
			}
			if res.Records == 0 && res.OK() {
				return fmt.Errorf("verifying the store %s: %w: it holds no verdicts", storeName(dsn), pipeline.ErrNoStore)
			}
			if res.Segments > 1 {
				fmt.Fprintf(g.stdout, "%d segments: the last starts at verdict %d\n", res.Segments, res.SegmentStart)
			}
			broken := false
			if !res.OK() {
				fmt.Fprintf(g.stdout, "BROKEN at verdict %d: %s (%d verdicts before it verify)\n", res.BrokenID, res.Reason, res.Records)
				// A break before the last segment's start is one a user
				// has already seen, and started the segment after.
				broken = !lastSegment || !res.Writable()
			}
			if res.TailReason != "" && res.TailBrokenID != res.BrokenID {
				fmt.Fprintf(g.stdout, "BROKEN in the last segment at verdict %d: %s\n", res.TailBrokenID, res.TailReason)
				broken = true
			}
			if want.ID != 0 {
				rec, err := st.Get(cmd.Context(), want.ID)
				if err != nil && !errors.Is(err, pipeline.ErrNoRecord) {
					return err
				}
				// Every record up to the head verified, so its stored hash is its hash.
				if err != nil || rec.Hash != want.Hash || res.Head.ID < want.ID {
					fmt.Fprintf(g.stdout, "HEAD MISSING: the chain no longer contains head %s (its head is %s)\n", want, headText(res.Head))
					broken = true
				}
			}
			if broken {
				return verdictResult(pipeline.VerdictFail)
			}
			if !res.OK() {
				fmt.Fprintf(g.stdout, "ok: the last segment (from verdict %d) is intact, head %s\n", res.SegmentStart, res.Head)
				return nil
			}
			fmt.Fprintf(g.stdout, "ok: %d verdicts, chain intact, head %s\n", res.Records, res.Head)
			return nil
		}),
	}
	verify.Flags().BoolVar(&lastSegment, "last-segment", false, "exit 0 when the last segment verifies, whatever breaks came before it (they are still printed)")
	verify.Flags().StringVar(&head, "head", "", "fail unless the chain still contains this head (ID:sha256:HASH, as an earlier verify printed it)")
	cmd.AddCommand(list, show, verify, decide, waive, waivers, newVerifyAttestationCmd(g))
	return cmd
}

// withStore opens the store the --store flag names for the command's run.
func withStore(dsn *string, run func(*cobra.Command, pipeline.Store, []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		st, err := openExistingStore(cmd.Context(), *dsn)
		if err != nil {
			return err
		}
		defer st.Close()
		return run(cmd, st, args)
	}
}

// openExistingStore opens, for reading, the store a --store flag names or
// the default one; it never creates a store.
func openExistingStore(ctx context.Context, dsn string) (pipeline.Store, error) {
	if dsn == "" {
		var err error
		if dsn, err = store.DefaultDSN(); err != nil {
			return nil, err
		}
	}
	return store.OpenExisting(ctx, dsn)
}

// openStoreForWriting opens (creating if needed) the store a writer records
// verdicts in, and walks its chain: a broken last segment is refused with a
// *pipeline.BrokenChainError unless newSegment, which then starts a segment
// that names the break.
func openStoreForWriting(ctx context.Context, dsn string, newSegment bool, log *logrus.Logger) (pipeline.Store, error) {
	st, err := openStore(ctx, dsn)
	if err != nil {
		return nil, err
	}
	res, err := st.Verify(ctx)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("checking the chain of the store %s before writing: %w", storeName(dsn), err)
	}
	if res.Writable() {
		if newSegment {
			log.Info("--store-new-segment: the chain verifies, no new segment needed")
		}
		return st, nil
	}
	if !newSegment {
		st.Close()
		return nil, &pipeline.BrokenChainError{Path: storeName(dsn), BrokenID: res.TailBrokenID, Reason: res.TailReason}
	}
	rec, err := st.StartSegment(ctx, res.TailBrokenID, res.TailReason)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("starting a new segment in the store %s: %w", storeName(dsn), err)
	}
	log.WithField("id", rec.ID).WithField("broken_id", res.TailBrokenID).Warn("the store's chain is broken; started a new segment")
	return st, nil
}

func storeName(dsn string) string {
	if dsn == "" {
		if d, err := store.DefaultDSN(); err == nil {
			return d
		}
	}
	return dsn
}

func headText(h pipeline.ChainHead) string {
	if h.ID == 0 {
		return "none (the last segment does not verify)"
	}
	return h.String()
}

func shortDigest(d string) string {
	if len(d) > 19 {
		return d[:19]
	}
	return d
}

// parseRecordID reads a record id argument.
func parseRecordID(s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("verdict id %q: want a positive number", s)
	}
	return id, nil
}

// decisionView is a decision as show and list print it: the decided
// verdict beside the computed one.
type decisionView struct {
	RecordID int64            `json:"record_id"`
	Verdict  pipeline.Verdict `json:"verdict"`
	Computed pipeline.Verdict `json:"computed"`
	Approve  bool             `json:"approve"`
	By       string           `json:"by"`
	At       time.Time        `json:"at"`
	Reason   string           `json:"reason"`
}

func newDecisionView(d *pipeline.Decision) *decisionView {
	if d == nil {
		return nil
	}
	return &decisionView{RecordID: d.RecordID, Verdict: d.Verdict(), Computed: d.Computed, Approve: d.Approve, By: d.By, At: d.At.UTC(), Reason: d.Reason}
}

// listedRecord is a record as list --format json prints it.
type listedRecord struct {
	pipeline.Record
	Decision *decisionView `json:"decision,omitempty"`
}

// withDecision adds a top-level "decision" member to a stored report (a
// JSON object), leaving every other byte as stored.
func withDecision(report []byte, d *decisionView) ([]byte, error) {
	body := bytes.TrimRight(report, " \t\r\n")
	if len(body) < 2 || body[0] != '{' || body[len(body)-1] != '}' {
		return nil, errors.New("stored report is not a JSON object")
	}
	dj, err := json.Marshal(d)
	if err != nil {
		return nil, err
	}
	out := append([]byte{}, body[:len(body)-1]...)
	if len(bytes.TrimSpace(body[1:len(body)-1])) > 0 {
		out = append(out, ',')
	}
	out = append(append(append(out, `"decision":`...), dj...), '}')
	if !json.Valid(out) {
		return nil, errors.New("stored report is not valid JSON")
	}
	return out, nil
}

func newDecideCmd(g *globals, dsn *string) *cobra.Command {
	var approve, reject bool
	var reason, by string
	var af attestFlags
	var fetch fetchFlags
	cmd := &cobra.Command{
		Use:   "decide ID --approve|--reject --reason TEXT --by NAME",
		Short: "Record a person's decision on a review or fail verdict",
		Long: `Decide appends a person's decision on a stored verdict to the chain: who decided,
when and why. Only a review or a fail verdict can be decided: a pass, a segment
start, a decision or a waiver cannot. The latest decision on a verdict wins; a later
one overrides an earlier one, and both stay in the chain. verdicts show prints the
decided verdict (pass when approved, fail when rejected) beside the computed one.
The reason may hold up to 2000 bytes, the name up to 200.`,
		Args: cobra.ExactArgs(1),
		RunE: withStore(dsn, func(cmd *cobra.Command, st pipeline.Store, args []string) error {
			id, err := parseRecordID(args[0])
			if err != nil {
				return err
			}
			if approve == reject {
				return errors.New("give exactly one of --approve and --reject")
			}
			ctx := cmd.Context()
			att, err := af.options(ctx, "")
			if err != nil {
				return err
			}
			var signer *vet.Pipeline
			if att.Signer != nil {
				if signer, err = vet.New(vet.Config{CacheDir: g.cacheDir, Insecure: fetch.insecure, Attest: att, Log: g.log}); err != nil {
					return err
				}
			}
			rec, err := st.AppendDecision(ctx, pipeline.Decision{VerdictID: id, Approve: approve, Reason: reason, By: by})
			if err != nil {
				return err
			}
			d, err := pipeline.ParseDecision(rec)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "decision %d: verdict %d (%s) %s by %s: decided %s\n", rec.ID, id, d.Computed, pastTense(d), d.By, d.Verdict())
			if signer == nil {
				return nil
			}
			// The decided verdict, signed: the summary names who decided.
			vrec, err := st.Get(ctx, id)
			if err != nil {
				return err
			}
			var rep pipeline.Report
			if err := json.Unmarshal(vrec.Report, &rep); err != nil {
				return fmt.Errorf("reading verdict %d's report: %w", id, err)
			}
			env, err := signer.Sign(ctx, &rep, d)
			if err != nil {
				return err
			}
			return af.write([][]byte{env})
		}),
	}
	cmd.Flags().BoolVar(&approve, "approve", false, "approve the verdict: it is decided pass")
	cmd.Flags().BoolVar(&reject, "reject", false, "reject the verdict: it is decided fail")
	cmd.Flags().StringVar(&reason, "reason", "", "why (required)")
	cmd.Flags().StringVar(&by, "by", "", "who decides (required)")
	af.register(cmd)
	cmd.Flags().StringArrayVar(&fetch.insecure, "insecure-registry", nil, "reach this registry (HOST or HOST:PORT) over plain HTTP, to attach the signed decision (repeatable)")
	return cmd
}

func newWaiveCmd(g *globals, dsn *string) *cobra.Command {
	var w pipeline.Waiver
	cmd := &cobra.Command{
		Use:   "waive --digest sha256:HEX | --finding ID --path PATH [--product P] --until YYYY-MM-DD --reason TEXT --by NAME",
		Short: "Record a waiver in the chain",
		Long: `Waive appends a waiver to the chain. Its scope is either one candidate digest
(every finding of that exact candidate), or one finding id on one path (exact, or a
glob with * and ** as in release manifests) for one product. A finding waiver
without --product covers only vets without a product in their manifest; it never
covers every product. --until (the last day it applies, UTC) is required for a
finding waiver and optional for a digest waiver. A waiver is a record of the chain:
deleting or editing one breaks verdicts verify.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if w.Until != "" {
				if d, err := time.Parse(pipeline.DateLayout, w.Until); err == nil && d.Before(time.Now().UTC().Truncate(24*time.Hour)) {
					return fmt.Errorf("--until %s is in the past", w.Until)
				}
			}
			if err := w.Validate(); err != nil {
				return err
			}
			st, err := openStore(cmd.Context(), *dsn)
			if err != nil {
				return err
			}
			defer st.Close()
			rec, err := st.AppendWaiver(cmd.Context(), w)
			if err != nil {
				return err
			}
			until := "no end date"
			if w.Until != "" {
				until = "until " + w.Until
			}
			fmt.Fprintf(g.stdout, "waiver %d: %s, %s\n", rec.ID, w.Scope, until)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&w.Scope.Digest, "digest", "", "waive every finding of this candidate digest (sha256:HEX)")
	f.StringVar(&w.Scope.FindingID, "finding", "", "waive this finding id (with --path)")
	f.StringVar(&w.Scope.Path, "path", "", "on this path or glob inside the image (with --finding)")
	f.StringVar(&w.Scope.Product, "product", "", "for this product, as the release manifest names it (with --finding)")
	f.StringVar(&w.Until, "until", "", "the last day the waiver applies, YYYY-MM-DD UTC (required with --finding)")
	f.StringVar(&w.Reason, "reason", "", "why (required)")
	f.StringVar(&w.By, "by", "", "who waives (required)")
	return cmd
}

// listedWaiver is a waiver as waivers --format json prints it.
type listedWaiver struct {
	pipeline.Waiver
	Expired bool `json:"expired"`
}

func newWaiversCmd(g *globals, dsn *string) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "waivers",
		Short: "List every waiver, expired ones marked: the deviation register",
		Args:  cobra.NoArgs,
		RunE: withStore(dsn, func(cmd *cobra.Command, st pipeline.Store, _ []string) error {
			ws, err := st.Waivers(cmd.Context())
			if err != nil {
				return err
			}
			now := time.Now()
			if format == "json" {
				out := []listedWaiver{}
				for _, w := range ws {
					out = append(out, listedWaiver{Waiver: w, Expired: w.Expired(now)})
				}
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(out)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSTATUS\tUNTIL\tSCOPE\tBY\tAT\tREASON")
			for _, w := range ws {
				status, until := "active", w.Until
				if w.Expired(now) {
					status = "EXPIRED"
				}
				if until == "" {
					until = "-"
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", w.RecordID, status, until, w.Scope, w.By, w.At.UTC().Format("2006-01-02 15:04"), oneLine(w.Reason))
			}
			return tw.Flush()
		}),
	}
	cmd.Flags().StringVar(&format, "format", "text", "text or json")
	return cmd
}

func pastTense(d *pipeline.Decision) string {
	if d.Approve {
		return "approved"
	}
	return "rejected"
}

// oneLine keeps a multi-line text on one table row.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
