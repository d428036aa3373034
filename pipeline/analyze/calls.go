package analyze

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/disasm"
)

// maxCodeBytes bounds the code decoded from one binary.
const maxCodeBytes = 64 << 20

// Calls looks inside each modified ELF executable and shared library whose
// code changed: it recovers both versions' functions (pipeline/disasm),
// matches them, and reports a function that newly calls an exec, shell,
// network or setuid family import the binary already had
// (elf-call-added): the backdoor in a declared "bug fixes" update, which
// imports nothing new. A newly imported call is elf-import-added's.
type Calls struct{}

var _ pipeline.Analyzer = Calls{}

// Name implements pipeline.Analyzer.
func (Calls) Name() string { return "calls" }

// riskyCalls are the families elf-call-added watches: riskyImports's and
// the identity changes.
var riskyCalls = func() map[string]string {
	m := map[string]string{
		"recv": "network", "setuid": "setuid", "setgid": "setuid", "setresuid": "setuid", "setresgid": "setuid",
		"setreuid": "setuid", "setregid": "setuid", "seteuid": "setuid", "setegid": "setuid",
	}
	for k, v := range riskyImports {
		m[k] = v
	}
	return m
}()

// Analyze implements pipeline.Analyzer.
func (Calls) Analyze(ctx context.Context, in *pipeline.AnalysisInput) ([]pipeline.Finding, error) {
	return eachChange(ctx, in, modifiedELF(in), func(ctx context.Context, ch *pipeline.Change) ([]pipeline.Finding, error) {
		return callsChange(ctx, in, ch)
	})
}

// code is one version of a binary, open, with its code digest.
type code struct {
	ra     sizedReaderAt
	digest string
}

// openCode opens one version and reads its code digest; nil for a file
// that is no parseable ELF. The caller calls done.
func openCode(ctx context.Context, in *pipeline.AnalysisInput, e *pipeline.Entry) (c *code, done func(), err error) {
	ra, done, err := openAt(ctx, e, in.WorkDir)
	if err != nil {
		return nil, nil, err
	}
	digest, err := disasm.CodeDigest(ra, ra.Size(), maxCodeBytes)
	if err != nil {
		done()
		return nil, nil, nil
	}
	return &code{ra, digest}, done, nil
}

// functions recovers the version's functions; nil when it cannot
// (unsupported or hostile: the file-level findings stand for it).
func (c *code) functions() *disasm.Program {
	p, err := disasm.Functions(c.ra, c.ra.Size(), maxCodeBytes)
	if err != nil {
		return nil
	}
	return p
}

// callsChange compares one modified binary's functions with its previous
// version's. Both code digests are read first: a rebuild whose code is the
// same (another build id) is disassembled on neither side.
func callsChange(ctx context.Context, in *pipeline.AnalysisInput, ch *pipeline.Change) ([]pipeline.Finding, error) {
	old, doneOld, err := openCode(ctx, in, ch.Old)
	if err != nil || old == nil {
		return nil, err
	}
	defer doneOld()
	cur, doneCur, err := openCode(ctx, in, ch.New)
	if err != nil || cur == nil {
		return nil, err
	}
	defer doneCur()
	if old.digest == cur.digest {
		return nil, nil
	}
	op, cp := old.functions(), cur.functions()
	if op == nil || cp == nil {
		return nil, nil
	}
	diff := disasm.Compare(op, cp)
	return append(callFindings(ch, op, cp, diff), magicFindings(ch, op, cp, diff)...), nil
}

