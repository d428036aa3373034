package report

import (
	"bufio"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/fwvet/fwvet/pipeline"
)

// Text writes a report for people: the verdict and why, the checks, the
// findings grouped by severity (worst first), then counts.
type Text struct {
	// MaxPerSeverity bounds the findings listed for info and low severities;
	// zero means 25. Higher severities are always listed in full.
	MaxPerSeverity int
}

var _ pipeline.Encoder = Text{}

// Encode implements pipeline.Encoder.
func (t Text) Encode(w io.Writer, r *pipeline.Report) error {
	max := t.MaxPerSeverity
	if max == 0 {
		max = 25
	}
	bw := bufio.NewWriter(w)
	p := func(format string, args ...any) { fmt.Fprintf(bw, format, args...) }

	p("%s  %s\n", strings.ToUpper(string(r.Verdict)), subject(r))
	for _, reason := range r.Reasons {
		p("  %s\n", reason)
	}
	if r.PolicyMode == "warn" {
		p("  (the policy is in warn mode: this verdict is recorded, and the exit code is 0)\n")
	}
	for _, w := range r.Waivers {
		p("  waiver %d applied: %s, until %s, by %s: %s\n", w.RecordID, w.Scope, w.Until, w.By, w.Reason)
	}
	if len(r.Checks) > 0 {
		p("\nChecks\n")
		for _, c := range r.Checks {
			p("  %-6s %-16s %s\n", c.Status, c.Name, c.Detail)
		}
	}
	groups := map[pipeline.Severity][]pipeline.Finding{}
	for _, f := range r.Findings {
		groups[f.Severity] = append(groups[f.Severity], f)
	}
	if len(r.Findings) > 0 {
		p("\nFindings\n")
	}
	for s := pipeline.SeverityCritical; s >= pipeline.SeverityInfo; s-- {
		fs := groups[s]
		if len(fs) == 0 {
			continue
		}
		// Undisclosed first: they are what decides the verdict.
		sort.SliceStable(fs, func(i, j int) bool { return !fs[i].Disclosed && fs[j].Disclosed })
		disclosed := 0
		for _, f := range fs {
			if f.Disclosed {
				disclosed++
			}
		}
		p("  %s (%d, %d disclosed)\n", strings.ToUpper(s.String()), len(fs), disclosed)
		for i, f := range fs {
			if s <= pipeline.SeverityLow && i == max {
				p("    … and %d more (see --format json)\n", len(fs)-max)
				break
			}
			mark := " "
			switch {
			case f.Disclosed:
				mark = "✓"
			case f.Waived:
				mark = "w"
			}
			p("  %s %-24s %s  %s\n", mark, f.ID, shownPath(f), f.Message)
			if len(f.Container) > 2 {
				// Only a nested container is worth a line: "image › format" is every finding's.
				p("      in %s\n", strings.Join(f.Container, " › "))
			}
		}
	}
	if x := r.Explain; x != nil {
		explainText(p, x)
	}
	// Counts mean something only where changes were assessed.
	if s := r.Summary; r.Baseline != nil || len(r.Findings) > 0 {
		p("\n%d added, %d removed, %d modified, %d metadata changed; %d undisclosed. %d findings.\n",
			s.Added, s.Removed, s.Modified, s.Metadata, s.Undisclosed, len(r.Findings))
	}
	return bw.Flush()
}

// subject names what was vetted: the candidate, and the baseline if any,
// each with its platform where it is one platform of a multi-platform
// image, so that the reports of such an image, one after the other, each
// say which platform they are about. The baseline's platform is named only
// where it is not the candidate's.
func subject(r *pipeline.Report) string {
	c := r.Candidate
	s := fmt.Sprintf("%s %s", c.Ref, short(c.Digest))
	if c.Platform != "" {
		s += " platform " + c.Platform
	}
	if c.Version != "" {
		s += " version " + c.Version
	}
	if b := r.Baseline; b != nil {
		s += fmt.Sprintf(" against %s %s", b.Ref, short(b.Digest))
		if b.Platform != "" && b.Platform != c.Platform {
			s += " platform " + b.Platform
		}
		if b.Version != "" {
			s += " version " + b.Version
		}
	}
	return s
}

func short(digest string) string {
	if len(digest) > 19 {
		return "(" + digest[:19] + "…)"
	}
	return "(" + digest + ")"
}

func shownPath(f pipeline.Finding) string {
	if f.Path == "" {
		return "-"
	}
	return f.Path
}

// explainText prints a binary's function-level diff.
func explainText(p func(string, ...any), x *pipeline.FunctionDiff) {
	where := x.Path
	if len(x.Container) > 0 {
		where = pipeline.Where(x.Container, x.Path)
	}
	stripped := ""
	if x.Stripped {
		stripped = ", stripped (functions from call targets and prologues)"
	}
	p("\nFunctions of %s (%s%s)\n", where, x.Architecture, stripped)
	if x.SameCode {
		p("  the same code bytes in both versions once build ids and debug links are masked: not disassembled\n")
		return
	}
	p("  %d added, %d removed, %d changed, %d unchanged\n", len(x.Added), len(x.Removed), len(x.Changed), x.Unchanged)
	calls := func(label string, cs []string) string {
		if len(cs) == 0 {
			return ""
		}
		return "  " + label + " " + strings.Join(cs, ", ")
	}
	strs := func(label string, ss []string) string {
		if len(ss) == 0 {
			return ""
		}
		q := make([]string, len(ss))
		for i, s := range ss {
			q[i] = strconv.Quote(s)
		}
		return "\n      " + label + " " + strings.Join(q, ", ")
	}
	consts := func(label string, cs []string) string {
		if len(cs) == 0 {
			return ""
		}
		return "\n      " + label + " " + strings.Join(cs, ", ")
	}
	for _, f := range x.Added {
		p("  + %-28s %s, %d bytes%s%s%s%s\n", f.Name, f.Address, f.Size, calls("calls", f.Calls), strs("compares", f.Compared), strs("references", f.Strings),
			consts("uses constants", f.Constants))
	}
	for _, f := range x.Removed {
		p("  - %-28s %s, %d bytes (in the baseline)%s\n", f.Name, f.Address, f.Size, calls("called", f.Calls))
	}
	for _, f := range x.Changed {
		p("  ~ %-28s %s, %d bytes (was %s, %d bytes; matched by %s)%s%s%s%s%s\n", f.Name, f.Address, f.Size, f.PreviousAddress, f.PreviousSize, f.MatchedBy,
			calls("newly calls", f.CallsAdded), calls("no longer calls", f.CallsRemoved),
			strs("newly compares", f.ComparedAdded), strs("newly references", f.StringsAdded), consts("newly uses constants", f.ConstantsAdded))
	}
}
