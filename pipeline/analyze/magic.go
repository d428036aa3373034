package analyze

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/disasm"
)

// magicFindings are the magic-string-added findings of one binary: one
// per function, new or changed, that newly passes to a compare function
// (strcmp, strncmp, memcmp, strstr and their kin) a string that looks
// like a secret and that no function of the old binary referenced. This
// is the shape of the hard-coded key, password or User-Agent that opens a
// backdoor: "if (strcmp(ua, KEY) == 0) skip the login".
//
// A string looks like a secret when it is a printf format (input compared
// with a format string is no feature), or when it has no white space, is
// six bytes or more, and mixes letters with digits or holds a character
// that names, paths and options do not ("/", ".", "-", "_", ":", "=").
// Routes ("GET /version"), options ("--json") and words are left to
// --explain, which lists every string a function newly compares.
//
// listing, when set, adds the disassembly of the region around the first
// compare call.
func magicFindings(ch *pipeline.Change, old, cur *disasm.Program, diff *disasm.Diff, listing func(ev map[string]any, prev, fn *disasm.Func, at uint64)) []pipeline.Finding {
	known := map[string]bool{}
	for _, f := range old.Funcs {
		for _, s := range f.Strings {
			known[s] = true
		}
	}
	type item struct {
		fn, prev *disasm.Func
		by       string
	}
	var items []item
	for _, p := range diff.Matched {
		items = append(items, item{p.New, p.Old, p.By})
	}
	for _, f := range diff.Added {
		items = append(items, item{fn: f})
	}
	slices.SortFunc(items, func(a, b item) int { return cmp.Compare(a.fn.Addr, b.fn.Addr) })
	var out []pipeline.Finding
	for _, it := range items {
		var added []string
		for _, s := range it.fn.Compared {
			if known[s] || it.prev != nil && slices.Contains(it.prev.Compared, s) || !secretLike(s) {
				continue
			}
			added = append(added, s)
		}
		if len(added) == 0 {
			continue
		}
		added = capList(added, 20)
		var compares []string
		var site uint64
		for i, c := range it.fn.Calls {
			if disasm.IsCompare(c) {
				compares = append(compares, c)
				if site == 0 && i < len(it.fn.Sites) {
					site = it.fn.Sites[i]
				}
			}
		}
		for _, s := range added {
			if slices.Contains(it.fn.Inlined, s) {
				compares = append(compares, "an inlined compare")
				break
			}
		}
		quoted := make([]string, len(added))
		for i, s := range added {
			quoted[i] = strconv.Quote(s)
		}
		ev := funcEvidence(ch, cur.Arch, it.fn, it.prev, it.by)
		ev["strings_added"] = added
		ev["compare_calls"] = compares
		ev["strings"] = capList(append([]string(nil), it.fn.Strings...), 50)
		ev["strings_before"], ev["compared_before"] = []string{}, []string{}
		if it.prev != nil {
			ev["strings_before"] = capList(append([]string{}, it.prev.Strings...), 50)
			ev["compared_before"] = capList(append([]string{}, it.prev.Compared...), 50)
		}
		if listing != nil {
			listing(ev, it.prev, it.fn, site)
		}
		kind := ev["function_kind"]
		f := finding(pipeline.IDMagicStringAdded, ch, fmt.Sprintf("%s function %s at %#x newly compares input with %s (through %s)",
			kind, it.fn.Name, it.fn.Addr, strings.Join(quoted, ", "), strings.Join(compares, ", ")), ev)
		f.AllowOnly = true
		out = append(out, f)
	}
	return out
}

// secretLike: see magicFindings.
func secretLike(s string) bool {
	if strings.Contains(s, "%") {
		return true
	}
	if len(s) < 6 || strings.IndexFunc(s, unicode.IsSpace) >= 0 {
		return false
	}
	var letter, digit, other bool
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z':
			letter = true
		case r >= '0' && r <= '9':
			digit = true
		case !strings.ContainsRune("/.-_:=", r):
			other = true
		}
	}
	return letter && digit || other
}
