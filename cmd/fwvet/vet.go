package main

import (
	"github.com/spf13/cobra"
)

func newVetCmd(g *globals) *cobra.Command {
	var (
		pf       pipelineFlags
		baseline string
		dsn      string
		noStore  bool
		newSeg   bool
	)
	cmd := &cobra.Command{
		Use:   "vet CANDIDATE [--baseline REF] [--manifest FILE]",
		Short: "Vet a firmware update and record the verdict",
		Long: `Vet unpacks CANDIDATE and BASELINE, diffs them, analyzes every change,
applies the release manifest and the policy, prints the report and records
the verdict in the store.

References: a local file or directory, file:PATH, dir:PATH, oci-dir:PATH[:TAG|@DIGEST],
docker-archive:PATH, or an image in a registry (HOST/REPO:TAG, HOST/REPO@sha256:…,
registry:REF). A multi-platform image is vetted platform by platform unless
--platform picks one; the exit code is the worst verdict.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := g.pipeline(cmd.Context(), &pf, nil)
			if err != nil {
				return err
			}
			if !noStore {
				st, err := openStoreForWriting(cmd.Context(), dsn, newSeg, g.log)
				if err != nil {
					return err
				}
				defer st.Close()
				p = p.WithStore(st)
			}
			res, err := p.Vet(cmd.Context(), args[0], baseline)
			if err != nil {
				return err
			}
			for _, r := range res {
				if r.Record != nil {
					g.log.WithField("id", r.Record.ID).Info("verdict stored")
				}
			}
			if err := pf.attest.write(attestations(res)); err != nil {
				return err
			}
			reps := reports(res)
			if err := g.writeReport(reps, pf.format, pf.output); err != nil {
				return err
			}
			return verdictResult(enforced(res))
		},
	}
	pf.register(cmd, "files hashed at once")
	pf.attest.register(cmd)
	cmd.Flags().StringVar(&baseline, "baseline", "", "the known-good firmware to compare against")
	cmd.Flags().StringVar(&dsn, "store", "", "verdict store DSN, sqlite:PATH (default: sqlite:$XDG_DATA_HOME/fwvet/verdicts.db)")
	cmd.Flags().BoolVar(&noStore, "no-store", false, "do not record the verdict")
	cmd.Flags().BoolVar(&newSeg, "store-new-segment", false, "when the store's chain is broken, start a new segment (a hashed record naming the break) instead of refusing to write")
	cmd.MarkFlagsMutuallyExclusive("store", "no-store")
	cmd.MarkFlagsMutuallyExclusive("store-new-segment", "no-store")
	return cmd
}
