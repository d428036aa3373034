// Package disasm recovers the functions of an ELF executable or shared
// library and the calls each one makes, for the function-level diff of a
// changed binary: which function newly calls system() or socket() when the
// binary imported it before.
//
// Functions come from .symtab's STT_FUNC symbols or, in a stripped binary,
// from .dynsym's defined functions, the entry point, and the destinations
// of direct calls and tail jumps (named sub_ADDR), plus the prologues each
// architecture marks (endbr64, MIPS `lui $gp`). Calls to imports are
// resolved through the PLT stub or GOT slot to the relocation's symbol:
//
//   - x86-64: call rel32 into .plt/.plt.sec/.plt.got (each stub's
//     jmp [rip+X] names its GOT slot) and call/jmp [rip+X] (-fno-plt);
//   - 32-bit x86: the same with jmp [ebx+X] in a PIC PLT (ebx holds the
//     GOT's address, .got.plt) or jmp [X] in an absolute one, and call
//     [ebx+X] (-fno-plt);
//   - AArch64: bl/b into the PLT (adrp x16; ldr x17, [x16, #off]);
//   - 32-bit ARM, Thumb-2 and ARM mode: bl/blx/b.w into the PLT (add ip,
//     pc; add ip, ip; ldr pc, [ip, #n]!);
//   - MIPS32, both byte orders: lw $t9, off($gp); jalr $t9 through the
//     global GOT (DT_MIPS_LOCAL_GOTNO, DT_MIPS_GOTSYM), lui/addiu $t9
//     absolute calls, jal and bal, and .MIPS.stubs.
//
// x86 is decoded with golang.org/x/arch/x86asm (variable-length
// instructions need a real decoder); the fixed-width ARM, Thumb-2, AArch64
// and MIPS encodings are matched by the few bit patterns needed here.
//
// Listing decodes one function whole, as text in objdump's syntax, for a
// reviewer (DiffAround) and for what needs every operand: the constants a
// function uses and the literals it compares inline (InlineCompares).
// x86, ARM and AArch64 text comes from golang.org/x/arch; MIPS32 and
// Thumb-2 from mipsText and thumbText, tables checked against binutils.
//
// Everything is bounded: at most maxBytes of code is read and decoded, at
// most MaxFuncs functions are kept, and every table index is checked, so a
// hostile ELF gives an error, never a panic or an unbounded allocation.
package disasm

import (
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
)

// MaxFuncs bounds the functions recovered from one binary.
const MaxFuncs = 200_000

// maxTable bounds a symbol or relocation table read whole.
const maxTable = 64 << 20

// Func is one function.
type Func struct {
	Name string
	Addr uint64
	Size uint64
	// Calls are the functions it calls (imports by name, local functions
	// by their names), each once, in the order first called.
	Calls []string
	// Sites are the addresses of the first call to each of Calls.
	Sites []uint64
	// CodeHash is the SHA-256 of its bytes with call and branch
	// displacements masked, so that a function that only moved hashes the
	// same.
	CodeHash string
	// Thumb: 32-bit ARM code in Thumb state.
	Thumb bool
	// Strings are the C strings in read-only data whose address the
	// function builds (lea, adrp/add, a literal pool word, a GOT page and
	// its offset), each once, in the order first referenced.
	Strings []string
	// Compared are those of Strings passed to a compare function
	// (strcmp, strncmp, strcasecmp, memcmp, strstr and their kin): built
	// after the call before and before this one, or in a MIPS call's
	// delay slot.
	Compared []string
	// Inlined are those of Compared compared through immediates, with no
	// call (InlineCompares); Functions leaves it empty, for it needs a
	// listing of the function.
	Inlined []string
}

// Program is what Functions recovers from one ELF file.
type Program struct {
	// Arch is "x86_64", "x86", "aarch64", "arm", "mips" or "mipsel".
	Arch string
	// Funcs are sorted by address.
	Funcs []Func
	// Imports are the functions the binary imports (undefined .dynsym
	// symbols).
	Imports map[string]bool
	// Stripped: the functions come from call targets, not .symtab.
	Stripped bool
	// Decoded is how many bytes of code were decoded.
	Decoded int64
}

