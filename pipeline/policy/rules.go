package policy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"text/template"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/cost"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/ext"

	"github.com/fwvet/fwvet/pipeline"
)

const (
	// CostLimit bounds what one rule may cost to evaluate, in CEL's cost
	// units (about one per comparison, field access or list element
	// visited). A rule over it fails the verdict.
	CostLimit = 10_000_000
	// RuleTimeout bounds the time one rule may take.
	RuleTimeout = 5 * time.Second
	// maxMessage bounds a rule's rendered message.
	maxMessage = 4 << 10
)

// The inputs of a rule, as CEL sees them (policy.subject, policy.check,
// policy.finding, policy.change). The json tags name the same fields for
// message templates.
type subject struct {
	Ref     string `cel:"ref" json:"ref"`
	Digest  string `cel:"digest" json:"digest"`
	Version string `cel:"version" json:"version"`
}

type check struct {
	Name   string `cel:"name" json:"name"`
	Status string `cel:"status" json:"status"`
	Detail string `cel:"detail" json:"detail"`
}

type finding struct {
	ID        string   `cel:"id" json:"id"`
	Severity  string   `cel:"severity" json:"severity"`
	Path      string   `cel:"path" json:"path"`
	Container []string `cel:"container" json:"container"`
	Disclosed bool     `cel:"disclosed" json:"disclosed"`
	Message   string   `cel:"message" json:"message"`
}

type change struct {
	Kind      string `cel:"kind" json:"kind"`
	Path      string `cel:"path" json:"path"`
	Disclosed bool   `cel:"disclosed" json:"disclosed"`
}

// changeKinds maps the pipeline's change kinds to the names rules see
// (DESIGN.md: added, removed, modified, metadata).
var changeKinds = map[pipeline.ChangeKind]string{
	pipeline.ChangeAdded:    "added",
	pipeline.ChangeRemoved:  "removed",
	pipeline.ChangeModified: "modified",
	pipeline.ChangeMetadata: "metadata",
}

var celEnv = sync.OnceValues(func() (*cel.Env, error) {
	subj := cel.ObjectType("policy.subject")
	return cel.NewEnv(
		ext.NativeTypes(ext.ParseStructTags(true),
			reflect.TypeFor[subject](), reflect.TypeFor[check](), reflect.TypeFor[finding](), reflect.TypeFor[change]()),
		ext.Strings(),
		cel.Variable("candidate", subj),
		cel.Variable("baseline", subj),
		cel.Variable("checks", cel.ListType(cel.ObjectType("policy.check"))),
		cel.Variable("findings", cel.ListType(cel.ObjectType("policy.finding"))),
		cel.Variable("changes", cel.ListType(cel.ObjectType("policy.change"))),
		cel.Variable("params", cel.MapType(cel.StringType, cel.DynType)),
	)
})

// compiledRule is a rule ready to run.
type compiledRule struct {
	name    string
	verdict pipeline.Verdict
	message string
	tmpl    *template.Template
	prg     cel.Program
}

// compileRule parses and type-checks a rule: it must give a bool (or dyn,
// checked when it runs), and must not be certain to cost more than
// CostLimit.
func compileRule(r Rule) (*compiledRule, error) {
	env, err := celEnv()
	if err != nil {
		return nil, err
	}
	ast, iss := env.Compile(r.Expression)
	if iss != nil && iss.Err() != nil {
		return nil, errors.New(issueLines(iss.String()))
	}
	switch ot := ast.OutputType(); {
	case ot.IsExactType(cel.BoolType), ot.IsExactType(cel.DynType):
	default:
		return nil, fmt.Errorf("gives %s, not bool", ot)
	}
	if est, err := env.EstimateCost(ast, noEstimates{}); err == nil && est.Min > CostLimit {
		return nil, fmt.Errorf("costs at least %d, over the limit of %d", est.Min, CostLimit)
	}
	prg, err := env.Program(ast, cel.CostLimit(CostLimit), cel.InterruptCheckFrequency(100))
	if err != nil {
		return nil, err
	}
	c := &compiledRule{name: r.Name, verdict: r.Verdict, message: r.Message, prg: prg}
	if strings.Contains(r.Message, "{{") {
		c.tmpl, err = template.New(r.Name).Option("missingkey=zero").Parse(r.Message)
		if err != nil {
			return nil, fmt.Errorf("message: %w", err)
		}
	}
	return c, nil
}

// checkMessage parses a message template.
func checkMessage(msg string) error {
	if !strings.Contains(msg, "{{") {
		return nil
	}
	_, err := template.New("").Parse(msg)
	return err
}

// issueLines keeps the message lines of CEL's issues, without the
// snippets that point at the column.
func issueLines(s string) string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if t := strings.TrimSpace(line); t == "" || strings.HasPrefix(t, "|") {
			continue
		}
		out = append(out, line)
	}
	return strings.Join(out, "; ")
}

