package analyze

import (
	"debug/elf"
	"fmt"
	"strings"

	"github.com/fwvet/fwvet/pipeline"
)

// hardening is what an ELF file does to resist memory corruption, read
// from its program headers, dynamic section and symbols: what checksec and
// `readelf -lWd` show. A property that a stripped static binary cannot
// tell (its symbols are gone) is unknown, and never counted as lost.
type hardening struct {
	// NX: a PT_GNU_STACK header without PF_X. Without the header the
	// stack is executable on most architectures (MIPS among them).
	NX bool `json:"nx"`
	// RELRO is "full" (PT_GNU_RELRO and BIND_NOW), "partial" or "none".
	RELRO string `json:"relro"`
	// PIE: a position-independent executable; nil for a shared library.
	PIE *bool `json:"pie,omitempty"`
	// StackProtector: it calls __stack_chk_fail (or reads the guard);
	// nil when no symbols tell.
	StackProtector *bool `json:"stack_protector,omitempty"`
	// Fortify: it calls glibc's checked __*_chk variants; nil when no
	// symbols tell.
	Fortify *bool `json:"fortify,omitempty"`
}

var relroRank = map[string]int{"none": 0, "partial": 1, "full": 2}

// readHardening reads an executable's or shared library's hardening; ok
// is false for objects it does not apply to (kernel modules, core files).
func readHardening(f *elf.File, info *elfInfo) (hardening, bool) {
	if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return hardening{}, false
	}
	h := hardening{RELRO: "none"}
	stack, relro := false, false
	for _, p := range f.Progs {
		switch p.Type {
		case elf.PT_GNU_STACK:
			stack = true
			h.NX = p.Flags&elf.PF_X == 0
		case elf.PT_GNU_RELRO:
			relro = true
		}
	}
	if !stack {
		h.NX = false
	}
	flags, _ := dynValue(f, elf.DT_FLAGS)
	flags1, _ := dynValue(f, elf.DT_FLAGS_1)
	_, bindNow := dynValue(f, elf.DT_BIND_NOW)
	now := bindNow || flags&uint64(elf.DF_BIND_NOW) != 0 || flags1&uint64(elf.DF_1_NOW) != 0
	switch {
	case relro && now:
		h.RELRO = "full"
	case relro:
		h.RELRO = "partial"
	}
	if f.Type == elf.ET_EXEC || info.interpreter != "" || flags1&uint64(elf.DF_1_PIE) != 0 {
		pie := f.Type == elf.ET_DYN
		h.PIE = &pie
	}
	names := info.imports
	if info.static {
		names = info.symbols
	}
	if len(names) > 0 {
		ssp, fortify := false, false
		for name := range names {
			switch {
			case name == "__stack_chk_fail" || name == "__stack_chk_fail_local" || name == "__stack_chk_guard":
				ssp = true
			case strings.HasPrefix(name, "__") && strings.HasSuffix(name, "_chk"):
				fortify = true
			}
		}
		h.StackProtector, h.Fortify = &ssp, &fortify
	}
	return h, true
}

// dynValue is the first value of a dynamic tag, and whether it is there.
// A file without section headers (sstripped, as routers' often are) still
// has its PT_DYNAMIC segment, which is what the loader reads: without it,
// such a file would read as lacking BIND_NOW.
func dynValue(f *elf.File, tag elf.DynTag) (uint64, bool) {
	if f.SectionByType(elf.SHT_DYNAMIC) == nil {
		return segmentDynValue(f, tag)
	}
	vs, err := f.DynValue(tag)
	if err != nil || len(vs) == 0 {
		return 0, false
	}
	return vs[0], true
}

// maxDynamic bounds the PT_DYNAMIC segment read: real ones hold a few
// dozen entries.
const maxDynamic = 64 << 10

func segmentDynValue(f *elf.File, tag elf.DynTag) (uint64, bool) {
	for _, p := range f.Progs {
		if p.Type != elf.PT_DYNAMIC || p.Filesz == 0 || p.Filesz > maxDynamic {
			continue
		}
		b := make([]byte, p.Filesz)
		if _, err := p.ReadAt(b, 0); err != nil {
			return 0, false
		}
		size := 8
		if f.Class == elf.ELFCLASS64 {
			size = 16
		}
		for off := 0; off+size <= len(b); off += size {
			var t, v uint64
			if size == 16 {
				t, v = f.ByteOrder.Uint64(b[off:]), f.ByteOrder.Uint64(b[off+8:])
			} else {
				t, v = uint64(f.ByteOrder.Uint32(b[off:])), uint64(f.ByteOrder.Uint32(b[off+4:]))
			}
			if elf.DynTag(t) == elf.DT_NULL {
				break
			}
			if elf.DynTag(t) == tag {
				return v, true
			}
		}
	}
	return 0, false
}

// lost lists what cur no longer has of old's hardening.
func (old hardening) lost(cur hardening) []string {
	var out []string
	had := func(p *bool) bool { return p != nil && *p }
	gone := func(p *bool) bool { return p != nil && !*p }
	if old.NX && !cur.NX {
		out = append(out, "NX (the stack is executable: GNU_STACK RWE or missing)")
	}
	if relroRank[cur.RELRO] < relroRank[old.RELRO] {
		out = append(out, fmt.Sprintf("RELRO (%s → %s)", old.RELRO, cur.RELRO))
	}
	if had(old.PIE) && gone(cur.PIE) {
		out = append(out, "PIE (now loaded at a fixed address)")
	}
	if had(old.StackProtector) && gone(cur.StackProtector) {
		out = append(out, "stack protector (no __stack_chk_fail)")
	}
	if had(old.Fortify) && gone(cur.Fortify) {
		out = append(out, "FORTIFY (no __*_chk calls)")
	}
	return out
}

// hardeningFinding reports what a binary's new version lost; nil when
// nothing was.
func hardeningFinding(ch *pipeline.Change, machine string, old, cur hardening) *pipeline.Finding {
	lost := old.lost(cur)
	if len(lost) == 0 {
		return nil
	}
	f := finding(pipeline.IDHardeningRegressed, ch, "lost "+strings.Join(lost, ", "), map[string]any{
		"lost": lost, "old": old, "new": cur, "machine": machine,
		"inspect": fmt.Sprintf("fwvet unpack REF DIR && readelf -lWd --dyn-syms DIR%s", ch.Path),
	})
	f.AllowOnly = true
	return &f
}
