package equivalence

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"strings"
)

// Formats lists the report formats Encode writes.
var Formats = []string{"text", "json", "html"}

// Encode writes the report in a format: text, json or html.
func Encode(w io.Writer, r *Report, format string) error {
	switch format {
	case "text", "":
		return EncodeText(w, r)
	case "json":
		return EncodeJSON(w, r)
	case "html":
		return EncodeHTML(w, r)
	}
	return fmt.Errorf("unknown format %q: want %s", format, strings.Join(Formats, ", "))
}

// EncodeJSON writes the report as indented JSON.
func EncodeJSON(w io.Writer, r *Report) error {
	b, err := r.MarshalJSON()
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// EncodeText writes the verdict line, the counts, then every file that is
// not identical, unexplained first.
func EncodeText(w io.Writer, r *Report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s (shipped %s) vs %s (rebuilt %s)\n", strings.ToUpper(string(r.Verdict)),
		r.Shipped.Ref, short(r.Shipped.Digest), r.Rebuilt.Ref, short(r.Rebuilt.Digest))
	for _, reason := range r.Reasons {
		fmt.Fprintf(&b, "  %s\n", reason)
	}
	var counts []string
	for _, c := range Classes {
		if r.Summary[c] > 0 {
			counts = append(counts, fmt.Sprintf("%s %d", c, r.Summary[c]))
		}
	}
	fmt.Fprintf(&b, "files: %s\n", strings.Join(counts, ", "))
	if r.Provenance != nil {
		fmt.Fprintf(&b, "provenance: %s (%s)\n", r.Provenance.Path, short(r.Provenance.Digest))
	}
	fmt.Fprintf(&b, "rules: %s (%s)\n", ruleList(r.Rules), short(r.RulesDigest))
	for _, f := range r.Files {
		if f.Class == ClassIdentical {
			continue
		}
		fmt.Fprintf(&b, "\n%-15s %s\n", f.Class, f.Where())
		if f.Reason != "" {
			fmt.Fprintf(&b, "    %s\n", f.Reason)
		}
		if d := f.Differences; d != nil {
			if len(d.Sections) > 0 {
				fmt.Fprintf(&b, "    sections: %s\n", strings.Join(d.Sections, ", "))
			}
			if len(d.Functions) > 0 {
				fmt.Fprintf(&b, "    functions: %s\n", strings.Join(d.Functions, ", "))
			}
			if len(d.Ranges) > 0 {
				more := ""
				if d.Truncated {
					more = " …"
				}
				fmt.Fprintf(&b, "    %d bytes differ at %s%s\n", d.DifferingBytes, fmtRanges(capRanges(d.Ranges, 8)), more)
			}
			for _, n := range d.NotExplained {
				if f.HoldsDifferences && strings.HasPrefix(n, "container-metadata:") {
					continue // the reason above says it
				}
				fmt.Fprintf(&b, "    - %s\n", n)
			}
		}
		for _, a := range f.Rules {
			fmt.Fprintf(&b, "    rule %s\n", a.ID)
			for i := range a.Before {
				at := ""
				if i < len(a.Ranges) {
					at = fmtRanges(a.Ranges[i:i+1]) + " "
				}
				fmt.Fprintf(&b, "      %s%s → %s\n", at, a.Before[i], a.After[i])
			}
		}
		if f.MovedTo != "" {
			fmt.Fprintf(&b, "    same bytes as %s in the rebuilt image\n", f.MovedTo)
		}
		if f.MovedFrom != "" {
			fmt.Fprintf(&b, "    same bytes as %s in the shipped image\n", f.MovedFrom)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func short(d string) string {
	if len(d) > 19 {
		return d[:19] + "…"
	}
	return d
}

func ruleList(rs []RuleInfo) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = r.ID + "@" + r.Version
	}
	return strings.Join(parts, " ")
}

//go:embed report.html.tmpl
var htmlTemplate string

var page = template.Must(template.New("report").Funcs(template.FuncMap{
	"ranges": func(rs [][2]int64) string { return fmtRanges(rs) },
	"where":  func(f *File) string { return f.Where() },
	"upper":  func(v Verdict) string { return strings.ToUpper(string(v)) },
	"at": func(rs [][2]int64, i int) string {
		if i < len(rs) {
			return fmtRanges(rs[i : i+1])
		}
		return ""
	},
	"index2": func(s []string, i int) string {
		if i < len(s) {
			return s[i]
		}
		return ""
	},
}).Parse(htmlTemplate))

// MaxHTMLIdentical bounds the identical entries the HTML page lists; the
// JSON report lists them all.
var MaxHTMLIdentical = 5000

// EncodeHTML writes the report as one self-contained page (inline CSS, no
// scripts), unexplained files first.
func EncodeHTML(w io.Writer, r *Report) error {
	type view struct {
		*Report
		Classes   []Class
		Different []*File
		Same      []*File
		// SameCount counts the identical entries, SameLeft those not listed.
		SameCount, SameLeft int
	}
	v := view{Report: r, Classes: Classes}
	for _, f := range r.Files {
		if f.Class == ClassIdentical {
			v.SameCount++
			if len(v.Same) < MaxHTMLIdentical {
				v.Same = append(v.Same, f)
			} else {
				v.SameLeft++
			}
		} else {
			v.Different = append(v.Different, f)
		}
	}
	return page.Execute(w, v)
}