// callFindings are the elf-call-added findings of one binary: one per
// function that newly calls a risky import the old version imported.
func callFindings(ch *pipeline.Change, old, cur *disasm.Program, diff *disasm.Diff) []pipeline.Finding {
	type item struct {
		fn, prev *disasm.Func
		// loose: matched by likeness only, or not at all.
		loose bool
	}
	var items []item
	// lost counts, per import, the old callers whose match no longer calls
	// it or that have none; gained the new callers loosely matched that
	// newly call it. A call that only moved between loosely matched
	// functions (a refactor, a different inlining) loses as many callers
	// as it gains.
	lost, gained := map[string]int{}, map[string]int{}
	for _, p := range diff.Matched {
		loose := p.By == "similar"
		items = append(items, item{p.New, p.Old, loose})
		for _, c := range p.Old.Calls {
			if !slices.Contains(p.New.Calls, c) {
				lost[c]++
			}
		}
		if loose {
			for _, c := range p.New.Calls {
				if !slices.Contains(p.Old.Calls, c) {
					gained[c]++
				}
			}
		}
	}
	for _, f := range diff.Removed {
		for _, c := range f.Calls {
			lost[c]++
		}
	}
	for _, f := range diff.Added {
		items = append(items, item{f, nil, true})
		for _, c := range f.Calls {
			gained[c]++
		}
	}
	sort.Slice(items, func(i, j int) bool { return items[i].fn.Addr < items[j].fn.Addr })
	var out []pipeline.Finding
	for _, it := range items {
		had := map[string]bool{}
		if it.prev != nil {
			for _, c := range it.prev.Calls {
				had[c] = true
			}
		}
		var added, families []string
		callersBefore := map[string][]string{}
		sites := map[string]string{}
		for i, c := range it.fn.Calls {
			fam, ok := riskyCalls[c]
			if !ok || had[c] || !old.Imports[c] {
				// Not risky, called before, or a new import
				// (elf-import-added's).
				continue
			}
			if it.loose && gained[c] <= lost[c] {
				// Loosely matched functions taking over the call from as
				// many that lost it: code that moved, not a new caller.
				continue
			}
			added = append(added, c)
			if i < len(it.fn.Sites) {
				sites[c] = fmt.Sprintf("%#x", it.fn.Sites[i])
			}
			families = append(families, c+" ("+fam+")")
			var before []string
			for _, f := range old.Callers(c) {
				before = append(before, fmt.Sprintf("%s@%#x", f.Name, f.Addr))
			}
			callersBefore[c] = capList(before, 20)
		}
		if len(added) == 0 {
			continue
		}
		ev := funcEvidence(ch, cur.Arch, it.fn, it.prev, matchedBy(diff, it.fn))
		ev["calls_added"] = added
		ev["calls"] = capList(append([]string(nil), it.fn.Calls...), 50)
		ev["callers_before"] = callersBefore
		ev["call_sites"] = sites
		if it.prev != nil {
			ev["previous_calls"] = capList(append([]string(nil), it.prev.Calls...), 50)
		}
		kind := ev["function_kind"]
		f := finding(pipeline.IDELFCallAdded, ch, fmt.Sprintf("%s function %s at %#x newly calls %s", kind, it.fn.Name, it.fn.Addr, strings.Join(families, ", ")), ev)
		f.AllowOnly = true
		out = append(out, f)
	}
	return out
}

// matchedBy is how a function was matched with its previous version, or
// "" for an added one.
func matchedBy(d *disasm.Diff, f *disasm.Func) string {
	for _, p := range d.Matched {
		if p.New == f {
			return p.By
		}
	}
	return ""
}

// funcEvidence is what every function-level finding names: the function,
// where it is, how it was matched, and how to look at it.
func funcEvidence(ch *pipeline.Change, arch string, fn, prev *disasm.Func, matchedBy string) map[string]any {
	kind := "changed"
	if prev == nil {
		kind = "added"
	}
	ev := map[string]any{
		"function":      fn.Name,
		"address":       fmt.Sprintf("%#x", fn.Addr),
		"size":          fn.Size,
		"architecture":  arch,
		"function_kind": kind,
		"matched_by":    matchedBy,
		"inspect": fmt.Sprintf("fwvet unpack REF DIR && objdump -d --start-address=%#x --stop-address=%#x DIR%s",
			fn.Addr, fn.Addr+fn.Size, ch.Path),
	}
	if prev != nil {
		ev["previous_address"] = fmt.Sprintf("%#x", prev.Addr)
	}
	return ev
}
