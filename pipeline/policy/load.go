package policy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/fwvet/fwvet/pipeline"
)

const (
	// APIVersion and Kind mark a policy document of the new form.
	APIVersion = "fwvet/v1"
	Kind       = "Policy"

	// maxPolicySize bounds what Load reads.
	maxPolicySize = 1 << 20
	// maxKeySize bounds a public key file.
	maxKeySize = 64 << 10
	// maxRules bounds the rules of one policy.
	maxRules = 1000
)

// Load reads a policy file of at most 1 MiB: either a JSON object whose
// fields (fail_on, review_on, severity, require_baseline,
// signature_threshold) override Default, or a YAML or JSON document with
// apiVersion fwvet/v1 and kind Policy, whose fields also override Default.
// Unknown fields are errors, and so is a rule that does not compile; an
// error in a document of the new form names the file and the line.
func Load(file string) (*Policy, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxPolicySize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxPolicySize {
		return nil, fmt.Errorf("%s: not a policy: larger than %d bytes", file, maxPolicySize)
	}
	if root, ok, err := newForm(data); ok {
		if err != nil {
			return nil, fmt.Errorf("%s: not a policy: %v", file, err)
		}
		dir, err := filepath.Abs(filepath.Dir(file))
		if err != nil {
			return nil, err
		}
		return parseNode(file, dir, root, Default())
	}
	return loadJSON(data)
}

// loadJSON reads today's JSON policy.
func loadJSON(data []byte) (*Policy, error) {
	p := Default()
	// Today's fields, and only those; a field given as null keeps its
	// default, as it always has.
	v := struct {
		FailOn             pipeline.Severity            `json:"fail_on"`
		ReviewOn           pipeline.Severity            `json:"review_on"`
		Severity           map[string]pipeline.Severity `json:"severity,omitempty"`
		RequireBaseline    bool                         `json:"require_baseline"`
		SignatureThreshold int                          `json:"signature_threshold,omitempty"`
	}{p.FailOn, p.ReviewOn, p.Severity, p.RequireBaseline, p.SignatureThreshold}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			return nil, fmt.Errorf("not a policy: %w (a YAML policy starts with apiVersion: %s)", err, APIVersion)
		}
		return nil, fmt.Errorf("not a policy: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("not a policy: trailing data after the object")
	}
	p.FailOn, p.ReviewOn, p.RequireBaseline, p.SignatureThreshold = v.FailOn, v.ReviewOn, v.RequireBaseline, v.SignatureThreshold
	p.Severity = v.Severity
	if err := p.validate(); err != nil {
		return nil, err
	}
	return p, nil
}

// newForm reports whether data is meant as a document of the new form:
// one YAML (or JSON) mapping with an apiVersion key, or a document that
// does not parse but names apiVersion. err is the YAML error of the latter.
func newForm(data []byte) (doc *yaml.Node, isNew bool, err error) {
	doc = &yaml.Node{}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err = dec.Decode(doc); err == nil {
		var next yaml.Node
		if dec.Decode(&next) != io.EOF {
			err = errors.New("more than one YAML document")
		}
	}
	if err != nil {
		return nil, bytes.Contains(data, []byte("apiVersion")), err
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, false, nil
	}
	m := doc.Content[0]
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == "apiVersion" {
			return doc, true, nil
		}
	}
	return nil, false, nil
}

// parse reads a policy document of the new form over base.
func parse(name, dir string, data []byte, base *Policy) (*Policy, error) {
	root, ok, err := newForm(data)
	if err != nil {
		return nil, fmt.Errorf("%s: not a policy: %v", name, err)
	}
	if !ok {
		return nil, fmt.Errorf("%s: not a policy: want a mapping with apiVersion: %s", name, APIVersion)
	}
	return parseNode(name, dir, root, base)
}

// loader reads one document; its errors name the file and the line.
type loader struct {
	name string
	dir  string
	// ruleLines holds, for each rule, the node its errors point at.
	ruleLines []*yaml.Node
}

func (l *loader) errf(n *yaml.Node, format string, args ...any) error {
	line := 0
	if n != nil {
		line = n.Line
	}
	return fmt.Errorf("%s:%d: %s", l.name, line, fmt.Sprintf(format, args...))
}

