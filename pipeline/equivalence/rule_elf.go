package equivalence

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
)

// elfBuildID explains ELF files that differ only in their build ids and
// debug links: the descriptor of .note.gnu.build-id and .note.go.buildid,
// and the contents of .gnu_debuglink (file name and CRC of the debug
// file). Every other byte, the headers and section table included, must be
// equal, and the masked bytes must belong to no other section.
type elfBuildID struct{}

func (elfBuildID) ID() string      { return "elf-build-id" }
func (elfBuildID) Version() string { return "1" }
func (elfBuildID) Description() string {
	return "ELF files that differ only in .note.gnu.build-id, .note.go.buildid and .gnu_debuglink"
}

// elfMask is a byte range of an ELF file that a build id or debug link
// fills, and what it says.
type elfMask struct {
	section string
	r       [2]int64
}

func isELF(b []byte) bool { return len(b) >= 4 && string(b[:4]) == elf.ELFMAG }

// elfMasks finds the build id and debug link ranges of an ELF file.
func elfMasks(data []byte) ([]elfMask, *elf.File, error) {
	return elfMasksAt(bytes.NewReader(data), int64(len(data)))
}

// elfMasksAt finds the build id and debug link ranges of an ELF file of
// size bytes; it reads the headers, the section table, the section names
// and the notes.
func elfMasksAt(r io.ReaderAt, size int64) ([]elfMask, *elf.File, error) {
	f, err := elf.NewFile(r)
	if err != nil {
		return nil, nil, err
	}
	var masks []elfMask
	for _, s := range f.Sections {
		if s.Type == elf.SHT_NOBITS || s.FileSize == 0 {
			continue
		}
		off, end := int64(s.Offset), int64(s.Offset)+int64(s.FileSize)
		if off < 0 || end > size || end < off {
			return nil, nil, fmt.Errorf("section %s lies outside the file", s.Name)
		}
		switch s.Name {
		case ".note.gnu.build-id", ".note.go.buildid":
			if s.Type != elf.SHT_NOTE || s.Flags&elf.SHF_EXECINSTR != 0 {
				continue
			}
			if end-off > 1<<20 {
				continue
			}
			note := make([]byte, end-off)
			if _, err := r.ReadAt(note, off); err != nil {
				return nil, nil, fmt.Errorf("section %s: %w", s.Name, err)
			}
			if d, ok := noteDesc(note, f.ByteOrder); ok {
				masks = append(masks, elfMask{s.Name, [2]int64{off + d[0], off + d[1]}})
			}
		case ".gnu_debuglink":
			if s.Type != elf.SHT_PROGBITS || s.Flags&(elf.SHF_ALLOC|elf.SHF_EXECINSTR) != 0 {
				continue
			}
			masks = append(masks, elfMask{s.Name, [2]int64{off, end}})
		}
	}
	// No other section may share a masked byte.
	for _, s := range f.Sections {
		if s.Type == elf.SHT_NOBITS || s.FileSize == 0 {
			continue
		}
		off, end := int64(s.Offset), int64(s.Offset)+int64(s.FileSize)
		for _, m := range masks {
			if s.Name != m.section && off < m.r[1] && m.r[0] < end {
				return nil, nil, fmt.Errorf("section %s overlaps %s", s.Name, m.section)
			}
		}
	}
	return masks, f, nil
}

// noteDesc finds the descriptor of the one note in a note section.
func noteDesc(b []byte, bo binary.ByteOrder) ([2]int64, bool) {
	if len(b) < 12 {
		return [2]int64{}, false
	}
	namesz, descsz := int64(bo.Uint32(b[0:4])), int64(bo.Uint32(b[4:8]))
	start := 12 + (namesz+3)&^3
	if namesz > int64(len(b)) || descsz > int64(len(b)) || start+descsz > int64(len(b)) {
		return [2]int64{}, false
	}
	return [2]int64{start, start + descsz}, true
}

func (elfBuildID) Explain(_ context.Context, s, r *Input) (Result, error) {
	if s.Data == nil || r.Data == nil || !isELF(s.Data) || !isELF(r.Data) {
		return Result{}, nil
	}
	return explainELF(s.Data, r.Data), nil
}

func explainELF(a, b []byte) Result {
	ma, _, err := elfMasks(a)
	if err != nil {
		return Result{Reason: "elf-build-id: shipped: " + err.Error()}
	}
	mb, _, err := elfMasks(b)
	if err != nil {
		return Result{Reason: "elf-build-id: rebuilt: " + err.Error()}
	}
	if len(ma) == 0 {
		return Result{Reason: "elf-build-id: no build id or debug link"}
	}
	if len(a) != len(b) || len(ma) != len(mb) {
		return Result{Reason: "elf-build-id: the files differ in size or layout"}
	}
	for i := range ma {
		if ma[i] != mb[i] {
			return Result{Reason: "elf-build-id: the build ids lie at different offsets"}
		}
	}
	allowed := make([][2]int64, len(ma))
	for i, m := range ma {
		allowed[i] = m.r
	}
	diff, _, _ := diffRanges(a, b, 1<<20)
	if !within(diff, allowed) {
		var out [][2]int64
		for _, d := range diff {
			if !within([][2]int64{d}, allowed) {
				out = append(out, d)
			}
		}
		return Result{Reason: "elf-build-id: bytes differ outside the build ids and debug links at " + fmtRanges(capRanges(out, 8))}
	}
	ap := Applied{ID: "elf-build-id"}
	for _, m := range ma {
		x, y := a[m.r[0]:m.r[1]], b[m.r[0]:m.r[1]]
		if bytes.Equal(x, y) {
			continue
		}
		ap.Ranges = append(ap.Ranges, m.r)
		ap.Before = append(ap.Before, m.section+" "+decodeELFMask(m.section, x))
		ap.After = append(ap.After, m.section+" "+decodeELFMask(m.section, y))
	}
	return Result{Explained: true, Applied: []Applied{ap},
		NormalizedShipped: digest(masked(a, allowed)), NormalizedRebuilt: digest(masked(b, allowed))}
}

func capRanges(rs [][2]int64, n int) [][2]int64 {
	if len(rs) > n {
		return rs[:n]
	}
	return rs
}

// decodeELFMask shows what a masked range holds.
func decodeELFMask(section string, b []byte) string {
	switch section {
	case ".note.go.buildid":
		return fmt.Sprintf("%q", strings.TrimRight(string(b), "\x00"))
	case ".gnu_debuglink":
		i := bytes.IndexByte(b, 0)
		if i < 0 || len(b) < 4 {
			return hex.EncodeToString(b)
		}
		crc := binary.LittleEndian.Uint32(b[len(b)-4:])
		return fmt.Sprintf("%s crc=%08x", b[:i], crc)
	}
	return hex.EncodeToString(b)
}
