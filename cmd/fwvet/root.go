package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"
)

// globals are the flags every command takes.
type globals struct {
	logLevel  string
	logFormat string
	cacheDir  string
	stdout    io.Writer
	stderr    io.Writer
	log       *logrus.Logger
}

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	g := &globals{stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:   "fwvet",
		Short: "Vet firmware updates before they roll out",
		Long: `fwvet unpacks a firmware update and its known-good baseline, diffs them, and
flags what changed that the vendor's release manifest does not declare: new
accounts, setuid files, version downgrades, hostile archive entries and more.

Exit codes: 0 pass, 2 fail, 3 review, 1 error (no verdict could be reached).`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return g.setupLog()
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	pf := root.PersistentFlags()
	pf.StringVar(&g.logLevel, "log-level", "warn", "log level: debug, info, warn, error")
	pf.StringVar(&g.logFormat, "log-format", "text", "log format: text or json (logs go to stderr)")
	pf.StringVar(&g.cacheDir, "cache-dir", "", "cache and work directory (default $XDG_CACHE_HOME/fwvet)")
	root.AddCommand(newVetCmd(g), newDiffCmd(g), newVerifyCmd(g), newUnpackCmd(g), newAuditCmd(g), newVerdictsCmd(g), newVersionCmd(g), newPolicyCmd(g), newEquivalenceCmd(g), newServeCmd(g), newWorkerCmd(g), newVetJobCmd(g))
	return root
}

// setupLog configures the one logger, on stderr.
func (g *globals) setupLog() error {
	lvl, err := logrus.ParseLevel(g.logLevel)
	if err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	l := logrus.New()
	l.SetOutput(g.stderr)
	l.SetLevel(lvl)
	switch strings.ToLower(g.logFormat) {
	case "text":
		l.SetFormatter(&logrus.TextFormatter{DisableTimestamp: false, FullTimestamp: true})
	case "json":
		l.SetFormatter(&logrus.JSONFormatter{})
	default:
		return fmt.Errorf("--log-format %q: want text or json", g.logFormat)
	}
	g.log = l
	return nil
}
