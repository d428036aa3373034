package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"text/tabwriter"

	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/store"
	"github.com/fwvet/fwvet/pipeline/store/sqlite"
)

func newVerdictsCmd(g *globals) *cobra.Command {
	var dsn string
	cmd := &cobra.Command{
		Use:   "verdicts",
		Short: "List, show and verify stored verdicts",
	}
	cmd.PersistentFlags().StringVar(&dsn, "store", "", "verdict store DSN, sqlite:PATH (default: sqlite:$XDG_DATA_HOME/fwvet/verdicts.db)")

	var limit int
	var format string
	list := &cobra.Command{
		Use:   "list",
		Short: "List stored verdicts, newest first",
		Args:  cobra.NoArgs,
		RunE: withStore(&dsn, func(cmd *cobra.Command, st pipeline.Store, _ []string) error {
			recs, err := st.List(cmd.Context(), limit)
			if err != nil {
				return err
			}
			if format == "json" {
				if recs == nil {
					recs = []pipeline.Record{}
				}
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(recs)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tTIME\tVERDICT\tCANDIDATE\tDIGEST\tBASELINE")
			for _, r := range recs {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.CreatedAt.Format("2006-01-02 15:04:05"), r.Verdict,
					r.CandidateRef, shortDigest(r.CandidateDigest), r.BaselineRef)
			}
			return tw.Flush()
		}),
	}
	list.Flags().IntVar(&limit, "limit", 50, "at most this many verdicts (0: all)")
	list.Flags().StringVar(&format, "format", "text", "text or json")

	var showFormat string
	show := &cobra.Command{
		Use:   "show ID",
		Short: "Print a stored verdict's full report",
		Args:  cobra.ExactArgs(1),
		RunE: withStore(&dsn, func(cmd *cobra.Command, st pipeline.Store, args []string) error {
			id, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil || id <= 0 {
				return fmt.Errorf("verdict id %q: want a positive number", args[0])
			}
			rec, err := st.Get(cmd.Context(), id)
			if err != nil {
				return err
			}
			var rep pipeline.Report
			if err := json.Unmarshal(rec.Report, &rep); err != nil {
				return fmt.Errorf("verdict %d: stored report is not readable: %w", id, err)
			}
			if showFormat == "json" {
				_, err := g.stdout.Write(append(rec.Report, '\n'))
				return err
			}
			fmt.Fprintf(g.stdout, "verdict %d, recorded %s, hash %s\n\n", rec.ID, rec.CreatedAt.Format("2006-01-02 15:04:05 MST"), rec.Hash)
			return g.writeReport([]*pipeline.Report{&rep}, "text", "")
		}),
	}
	show.Flags().StringVar(&showFormat, "format", "text", "text or json (the report exactly as stored)")

	var head string
	verify := &cobra.Command{
		Use:   "verify",
		Short: "Check that no stored verdict was edited or deleted",
		Long: `Verify walks the hash chain from the first verdict and reports the first broken one,
and every segment a user started after a break (--store-new-segment). It prints the
chain's head (ID:sha256:HASH); keep it outside the store and pass it back with --head
to detect records cut from the end. Exits 2 when the chain is broken or no longer
contains the head, 1 when the store does not exist or holds no verdicts.`,
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
				broken = true
			}
			if res.TailReason != "" && res.TailBrokenID != res.BrokenID {
				fmt.Fprintf(g.stdout, "BROKEN in the last segment at verdict %d: %s\n", res.TailBrokenID, res.TailReason)
			}
			if want.ID != 0 {
				rec, err := st.Get(cmd.Context(), want.ID)
				if err != nil && !errors.Is(err, sqlite.ErrNotFound) {
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
			fmt.Fprintf(g.stdout, "ok: %d verdicts, chain intact, head %s\n", res.Records, res.Head)
			return nil
		}),
	}
	verify.Flags().StringVar(&head, "head", "", "fail unless the chain still contains this head (ID:sha256:HASH, as an earlier verify printed it)")
	cmd.AddCommand(list, show, verify)
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
