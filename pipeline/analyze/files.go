package analyze

import (
	"context"
	"fmt"
	"strings"

	"github.com/fwvet/fwvet/pipeline"
)

// Files reports every change as a file-level finding: file-added,
// file-removed, file-modified and metadata-changed. Some rank higher than
// their id's default: a security control removed or stripped of lines, a
// binary patched in place, a mode or owner change on a sensitive file.
type Files struct{}

var _ pipeline.Analyzer = Files{}

// Name implements pipeline.Analyzer.
func (Files) Name() string { return "files" }

// Analyze implements pipeline.Analyzer.
func (Files) Analyze(ctx context.Context, in *pipeline.AnalysisInput) ([]pipeline.Finding, error) {
	var out []pipeline.Finding
	for _, ch := range in.Changes {
		lost, err := controlLoss(ctx, ch)
		if err != nil {
			return nil, err
		}
		switch ch.Kind {
		case pipeline.ChangeAdded:
			ev := entryEvidence(ch.New)
			msg := fmt.Sprintf("%s added", describe(ch.New))
			if ch.MovedFrom != "" {
				ev["moved_from"] = ch.MovedFrom
				msg += fmt.Sprintf(" (moved from %s)", ch.MovedFrom)
			}
			out = append(out, finding(pipeline.IDFileAdded, ch, msg, ev))
		case pipeline.ChangeRemoved:
			ev := entryEvidence(ch.Old)
			msg := fmt.Sprintf("%s removed", describe(ch.Old))
			if ch.MovedTo != "" {
				ev["moved_to"] = ch.MovedTo
				msg += fmt.Sprintf(" (moved to %s)", ch.MovedTo)
			}
			f := finding(pipeline.IDFileRemoved, ch, msg, ev)
			if len(lost) > 0 {
				f.Severity = pipeline.SeverityHigh
				f.Message = "security control removed: " + describeControl(ch.Path)
			}
			out = append(out, f)
		case pipeline.ChangeModified:
			ev := map[string]any{"old_sha256": ch.Old.SHA256, "new_sha256": ch.New.SHA256, "old_size": ch.Old.Size, "new_size": ch.New.Size}
			msg := fmt.Sprintf("content changed (%d → %d bytes)", ch.Old.Size, ch.New.Size)
			if ch.HasField("type") {
				ev["old_type"], ev["new_type"] = ch.Old.Type, ch.New.Type
				msg = fmt.Sprintf("%s replaced by a %s", ch.Old.Type, ch.New.Type)
			}
			if ch.Nested {
				ev["nested"] = true
				msg += "; a container: what changed inside it is reported at its entries"
			}
			f := finding(pipeline.IDFileModified, ch, msg, ev)
			edits, err := patchOf(ctx, in, ch)
			if err != nil {
				return nil, err
			}
			if len(edits) > 0 {
				ev["patched"] = edits
				f.Severity = pipeline.SeverityMedium
				f.Message = fmt.Sprintf("patched in place: %s", describeEdits(edits))
			}
			if len(lost) > 0 {
				ev["removed_lines"] = capList(lost, 20)
				f.Severity = pipeline.SeverityHigh
				f.Message = fmt.Sprintf("%s lose %d line%s: %s", describeControl(ch.Path), len(lost), plural(len(lost)), capList(lost, 1)[0])
			}
			out = append(out, f)
		}
		if f, ok := metadataFinding(ch); ok {
			out = append(out, f)
		}
	}
	return out, nil
}

