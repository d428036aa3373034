package analyze

import (
	"context"
	"io"

	"github.com/fwvet/fwvet/pipeline"
)

// Bounds on what counts as a patch made in place.
const (
	// maxPatchBytes and maxPatchRanges bound a patch: more than that many
	// bytes, or places, changed is a rebuild, not a patch.
	maxPatchBytes  = 64
	maxPatchRanges = 8
	// patchContext is how far around a changed range the strings are read.
	patchContext = 64
)

// patchEdit is one place a binary was patched, with the strings there
// before and after.
type patchEdit struct {
	Offset int64  `json:"offset"`
	Length int64  `json:"length"`
	Old    string `json:"old"`
	New    string `json:"new"`
	// Section is the ELF section the bytes belong to, when known.
	Section string `json:"section,omitempty"`
}

// patchOf reports whether a modified binary of unchanged size differs only
// in a few bytes of data, and shows the strings that changed. A rebuild
// that only changed the GNU build id (or the debug link's CRC) is not a
// patch.
func patchOf(ctx context.Context, in *pipeline.AnalysisInput, ch *pipeline.Change) ([]patchEdit, error) {
	s := in.Scans[ch.Key]
	if ch.Kind != pipeline.ChangeModified || s == nil || s.Old == nil || s.New == nil || s.DiffMany || len(s.Diff) == 0 {
		return nil, nil
	}
	if s.New.Magic == "" {
		return nil, nil // text and unknown data: not a binary patched in place
	}

	oldAt, doneOld, err := openAt(ctx, ch.Old, in.WorkDir)
	if err != nil {
		return nil, err
	}
	defer doneOld()
	newAt, doneNew, err := openAt(ctx, ch.New, in.WorkDir)
	if err != nil {
		return nil, err
	}
	defer doneNew()
	var sections map[string]elfSection
	if s.New.Magic == "elf" {
		if info, err := readELF(io.NewSectionReader(newAt, 0, newAt.Size()), false); err == nil {
			sections = info.sections
		}
	}
	var edits []patchEdit
	var total int64
	for _, r := range s.Diff {
		sec := sectionAt(sections, r.Off)
		if rebuildMetadata[sec] {
			continue
		}
		total += r.Len
		if total > maxPatchBytes || len(edits) == maxPatchRanges {
			return nil, nil
		}
		edits = append(edits, patchEdit{Offset: r.Off, Length: r.Len, Section: sec,
			Old: stringAround(oldAt, r), New: stringAround(newAt, r)})
	}
	return edits, nil
}

// rebuildMetadata are the sections a rebuild of the same source changes:
// ids of the build and of its debug files, and the compiler's signature.
var rebuildMetadata = map[string]bool{
	".note.gnu.build-id": true, ".gnu_debuglink": true, ".gnu_debugaltlink": true, ".comment": true,
}

func sectionAt(sections map[string]elfSection, off int64) string {
	for name, s := range sections {
		if off >= s.off && off < s.off+s.size {
			return name
		}
	}
	return ""
}

// stringAround reads the bytes around a range and returns the printable
// text that holds it, non-printable bytes shown as \xNN.
func stringAround(r io.ReaderAt, rg pipeline.Range) string {
	lo := max(rg.Off-patchContext, 0)
	buf := make([]byte, rg.Len+2*patchContext)
	n, _ := r.ReadAt(buf, lo)
	buf = buf[:n]
	a, b := rg.Off-lo, min(rg.Off-lo+rg.Len, int64(len(buf)))
	if a > int64(len(buf)) {
		return ""
	}
	// Widen to the printable run around the change.
	for a > 0 && isText[buf[a-1]] && buf[a-1] != '\n' {
		a--
	}
	for b < int64(len(buf)) && isText[buf[b]] && buf[b] != '\n' {
		b++
	}
	out := make([]byte, 0, b-a)
	for _, c := range buf[a:b] {
		if isText[c] && c != '\n' && c != '\r' && c != '\t' {
			out = append(out, c)
		} else {
			out = append(out, []byte{'\\', 'x', "0123456789abcdef"[c>>4], "0123456789abcdef"[c&15]}...)
		}
	}
	return string(out)
}