func parseNode(name, dir string, doc *yaml.Node, p *Policy) (*Policy, error) {
	l := &loader{name: name, dir: dir}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, fmt.Errorf("%s: not a policy: want one YAML document", name)
	}
	m := doc.Content[0]
	if m.Kind != yaml.MappingNode {
		return nil, l.errf(m, "not a policy: want a mapping")
	}
	seen := map[string]bool{}
	var apiVersion, kind string
	var threshold *yaml.Node
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], resolve(m.Content[i+1])
		if seen[k.Value] {
			return nil, l.errf(k, "field %q given twice", k.Value)
		}
		seen[k.Value] = true
		var err error
		switch k.Value {
		case "apiVersion":
			apiVersion, err = l.str(v, k.Value)
		case "kind":
			kind, err = l.str(v, k.Value)
		case "mode":
			var mode string
			if mode, err = l.str(v, k.Value); err == nil {
				switch mode {
				case ModeEnforce:
					p.Mode = ""
				case ModeWarn:
					p.Mode = ModeWarn
				default:
					err = l.errf(v, "mode %q: want enforce or warn", mode)
				}
			}
		case "fail_on":
			p.FailOn, err = l.severity(v, k.Value)
		case "review_on":
			p.ReviewOn, err = l.severity(v, k.Value)
		case "severity":
			p.Severity, err = l.severities(v)
		case "require_baseline":
			p.RequireBaseline, err = l.boolean(v, k.Value)
		case "signature_threshold":
			threshold = v
			p.SignatureThreshold, err = l.integer(v, k.Value)
		case "authorities":
			err = l.authorities(v, p)
		case "provenance":
			p.prov, err = l.provenance(v)
		case "params":
			p.Params, err = l.params(v)
		case "rules":
			p.Rules, err = l.rules(v)
		default:
			err = l.errf(k, "unknown field %q", k.Value)
		}
		if err != nil {
			return nil, err
		}
	}
	if apiVersion != APIVersion {
		return nil, l.errf(m, "apiVersion %q: want %s", apiVersion, APIVersion)
	}
	if kind != Kind {
		return nil, l.errf(m, "kind %q: want %s", kind, Kind)
	}
	if err := p.validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if p.auth.Threshold != 0 && threshold != nil && p.SignatureThreshold != p.auth.Threshold {
		return nil, l.errf(threshold, "signature_threshold %d and authorities.threshold %d differ", p.SignatureThreshold, p.auth.Threshold)
	}
	p.compiled = nil
	for i, r := range p.Rules {
		c, err := compileRule(r)
		if err != nil {
			return nil, l.errf(l.ruleLines[i], "rule %q: %v", r.Name, err)
		}
		p.compiled = append(p.compiled, c)
	}
	return p, nil
}

// validate checks what both forms share.
func (p *Policy) validate() error {
	if p.SignatureThreshold < 0 {
		return fmt.Errorf("signature_threshold %d is negative", p.SignatureThreshold)
	}
	if p.ReviewOn > p.FailOn {
		return fmt.Errorf("review_on (%s) is above fail_on (%s)", p.ReviewOn, p.FailOn)
	}
	for id := range p.Severity {
		if _, ok := pipeline.DefaultSeverity[id]; !ok {
			return fmt.Errorf("severity: unknown finding id %q", id)
		}
	}
	return nil
}

// resolve follows an alias.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; i < 100 && n != nil && n.Kind == yaml.AliasNode; i++ {
		n = n.Alias
	}
	return n
}

func (l *loader) str(n *yaml.Node, field string) (string, error) {
	if n.Kind != yaml.ScalarNode {
		return "", l.errf(n, "%s: want a string", field)
	}
	switch n.ShortTag() {
	case "!!str", "!!int", "!!float", "!!bool": // expression: true, tag: 1.0
		return n.Value, nil
	}
	return "", l.errf(n, "%s: want a string, not %s", field, n.ShortTag())
}

func (l *loader) strs(n *yaml.Node, field string) ([]string, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, l.errf(n, "%s: want a list", field)
	}
	var out []string
	for _, e := range n.Content {
		s, err := l.str(resolve(e), field)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func (l *loader) boolean(n *yaml.Node, field string) (bool, error) {
	var b bool
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
		return false, l.errf(n, "%s: want true or false", field)
	}
	return b, nil
}

func (l *loader) integer(n *yaml.Node, field string) (int, error) {
	var i int
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&i) != nil {
		return 0, l.errf(n, "%s: want an integer", field)
	}
	if i < 0 {
		return 0, l.errf(n, "%s %d is negative", field, i)
	}
	return i, nil
}

