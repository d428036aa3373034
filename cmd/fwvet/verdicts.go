package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/fwvet/fwvet/pipeline"
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

	verify := &cobra.Command{
		Use:   "verify",
		Short: "Check that no stored verdict was edited or deleted",
		Long:  "Verify walks the hash chain from the first verdict and reports the first broken one. Exits 2 when the chain is broken.",
		Args:  cobra.NoArgs,
		RunE: withStore(&dsn, func(cmd *cobra.Command, st pipeline.Store, _ []string) error {
			res, err := st.Verify(cmd.Context())
			if err != nil {
				return err
			}
			if res.OK() {
				fmt.Fprintf(g.stdout, "ok: %d verdicts, chain intact\n", res.Records)
				return nil
			}
			fmt.Fprintf(g.stdout, "BROKEN at verdict %d: %s (%d verdicts before it verify)\n", res.BrokenID, res.Reason, res.Records)
			return verdictResult(pipeline.VerdictFail)
		}),
	}
	cmd.AddCommand(list, show, verify)
	return cmd
}

// withStore opens the store the --store flag names for the command's run.
func withStore(dsn *string, run func(*cobra.Command, pipeline.Store, []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		st, err := openStore(cmd.Context(), *dsn)
		if err != nil {
			return err
		}
		defer st.Close()
		return run(cmd, st, args)
	}
}

func shortDigest(d string) string {
	if len(d) > 19 {
		return d[:19]
	}
	return d
}
