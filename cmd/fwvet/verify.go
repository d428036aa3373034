package main

import (
	"fmt"

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
			ctx := cmd.Context()
			o, cleanup, err := g.stages(&pf)
			if err != nil {
				return err
			}
			defer cleanup()
			if len(o.Verifiers) == 0 {
				return fmt.Errorf("nothing to verify: give --key, or --trusted-root with --certificate-identity and --certificate-oidc-issuer")
			}
			art, err := o.Fetcher.Fetch(ctx, args[0])
			if err != nil {
				return &pipeline.InputError{Role: "artifact", Ref: args[0], Err: err}
			}
			rep := &pipeline.Report{Schema: pipeline.ReportSchema, Tool: o.Tool,
				Candidate: pipeline.Subject{Ref: args[0], Digest: art.Digest, Size: art.Size, Platform: art.Platform}}
			worst := pipeline.CheckPass
			for _, v := range o.Verifiers {
				c := v.Verify(ctx, art)
				rep.Checks = append(rep.Checks, c)
				switch {
				case c.Status == pipeline.CheckError:
					worst = pipeline.CheckError
				case c.Status != pipeline.CheckPass && worst == pipeline.CheckPass:
					worst = pipeline.CheckFail
				}
			}
			rep.Verdict, rep.Reasons = o.Policy.Decide(rep.Checks, nil, pipeline.Summary{}, true)
			if rep.Verdict == pipeline.VerdictPass {
				rep.Reasons = []string{"every requested check passed"}
			}
			if err := g.writeReport([]*pipeline.Report{rep}, pf.format, pf.output); err != nil {
				return err
			}
			switch worst {
			case pipeline.CheckError:
				return fmt.Errorf("a check could not complete (see the report)")
			case pipeline.CheckFail:
				return verdictResult(pipeline.VerdictFail)
			}
			return nil
		},
	}
	pf.register(cmd, "files hashed at once")
	return cmd
}
