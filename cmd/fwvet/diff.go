package main

import (
	"github.com/spf13/cobra"

	"github.com/fwvet/fwvet/pipeline/vet"
)

func newDiffCmd(g *globals) *cobra.Command {
	var pf pipelineFlags
	cmd := &cobra.Command{
		Use:   "diff BASELINE CANDIDATE",
		Short: "List what changed between two firmware images, and the findings",
		Long: `Diff unpacks both images and reports every change and finding, with the
verdict the policy gives them; nothing is recorded. The JSON report also
lists every change under "changes".`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			o, cleanup, err := g.stages(&pf)
			if err != nil {
				return err
			}
			defer cleanup()
			o.Baseline, o.Candidate, o.WithChanges = args[0], args[1], true
			res, err := vet.RunPlatforms(cmd.Context(), o)
			if err != nil {
				return err
			}
			reps := reports(res)
			if err := g.writeReport(reps, pf.format, pf.output); err != nil {
				return err
			}
			return verdictResult(worst(reps))
		},
	}
	pf.register(cmd, "files hashed at once")
	return cmd
}
