package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/unpack"
)

func newUnpackCmd(g *globals) *cobra.Command {
	var pf pipelineFlags
	cmd := &cobra.Command{
		Use:   "unpack REF DIR",
		Short: "Extract a firmware image safely into a new directory",
		Long: `Unpack extracts every file system and archive in REF, recursively, into DIR
(which must be empty or absent), for people to inspect. Nothing is written
outside DIR; setuid, setgid and sticky bits and owners are not applied;
device nodes, FIFOs and sockets are listed, not created. A nested
container's files go under "<its path>.d/".

Exits 2 when hostile entries were refused or a limit was hit.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			x, err := unpack.NewExtractor(args[1])
			if err != nil {
				return err
			}
			defer x.Close()
			pf.sink, pf.noHash = x, true
			p, err := g.pipeline(cmd.Context(), &pf, nil)
			if err != nil {
				return err
			}
			u, err := p.Unpack(ctx, "image", args[0])
			if err != nil {
				return err
			}
			defer u.Close()
			art, tree := u.Artifact, u.Tree
			st, err := x.Finish(ctx, tree)
			if err != nil {
				return err
			}
			out := g.stdout
			fmt.Fprintf(out, "%s: %d files, %d directories, %d symlinks written to %s (formats: %v)\n",
				art.Name, st.Files, st.Dirs, st.Symlinks, args[1], tree.Formats)
			list := func(title string, items []string) {
				if len(items) == 0 {
					return
				}
				fmt.Fprintf(out, "%s (%d):\n", title, len(items))
				for _, it := range items {
					fmt.Fprintf(out, "  %s\n", it)
				}
			}
			list("regions of raw images (offset, size, name, what)", regions(tree))
			list("names from headers (path, label)", labels(tree))
			list("setuid, setgid or sticky bits not applied", st.Stripped)
			list("device nodes, FIFOs and sockets not created", st.Nodes)
			list("files not written (unreadable)", st.Unreadable)
			var problems []string
			for _, p := range tree.Problems {
				problems = append(problems, fmt.Sprintf("%s %s: %s", p.Kind, pipeline.Where(p.Container, p.Path), p.Reason))
			}
			list("refused, cut short or unreadable", problems)
			if len(tree.Problems) > 0 || tree.Incomplete {
				return verdictResult(pipeline.VerdictFail)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&pf.limits, "limit", nil, "change an unpack limit, as name=value (repeatable): "+fmt.Sprint(pipeline.LimitNames))
	f.IntVar(&pf.jobs, "jobs", 0, "files hashed at once (default: the number of CPUs)")
	pf.fetch.register(cmd)
	pf.format = "text"
	return cmd
}

// regions lists the pieces the carver cut out of raw images, in image order.
func regions(tree *pipeline.Tree) []string {
	var rs []*pipeline.Entry
	for e := range tree.All() {
		if e.Region != nil {
			rs = append(rs, e)
		}
	}
	sort.SliceStable(rs, func(i, j int) bool {
		a, b := strings.Join(rs[i].Container, "\x00"), strings.Join(rs[j].Container, "\x00")
		if a != b {
			return a < b
		}
		return rs[i].Region.Offset < rs[j].Region.Offset
	})
	out := make([]string, 0, len(rs))
	for _, e := range rs {
		what := e.Region.Format
		if what == pipeline.RegionBlob {
			what = fmt.Sprintf("blob, entropy %.2f bits/byte", e.Region.Entropy)
		}
		out = append(out, fmt.Sprintf("0x%08x %10d  %s  %s", e.Region.Offset, e.Region.Size, e.Where(), what))
	}
	return out
}

// labels lists the entries whose container header names them: the names
// vendors put the release in, which are not part of paths.
func labels(tree *pipeline.Tree) []string {
	var out []string
	for e := range tree.All() {
		if e.Label != "" {
			out = append(out, fmt.Sprintf("%s  %q", e.Where(), e.Label))
		}
	}
	return out
}
