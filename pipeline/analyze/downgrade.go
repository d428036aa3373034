package analyze

import (
	"context"
	"fmt"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/version"
)

// Downgrade reports a candidate whose version is older than the baseline's
// (downgrade): an update that rolls a device back to code with known flaws.
type Downgrade struct{}

var _ pipeline.Analyzer = Downgrade{}

// Name implements pipeline.Analyzer.
func (Downgrade) Name() string { return "downgrade" }

// Analyze implements pipeline.Analyzer.
func (Downgrade) Analyze(_ context.Context, in *pipeline.AnalysisInput) ([]pipeline.Finding, error) {
	b, c := in.BaselineVersion, in.CandidateVersion
	if b == nil || c == nil {
		return nil, nil
	}
	order, err := version.Compare(c.Value, b.Value)
	if err == nil && order >= 0 {
		return nil, nil
	}
	f := pipeline.NewFinding(pipeline.IDDowngrade, c.Source, c.Container,
		fmt.Sprintf("candidate version %s is older than the baseline's %s", c.Value, b.Value))
	if err != nil {
		// Versions that cannot be ordered cannot rule a downgrade out: a
		// reviewer must look, but it is not proof of one.
		f.Severity = pipeline.SeverityMedium
		f.Message = fmt.Sprintf("cannot tell whether %s is older than the baseline's %s: %v", c.Value, b.Value, err)
	}
	if c.Source == "manifest" {
		f.Path = ""
	}
	f.Evidence = map[string]any{"baseline_version": b.Value, "candidate_version": c.Value,
		"baseline_source": b.Source, "candidate_source": c.Source}
	return []pipeline.Finding{f}, nil
}