// ErrNoSections is returned for a file with no section table (sstripped).
var ErrNoSections = errors.New("disasm: no section table")

// event kinds.
const (
	evCall     = iota + 1 // direct call to target
	evJump                // unconditional direct jump to target
	evCallSlot            // call through the memory slot at target
	evJumpSlot            // jump through the memory slot at target
	evStart               // a prologue: a function starts here
	evMask                // a branch: only masked in the hash
	evRef                 // the address target is built in a register
	evARM                 // in Thumb code: an ARM-mode function starts at target
)

// event is one instruction of interest, found in a sweep of a section.
type event struct {
	addr   uint64
	target uint64
	kind   uint8
	// mask: the bytes [maskOff, maskOff+maskLen) from addr are not hashed.
	maskOff, maskLen uint8
}

// region is one executable section's bytes.
type region struct {
	name   string
	addr   uint64
	data   []byte
	events []event // sorted by address
	thumb  bool
}

func (r *region) contains(a uint64) bool { return a >= r.addr && a-r.addr < uint64(len(r.data)) }

type prog struct {
	r       io.ReaderAt
	f       *elf.File
	arch    string
	bo      binary.ByteOrder
	regions []*region
	dynsyms []elf.Symbol
	// slots maps a GOT slot's address to the imported name it holds;
	// stubs a PLT stub's address to the name it jumps to.
	slots, stubs map[uint64]string
	imports      map[string]bool
	budget       int64
	decoded      int64
	// mips: the GOT's address and _gp.
	gotAddr, gp uint64
	gotData     []byte
	// rodata are the read-only data sections, read when a function
	// first references one.
	rodata     []*region
	rodataRead bool
}

// Functions recovers the functions of the ELF file in f (size bytes) and
// the calls they make, decoding at most maxBytes of code.
func Functions(f io.ReaderAt, size int64, maxBytes int64) (p *Program, err error) {
	defer func() {
		// debug/elf is hardened, but a hostile file must never take the
		// process down.
		if r := recover(); r != nil {
			p, err = nil, fmt.Errorf("disasm: malformed ELF: %v", r)
		}
	}()
	ef, err := elf.NewFile(io.NewSectionReader(f, 0, size))
	if err != nil {
		return nil, err
	}
	defer ef.Close()
	if len(ef.Sections) == 0 {
		return nil, ErrNoSections
	}
	if ef.Type != elf.ET_EXEC && ef.Type != elf.ET_DYN {
		// A relocatable object (a kernel module) calls through
		// relocations, not a PLT: not diffed yet.
		return nil, fmt.Errorf("disasm: %s is not an executable or shared library", ef.Type)
	}
	pr := &prog{r: f, f: ef, slots: map[uint64]string{}, stubs: map[uint64]string{}, imports: map[string]bool{}, budget: maxBytes, bo: ef.ByteOrder}
	if pr.arch, err = archOf(ef); err != nil {
		return nil, err
	}
	if err := pr.readSymbols(); err != nil {
		return nil, err
	}
	if err := pr.readRelocs(); err != nil {
		return nil, err
	}
	if err := pr.readCode(size); err != nil {
		return nil, err
	}
	if pr.arch == "mips" || pr.arch == "mipsel" {
		pr.readMIPSGOT(size)
	}
	pr.readStubs()
	pr.sweep()
	return pr.functions()
}

// Arch names the architecture of the ELF file in f as Program.Arch does,
// or fails for one Functions does not decode.
func Arch(f io.ReaderAt, size int64) (arch string, err error) {
	defer func() {
		if r := recover(); r != nil {
			arch, err = "", fmt.Errorf("disasm: malformed ELF: %v", r)
		}
	}()
	ef, err := elf.NewFile(io.NewSectionReader(f, 0, size))
	if err != nil {
		return "", err
	}
	defer ef.Close()
	return archOf(ef)
}

