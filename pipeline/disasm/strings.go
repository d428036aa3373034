package disasm

import (
	"debug/elf"
	"slices"
	"sort"
	"strings"
)

// Bounds on what is taken for a string: a reference to anything shorter
// is more likely a number that happens to point into .rodata, and
// anything longer is cut.
const (
	minString = 4
	maxString = 256
	// maxRodata bounds the read-only data read from one binary: it is
	// held with the code (up to maxBytes) while the functions are found.
	maxRodata = 16 << 20
	// maxFuncStrings bounds the strings kept for one function (and so
	// the arguments of one call and its compared strings).
	maxFuncStrings = 256
)

// compareCalls are the functions whose string argument is a constant
// that input is compared against.
var compareCalls = map[string]bool{
	"strcmp": true, "strncmp": true, "strcasecmp": true, "strncasecmp": true, "memcmp": true, "bcmp": true,
	"strstr": true, "strcasestr": true, "memmem": true, "strcoll": true,
	"__strcmp_chk": true, "__strncmp_chk": true, "__memcmp_chk": true,
}

// IsCompare reports whether name is one of the compare functions whose
// string arguments Func.Compared lists.
func IsCompare(name string) bool { return compareCalls[name] }

// readRodata reads the .rodata sections (allocated, read-only, not
// executable) once, within maxRodata; a binary with more gets no strings.
func (p *prog) readRodata() {
	if p.rodataRead {
		return
	}
	p.rodataRead = true
	var total uint64
	for _, s := range p.f.Sections {
		if s.Type != elf.SHT_PROGBITS || s.Flags&elf.SHF_ALLOC == 0 || s.Flags&(elf.SHF_EXECINSTR|elf.SHF_WRITE|elf.SHF_COMPRESSED) != 0 || s.Size == 0 {
			continue
		}
		if !strings.HasPrefix(s.Name, ".rodata") {
			// Not .interp, .dynstr or the version tables: a PIC literal
			// (an offset, a small number) can land in them and read as a
			// path or a symbol version.
			continue
		}
		if total += s.Size; total > maxRodata {
			p.rodata = nil
			return
		}
		b, err := s.Data()
		if err != nil || uint64(len(b)) != s.Size {
			continue
		}
		p.rodata = append(p.rodata, &region{name: s.Name, addr: s.Addr, data: b})
	}
	sort.Slice(p.rodata, func(i, j int) bool { return p.rodata[i].addr < p.rodata[j].addr })
}

// stringAt is the C string at address a in read-only data: printable
// text of minString bytes or more ending in a NUL (cut at maxString).
func (p *prog) stringAt(a uint64) (string, bool) {
	p.readRodata()
	i := sort.Search(len(p.rodata), func(i int) bool { return p.rodata[i].addr+uint64(len(p.rodata[i].data)) > a })
	if i == len(p.rodata) || !p.rodata[i].contains(a) {
		return "", false
	}
	b := p.rodata[i].data[a-p.rodata[i].addr:]
	n := 0
	for n < len(b) && n < maxString && b[n] != 0 {
		if c := b[n]; c < 0x20 && c != '\t' && c != '\n' && c != '\r' || c >= 0x7f {
			return "", false
		}
		n++
	}
	if n < minString || n == len(b) {
		return "", false
	}
	return string(b[:n]), true
}

// addStrings fills fn's Strings and Compared from its events, in address
// order: a string built since the call before is an argument of the next
// call, and one built in a MIPS call's delay slot is that call's.
func (p *prog) addStrings(fn *Func, events []event, starts map[uint64]string) {
	var args []string
	var last event // the last call
	lastCompare := false
	mips := p.arch == "mips" || p.arch == "mipsel"
	for _, e := range events {
		switch e.kind {
		case evRef:
			str, ok := p.stringAt(e.target)
			if !ok {
				continue
			}
			if len(fn.Strings) >= maxFuncStrings {
				// Each is looked up among the others: a hostile function
				// of millions of references must not cost their square.
				continue
			}
			if !slices.Contains(fn.Strings, str) {
				fn.Strings = append(fn.Strings, str)
			}
			if mips && last.kind != 0 && e.addr == last.addr+4 {
				if lastCompare && !slices.Contains(fn.Compared, str) {
					fn.Compared = append(fn.Compared, str)
				}
				continue
			}
			args = append(args, str)
		case evCall, evJump, evCallSlot, evJumpSlot:
			name := p.resolve(e, starts)
			if e.kind == evJump && name == "" {
				continue // a jump inside the function
			}
			last, lastCompare = e, compareCalls[name]
			if lastCompare {
				for _, str := range args {
					if !slices.Contains(fn.Compared, str) {
						fn.Compared = append(fn.Compared, str)
					}
				}
			}
			args = args[:0]
		}
	}
}
