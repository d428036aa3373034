package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/policy"
)

func newPolicyCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Check a policy file, or try it on a saved report",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "check FILE",
		Short: "Load a policy file and compile its rules",
		Long: `Check loads a policy file (today's JSON policy, or a YAML or JSON document
with apiVersion fwvet/v1 and kind Policy) and compiles its rules. It prints
the number of rules and the policy's digest, or what is wrong, with the
line, and exits 1.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := policy.Load(args[0])
			if err != nil {
				return err
			}
			rules := "rules"
			if len(p.Rules) == 1 {
				rules = "rule"
			}
			fmt.Fprintf(g.stdout, "%s: ok, %d %s, digest %s\n", args[0], len(p.Rules), rules, p.Digest())
			return nil
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "test FILE REPORT.json",
		Short: "Decide on a saved JSON report with a policy file",
		Long: `Test decides again, with the policy file, on a report fwvet saved with
--format json: its checks, its findings (with the policy's severity
overrides), its summary and, when the report lists them (fwvet diff), its
changes. It prints the verdict and the reasons, and exits as vet would:
0 pass, 2 fail, 3 review (0 in warn mode).`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := policy.Load(args[0])
			if err != nil {
				return err
			}
			f, err := os.Open(args[1])
			if err != nil {
				return err
			}
			defer f.Close()
			rep, err := policy.ReadReport(f)
			if err != nil {
				return &pipeline.InputError{Role: "report", Ref: args[1], Err: err}
			}
			d, err := p.DecideReport(cmd.Context(), rep)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "verdict: %s\n", d.Verdict)
			for _, r := range d.Reasons {
				fmt.Fprintf(g.stdout, "  %s\n", r)
			}
			if d.Mode == policy.ModeWarn {
				fmt.Fprintln(g.stdout, "mode: warn (the verdict does not fail the command)")
				return nil
			}
			return verdictResult(d.Verdict)
		},
	})
	return cmd
}