func archOf(ef *elf.File) (string, error) {
	switch {
	case ef.Machine == elf.EM_X86_64 && ef.Class == elf.ELFCLASS64:
		return "x86_64", nil
	case ef.Machine == elf.EM_386 && ef.Class == elf.ELFCLASS32:
		return "x86", nil
	case ef.Machine == elf.EM_AARCH64 && ef.Class == elf.ELFCLASS64:
		return "aarch64", nil
	case ef.Machine == elf.EM_ARM && ef.Class == elf.ELFCLASS32:
		return "arm", nil
	case ef.Machine == elf.EM_MIPS && ef.Class == elf.ELFCLASS32:
		if ef.Data == elf.ELFDATA2LSB {
			return "mipsel", nil
		}
		return "mips", nil
	}
	return "", fmt.Errorf("disasm: unsupported machine %s (%s)", ef.Machine, ef.Class)
}

// readSymbols reads .dynsym: the imports, for resolving relocations.
func (p *prog) readSymbols() error {
	s := p.f.SectionByType(elf.SHT_DYNSYM)
	if s == nil {
		return nil
	}
	if s.Size > maxTable {
		return fmt.Errorf("disasm: .dynsym of %d bytes", s.Size)
	}
	syms, err := p.f.DynamicSymbols()
	if err != nil {
		return fmt.Errorf("disasm: .dynsym: %w", err)
	}
	p.dynsyms = syms
	for _, sym := range syms {
		if sym.Section == elf.SHN_UNDEF && sym.Name != "" {
			t := elf.ST_TYPE(sym.Info)
			if t == elf.STT_FUNC || t == elf.STT_NOTYPE || t == elf.STT_GNU_IFUNC {
				p.imports[sym.Name] = true
			}
		}
	}
	return nil
}

// dynName is the name of .dynsym's symbol i (1-based as in relocations),
// or "".
func (p *prog) dynName(i uint64) string {
	if i == 0 || i > uint64(len(p.dynsyms)) {
		return ""
	}
	s := p.dynsyms[i-1]
	if s.Section != elf.SHN_UNDEF {
		return ""
	}
	return s.Name
}

// readRelocs maps each GOT slot that a relocation against an undefined
// .dynsym symbol fills to the symbol's name.
func (p *prog) readRelocs() error {
	for _, s := range p.f.Sections {
		if s.Type != elf.SHT_RELA && s.Type != elf.SHT_REL || s.Flags&elf.SHF_COMPRESSED != 0 {
			continue
		}
		if int(s.Link) >= len(p.f.Sections) || p.f.Sections[s.Link].Type != elf.SHT_DYNSYM {
			continue
		}
		if s.Size > maxTable {
			return fmt.Errorf("disasm: %s of %d bytes", s.Name, s.Size)
		}
		b, err := s.Data()
		if err != nil {
			return fmt.Errorf("disasm: %s: %w", s.Name, err)
		}
		var ent int
		switch {
		case p.f.Class == elf.ELFCLASS64 && s.Type == elf.SHT_RELA:
			ent = 24
		case p.f.Class == elf.ELFCLASS64:
			ent = 16
		case s.Type == elf.SHT_RELA:
			ent = 12
		default:
			ent = 8
		}
		for o := 0; o+ent <= len(b); o += ent {
			var off, sym uint64
			if p.f.Class == elf.ELFCLASS64 {
				off = p.bo.Uint64(b[o:])
				sym = p.bo.Uint64(b[o+8:]) >> 32
			} else {
				off = uint64(p.bo.Uint32(b[o:]))
				sym = uint64(p.bo.Uint32(b[o+4:]) >> 8)
			}
			if name := p.dynName(sym); name != "" {
				p.slots[off] = name
			}
		}
	}
	return nil
}