func (l *loader) severity(n *yaml.Node, field string) (pipeline.Severity, error) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		return 0, l.errf(n, "%s: want a severity name", field)
	}
	s, err := pipeline.ParseSeverity(n.Value)
	if err != nil {
		return 0, l.errf(n, "%s: %v", field, err)
	}
	return s, nil
}

func (l *loader) mapping(n *yaml.Node, field string, each func(k, v *yaml.Node) error) error {
	if n.Kind != yaml.MappingNode {
		return l.errf(n, "%s: want a mapping", field)
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if seen[k.Value] {
			return l.errf(k, "%s: %q given twice", field, k.Value)
		}
		seen[k.Value] = true
		if err := each(k, resolve(n.Content[i+1])); err != nil {
			return err
		}
	}
	return nil
}

func (l *loader) severities(n *yaml.Node) (map[string]pipeline.Severity, error) {
	out := map[string]pipeline.Severity{}
	err := l.mapping(n, "severity", func(k, v *yaml.Node) error {
		if _, ok := pipeline.DefaultSeverity[k.Value]; !ok {
			return l.errf(k, "severity: unknown finding id %q", k.Value)
		}
		s, err := l.severity(v, "severity "+k.Value)
		out[k.Value] = s
		return err
	})
	if len(out) == 0 {
		out = nil
	}
	return out, err
}

func (l *loader) authorities(n *yaml.Node, p *Policy) error {
	var a Authorities
	var files []keyFile
	var thrNode *yaml.Node
	err := l.mapping(n, "authorities", func(k, v *yaml.Node) error {
		switch k.Value {
		case "keys":
			paths, err := l.strs(v, "authorities.keys")
			if err != nil {
				return err
			}
			for i, given := range paths {
				abs := given
				if !filepath.IsAbs(abs) {
					abs = filepath.Join(l.dir, given)
				}
				sum, err := readKey(abs)
				if err != nil {
					return l.errf(v.Content[i], "authorities.keys: %v", err)
				}
				a.Keys = append(a.Keys, abs)
				files = append(files, keyFile{Path: given, SHA256: sum})
			}
		case "keyless":
			if v.Kind != yaml.SequenceNode {
				return l.errf(v, "authorities.keyless: want a list")
			}
			for _, e := range v.Content {
				kl, err := l.keyless(resolve(e))
				if err != nil {
					return err
				}
				a.Keyless = append(a.Keyless, kl)
			}
		case "threshold":
			t, err := l.integer(v, "authorities.threshold")
			if err != nil {
				return err
			}
			a.Threshold, thrNode = t, v
		default:
			return l.errf(k, "authorities: unknown field %q", k.Value)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if n := len(a.Keys) + len(a.Keyless); n > 0 && a.Threshold > n {
		return l.errf(thrNode, "authorities.threshold %d is more than the %d authorities given", a.Threshold, n)
	}
	p.auth, p.keyFiles = a, files
	return nil
}

// readKey checks that file holds a PEM block and returns its digest.
func readKey(file string) (string, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxKeySize+1))
	if err != nil {
		return "", err
	}
	if len(b) > maxKeySize {
		return "", fmt.Errorf("%s: larger than %d bytes, not a public key", file, maxKeySize)
	}
	if blk, _ := pem.Decode(b); blk == nil {
		return "", fmt.Errorf("%s: not a PEM public key", file)
	}
	h := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(h[:]), nil
}

func (l *loader) keyless(n *yaml.Node) (Keyless, error) {
	var kl Keyless
	err := l.mapping(n, "authorities.keyless", func(k, v *yaml.Node) error {
		s, err := l.str(v, "authorities.keyless."+k.Value)
		if err != nil {
			return err
		}
		switch k.Value {
		case "identity":
			kl.Identity = s
		case "identity_regexp":
			kl.IdentityRegexp = s
		case "issuer":
			kl.Issuer = s
		case "issuer_regexp":
			kl.IssuerRegexp = s
		default:
			return l.errf(k, "authorities.keyless: unknown field %q", k.Value)
		}
		if k.Value == "identity_regexp" || k.Value == "issuer_regexp" {
			if _, err := regexp.Compile(s); err != nil {
				return l.errf(v, "authorities.keyless.%s: %v", k.Value, err)
			}
		}
		return nil
	})
	if err != nil {
		return kl, err
	}
	if (kl.Identity == "") == (kl.IdentityRegexp == "") {
		return kl, l.errf(n, "authorities.keyless: want exactly one of identity and identity_regexp")
	}
	if (kl.Issuer == "") == (kl.IssuerRegexp == "") {
		return kl, l.errf(n, "authorities.keyless: want exactly one of issuer and issuer_regexp")
	}
	return kl, nil
}

func (l *loader) provenance(n *yaml.Node) (Provenance, error) {
	var v Provenance
	err := l.mapping(n, "provenance", func(k, val *yaml.Node) error {
		var err error
		switch k.Value {
		case "predicate_type":
			v.PredicateType, err = l.str(val, "provenance.predicate_type")
		case "builder_ids":
			v.BuilderIDs, err = l.strs(val, "provenance.builder_ids")
		case "source_uri":
			v.SourceURI, err = l.str(val, "provenance.source_uri")
		case "branch":
			v.Branch, err = l.str(val, "provenance.branch")
		case "tag":
			v.Tag, err = l.str(val, "provenance.tag")
		default:
			err = l.errf(k, "provenance: unknown field %q", k.Value)
		}
		return err
	})
	return v, err
}

// params decodes the free map into plain JSON-like values: maps with
// string keys, lists, strings, numbers, booleans, null, timestamps.
func (l *loader) params(n *yaml.Node) (map[string]any, error) {
	if n.Kind != yaml.MappingNode {
		return nil, l.errf(n, "params: want a mapping")
	}
	var raw any
	if err := n.Decode(&raw); err != nil {
		return nil, l.errf(n, "params: %v", err)
	}
	v, err := plain(raw, 0)
	if err != nil {
		return nil, l.errf(n, "params: %v", err)
	}
	m, _ := v.(map[string]any)
	if len(m) == 0 {
		return nil, nil
	}
	return m, nil
}

func plain(v any, depth int) (any, error) {
	if depth > 64 {
		return nil, errors.New("nested too deeply")
	}
	switch v := v.(type) {
	case nil, string, bool, int, int64, uint64:
		return v, nil
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, errors.New("a number that is not finite")
		}
		return v, nil
	case time.Time:
		return v, nil
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			p, err := plain(e, depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = p
		}
		return out, nil
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			p, err := plain(e, depth+1)
			if err != nil {
				return nil, err
			}
			out[k] = p
		}
		return out, nil
	case map[any]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			ks, ok := k.(string)
			if !ok {
				return nil, fmt.Errorf("key %v is not a string", k)
			}
			p, err := plain(e, depth+1)
			if err != nil {
				return nil, err
			}
			out[ks] = p
		}
		return out, nil
	}
	return nil, fmt.Errorf("value %v of type %T", v, v)
}

