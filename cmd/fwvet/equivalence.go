package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/equivalence"
	"github.com/fwvet/fwvet/pipeline/vet"
)

func newEquivalenceCmd(g *globals) *cobra.Command {
	var (
		pf         pipelineFlags
		format     string
		output     string
		provenance string
		maxFile    int64
	)
	cmd := &cobra.Command{
		Use:   "equivalence SHIPPED REBUILT",
		Short: "Show that a shipped image is the build of the reviewed sources: compare it with a rebuild",
		Long: `Equivalence unpacks the shipped image and an independent rebuild, with the
references of vet, and classes every file of both, through every container:
identical, explained (by named rules: build ids, timestamps, build dates,
compression, container metadata, module signatures), unexplained,
only-in-shipped, only-in-rebuilt, opaque or limit-hit. Code, data and
permission bits are never explained away.

Verdict and exit code: bit-identical 0, equivalent 0, not-equivalent 2,
inconclusive 3 (a limit was hit or a part could not be read), 1 error.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !slices.Contains(equivalence.Formats, format) {
				return fmt.Errorf("--format %q: want %s", format, strings.Join(equivalence.Formats, ", "))
			}
			pf.format = "text"
			ctx := cmd.Context()
			p, err := g.pipeline(ctx, &pf, nil)
			if err != nil {
				return err
			}
			shipped, err := loadImage(ctx, p, "shipped", args[0])
			if err != nil {
				return err
			}
			defer shipped.close()
			rebuilt, err := loadImage(ctx, p, "rebuilt", args[1])
			if err != nil {
				return err
			}
			defer rebuilt.close()
			start := time.Now()
			rep, err := equivalence.Compare(ctx, equivalence.Options{
				Shipped: shipped.tree, Rebuilt: rebuilt.tree,
				ShippedSubject: subject(args[0], shipped.art), RebuiltSubject: subject(args[1], rebuilt.art),
				ShippedPath: imagePath(shipped.art), RebuiltPath: imagePath(rebuilt.art),
				Provenance: provenance, Tool: pipeline.Tool{Name: "fwvet", Version: version},
				MaxFileBytes: maxFile, Log: g.log,
			})
			if err != nil {
				return err
			}
			g.log.WithFields(logrus.Fields{"verdict": rep.Verdict, "files": len(rep.Files),
				"took": time.Since(start).Round(time.Millisecond)}).Info("compared")
			write := func(w io.Writer) error { return equivalence.Encode(w, rep, format) }
			if output == "" {
				err = write(g.stdout)
			} else {
				err = writeAtomic(output, write)
			}
			if err != nil {
				return err
			}
			return equivalenceResult(rep.Verdict)
		},
	}
	f := cmd.Flags()
	f.StringVar(&provenance, "provenance", "", "the rebuild's provenance document (recorded with its digest in the report)")
	f.StringVar(&format, "format", "text", "report format: "+strings.Join(equivalence.Formats, ", "))
	f.StringVarP(&output, "output", "o", "", "write the report to this file instead of stdout")
	f.Int64Var(&maxFile, "max-file-bytes", equivalence.DefaultMaxFileBytes, "files larger than this are compared by hash only (limit-hit when they differ)")
	f.StringArrayVar(&pf.limits, "limit", nil, "change an unpack limit, as name=value (repeatable): "+fmt.Sprint(pipeline.LimitNames))
	f.IntVar(&pf.jobs, "jobs", 0, "files hashed at once (default: the number of CPUs)")
	pf.fetch.register(cmd)
	return cmd
}

// equivalenceResult maps a verdict to the exit codes of DESIGN.md:
// not-equivalent fails (2), inconclusive asks for review (3).
func equivalenceResult(v equivalence.Verdict) error {
	switch v {
	case equivalence.VerdictBitIdentical, equivalence.VerdictEquivalent:
		return nil
	case equivalence.VerdictNotEquivalent:
		return &verdictError{pipeline.VerdictFail}
	}
	return &verdictError{pipeline.VerdictReview}
}

// image is one side fetched and unpacked, or fetched and found unreadable.
type image struct {
	art   *pipeline.Artifact
	tree  *pipeline.Tree
	close func()
}

// loadImage fetches and unpacks a reference. An image that was fetched
// but could not be unpacked (truncated, corrupt, over a limit) is not an
// error: it is one opaque part, and the comparison is inconclusive.
func loadImage(ctx context.Context, p *vet.Pipeline, role, ref string) (*image, error) {
	u, err := p.Unpack(ctx, role, ref)
	if err == nil {
		return &image{art: u.Artifact, tree: u.Tree, close: u.Close}, nil
	}
	if ctx.Err() != nil {
		return nil, err
	}
	art, ferr := p.Resolver().Fetch(ctx, ref)
	if ferr != nil {
		return nil, err
	}
	cause := err
	var ie *pipeline.InputError
	if errors.As(err, &ie) {
		cause = ie.Err
	}
	kind := pipeline.ProblemCorrupt
	pr := pipeline.Problem{Kind: kind, Container: []string{art.Name}, Path: "/", Reason: cause.Error()}
	var le *pipeline.LimitError
	if errors.As(err, &le) {
		pr.Kind, pr.Limit = pipeline.ProblemLimit, le.Limit
	}
	tree := pipeline.NewTree(nil, []pipeline.Problem{pr})
	tree.Incomplete = true
	return &image{art: art, tree: tree, close: func() {}}, nil
}

// subject names one side of the comparison.
func subject(ref string, art *pipeline.Artifact) pipeline.Subject {
	v := art.Annotations[pipeline.AnnotationVersion]
	return pipeline.Subject{Ref: ref, Digest: art.Digest, Size: art.Size, Version: v, Platform: art.Platform}
}

// imagePath is the local image file, whose header describes it; "" for a directory.
func imagePath(art *pipeline.Artifact) string {
	if art.IsDir {
		return ""
	}
	return art.Path
}
