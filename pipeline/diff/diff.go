// Package diff compares a baseline tree with a candidate tree entry by entry.
package diff

import (
	"github.com/fwvet/fwvet/pipeline"
)

// Trees returns every change from base to cand, in key order: additions,
// removals, content changes and metadata changes (type, mode, owner, link
// target, device numbers). A file whose bytes could not be read on either
// side counts as modified, since it cannot be shown to be the same.
// Moves are found by content hash: the removal and the addition each name
// the other path.
func Trees(base, cand *pipeline.Tree) []*pipeline.Change {
	var changes []*pipeline.Change
	b, c := base.Entries, cand.Entries
	i, j := 0, 0
	for i < len(b) || j < len(c) {
		switch {
		case j == len(c) || (i < len(b) && b[i].Key < c[j].Key):
			changes = append(changes, &pipeline.Change{Kind: pipeline.ChangeRemoved, Path: b[i].Path, Container: b[i].Container, Key: b[i].Key, Old: b[i]})
			i++
		case i == len(b) || c[j].Key < b[i].Key:
			changes = append(changes, &pipeline.Change{Kind: pipeline.ChangeAdded, Path: c[j].Path, Container: c[j].Container, Key: c[j].Key, New: c[j]})
			j++
		default:
			if ch := compare(b[i], c[j]); ch != nil {
				changes = append(changes, ch)
			}
			i++
			j++
		}
	}
	findMoves(changes)
	return changes
}

func compare(o, n *pipeline.Entry) *pipeline.Change {
	var fields []string
	content := false
	if o.Type != n.Type {
		fields = append(fields, "type")
		content = true
	} else if o.Type == pipeline.TypeFile && (o.SHA256 != n.SHA256 || o.SHA256 == "" || o.Size != n.Size) {
		fields = append(fields, "content")
		content = true
	}
	if o.Mode != n.Mode {
		fields = append(fields, "mode")
	}
	if o.UID != n.UID {
		fields = append(fields, "uid")
	}
	if o.GID != n.GID {
		fields = append(fields, "gid")
	}
	if o.Type == n.Type && o.Type == pipeline.TypeSymlink && o.LinkTarget != n.LinkTarget {
		fields = append(fields, "link_target")
	}
	if o.Type == n.Type && (o.Major != n.Major || o.Minor != n.Minor) {
		fields = append(fields, "device")
	}
	if len(fields) == 0 {
		return nil
	}
	kind := pipeline.ChangeMetadata
	if content {
		kind = pipeline.ChangeModified
	}
	return &pipeline.Change{Kind: kind, Path: n.Path, Container: n.Container, Key: n.Key, Old: o, New: n, Fields: fields}
}

// findMoves pairs removed and added regular files with the same bytes.
func findMoves(changes []*pipeline.Change) {
	removed := map[string][]*pipeline.Change{}
	for _, ch := range changes {
		if ch.Kind == pipeline.ChangeRemoved && ch.Old.Type == pipeline.TypeFile && ch.Old.SHA256 != "" {
			removed[ch.Old.SHA256] = append(removed[ch.Old.SHA256], ch)
		}
	}
	if len(removed) == 0 {
		return
	}
	for _, ch := range changes {
		if ch.Kind != pipeline.ChangeAdded || ch.New.Type != pipeline.TypeFile || ch.New.SHA256 == "" {
			continue
		}
		if rs := removed[ch.New.SHA256]; len(rs) > 0 {
			r := rs[0]
			removed[ch.New.SHA256] = rs[1:]
			ch.MovedFrom, r.MovedTo = r.Path, ch.Path
		}
	}
}