func (l *loader) rules(n *yaml.Node) ([]Rule, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, l.errf(n, "rules: want a list")
	}
	if len(n.Content) > maxRules {
		return nil, l.errf(n, "rules: more than %d", maxRules)
	}
	var out []Rule
	names := map[string]int{}
	l.ruleLines = nil
	for _, e := range n.Content {
		e = resolve(e)
		r := Rule{Verdict: pipeline.VerdictFail}
		exprLine := e
		err := l.mapping(e, "rule", func(k, v *yaml.Node) error {
			var err error
			switch k.Value {
			case "name":
				r.Name, err = l.str(v, "rule name")
			case "expression":
				r.Expression, err = l.str(v, "rule expression")
				exprLine = v
			case "verdict":
				var s string
				if s, err = l.str(v, "rule verdict"); err == nil {
					switch pipeline.Verdict(s) {
					case pipeline.VerdictFail, pipeline.VerdictReview:
						r.Verdict = pipeline.Verdict(s)
					default:
						err = l.errf(v, "rule verdict %q: want fail or review", s)
					}
				}
			case "message":
				r.Message, err = l.str(v, "rule message")
			default:
				err = l.errf(k, "rule: unknown field %q", k.Value)
			}
			return err
		})
		if err != nil {
			return nil, err
		}
		switch {
		case r.Name == "":
			return nil, l.errf(e, "rule without a name")
		case names[r.Name] != 0:
			return nil, l.errf(e, "rule %q: a rule of that name is at line %d", r.Name, names[r.Name])
		case r.Expression == "":
			return nil, l.errf(e, "rule %q: no expression", r.Name)
		}
		names[r.Name] = e.Line
		if err := checkMessage(r.Message); err != nil {
			return nil, l.errf(e, "rule %q: message: %v", r.Name, err)
		}
		out = append(out, r)
		l.ruleLines = append(l.ruleLines, exprLine)
	}
	return out, nil
}