// readCode reads the executable sections, within the byte budget.
func (p *prog) readCode(size int64) error {
	thumb := p.arch == "arm" && p.f.Entry&1 == 1
	for _, s := range p.f.Sections {
		if s.Type != elf.SHT_PROGBITS || s.Flags&elf.SHF_EXECINSTR == 0 || s.Size == 0 {
			continue
		}
		if s.Offset > uint64(size) || s.Size > uint64(size)-s.Offset {
			return fmt.Errorf("disasm: section %s beyond the end of the file", s.Name)
		}
		if int64(s.Size) > p.budget {
			return fmt.Errorf("disasm: more than %d bytes of code", p.budget+p.decoded)
		}
		if s.Flags&elf.SHF_COMPRESSED != 0 {
			return fmt.Errorf("disasm: compressed code section %s", s.Name)
		}
		b := make([]byte, s.Size)
		if _, err := p.r.ReadAt(b, int64(s.Offset)); err != nil {
			return fmt.Errorf("disasm: %s: %w", s.Name, err)
		}
		p.budget -= int64(s.Size)
		p.decoded += int64(s.Size)
		r := &region{name: s.Name, addr: s.Addr, data: b, thumb: thumb && !strings.HasPrefix(s.Name, ".plt")}
		p.regions = append(p.regions, r)
	}
	if len(p.regions) == 0 {
		return errors.New("disasm: no executable section")
	}
	sort.Slice(p.regions, func(i, j int) bool { return p.regions[i].addr < p.regions[j].addr })
	return nil
}

func (p *prog) regionOf(a uint64) *region {
	i := sort.Search(len(p.regions), func(i int) bool { return p.regions[i].addr+uint64(len(p.regions[i].data)) > a })
	if i < len(p.regions) && p.regions[i].contains(a) {
		return p.regions[i]
	}
	return nil
}

// readStubs finds each PLT stub's GOT slot and so its import.
func (p *prog) readStubs() {
	for _, r := range p.regions {
		switch {
		case r.name == ".MIPS.stubs" || r.name == ".plt" && (p.arch == "mips" || p.arch == "mipsel"):
			p.mipsStubs(r)
		case !strings.HasPrefix(r.name, ".plt"):
			continue
		case p.arch == "x86_64" || p.arch == "x86":
			x86Stubs(p, r)
		case p.arch == "aarch64":
			arm64Stubs(p, r)
		case p.arch == "arm":
			armStubs(p, r)
		}
	}
}

// sweep decodes every executable section once.
func (p *prog) sweep() {
	for _, r := range p.regions {
		switch p.arch {
		case "x86_64":
			r.events = x86Sweep(r.data, r.addr, 64, 0, p.f.Type == elf.ET_EXEC)
		case "x86":
			r.events = x86Sweep(r.data, r.addr, 32, p.gotBase(), p.f.Type == elf.ET_EXEC)
		case "aarch64":
			r.events = arm64Sweep(r.data, r.addr)
		case "arm":
			if r.thumb {
				r.events = thumbSweep(r.data, r.addr)
			} else {
				r.events = armSweep(r.data, r.addr)
			}
		default:
			r.events = mipsSweep(r.data, r.addr, p.bo, p)
		}
	}
}

// resolve names a call's destination: an import through its stub or slot,
// a local function, or "".
func (p *prog) resolve(e event, starts map[uint64]string) string {
	switch e.kind {
	case evCall, evJump:
		if n, ok := p.stubs[e.target]; ok {
			return n
		}
		if n, ok := starts[e.target]; ok && e.kind == evCall {
			return n
		}
	case evCallSlot, evJumpSlot:
		return p.slots[e.target]
	}
	return ""
}

// isPLT: the address is in a PLT or stubs section.
func (p *prog) isPLT(a uint64) bool {
	r := p.regionOf(a)
	return r != nil && (strings.HasPrefix(r.name, ".plt") || r.name == ".MIPS.stubs")
}

func subName(a uint64) string { return fmt.Sprintf("sub_%x", a) }

