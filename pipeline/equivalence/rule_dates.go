package equivalence

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strconv"
	"time"
	"unicode/utf8"
)

// buildDate explains text files that differ only in embedded build dates
// and times (ISO 8601, date(1), RFC 2822, __DATE__ and __TIME__, Unix
// seconds as SOURCE_DATE_EPOCH holds them): every other byte must be equal,
// the dates must be of the same form on both sides, and both must lie
// within DateWindow of each other and not after the comparison.
type buildDate struct{}

// DateWindow is how far apart the two builds' dates may be.
var DateWindow = 5 * 366 * 24 * time.Hour

// earliestDate is the earliest build date the rule believes.
var earliestDate = time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC)

func (buildDate) ID() string      { return "build-date" }
func (buildDate) Version() string { return "2" } // 2: composes with build-path
func (buildDate) Description() string {
	return "text files that differ only in embedded build dates and times within the build window"
}

// The date forms, each a group of dateRE, with their layouts.
var dateForms = []struct {
	re      string
	layouts []string
}{
	{`\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?`, []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02 15:04:05Z07:00", "2006-01-02T15:04:05Z0700", "2006-01-02 15:04:05Z0700"}},
	{`\d{4}-\d{2}-\d{2}`, []string{"2006-01-02"}},
	{`(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ \d]\d \d{2}:\d{2}:\d{2} [A-Z]{2,5} \d{4}`, []string{"Mon Jan _2 15:04:05 MST 2006"}},
	{`(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{1,2} (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2}(?: [+-]\d{4}| [A-Z]{2,5})?`, []string{time.RFC1123Z, time.RFC1123, "Mon, 2 Jan 2006 15:04:05 -0700", "Mon, 2 Jan 2006 15:04:05 MST", "Mon, 2 Jan 2006 15:04:05"}},
	{`(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ \d]\d \d{4}`, []string{"Jan _2 2006"}},
	{`\b\d{2}:\d{2}:\d{2}\b`, []string{"15:04:05"}},
	{`\b1\d{9}\b`, nil}, // Unix seconds, 2001 to 2286
}

var dateRE = func() *regexp.Regexp {
	s := ""
	for i, f := range dateForms {
		if i > 0 {
			s += "|"
		}
		s += "(" + f.re + ")"
	}
	return regexp.MustCompile(s)
}()

// epochContext is what must come shortly before Unix seconds for them to
// count as a date: a name that says so ("BUILD_EPOCH=", "timestamp: ").
var epochContext = regexp.MustCompile(`(?i)(date|time|epoch|built|build|stamp)s?\b[^\n]{0,8}$`)

const epochLookback = 40

// dateToken is one date found in a text.
type dateToken struct {
	form     int
	start    int
	end      int
	text     string
	t        time.Time
	timeOnly bool
}

func findDates(b []byte) []dateToken {
	var out []dateToken
	for _, m := range dateRE.FindAllSubmatchIndex(b, -1) {
		tok := dateToken{form: -1, start: m[0], end: m[1], text: string(b[m[0]:m[1]])}
		for g := range dateForms {
			if m[2+2*g] >= 0 {
				tok.form = g
				break
			}
		}
		f := dateForms[tok.form]
		if f.layouts == nil && epochContext.Match(b[max(0, m[0]-epochLookback):m[0]]) {
			// A bare number is a date only where the text says so.
			n, _ := strconv.ParseInt(tok.text, 10, 64)
			tok.t = time.Unix(n, 0).UTC()
		}
		for _, l := range f.layouts {
			if t, err := time.Parse(l, tok.text); err == nil {
				tok.t = t
				tok.timeOnly = l == "15:04:05"
				break
			}
		}
		if tok.timeOnly {
			// A time of day alone is a build time only beside a date
			// (__DATE__ " " __TIME__) or where the text says so, not a
			// duration such as "timeout=00:00:30".
			near := len(out) > 0 && !out[len(out)-1].timeOnly && m[0]-out[len(out)-1].end <= 3
			if !near && !epochContext.Match(b[max(0, m[0]-epochLookback):m[0]]) {
				tok.t = time.Time{}
			}
		}
		out = append(out, tok)
	}
	return out
}

// isText reports whether b looks like text: valid UTF-8 without NUL bytes.
func isText(b []byte) bool {
	return bytes.IndexByte(b, 0) < 0 && utf8.Valid(b)
}

func (buildDate) Explain(_ context.Context, s, r *Input) (Result, error) {
	if s.Data == nil || r.Data == nil || !isText(s.Data) || !isText(r.Data) {
		return Result{}, nil
	}
	na, nb, ap, reason := buildDate{}.rewrite(s.Data, r.Data, true)
	if ap == nil {
		return Result{Reason: reason}, nil
	}
	return Result{Explained: true, Applied: []Applied{*ap}, NormalizedShipped: digest(na), NormalizedRebuilt: digest(nb)}, nil
}

// normalize implements composable: the dates that pair up are replaced,
// whatever else differs.
func (buildDate) normalize(origA, origB, a, b []byte) ([]byte, []byte, *Applied) {
	if !isText(origA) || !isText(origB) {
		return nil, nil, nil
	}
	na, nb, ap, _ := buildDate{}.rewrite(a, b, false)
	return na, nb, ap
}

// rewrite pairs the dates of a and b in order and replaces each with its
// form's placeholder. With strict, every other byte must be equal. It
// returns nil, and why, when the dates do not pair up, one pair is not of
// one form or lies outside the build window, or no date differs.
func (buildDate) rewrite(a, b []byte, strict bool) ([]byte, []byte, *Applied, string) {
	ta, tb := findDates(a), findDates(b)
	if len(ta) == 0 && len(tb) == 0 {
		return nil, nil, nil, ""
	}
	if len(ta) != len(tb) {
		return nil, nil, nil, "build-date: the files hold different numbers of dates"
	}
	now := time.Now().Add(48 * time.Hour)
	ap := Applied{ID: "build-date"}
	var rebuilt [][2]int64
	moved := false
	pa, pb := 0, 0
	for i := range ta {
		x, y := ta[i], tb[i]
		if strict && !bytes.Equal(a[pa:x.start], b[pb:y.start]) {
			return nil, nil, nil, fmt.Sprintf("build-date: the text differs before offset %d", x.start)
		}
		pa, pb = x.end, y.end
		if x.text == y.text {
			continue
		}
		if x.form != y.form || x.t.IsZero() || y.t.IsZero() {
			return nil, nil, nil, fmt.Sprintf("build-date: %q and %q are not dates of one form", x.text, y.text)
		}
		if !x.timeOnly {
			d := x.t.Sub(y.t)
			if d < 0 {
				d = -d
			}
			if x.t.Before(earliestDate) || y.t.Before(earliestDate) || x.t.After(now) || y.t.After(now) || d > DateWindow {
				return nil, nil, nil, fmt.Sprintf("build-date: %q and %q lie outside the build window", x.text, y.text)
			}
		}
		ap.Ranges = append(ap.Ranges, [2]int64{int64(x.start), int64(x.end)})
		rebuilt = append(rebuilt, [2]int64{int64(y.start), int64(y.end)})
		moved = moved || x.start != y.start || x.end != y.end
		ap.Before = append(ap.Before, x.text)
		ap.After = append(ap.After, y.text)
	}
	if strict && !bytes.Equal(a[pa:], b[pb:]) {
		return nil, nil, nil, "build-date: the text differs after the last date"
	}
	if len(ap.Ranges) == 0 {
		return nil, nil, nil, ""
	}
	if moved {
		ap.RebuiltRanges = rebuilt
	}
	return normalizeDates(a, ta), normalizeDates(b, tb), &ap, ""
}

// normalizeDates replaces every date with its form's placeholder.
func normalizeDates(b []byte, toks []dateToken) []byte {
	var out []byte
	p := 0
	for _, t := range toks {
		out = append(out, b[p:t.start]...)
		out = append(out, fmt.Sprintf("\x00date%d\x00", t.form)...)
		p = t.end
	}
	return append(out, b[p:]...)
}
