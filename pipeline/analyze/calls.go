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
	inlineCompares(old, cur, op, cp, diff)
	lst := func(ev map[string]any, prev, fn *disasm.Func, at uint64) {
		listingEvidence(ev, old, cur, op.Arch, cp.Arch, prev, fn, at)
	}
	return append(callFindings(ch, op, cp, diff, lst), magicFindings(ch, op, cp, diff, lst)...), nil
}

// inlineCompares adds, to the functions that changed or are new and to
// their previous versions, the literals they compare through immediates
// (disasm.InlineCompares), as strings they reference and compare: the key
// that GCC inlines a memcmp of on x86 and AArch64 lies in the code, not in
// read-only data. Only those functions are disassembled.
func inlineCompares(old, cur *code, op, cp *disasm.Program, diff *disasm.Diff) {
	add := func(c *code, arch string, f *disasm.Func) {
		if arch != "x86_64" && arch != "x86" && arch != "aarch64" {
			return
		}
		l, err := disasm.Listing(c.ra, c.ra.Size(), arch, f)
		if err != nil {
			return
		}
		for _, s := range disasm.InlineCompares(arch, l) {
			f.Inlined = append(f.Inlined, s)
			if !slices.Contains(f.Compared, s) {
				f.Compared = append(f.Compared, s)
			}
			if !slices.Contains(f.Strings, s) {
				f.Strings = append(f.Strings, s)
			}
		}
	}
	for _, p := range diff.Matched {
		if p.Changed() {
			add(old, op.Arch, p.Old)
			add(cur, cp.Arch, p.New)
		}
	}
	for _, f := range diff.Removed {
		add(old, op.Arch, f)
	}
	for _, f := range diff.Added {
		add(cur, cp.Arch, f)
	}
}

// listingLines bounds the before/after disassembly of one finding.
const listingLines = 24

// listingEvidence adds to ev what a reviewer checks a function-level
// finding by: the disassembly of fn's changed region nearest at, beside
// prev's (a unified diff: "-" only before, "+" only after), and the
// constants fn newly uses. A version that does not disassemble leaves
// them out; the finding stands on the function diff.
func listingEvidence(ev map[string]any, old, cur *code, oldArch, curArch string, prev, fn *disasm.Func, at uint64) {
	after, err := disasm.Listing(cur.ra, cur.ra.Size(), curArch, fn)
	if err != nil {
		return
	}
	var before []disasm.Inst
	if prev != nil {
		if before, err = disasm.Listing(old.ra, old.ra.Size(), oldArch, prev); err != nil {
			return
		}
	}
	ev["disassembly"] = disasm.DiffAround(before, after, at, listingLines)
	added := missing(disasm.Constants(after), disasm.Constants(before))
	ev["constants_added"] = hexInts(added)
	// Where each is first used, as call_sites says where each call is.
	sites := map[string]string{}
	for v, a := range disasm.FirstUses(after, added) {
		sites[hexInts([]int64{v})[0]] = fmt.Sprintf("%#x", a)
	}
	ev["constant_sites"] = sites
}

func hexInts(l []int64) []string {
	out := make([]string, 0, len(l))
	for _, v := range l {
		if v < 0 {
			out = append(out, fmt.Sprintf("-%#x", -v))
		} else {
			out = append(out, fmt.Sprintf("%#x", v))
		}
	}
	return out
}

// callFindings are the elf-call-added findings of one binary: one per
// function that newly calls a risky import the old version imported.
//
// listing, when set, adds the disassembly of the region around a site.
func callFindings(ch *pipeline.Change, old, cur *disasm.Program, diff *disasm.Diff, listing func(ev map[string]any, prev, fn *disasm.Func, at uint64)) []pipeline.Finding {
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
		var firstSite uint64
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
				if firstSite == 0 {
					firstSite = it.fn.Sites[i]
				}
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
		if listing != nil {
			listing(ev, it.prev, it.fn, firstSite)
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
