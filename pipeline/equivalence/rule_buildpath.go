package equivalence

import (
	"bytes"
	"context"
	"fmt"
)

// buildPath explains text files (scripts, pkg-config files, generated
// headers, logs) that differ only in one build-path prefix, used
// consistently: every occurrence of the shipped build's absolute directory
// is the rebuild's, and nothing else differs. ELF files are not text: a
// path in their .rodata is data, never masked.
type buildPath struct{}

func (buildPath) ID() string      { return "build-path" }
func (buildPath) Version() string { return "2" } // 2: composes with build-date
func (buildPath) Description() string {
	return "text files that differ only in one consistently used build-path prefix"
}

// minPrefix is the shortest build directory the rule believes ("/a/b").
const minPrefix = 4

func pathByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || bytes.IndexByte([]byte("/._+-~@"), c) >= 0
}

// pathToken is the path-like token of b around offset i.
func pathToken(b []byte, i int) (int, int) {
	s := i
	for s > 0 && pathByte(b[s-1]) {
		s--
	}
	e := i
	for e < len(b) && pathByte(b[e]) {
		e++
	}
	return s, e
}

// prefixes finds the build directories of both sides: the differing
// start of the path tokens at the first differing byte, up to their common
// tail, which must begin at a "/".
func prefixes(a, b []byte) (pa, pb []byte, ok bool) {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	if i == len(a) || i == len(b) {
		return nil, nil, false
	}
	sa, ea := pathToken(a, i)
	sb, eb := pathToken(b, i)
	if sa != sb {
		return nil, nil, false
	}
	ta, tb := a[sa:ea], b[sb:eb]
	n := 0
	for n < len(ta) && n < len(tb) && ta[len(ta)-1-n] == tb[len(tb)-1-n] {
		n++
	}
	// The common tail starts at a separator, or is empty.
	for n > 0 && ta[len(ta)-n] != '/' {
		n--
	}
	pa, pb = ta[:len(ta)-n], tb[:len(tb)-n]
	if len(pa) < minPrefix || len(pb) < minPrefix || pa[0] != '/' || pb[0] != '/' {
		return nil, nil, false
	}
	return pa, pb, true
}

func (buildPath) Explain(_ context.Context, s, r *Input) (Result, error) {
	if s.Data == nil || r.Data == nil || !isText(s.Data) || !isText(r.Data) {
		return Result{}, nil
	}
	pa, pb, ok := prefixes(s.Data, r.Data)
	if !ok {
		return Result{}, nil
	}
	ka, kb := replacePrefix(s.Data, pa), replacePrefix(r.Data, pb)
	if bytes.Count(s.Data, pa) != bytes.Count(r.Data, pb) || !bytes.Equal(ka, kb) {
		return Result{Reason: fmt.Sprintf("build-path: the files differ in more than the prefixes %q and %q", pa, pb)}, nil
	}
	ap := prefixApplied(s.Data, r.Data, pa, pb)
	return Result{Explained: true, Applied: []Applied{ap}, NormalizedShipped: digest(ka), NormalizedRebuilt: digest(kb)}, nil
}

// normalize implements composable: the prefixes found at the first
// difference are replaced wherever they occur, as often on both sides,
// whatever else differs. The ranges are those of the original files.
func (buildPath) normalize(origA, origB, a, b []byte) ([]byte, []byte, *Applied) {
	// The files must be text; what earlier rules left holds their NUL-marked placeholders.
	if !isText(origA) || !isText(origB) {
		return nil, nil, nil
	}
	pa, pb, ok := prefixes(a, b)
	if !ok || bytes.Count(a, pa) != bytes.Count(b, pb) {
		return nil, nil, nil
	}
	ap := prefixApplied(origA, origB, pa, pb)
	return replacePrefix(a, pa), replacePrefix(b, pb), &ap
}

func replacePrefix(b, prefix []byte) []byte {
	return bytes.ReplaceAll(b, prefix, []byte("\x00build-path\x00"))
}

// prefixApplied is the evidence: where each prefix occurs on both sides.
func prefixApplied(a, b, pa, pb []byte) Applied {
	ap := Applied{ID: "build-path"}
	for off := 0; ; {
		j := bytes.Index(a[off:], pa)
		if j < 0 {
			break
		}
		ap.Ranges = append(ap.Ranges, [2]int64{int64(off + j), int64(off + j + len(pa))})
		ap.Before = append(ap.Before, string(pa))
		ap.After = append(ap.After, string(pb))
		off += j + len(pa)
	}
	if len(pa) != len(pb) {
		for off := 0; ; {
			j := bytes.Index(b[off:], pb)
			if j < 0 {
				break
			}
			ap.RebuiltRanges = append(ap.RebuiltRanges, [2]int64{int64(off + j), int64(off + j + len(pb))})
			off += j + len(pb)
		}
	}
	return ap
}
