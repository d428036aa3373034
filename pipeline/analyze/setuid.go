package analyze

import (
	"context"
	"fmt"

	"github.com/fwvet/fwvet/pipeline"
)

// Setuid reports every regular file that gains the setuid or setgid bit
// (setuid-added): a new file, a file that was another type, or an existing
// file whose mode gained the bit. Rules such as "no new setuid binaries"
// look for this id alone; the mode change is also a metadata-changed
// finding (see Files).
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
		bits := e.Mode & (pipeline.ModeSetuid | pipeline.ModeSetgid)
		if old := ch.Old; old != nil && old.Type == pipeline.TypeFile {
			bits &^= old.Mode
		}
		if bits == 0 {
			continue
		}
		msg := fmt.Sprintf("new %s file, owner %d:%d, mode %s", setidName(bits), e.UID, e.GID, mode(e.Mode))
		ev := map[string]any{"mode": mode(e.Mode), "uid": e.UID, "gid": e.GID, "size": e.Size, "sha256": e.SHA256,
			"inspect": fmt.Sprintf("fwvet unpack REF DIR && ls -l DIR%s", e.Path)}
		if old := ch.Old; old != nil && old.Type == pipeline.TypeFile {
			msg = fmt.Sprintf("gains %s (mode %s → %s), owner %d:%d", setidName(bits), mode(old.Mode), mode(e.Mode), e.UID, e.GID)
			ev["old_mode"] = mode(old.Mode)
		}
		if ch.MovedFrom != "" {
			ev["moved_from"] = ch.MovedFrom
		}
		out = append(out, finding(pipeline.IDSetuidAdded, ch, msg, ev))
	}
	return out, nil
}
