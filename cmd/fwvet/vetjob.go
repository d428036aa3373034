package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/fwvet/fwvet/pipeline/gate"
	"github.com/fwvet/fwvet/pipeline/store"
	"github.com/fwvet/fwvet/pipeline/vet"
)

// newVetJobCmd is the process that fwvet serve and fwvet worker start for
// each job (gate.Child): it takes the gate's flags, reads the job from
// its standard input and writes the verdicts it recorded to its standard
// output. It is not for people, hence hidden.
func newVetJobCmd(g *globals) *cobra.Command {
	var gf gateFlags
	cmd := &cobra.Command{
		Use:    "vet-job",
		Short:  "Vet one job of the gate's queue (started by fwvet serve and fwvet worker)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			dsn := gf.dsn
			if dsn == "" {
				var err error
				if dsn, err = store.DefaultDSN(); err != nil {
					return err
				}
			}
			// The service made the store and checked its chain: a job's
			// process opens it as it is, and refuses a missing one.
			st, err := store.OpenExisting(ctx, dsn)
			if err != nil {
				return err
			}
			defer st.Close()
			gf.pf.format = "json"
			return gate.RunChild(ctx, cmd.InOrStdin(), g.stdout, func(job gate.ChildJob, manifest []string) (*vet.Pipeline, error) {
				pf := gf.pf
				pf.manifest = manifest
				cfg, err := g.config(ctx, &pf)
				if err != nil {
					return nil, err
				}
				cfg.Store = st
				cfg.Log = g.log.WithField("job", job.Job)
				return vet.New(cfg)
			})
		},
	}
	gf.register(cmd)
	return cmd
}

// vetChild is how the gate command cmd starts a job's process: this
// executable's vet-job, with the flags given to cmd that vet-job knows.
func vetChild(cmd *cobra.Command, g *globals, nice int) (*gate.Child, error) {
	if nice < 0 || nice > 19 {
		return nil, fmt.Errorf("--vet-nice %d: want 0 to 19", nice)
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding this executable, to vet in a process of its own: %w", err)
	}
	child := newVetJobCmd(g)
	args := []string{child.Name()}
	cmd.Flags().Visit(func(f *pflag.Flag) {
		if child.Flags().Lookup(f.Name) == nil && cmd.Root().PersistentFlags().Lookup(f.Name) == nil {
			return
		}
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			for _, v := range sv.GetSlice() {
				args = append(args, "--"+f.Name+"="+v)
			}
			return
		}
		args = append(args, "--"+f.Name+"="+f.Value.String())
	})
	return &gate.Child{Path: exe, Args: args, Nice: nice, Stderr: g.stderr}, nil
}