// metadataFinding reports changed mode, owner, link target or device
// numbers; gaining setuid or setgid on a regular file ranks high.
func metadataFinding(ch *pipeline.Change) (pipeline.Finding, bool) {
	if ch.Kind != pipeline.ChangeMetadata && ch.Kind != pipeline.ChangeModified {
		return pipeline.Finding{}, false
	}
	ev := map[string]any{}
	var fields []string
	for _, f := range ch.Fields {
		switch f {
		case "mode":
			ev["old_mode"], ev["new_mode"] = mode(ch.Old.Mode), mode(ch.New.Mode)
		case "uid":
			ev["old_uid"], ev["new_uid"] = ch.Old.UID, ch.New.UID
		case "gid":
			ev["old_gid"], ev["new_gid"] = ch.Old.GID, ch.New.GID
		case "link_target":
			ev["old_link_target"], ev["new_link_target"] = ch.Old.LinkTarget, ch.New.LinkTarget
		case "device":
			ev["old_device"] = fmt.Sprintf("%d:%d", ch.Old.Major, ch.Old.Minor)
			ev["new_device"] = fmt.Sprintf("%d:%d", ch.New.Major, ch.New.Minor)
		case "label":
			ev["old_label"], ev["new_label"] = ch.Old.Label, ch.New.Label
		default:
			continue
		}
		fields = append(fields, f)
	}
	if len(fields) == 0 {
		return pipeline.Finding{}, false
	}
	ev["fields"] = fields
	f := finding(pipeline.IDMetadataChanged, ch, fmt.Sprintf("%v changed", fields), ev)
	if len(fields) == 1 && fields[0] == "label" {
		// A header's name says nothing of what the entry holds.
		f.Severity = pipeline.SeverityInfo
		f.Message = fmt.Sprintf("header name changed from %q to %q", ch.Old.Label, ch.New.Label)
		return f, true
	}
	gained := ch.New.Mode &^ ch.Old.Mode & (pipeline.ModeSetuid | pipeline.ModeSetgid)
	if isSensitive(ch.Path) {
		f.Severity = pipeline.SeverityHigh
		f.Message = fmt.Sprintf("%v changed on a security-sensitive file", fields)
	}
	if ch.New.Type == pipeline.TypeFile && gained != 0 {
		f.Severity = pipeline.SeverityHigh
		f.Message = fmt.Sprintf("gains %s (mode %s → %s)", setidName(gained), mode(ch.Old.Mode), mode(ch.New.Mode))
	}
	return f, true
}

func entryEvidence(e *pipeline.Entry) map[string]any {
	ev := map[string]any{"type": e.Type, "mode": mode(e.Mode), "uid": e.UID, "gid": e.GID}
	switch e.Type {
	case pipeline.TypeFile:
		ev["size"], ev["sha256"] = e.Size, e.SHA256
	case pipeline.TypeSymlink:
		ev["link_target"] = e.LinkTarget
	case pipeline.TypeChar, pipeline.TypeBlock:
		ev["device"] = fmt.Sprintf("%d:%d", e.Major, e.Minor)
	}
	return ev
}

func describe(e *pipeline.Entry) string {
	switch e.Type {
	case pipeline.TypeFile:
		return fmt.Sprintf("file of %d bytes", e.Size)
	case pipeline.TypeDir:
		return "directory"
	case pipeline.TypeSymlink:
		return fmt.Sprintf("symlink to %s", e.LinkTarget)
	case pipeline.TypeChar, pipeline.TypeBlock:
		return fmt.Sprintf("%s device %d:%d", e.Type, e.Major, e.Minor)
	}
	return string(e.Type)
}

func setidName(bits uint32) string {
	switch {
	case bits&pipeline.ModeSetuid != 0 && bits&pipeline.ModeSetgid != 0:
		return "setuid and setgid"
	case bits&pipeline.ModeSetuid != 0:
		return "setuid"
	default:
		return "setgid"
	}
}

func describeEdits(edits []patchEdit) string {
	parts := make([]string, 0, len(edits))
	for i, e := range edits {
		if i == 3 {
			parts = append(parts, fmt.Sprintf("and %d more", len(edits)-3))
			break
		}
		parts = append(parts, fmt.Sprintf("%q → %q at %#x", e.Old, e.New, e.Offset))
	}
	return strings.Join(parts, "; ")
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
