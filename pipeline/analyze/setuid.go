package analyze

import (
	"context"
	"fmt"

	"github.com/fwvet/fwvet/pipeline"
)

// Setuid reports new regular files with the setuid or setgid bit
// (setuid-added). A bit gained by an existing file is a metadata-changed
// finding of high severity (see Files).
type Setuid struct{}

var _ pipeline.Analyzer = Setuid{}

// Name implements pipeline.Analyzer.
func (Setuid) Name() string { return "setuid" }

// Analyze implements pipeline.Analyzer.
func (Setuid) Analyze(_ context.Context, in *pipeline.AnalysisInput) ([]pipeline.Finding, error) {
	var out []pipeline.Finding
	for _, ch := range in.Changes {
		e := ch.New
		if e == nil || e.Type != pipeline.TypeFile || !pipeline.IsSetID(e.Mode) {
			continue
		}
		if ch.Kind != pipeline.ChangeAdded && !(ch.HasField("type") && (ch.Old == nil || ch.Old.Type != pipeline.TypeFile)) {
			continue
		}
		bits := e.Mode & (pipeline.ModeSetuid | pipeline.ModeSetgid)
		msg := fmt.Sprintf("new %s file, owner %d:%d, mode %s", setidName(bits), e.UID, e.GID, mode(e.Mode))
		ev := map[string]any{"mode": mode(e.Mode), "uid": e.UID, "gid": e.GID, "size": e.Size, "sha256": e.SHA256,
			"inspect": fmt.Sprintf("fwvet unpack REF DIR && ls -l DIR%s", e.Path)}
		if ch.MovedFrom != "" {
			ev["moved_from"] = ch.MovedFrom
		}
		out = append(out, finding(pipeline.IDSetuidAdded, ch, msg, ev))
	}
	return out, nil
}
