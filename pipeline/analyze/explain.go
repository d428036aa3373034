package analyze

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/disasm"
)

// ErrNotExplainable is returned by Explain for a path that names no
// modified ELF file fwvet can disassemble.
var ErrNotExplainable = errors.New("nothing to explain")

// Explain is the function-level diff of the modified ELF file at path
// (in any container, the first in the changes' order when several
// hold one), for a person reviewing it: the functions added, removed and
// changed, with the calls each gained and lost. A binary whose code bytes
// are unchanged is not disassembled.
func Explain(ctx context.Context, in *pipeline.AnalysisInput, path string) (*pipeline.FunctionDiff, error) {
	var ch *pipeline.Change
	kinds := []string{}
	for _, c := range in.Changes {
		if c.Path != path {
			continue
		}
		if c.Kind == pipeline.ChangeModified && c.Old != nil && c.New != nil && c.Old.Readable() && c.New.Readable() {
			ch = c
			break
		}
		kinds = append(kinds, string(c.Kind))
	}
	if ch == nil {
		if len(kinds) == 0 {
			return nil, fmt.Errorf("%w: %s is unchanged or in neither image", ErrNotExplainable, path)
		}
		return nil, fmt.Errorf("%w: %s is %s, not a file both images hold with other bytes", ErrNotExplainable, path, strings.Join(kinds, ", "))
	}
	var digests [2]string
	for i, e := range []*pipeline.Entry{ch.Old, ch.New} {
		if err := withELF(ctx, in, e, func(ra sizedReaderAt) (err error) {
			digests[i], err = disasm.CodeDigest(ra, ra.Size(), maxCodeBytes)
			return err
		}); err != nil {
			return nil, err
		}
	}
	fd := &pipeline.FunctionDiff{Path: ch.Path, Container: ch.New.Container,
		Added: []pipeline.FunctionChange{}, Removed: []pipeline.FunctionChange{}, Changed: []pipeline.FunctionChange{}}
	if digests[0] == digests[1] {
		// The same code: its architecture is all that is needed.
		fd.SameCode = true
		err := withELF(ctx, in, ch.New, func(ra sizedReaderAt) (err error) {
			fd.Architecture, err = disasm.Arch(ra, ra.Size())
			return err
		})
		return fd, err
	}
	var progs [2]*disasm.Program
	for i, e := range []*pipeline.Entry{ch.Old, ch.New} {
		if err := withELF(ctx, in, e, func(ra sizedReaderAt) (err error) {
			progs[i], err = disasm.Functions(ra, ra.Size(), maxCodeBytes)
			return err
		}); err != nil {
			return nil, err
		}
	}
	old, cur := progs[0], progs[1]
	fd.Architecture, fd.Stripped = cur.Arch, cur.Stripped
	d := disasm.Compare(old, cur)
	// The constants each function uses, from its listing; one that does
	// not decode has none.
	consts := map[*disasm.Func][]int64{}
	for i, e := range []*pipeline.Entry{ch.Old, ch.New} {
		p := progs[i]
		if err := withELF(ctx, in, e, func(ra sizedReaderAt) error {
			for k := range p.Funcs {
				if err := ctx.Err(); err != nil {
					return err
				}
				if l, err := disasm.Listing(ra, ra.Size(), p.Arch, &p.Funcs[k]); err == nil {
					consts[&p.Funcs[k]] = disasm.Constants(l)
				}
			}
			return nil
		}); err != nil {
			return nil, err
		}
	}
	// A stripped binary's local functions are named by address: a call to
	// one that only moved is the same call.
	renamed := map[string]string{}
	for _, p := range d.Matched {
		renamed[p.Old.Name] = p.New.Name
	}
	for _, p := range d.Matched {
		before := make([]string, len(p.Old.Calls))
		for i, c := range p.Old.Calls {
			before[i] = c
			if n, ok := renamed[c]; ok {
				before[i] = n
			}
		}
		if !p.Changed() && slices.Equal(before, p.New.Calls) && slices.Equal(p.Old.Strings, p.New.Strings) {
			fd.Unchanged++
			continue
		}
		fd.Changed = append(fd.Changed, pipeline.FunctionChange{Name: p.New.Name, Address: hexAddr(p.New.Addr), Size: p.New.Size,
			PreviousAddress: hexAddr(p.Old.Addr), PreviousSize: p.Old.Size, MatchedBy: p.By,
			CallsAdded: missing(p.New.Calls, before), CallsRemoved: missing(before, p.New.Calls),
			StringsAdded: missing(p.New.Strings, p.Old.Strings), ComparedAdded: missing(p.New.Compared, p.Old.Compared),
			ConstantsAdded: hexInts(missing(consts[p.New], consts[p.Old]))})
	}
	whole := func(f *disasm.Func) pipeline.FunctionChange {
		return pipeline.FunctionChange{Name: f.Name, Address: hexAddr(f.Addr), Size: f.Size, Calls: f.Calls, Strings: f.Strings, Compared: f.Compared,
			Constants: hexInts(consts[f])}
	}
	for _, f := range d.Added {
		fd.Added = append(fd.Added, whole(f))
	}
	for _, f := range d.Removed {
		fd.Removed = append(fd.Removed, whole(f))
	}
	for _, l := range [][]pipeline.FunctionChange{fd.Added, fd.Removed, fd.Changed} {
		slices.SortFunc(l, func(a, b pipeline.FunctionChange) int { return strings.Compare(pad(a.Address), pad(b.Address)) })
	}
	return fd, nil
}

// withELF opens one version of the file and runs read on it; an error
// reading it as ELF is ErrNotExplainable.
func withELF(ctx context.Context, in *pipeline.AnalysisInput, e *pipeline.Entry, read func(sizedReaderAt) error) error {
	ra, done, err := openAt(ctx, e, in.WorkDir)
	if err != nil {
		return err
	}
	defer done()
	if err := read(ra); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w: %s: %w", ErrNotExplainable, e.Where(), err)
	}
	return nil
}

// missing is what a holds that b does not, in a's order.
func missing[T comparable](a, b []T) []T {
	var out []T
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

func hexAddr(a uint64) string { return fmt.Sprintf("%#x", a) }

// pad makes hex addresses sort as numbers.
func pad(a string) string { return fmt.Sprintf("%20s", a) }