// functions recovers the functions and their calls.
func (p *prog) functions() (*Program, error) {
	out := &Program{Arch: p.arch, Imports: p.imports, Decoded: p.decoded}
	starts := map[uint64]string{}
	sized := map[uint64]uint64{}
	add := func(a uint64, name string, size uint64) error {
		if p.arch == "arm" {
			a &^= 1
		}
		if p.regionOf(a) == nil || p.isPLT(a) {
			return nil
		}
		if old, ok := starts[a]; ok && !strings.HasPrefix(old, "sub_") {
			return nil
		}
		if _, ok := starts[a]; !ok && len(starts) >= MaxFuncs {
			return fmt.Errorf("disasm: more than %d functions", MaxFuncs)
		}
		if name == "" {
			name = subName(a)
		}
		starts[a] = name
		if size > 0 {
			sized[a] = size
		}
		return nil
	}
	if syms, err := p.f.Symbols(); err == nil {
		for _, s := range syms {
			if elf.ST_TYPE(s.Info) == elf.STT_FUNC && s.Section != elf.SHN_UNDEF && s.Name != "" {
				if err := add(s.Value, s.Name, s.Size); err != nil {
					return nil, err
				}
			}
		}
	}
	out.Stripped = len(starts) == 0
	var armPtrs, thumbPtrs []uint64
	if out.Stripped {
		armPtrs, thumbPtrs = p.codePointers()
		for _, s := range p.dynsyms {
			if elf.ST_TYPE(s.Info) == elf.STT_FUNC && s.Section != elf.SHN_UNDEF && s.Name != "" {
				if err := add(s.Value, s.Name, s.Size); err != nil {
					return nil, err
				}
			}
		}
		if err := add(p.f.Entry, "_start", 0); err != nil {
			return nil, err
		}
		for _, r := range p.regions {
			if strings.HasPrefix(r.name, ".plt") || r.name == ".MIPS.stubs" {
				continue
			}
			if err := add(r.addr, "", 0); err != nil {
				return nil, err
			}
			for _, e := range r.events {
				if e.kind == evCall || e.kind == evStart || e.kind == evARM {
					if err := add(e.target, "", 0); err != nil {
						return nil, err
					}
				}
			}
		}
		// Functions that only pointers in the data reach (a table of
		// handlers) are in no call.
		for _, a := range slices.Concat(armPtrs, thumbPtrs) {
			if err := add(a, "", 0); err != nil {
				return nil, err
			}
		}
		// A tail jump out of the function it is in starts another.
		for round := 0; round < 3; round++ {
			bounds := p.bounds(starts, sized)
			n := len(starts)
			for _, b := range bounds {
				for _, e := range b.events {
					if e.kind == evJump && (e.target < b.addr || e.target >= b.end) {
						if err := add(e.target, "", 0); err != nil {
							return nil, err
						}
					}
				}
			}
			if len(starts) == n {
				break
			}
		}
	}
	arm := p.armFunctions(starts, sized, armPtrs, thumbPtrs)
	for _, b := range p.bounds(starts, sized) {
		fn := Func{Name: starts[b.addr], Addr: b.addr, Size: b.end - b.addr, Thumb: b.r.thumb && !arm[b.addr]}
		seen := map[string]bool{}
		for _, e := range b.events {
			if n := p.resolve(e, starts); n != "" && !seen[n] {
				seen[n] = true
				fn.Calls = append(fn.Calls, n)
				fn.Sites = append(fn.Sites, e.addr)
			}
		}
		p.addStrings(&fn, b.events, starts)
		fn.CodeHash = codeHash(b.r.data[b.addr-b.r.addr:b.end-b.r.addr], b.addr, b.events)
		out.Funcs = append(out.Funcs, fn)
	}
	return out, nil
}

type bound struct {
	addr, end uint64
	r         *region
	events    []event
}

// bounds gives each start its extent: its symbol's size, else up to the
// next start or its section's end.
func (p *prog) bounds(starts map[uint64]string, sized map[uint64]uint64) []bound {
	addrs := make([]uint64, 0, len(starts))
	for a := range starts {
		addrs = append(addrs, a)
	}
	sort.Slice(addrs, func(i, j int) bool { return addrs[i] < addrs[j] })
	out := make([]bound, 0, len(addrs))
	for i, a := range addrs {
		r := p.regionOf(a)
		end := r.addr + uint64(len(r.data))
		if i+1 < len(addrs) && addrs[i+1] < end {
			end = addrs[i+1]
		}
		if s := sized[a]; s > 0 && s < end-a {
			end = a + s
		}
		lo := sort.Search(len(r.events), func(i int) bool { return r.events[i].addr >= a })
		hi := sort.Search(len(r.events), func(i int) bool { return r.events[i].addr >= end })
		out = append(out, bound{addr: a, end: end, r: r, events: r.events[lo:hi]})
	}
	return out
}

