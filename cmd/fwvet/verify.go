package main

import (
	"fmt"
	"slices"

	"github.com/spf13/cobra"

	"github.com/fwvet/fwvet/pipeline"
)

func newVerifyCmd(g *globals) *cobra.Command {
	var pf pipelineFlags
	cmd := &cobra.Command{
		Use:   "verify REF",
		Short: "Check an artifact's signatures and provenance, offline",
		Long: `Verify checks who signed REF and where it was built: a detached signature or
Sigstore bundle of a file, cosign signatures and attestations of an image (the
legacy .sig/.att layout and Sigstore bundles attached as referrers), SLSA
provenance. Keys and trusted roots are read from files; nothing but the
registry an image lives in is contacted.

Exits 0 when every requested check passes, 2 when one fails, 1 when one could
not complete.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := g.pipeline(cmd.Context(), &pf, nil)
			if err != nil {
				return err
			}
			rep, err := p.Verify(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if err := g.writeReport([]*pipeline.Report{rep}, pf.format, pf.output); err != nil {
				return err
			}
			if slices.ContainsFunc(rep.Checks, func(c pipeline.Check) bool { return c.Status == pipeline.CheckError }) {
				return fmt.Errorf("a check could not complete (see the report)")
			}
			return verdictResult(rep.Verdict)
		},
	}
	pf.register(cmd, "files hashed at once")
	return cmd
}
