package equivalence

import (
	"bytes"
	"debug/elf"
	"io"
	"sort"
)

// elfWhere names the sections and functions of an ELF file (the shipped
// side's) that the differing ranges fall in, leaving out the ranges a
// build id or debug link fills.
func elfWhere(a []byte, diff [][2]int64) (sections, functions []string) {
	if !isELF(a) {
		return nil, nil
	}
	return elfWhereAt(bytes.NewReader(a), int64(len(a)), diff)
}

// elfWhereAt is elfWhere over a reader: it reads the section table and
// the symbol tables.
func elfWhereAt(r io.ReaderAt, size int64, diff [][2]int64) (sections, functions []string) {
	masks, _, _ := elfMasksAt(r, size)
	f, err := elf.NewFile(r)
	if err != nil {
		return nil, nil
	}
	var keep [][2]int64
	for _, d := range diff {
		in := false
		for _, m := range masks {
			if d[0] >= m.r[0] && d[1] <= m.r[1] {
				in = true
				break
			}
		}
		if !in {
			keep = append(keep, d)
		}
	}
	overlaps := func(s, e int64) bool {
		for _, d := range keep {
			if s < d[1] && d[0] < e {
				return true
			}
		}
		return false
	}
	secSeen := map[string]bool{}
	headers := false
	for _, s := range f.Sections {
		if s.Type == elf.SHT_NOBITS || s.FileSize == 0 {
			continue
		}
		if overlaps(int64(s.Offset), int64(s.Offset+s.FileSize)) && !secSeen[s.Name] {
			secSeen[s.Name] = true
			sections = append(sections, s.Name)
		}
	}
	// Bytes in no section: the ELF header, program headers, section table, padding.
	for _, d := range keep {
		inAny := false
		for _, s := range f.Sections {
			if s.Type != elf.SHT_NOBITS && s.Size > 0 && d[0] < int64(s.Offset+s.FileSize) && int64(s.Offset) < d[1] {
				inAny = true
				break
			}
		}
		if !inAny {
			headers = true
		}
	}
	if headers {
		sections = append(sections, "(headers or padding)")
	}
	syms, _ := f.Symbols()
	dyn, _ := f.DynamicSymbols()
	syms = append(syms, dyn...)
	funcSeen := map[string]bool{}
	for _, sym := range syms {
		if elf.ST_TYPE(sym.Info) != elf.STT_FUNC {
			continue
		}
		if sym.Size == 0 || int(sym.Section) <= 0 || int(sym.Section) >= len(f.Sections) || funcSeen[sym.Name] {
			continue
		}
		s := f.Sections[sym.Section]
		if s.Type == elf.SHT_NOBITS {
			continue
		}
		val := sym.Value
		if f.Machine == elf.EM_ARM {
			val &^= 1 // Thumb
		}
		var off int64
		if f.Type == elf.ET_REL {
			off = int64(s.Offset + val)
		} else {
			if val < s.Addr || val >= s.Addr+s.Size {
				continue
			}
			off = int64(s.Offset + val - s.Addr)
		}
		if overlaps(off, off+int64(sym.Size)) {
			funcSeen[sym.Name] = true
			functions = append(functions, sym.Name)
		}
	}
	sort.Strings(functions)
	return sections, functions
}
