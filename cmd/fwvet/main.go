// Command fwvet vets firmware updates before they are rolled out.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/fwvet/fwvet/pipeline"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "0.1.0"

// Exit codes, as DESIGN.md fixes them.
const (
	exitPass   = 0
	exitError  = 1
	exitFail   = 2
	exitReview = 3
)

func main() {
	if os.Getenv("GOMEMLIMIT") == "" {
		aimMemory()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRootCmd(stdout, stderr)
	root.SetArgs(args)
	return exitCode(root.ExecuteContext(ctx), stderr)
}

// verdictError carries a verdict that is not a pass out of a command. The
// report says why; a command that has no report wraps it with the reason,
// which is then printed.
type verdictError struct{ verdict pipeline.Verdict }

func (v *verdictError) Error() string { return "verdict " + string(v.verdict) }

// exitCode maps a command's outcome to the process exit code; this is the
// only place that does.
func exitCode(err error, stderr io.Writer) int {
	var ve *verdictError
	switch {
	case err == nil:
		return exitPass
	case errors.As(err, &ve):
		if err != error(ve) {
			fmt.Fprintf(stderr, "fwvet: %v\n", err)
		}
		switch ve.verdict {
		case pipeline.VerdictFail:
			return exitFail
		case pipeline.VerdictReview:
			return exitReview
		case pipeline.VerdictPass:
			return exitPass
		}
	}
	fmt.Fprintf(stderr, "fwvet: %v\n", err)
	return exitError
}

// verdictResult turns a verdict into a command result.
func verdictResult(v pipeline.Verdict) error {
	if v == pipeline.VerdictPass {
		return nil
	}
	return &verdictError{v}
}
