package analyze

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/fwvet/fwvet/pipeline"
)

// Endpoints reports URLs, IP addresses and host names that an added or
// modified file holds and the baseline did not (endpoint-added). An
// endpoint anywhere in the baseline does not count, so one moved from a
// file to another is not new, and neither are version strings (see
// extractEndpoints).
type Endpoints struct{}

var _ pipeline.Analyzer = Endpoints{}

// Name implements pipeline.Analyzer.
func (Endpoints) Name() string { return "endpoints" }

// docPaths hold documentation, whose links name no place the device talks to.
var docPaths = []string{"/usr/share/doc/**", "/usr/share/man/**", "/usr/share/info/**", "/usr/share/locale/**", "/usr/share/common-licenses/**"}

// Analyze implements pipeline.Analyzer.
func (Endpoints) Analyze(ctx context.Context, in *pipeline.AnalysisInput) ([]pipeline.Finding, error) {
	// Every endpoint of every scanned baseline file: the old side of a
	// modified file, a removed file.
	known := map[string]bool{}
	scanned := map[string]bool{} // by key: a tree decodes a new Entry each time
	for _, ch := range in.Changes {
		if s := in.Scans[ch.Key]; s != nil && s.Old != nil {
			for ep := range s.Old.Endpoints {
				known[canonicalEndpoint(ep)] = true
			}
			scanned[ch.Old.Key] = true
		}
	}
	type candidate struct {
		ch  *pipeline.Change
		eps map[string]int64
	}
	var cands []candidate
	needles := map[string]bool{}
	for _, ch := range in.Changes {
		s := in.Scans[ch.Key]
		if s == nil || s.New == nil || matchAny(docPaths, ch.Path) {
			continue
		}
		eps := map[string]int64{}
		for ep, off := range s.New.Endpoints {
			if c := canonicalEndpoint(ep); !known[c] {
				eps[ep] = off
				needles[c] = true
			}
		}
		if len(eps) > 0 {
			cands = append(cands, candidate{ch, eps})
		}
	}
	if len(cands) == 0 {
		return nil, nil
	}
	// What is left may still stand in a baseline file that did not change.
	inBaseline, err := searchTree(ctx, in.Baseline, scanned, needles)
	if err != nil {
		return nil, err
	}
	var out []pipeline.Finding
	for _, c := range cands {
		var list []string
		offsets := map[string]int64{}
		for ep, off := range c.eps {
			if !inBaseline[canonicalEndpoint(ep)] {
				list = append(list, ep)
				offsets[ep] = off
			}
		}
		if len(list) == 0 {
			continue
		}
		sort.Strings(list)
		ev := map[string]any{"endpoints": capList(list, 50), "offsets": offsets,
			"inspect": fmt.Sprintf("fwvet unpack REF DIR && strings -t x DIR%s | grep -F %q", c.ch.Path, list[0])}
		out = append(out, finding(pipeline.IDEndpointAdded, c.ch, "new endpoints: "+strings.Join(capList(list, 5), ", "), ev))
	}
	return out, nil
}

// canonicalEndpoint is the form two spellings of one endpoint share: host
// names and URL schemes and hosts without case (IP addresses are already
// canonical as extracted).
func canonicalEndpoint(ep string) string {
	if scheme, rest, ok := strings.Cut(ep, "://"); ok {
		host, path, _ := strings.Cut(rest, "/")
		out := strings.ToLower(scheme) + "://" + strings.ToLower(host)
		if path != "" || strings.Contains(rest, "/") {
			out += "/" + path
		}
		return out
	}
	return strings.ToLower(ep)
}

// searchTree reports which of the wanted endpoints (in canonical form) the
// regular files of t that are not in skip hold, however they are spelt
// there. It reads the files once, in order, and stops early when all are
// found.
func searchTree(ctx context.Context, t *pipeline.Tree, skip map[string]bool, want map[string]bool) (map[string]bool, error) {
	found := map[string]bool{}
	if t == nil || len(want) == 0 {
		return found, nil
	}
	for e := range t.All() {
		if len(found) == len(want) {
			break
		}
		if e.Type != pipeline.TypeFile || e.SHA256 == "" || skip[e.Key] {
			continue
		}
		if err := searchEntry(ctx, e, want, found); err != nil {
			return nil, err
		}
	}
	return found, nil
}

func searchEntry(ctx context.Context, e *pipeline.Entry, want, found map[string]bool) error {
	rc, err := e.Open(ctx)
	if err != nil {
		return fmt.Errorf("reading %s: %w", e.Where(), err)
	}
	defer rc.Close()
	pr := newProfiler()
	if _, err := io.Copy(pr, pipeline.ContextReader(ctx, rc)); err != nil {
		return fmt.Errorf("reading %s: %w", e.Where(), err)
	}
	for ep := range pr.finish().Endpoints {
		if c := canonicalEndpoint(ep); want[c] {
			found[c] = true
		}
	}
	return nil
}
