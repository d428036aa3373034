package disasm

import (
	"sort"
	"strings"
)

// Pair is a function matched between two versions of a binary.
type Pair struct {
	Old, New *Func
	// By is how they were matched: "name", "hash", "calls" (the same set
	// of imports called) or "similar" (the most alike import calls).
	By string
}

// Changed: the function's code differs (beyond moved call targets).
func (p Pair) Changed() bool { return p.Old.CodeHash != p.New.CodeHash }

// Diff is the function-level difference of two versions of a binary.
type Diff struct {
	// Matched pairs each function with its previous version; Changed
	// tells the ones whose code differs.
	Matched []Pair
	// Added and Removed are the functions with no counterpart.
	Added, Removed []*Func
}

// Compare matches the functions of two versions of a binary: by name
// (GCC's clone suffixes aside);
// then, for the sub_ADDR functions of a stripped binary, by code hash,
// then by the set of imports they call (each only when unique on both
// sides), then each remaining function with the remaining one whose
// import calls are most alike (at least half shared).
func Compare(old, cur *Program) *Diff {
	d := &Diff{}
	oldLeft, newLeft := map[*Func]bool{}, map[*Func]bool{}
	oldByName := map[string]*Func{}
	for i := range old.Funcs {
		f := &old.Funcs[i]
		oldLeft[f] = true
		if !isSub(f.Name) {
			oldByName[baseName(f.Name)] = f
		}
	}
	for i := range cur.Funcs {
		f := &cur.Funcs[i]
		if o, ok := oldByName[baseName(f.Name)]; ok && !isSub(f.Name) && oldLeft[o] {
			d.Matched = append(d.Matched, Pair{o, f, "name"})
			delete(oldLeft, o)
			continue
		}
		newLeft[f] = true
	}
	byKey := func(by string, key func(*Func) string) {
		oldK, newK := map[string][]*Func{}, map[string][]*Func{}
		for f := range oldLeft {
			oldK[key(f)] = append(oldK[key(f)], f)
		}
		for f := range newLeft {
			newK[key(f)] = append(newK[key(f)], f)
		}
		for k, ns := range newK {
			if os := oldK[k]; len(ns) == 1 && len(os) == 1 {
				d.Matched = append(d.Matched, Pair{os[0], ns[0], by})
				delete(oldLeft, os[0])
				delete(newLeft, ns[0])
			}
		}
	}
	byKey("hash", func(f *Func) string { return f.CodeHash })
	byKey("calls", func(f *Func) string { return strings.Join(importCalls(f), "\x00") })
	// The rest: most alike import calls first.
	type cand struct {
		o, n *Func
		sim  float64
	}
	var cands []cand
	// Only functions that call imports can be alike; bounded: beyond
	// maxPairs candidate pairs the rest stay unmatched (added and
	// removed) rather than take quadratic time.
	var olds, news []*Func
	oldCalls, newCalls := map[*Func][]string{}, map[*Func][]string{}
	for f := range oldLeft {
		if c := importCalls(f); len(c) > 0 {
			olds = append(olds, f)
			oldCalls[f] = c
		}
	}
	for f := range newLeft {
		if c := importCalls(f); len(c) > 0 {
			news = append(news, f)
			newCalls[f] = c
		}
	}
	if len(olds)*len(news) <= maxPairs {
		for _, n := range news {
			for _, o := range olds {
				if s := similarity(oldCalls[o], newCalls[n]); s >= 0.5 {
					cands = append(cands, cand{o, n, s})
				}
			}
		}
	}
	sort.Slice(cands, func(i, j int) bool {
		if cands[i].sim != cands[j].sim {
			return cands[i].sim > cands[j].sim
		}
		if cands[i].n.Addr != cands[j].n.Addr {
			return cands[i].n.Addr < cands[j].n.Addr
		}
		return cands[i].o.Addr < cands[j].o.Addr
	})
	for _, c := range cands {
		if oldLeft[c.o] && newLeft[c.n] {
			d.Matched = append(d.Matched, Pair{c.o, c.n, "similar"})
			delete(oldLeft, c.o)
			delete(newLeft, c.n)
		}
	}
	for f := range newLeft {
		d.Added = append(d.Added, f)
	}
	for f := range oldLeft {
		d.Removed = append(d.Removed, f)
	}
	sort.Slice(d.Matched, func(i, j int) bool { return d.Matched[i].New.Addr < d.Matched[j].New.Addr })
	sort.Slice(d.Added, func(i, j int) bool { return d.Added[i].Addr < d.Added[j].Addr })
	sort.Slice(d.Removed, func(i, j int) bool { return d.Removed[i].Addr < d.Removed[j].Addr })
	return d
}

// maxPairs bounds the similarity matching of the functions left over.
const maxPairs = 1 << 20

// baseName is a function's name without the suffixes of GCC's clones
// (handle.isra.0, handle.constprop.1, handle.part.0, handle.cold), which
// change from build to build.
func baseName(name string) string {
	for _, s := range []string{".isra.", ".constprop.", ".part.", ".cold", ".lto_priv."} {
		if i := strings.Index(name, s); i > 0 {
			name = name[:i]
		}
	}
	return name
}

func isSub(name string) bool { return strings.HasPrefix(name, "sub_") }

// importCalls are a function's calls to named functions, sorted (sub_ADDR
// names differ between builds).
func importCalls(f *Func) []string {
	var out []string
	for _, c := range f.Calls {
		if !isSub(c) {
			out = append(out, c)
		}
	}
	sort.Strings(out)
	return out
}

// similarity is the Jaccard index of two sorted lists of distinct names;
// two empty ones are not alike.
func similarity(a, b []string) float64 {
	both, i, j := 0, 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i] == b[j]:
			both++
			i++
			j++
		case a[i] < b[j]:
			i++
		default:
			j++
		}
	}
	union := len(a) + len(b) - both
	if union == 0 {
		return 0
	}
	return float64(both) / float64(union)
}