// noEstimates knows nothing of the inputs' sizes, so the estimate's
// minimum is what the rule costs whatever the inputs.
type noEstimates struct{}

func (noEstimates) EstimateSize(cost.AstNode) *cost.SizeEstimate { return nil }
func (noEstimates) EstimateCallCost(string, string, *cost.AstNode, []cost.AstNode) *cost.CallEstimate {
	return nil
}

// activation holds the inputs of every rule of one decision.
type activation struct {
	vars map[string]any
	// data is the inputs as plain maps, for message templates; made once,
	// when a template first needs it.
	data func() map[string]any
}

func newActivation(rep *pipeline.Report, changes []*pipeline.Change, params map[string]any) *activation {
	cand := subject{Ref: rep.Candidate.Ref, Digest: rep.Candidate.Digest, Version: rep.Candidate.Version}
	var base any = types.NullValue
	var basePlain *subject
	if rep.Baseline != nil {
		basePlain = &subject{Ref: rep.Baseline.Ref, Digest: rep.Baseline.Digest, Version: rep.Baseline.Version}
		base = *basePlain
	}
	checks := make([]check, len(rep.Checks))
	for i, c := range rep.Checks {
		checks[i] = check{Name: c.Name, Status: string(c.Status), Detail: c.Detail}
	}
	findings := make([]finding, len(rep.Findings))
	for i, f := range rep.Findings {
		container := f.Container
		if container == nil {
			container = []string{}
		}
		findings[i] = finding{ID: f.ID, Severity: f.Severity.String(), Path: f.Path, Container: container, Disclosed: f.Disclosed, Message: f.Message}
	}
	chs := make([]change, 0, len(changes))
	for _, c := range changes {
		if c == nil {
			continue
		}
		kind, ok := changeKinds[c.Kind]
		if !ok {
			kind = string(c.Kind)
		}
		chs = append(chs, change{Kind: kind, Path: c.Path, Disclosed: c.Disclosed})
	}
	if params == nil {
		params = map[string]any{}
	}
	a := &activation{vars: map[string]any{
		"candidate": cand, "baseline": base, "checks": checks, "findings": findings, "changes": chs, "params": params,
	}}
	a.data = sync.OnceValue(func() map[string]any {
		in := struct {
			Candidate subject        `json:"candidate"`
			Baseline  *subject       `json:"baseline"`
			Checks    []check        `json:"checks"`
			Findings  []finding      `json:"findings"`
			Changes   []change       `json:"changes"`
			Params    map[string]any `json:"params"`
		}{cand, basePlain, checks, findings, chs, params}
		var out map[string]any
		if b, err := json.Marshal(in); err == nil {
			_ = json.Unmarshal(b, &out)
		}
		return out
	})
	return a
}

// eval runs the rule and returns the verdict it asks for, with the reason:
// pass when its expression is true, its verdict when false, and fail when
// it cannot be evaluated or gives no bool.
func (r *compiledRule) eval(ctx context.Context, a *activation) (pipeline.Verdict, string) {
	ctx, cancel := context.WithTimeout(ctx, RuleTimeout)
	defer cancel()
	out, err := r.run(ctx, a)
	if err != nil {
		return pipeline.VerdictFail, fmt.Sprintf("rule %s could not be evaluated: %v", r.name, err)
	}
	b, isBool := out.Value().(bool)
	switch {
	case !isBool:
		return pipeline.VerdictFail, fmt.Sprintf("rule %s could not be evaluated: it gave %s, not bool", r.name, out.Type().TypeName())
	case b:
		return pipeline.VerdictPass, ""
	}
	return r.verdict, "rule " + r.name + ": " + r.render(a)
}

// run evaluates the program, turning a panic into an error.
func (r *compiledRule) run(ctx context.Context, a *activation) (out ref.Val, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	out, _, err = r.prg.ContextEval(ctx, a.vars)
	if err == nil && out == nil {
		err = errors.New("no result")
	}
	return out, err
}

// render is the rule's message: its text, or its template executed over
// the inputs, at most maxMessage bytes.
func (r *compiledRule) render(a *activation) string {
	switch {
	case r.tmpl != nil:
		var b limitedBuilder
		if err := r.tmpl.Execute(&b, a.data()); err != nil && !errors.Is(err, errMessageLong) {
			return r.message + " (message template: " + err.Error() + ")"
		}
		return b.String()
	case r.message != "":
		return r.message
	}
	return "the expression is false"
}

var errMessageLong = errors.New("message too long")

type limitedBuilder struct{ strings.Builder }

func (b *limitedBuilder) Write(p []byte) (int, error) {
	if room := maxMessage - b.Len(); len(p) > room {
		b.Builder.Write(p[:max(room, 0)])
		b.Builder.WriteString("…")
		return 0, errMessageLong
	}
	return b.Builder.Write(p)
}