// codeHash hashes a function's bytes with its events' masked bytes zeroed.
func codeHash(b []byte, addr uint64, events []event) string {
	c := append([]byte(nil), b...)
	for _, e := range events {
		o := int(e.addr - addr)
		for i := o + int(e.maskOff); i < o+int(e.maskOff)+int(e.maskLen) && i < len(c); i++ {
			if i >= 0 {
				c[i] = 0
			}
		}
	}
	h := sha256.Sum256(c)
	return hex.EncodeToString(h[:])
}

// Func returns the function named name, or nil.
func (p *Program) Func(name string) *Func {
	for i := range p.Funcs {
		if p.Funcs[i].Name == name {
			return &p.Funcs[i]
		}
	}
	return nil
}

// Callers lists the functions that call name.
func (p *Program) Callers(name string) []*Func {
	var out []*Func
	for i := range p.Funcs {
		for _, c := range p.Funcs[i].Calls {
			if c == name {
				out = append(out, &p.Funcs[i])
				break
			}
		}
	}
	return out
}

// CodeDigest hashes the bytes of an ELF file's executable load segments
// with its build-id notes zeroed, reading at most maxBytes: two builds
// whose digests are equal have the same code and need no disassembly.
func CodeDigest(f io.ReaderAt, size int64, maxBytes int64) (digest string, err error) {
	defer func() {
		if r := recover(); r != nil {
			digest, err = "", fmt.Errorf("disasm: malformed ELF: %v", r)
		}
	}()
	ef, err := elf.NewFile(io.NewSectionReader(f, 0, size))
	if err != nil {
		return "", err
	}
	defer ef.Close()
	type span struct{ off, end uint64 }
	var notes []span
	for _, ph := range ef.Progs {
		if ph.Type != elf.PT_NOTE || ph.Filesz > 1<<16 || ph.Off > uint64(size) || ph.Filesz > uint64(size)-ph.Off {
			continue
		}
		b := make([]byte, ph.Filesz)
		if _, err := ph.ReadAt(b, 0); err != nil {
			continue
		}
		for o := 0; o+12 <= len(b); {
			namesz := int(ef.ByteOrder.Uint32(b[o:]))
			descsz := int(ef.ByteOrder.Uint32(b[o+4:]))
			typ := ef.ByteOrder.Uint32(b[o+8:])
			if namesz < 0 || descsz < 0 || namesz > len(b) || descsz > len(b) {
				break
			}
			desc := o + 12 + (namesz+3)&^3
			next := desc + (descsz+3)&^3
			if next > len(b) {
				break
			}
			if typ == 3 && bytes.HasPrefix(b[o+12:desc], []byte("GNU")) { // NT_GNU_BUILD_ID
				notes = append(notes, span{ph.Off + uint64(desc), ph.Off + uint64(desc+descsz)})
			}
			o = next
		}
	}
	h := sha256.New()
	var read int64
	for _, ph := range ef.Progs {
		if ph.Type != elf.PT_LOAD || ph.Flags&elf.PF_X == 0 {
			continue
		}
		if ph.Off > uint64(size) || ph.Filesz > uint64(size)-ph.Off {
			return "", errors.New("disasm: load segment beyond the end of the file")
		}
		if read += int64(ph.Filesz); read > maxBytes {
			return "", fmt.Errorf("disasm: more than %d bytes of code", maxBytes)
		}
		b := make([]byte, ph.Filesz)
		if _, err := f.ReadAt(b, int64(ph.Off)); err != nil {
			return "", err
		}
		for _, n := range notes {
			for o := n.off; o < n.end; o++ {
				if o >= ph.Off && o-ph.Off < uint64(len(b)) {
					b[o-ph.Off] = 0
				}
			}
		}
		fmt.Fprintf(h, "%x:%x;", ph.Vaddr, ph.Filesz)
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
