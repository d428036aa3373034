package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/attest"
	"github.com/fwvet/fwvet/pipeline/policy"
	"github.com/fwvet/fwvet/pipeline/vet"
)

func newVerifyAttestationCmd(g *globals) *cobra.Command {
	var (
		key, pol, result, verifierID string
		anyPolicy                    bool
		fetch                        fetchFlags
	)
	cmd := &cobra.Command{
		Use:   "verify-attestation REF --key PUB",
		Short: "Check the signed verdict attached to an image",
		Long: `Verify-attestation finds the SLSA verification summaries attached to the
image REF (as OCI referrers or cosign's .att image) and checks one with the
public key PUB: its signature, that its subject is REF's digest, its verifier
id, that it was reached under the policy (--policy FILE, the default policy
when not given) and its result (PASSED unless --result says otherwise).

Exits 0 when one summary passes every check; 2 when summaries are attached
but none does; 1 when none is attached or REF cannot be read.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if key == "" {
				return fmt.Errorf("--key is required: the public key of the gate that signed the verdict")
			}
			want := attest.Expect{VerifierID: verifierID, UnsafeAnyPolicy: anyPolicy}
			switch strings.ToLower(result) {
			case "passed", "":
				want.Result = attest.ResultPassed
			case "failed":
				want.Result = attest.ResultFailed
			case "any":
				want.Result = attest.ResultAny
			default:
				return fmt.Errorf("--result %q: want passed, failed or any", result)
			}
			if !anyPolicy {
				p := policy.Default()
				if pol != "" {
					var err error
					if p, err = policy.Load(pol); err != nil {
						return &pipeline.InputError{Role: "policy", Ref: pol, Err: err}
					}
				}
				want.PolicyDigest = p.Digest()
			}
			pl, err := vet.New(vet.Config{CacheDir: g.cacheDir, Insecure: fetch.insecure, Platform: fetch.platform, Log: g.log})
			if err != nil {
				return err
			}
			ref := args[0]
			desc, err := pl.Describe(ctx, vet.Target{Candidate: ref})
			if err != nil {
				return &pipeline.InputError{Role: "image", Ref: ref, Err: err}
			}
			subject, opts, err := pl.Resolver().Subject(ctx, ref, desc.Digest)
			if err != nil {
				return &pipeline.InputError{Role: "image", Ref: ref, Err: err}
			}
			res, err := attest.VerifyRef(ctx, subject, key, want, opts...)
			if err != nil {
				return attestationError(err)
			}
			p := res.Statement.Predicate
			verdict := ""
			if res.Verdict != nil {
				verdict = fmt.Sprintf(" (fwvet verdict %s)", res.Verdict.Verdict)
			}
			if res.Decision != nil {
				verdict += fmt.Sprintf(" (decided by %s at %s: approve %t)", res.Decision.By, res.Decision.At.Format("2006-01-02T15:04:05Z"), res.Decision.Approve)
			}
			fmt.Fprintf(g.stdout, "%s: %s%s, signed by key %s, verified %s by %s, levels %s\n",
				subject, res.Result, verdict, res.KeyID, p.TimeVerified, p.Verifier.ID, strings.Join(res.Levels, ", "))
			for _, r := range res.Rejected {
				fmt.Fprintf(g.stdout, "  another summary was rejected: %v\n", r)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&key, "key", "", "PEM public key of the signer")
	f.StringVar(&pol, "policy", "", "the policy the verdict must have been reached under (default: the default policy)")
	f.BoolVar(&anyPolicy, "any-policy", false, "accept a verdict reached under any policy")
	f.StringVar(&result, "result", "passed", "the verification result wanted: passed, failed or any")
	f.StringVar(&verifierID, "verifier-id", "", "the verifier id the summary must name (default: "+attest.DefaultVerifierID+")")
	fetch.register(cmd)
	cmd.MarkFlagsMutuallyExclusive("policy", "any-policy")
	return cmd
}

// attestationError maps a rejected summary to exit 2 (the image carries
// signed verdicts, none of which holds), and every other error to 1.
func attestationError(err error) error {
	var rej *attest.RejectedError
	if errors.As(err, &rej) {
		return fmt.Errorf("%w: %w", &verdictError{pipeline.VerdictFail}, err)
	}
	return err
}
