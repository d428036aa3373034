package main

import (
	"github.com/spf13/cobra"
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
			pf.withChanges = true
			p, err := g.pipeline(cmd.Context(), &pf, nil)
			if err != nil {
				return err
			}
			res, err := p.Vet(cmd.Context(), args[1], args[0])
			if err != nil {
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
	cmd.Flags().StringVar(&pf.explain, "explain", "", "add the function-level diff of this modified binary (a path inside the images, such as /usr/sbin/httpd): functions added, removed and changed, with the calls each gained and lost")
	return cmd
}
