// Package version reads a firmware's version from its release files and
// compares versions in the forms vendors use: semantic versions, dotted
// numbers of any length, and vendor strings like "V1.0.0.12_1.0.3" or
// "R7.2.1-b5".
package version

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
	"unicode"

	"github.com/fwvet/fwvet/pipeline"
)

// maxReleaseFile bounds how much of a release file is read.
const maxReleaseFile = 64 << 10

// releaseFiles are tried in order; the first that yields a version wins.
var releaseFiles = []struct {
	path string
	keys []string
}{
	{"/etc/os-release", []string{"VERSION_ID", "VERSION"}},
	{"/usr/lib/os-release", []string{"VERSION_ID", "VERSION"}},
	{"/etc/openwrt_release", []string{"DISTRIB_RELEASE"}},
}

// FromTree reads the version from the tree's release files: /etc/os-release,
// /etc/openwrt_release, then any /etc/*-release file with a VERSION line.
// When several file systems hold one, the outermost (the shortest key) wins.
// It returns nil when no release file names a version.
func FromTree(ctx context.Context, t *pipeline.Tree) (*pipeline.Version, error) {
	for _, rf := range releaseFiles {
		v, err := fromEntries(ctx, t.Find(rf.path), rf.keys)
		if v != nil || err != nil {
			return v, err
		}
	}
	var others []*pipeline.Entry
	for e := range t.All() {
		if path.Dir(e.Path) == "/etc" && strings.HasSuffix(e.Path, "-release") && e.Type == pipeline.TypeFile {
			others = append(others, e)
		}
	}
	return fromEntries(ctx, others, []string{"VERSION_ID", "VERSION"})
}

func fromEntries(ctx context.Context, entries []*pipeline.Entry, keys []string) (*pipeline.Version, error) {
	var best *pipeline.Version
	for _, e := range entries {
		if e.Type != pipeline.TypeFile {
			continue
		}
		vars, err := readVars(ctx, e)
		if err != nil {
			return nil, err
		}
		for _, k := range keys {
			if v := vars[k]; v != "" {
				if best == nil || len(e.Key) < len(best.Key) {
					best = &pipeline.Version{Value: v, Source: e.Path, Container: e.Container, Key: e.Key}
				}
				break
			}
		}
	}
	return best, nil
}

// readVars parses KEY=value lines, with optional single or double quotes.
func readVars(ctx context.Context, e *pipeline.Entry) (map[string]string, error) {
	rc, err := e.Open(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", e.Where(), err)
	}
	defer rc.Close()
	vars := map[string]string{}
	sc := bufio.NewScanner(io.LimitReader(rc, maxReleaseFile))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		k = strings.TrimSpace(strings.TrimPrefix(k, "export "))
		v = strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		if _, seen := vars[k]; !seen {
			vars[k] = v
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", e.Where(), err)
	}
	return vars, nil
}

// preRelease words sort before the release they precede: 1.0-rc1 < 1.0.
var preRelease = map[string]bool{"alpha": true, "beta": true, "rc": true, "pre": true, "dev": true, "snapshot": true, "test": true}

type token struct {
	num   uint64
	word  string
	isNum bool
}

func tokenize(s string) ([]token, error) {
	s, _, _ = strings.Cut(s, "+") // semver build metadata does not order
	var toks []token
	for i := 0; i < len(s); {
		r := rune(s[i])
		switch {
		case unicode.IsDigit(r):
			j := i
			for j < len(s) && unicode.IsDigit(rune(s[j])) {
				j++
			}
			var n uint64
			if digits := strings.TrimLeft(s[i:j], "0"); digits != "" {
				var err error
				if n, err = strconv.ParseUint(digits, 10, 64); err != nil {
					return nil, fmt.Errorf("version %q: number %s too large", s, s[i:j])
				}
			}
			toks = append(toks, token{num: n, isNum: true})
			i = j
		case unicode.IsLetter(r):
			j := i
			for j < len(s) && unicode.IsLetter(rune(s[j])) {
				j++
			}
			toks = append(toks, token{word: strings.ToLower(s[i:j])})
			i = j
		default:
			i++
		}
	}
	hasNum := false
	for _, t := range toks {
		hasNum = hasNum || t.isNum
	}
	if !hasNum {
		return nil, fmt.Errorf("version %q has no number", s)
	}
	return toks, nil
}

// Compare orders two versions: -1 if a is older than b, 0 if the same, 1 if
// newer. It returns an error when they cannot be ordered (no number in one,
// or a word facing a number), which callers must treat as unknown, never as
// "not older".
func Compare(a, b string) (int, error) {
	ta, err := tokenize(a)
	if err != nil {
		return 0, err
	}
	tb, err := tokenize(b)
	if err != nil {
		return 0, err
	}
	// A prefix such as "V" or "R" on one side only is dropped.
	if len(ta) > 0 && len(tb) > 0 && ta[0].isNum != tb[0].isNum {
		if !ta[0].isNum {
			ta = ta[1:]
		} else {
			tb = tb[1:]
		}
	}
	for i := 0; i < len(ta) && i < len(tb); i++ {
		x, y := ta[i], tb[i]
		switch {
		case x.isNum && y.isNum:
			if x.num != y.num {
				return cmp(x.num < y.num), nil
			}
		case !x.isNum && !y.isNum:
			if x.word != y.word {
				px, py := preRelease[x.word], preRelease[y.word]
				if px != py {
					// a release word (or none) after a pre-release word
					return cmp(px), nil
				}
				return cmp(x.word < y.word), nil
			}
		case !x.isNum && preRelease[x.word]:
			return -1, nil // 1.0-rc1 < 1.0.0
		case !y.isNum && preRelease[y.word]:
			return 1, nil
		default:
			return 0, fmt.Errorf("versions %q and %q cannot be ordered: %s faces %s", a, b, show(x), show(y))
		}
	}
	switch {
	case len(ta) == len(tb):
		return 0, nil
	case len(ta) > len(tb):
		return tail(ta[len(tb):]), nil
	default:
		return -tail(tb[len(ta):]), nil
	}
}

// tail orders a version against the prefix it extends: "1.0.1" < "1.0.1.1",
// "1.0" = "1.0.0", but "1.0.1-rc1" < "1.0.1".
func tail(extra []token) int {
	for _, t := range extra {
		switch {
		case t.isNum && t.num == 0:
			continue
		case !t.isNum && preRelease[t.word]:
			return -1
		default:
			return 1
		}
	}
	return 0
}

func cmp(less bool) int {
	if less {
		return -1
	}
	return 1
}

func show(t token) string {
	if t.isNum {
		return strconv.FormatUint(t.num, 10)
	}
	return strconv.Quote(t.word)
}
