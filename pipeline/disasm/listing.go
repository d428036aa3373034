package disasm

import (
	"debug/elf"
	"encoding/binary"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/arch/arm/armasm"
	"golang.org/x/arch/arm64/arm64asm"
	"golang.org/x/arch/x86/x86asm"
)

// Inst is one instruction of a listing.
type Inst struct {
	Addr uint64
	Size int
	// Text is in GNU objdump's syntax, with branch and call targets as
	// absolute addresses.
	Text string
	// Imms are its immediate operands, as the instruction uses them.
	Imms []int64
}

// Bounds of one listing: a reviewer reads a region of a function, and a
// hostile symbol may claim a function of gigabytes.
const (
	maxListBytes = 256 << 10
	maxListInsts = 64 << 10
)

// Listing decodes the code of fn, a function of the ELF file f that
// Functions recovered, into instructions.
func Listing(f io.ReaderAt, size int64, arch string, fn *Func) ([]Inst, error) {
	ef, err := elf.NewFile(io.NewSectionReader(f, 0, size))
	if err != nil {
		return nil, fmt.Errorf("disasm: reading ELF headers: %w", err)
	}
	addr := fn.Addr &^ 1
	var sec *elf.Section
	for _, s := range ef.Sections {
		if s.Type == elf.SHT_PROGBITS && s.Flags&elf.SHF_EXECINSTR != 0 && addr >= s.Addr && addr-s.Addr < s.Size {
			sec = s
			break
		}
	}
	if sec == nil {
		return nil, fmt.Errorf("disasm: no code section holds %s at %#x", fn.Name, addr)
	}
	n := min(max(fn.Size, 4), sec.Addr+sec.Size-addr, maxListBytes)
	b := make([]byte, n)
	if _, err := sec.ReadAt(b, int64(addr-sec.Addr)); err != nil {
		return nil, fmt.Errorf("disasm: reading %s at %#x: %w", fn.Name, addr, err)
	}
	var order binary.ByteOrder = binary.LittleEndian
	if ef.Data == elf.ELFDATA2MSB {
		order = binary.BigEndian
	}
	var out []Inst
	var it thumbIT // the IT block a Thumb instruction is in
	for off := 0; off < len(b) && len(out) < maxListInsts; {
		in := decode(arch, fn.Thumb, order, b[off:], addr+uint64(off), &it)
		if in.Size <= 0 || off+in.Size > len(b) {
			break
		}
		out = append(out, in)
		off += in.Size
	}
	return composeConstants(arch, out), nil
}

// decode decodes the instruction at the start of b, at addr. An encoding
// no decoder knows is shown as data, so that a listing goes on past it. it
// carries Thumb's IT state from one instruction to the next.
func decode(arch string, thumb bool, order binary.ByteOrder, b []byte, addr uint64, it *thumbIT) Inst {
	in := Inst{Addr: addr}
	switch arch {
	case "x86_64", "x86":
		mode := 64
		if arch == "x86" {
			mode = 32
		}
		x, err := x86asm.Decode(b, mode)
		if err != nil || x.Len == 0 {
			return Inst{Addr: addr, Size: 1, Text: fmt.Sprintf(".byte 0x%02x", b[0])}
		}
		in.Size, in.Text = x.Len, x86asm.GNUSyntax(x, addr, nil)
		for _, a := range x.Args {
			if v, ok := a.(x86asm.Imm); ok {
				in.Imms = append(in.Imms, int64(v))
			}
		}
	case "aarch64":
		if len(b) < 4 {
			return Inst{}
		}
		in.Size = 4
		x, err := arm64asm.Decode(b[:4])
		if err != nil {
			in.Text = fmt.Sprintf(".inst 0x%08x", binary.LittleEndian.Uint32(b))
			return in
		}
		in.Text = arm64asm.GNUSyntax(x)
		for _, a := range x.Args {
			switch v := a.(type) {
			case arm64asm.PCRel:
				target := addr + uint64(v)
				if x.Op == arm64asm.ADRP {
					target = addr&^0xfff + uint64(v) // a page, from the PC's
				}
				in.Text = strings.Replace(in.Text, strings.ToLower(v.String()), fmt.Sprintf("%#x", target), 1)
			case arm64asm.Imm:
				in.Imms = append(in.Imms, int64(v.Imm))
			case arm64asm.Imm64:
				in.Imms = append(in.Imms, int64(v.Imm))
			case arm64asm.ImmShift:
				if imm, ok := shiftedImm(v.String()); ok {
					in.Imms = append(in.Imms, imm)
				}
			}
		}
	case "arm":
		if thumb || addr&1 != 0 {
			if len(b) < 2 {
				return Inst{}
			}
			in.Text, in.Size, in.Imms, _ = thumbTextIT(b, addr, it)
			return in
		}
		if len(b) < 4 {
			return Inst{}
		}
		in.Size = 4
		x, err := armasm.Decode(b[:4], armasm.ModeARM)
		if err != nil {
			in.Text = fmt.Sprintf(".inst 0x%08x", binary.LittleEndian.Uint32(b))
			return in
		}
		in.Text = armasm.GNUSyntax(x)
		for _, a := range x.Args {
			switch v := a.(type) {
			case armasm.PCRel:
				// GNUSyntax prints the distance from the instruction; in
				// ARM state the PC reads 8 bytes past it.
				in.Text = strings.Replace(in.Text, fmt.Sprintf(".%+#x", int32(v)+4), fmt.Sprintf("%#x", addr+8+uint64(int64(v))), 1)
			case armasm.Imm:
				in.Imms = append(in.Imms, int64(v))
			case armasm.ImmAlt:
				in.Imms = append(in.Imms, int64(v.Imm()))
			}
		}
	case "mips", "mipsel":
		if len(b) < 4 {
			return Inst{}
		}
		in.Size = 4
		in.Text, in.Imms, _ = mipsText(order.Uint32(b), addr)
	default:
		return Inst{}
	}
	return in
}

// shiftedImm reads arm64asm's "#0x12, LSL #16".
func shiftedImm(s string) (int64, bool) {
	var imm, shift uint64
	if n, _ := fmt.Sscanf(s, "#%v, LSL #%d", &imm, &shift); n == 2 && shift < 64 {
		return int64(imm << shift), true
	}
	if n, _ := fmt.Sscanf(s, "#%v", &imm); n == 1 {
		return int64(imm), true
	}
	return 0, false
}

// composeConstants adds, to the instruction that completes it, a 32-bit
// constant built in two halves: MIPS lui then addiu or ori, ARM movw then
// movt, AArch64 mov then movk. A key or a port compared in code is as
// often built so as loaded whole.
func composeConstants(arch string, insts []Inst) []Inst {
	type half struct {
		at  int
		val int64
	}
	low := map[string]half{} // register (and ARM condition) -> the first half, by where it was set
	// forget drops what is known of rd's first half, under every
	// condition.
	forget := func(rd string) {
		delete(low, rd)
		if arch == "arm" {
			for _, c := range armConds {
				delete(low, rd+c)
			}
		}
	}
	page := map[string]bool{} // AArch64 registers an adrp set
	for i := range insts {
		op, args := splitInst(insts[i].Text)
		if len(args) == 0 {
			continue
		}
		if addressPart(arch, op, args, page) {
			// Not a constant of the code's but a piece of an address,
			// which moves whenever the layout does.
			insts[i].Imms = nil
		}
		if len(insts[i].Imms) == 0 {
			continue
		}
		rd, imm := args[0], insts[i].Imms[len(insts[i].Imms)-1]
		key, first, second := rd, false, false
		var h half
		var val int64
		switch arch {
		case "mips", "mipsel":
			switch {
			case op == "lui":
				first = true
			case (op == "addiu" || op == "ori") && len(args) == 3 && args[1] == rd:
				if h, second = low[rd]; second {
					val = h.val + imm
					if op == "ori" {
						val = h.val | imm
					}
				}
			}
		case "arm":
			// In an IT block the halves are conditional (movweq,
			// movteq): a movt takes the movw of its own condition, or
			// an unconditional one.
			var cond string
			op, cond = armCond(op)
			key = rd + cond
			switch {
			case op == "movw":
				first = true
			case op == "movt":
				if h, second = low[key]; !second && cond != "" {
					h, second = low[rd]
				}
				if second {
					val = int64(uint32(imm)<<16 | uint32(h.val))
				}
			}
		case "aarch64":
			switch {
			case op == "mov" && strings.HasPrefix(rd, "w"), op == "mov" && strings.HasPrefix(rd, "x"):
				first = true
			case op == "movk":
				if h, second = low[rd]; second {
					val = h.val | imm
				}
			}
		}
		switch {
		case first:
			if key == rd {
				forget(rd)
			}
			low[key] = half{i, imm}
		case second && i-h.at <= 8:
			insts[i].Imms = append(insts[i].Imms, val)
			forget(rd)
		default:
			forget(rd)
		}
	}
	return insts
}

// addressPart reports whether an instruction's immediates are a piece of
// an address: on MIPS, what uses gp (GOT slots, and the lui/addiu that
// set gp to _gp) and the low part added to, or loaded or stored at, an
// address loaded from the GOT (lw a0, %got(x)(gp); addiu a0, a0, %lo(x)
// or lbu v0, %lo(x)(a0)); on AArch64, the page offset
// added to or loaded from a register an adrp set. It keeps page, the
// registers that hold such a page (or GOT) address, up to date.
func addressPart(arch, op string, args []string, page map[string]bool) bool {
	switch arch {
	case "mips", "mipsel":
		rd := args[0]
		if op == "lw" && len(args) == 2 && strings.HasSuffix(args[1], "(gp)") {
			page[rd] = true
			return true
		}
		part := op == "addiu" && len(args) == 3 && page[args[1]]
		for _, a := range args {
			_, base, mem := strings.Cut(strings.TrimSuffix(a, ")"), "(")
			part = part || a == "gp" || mem && (base == "gp" || page[base])
		}
		switch {
		case op == "addiu" && len(args) == 3 && page[args[1]]:
			page[rd] = true // the address whole
		case !mipsStores[op] && !strings.HasPrefix(op, "b") && !strings.HasPrefix(op, "j"):
			delete(page, rd) // written (stores, branches and jumps write none)
		}
		return part
	case "aarch64":
		rd := args[0]
		if op == "adrp" {
			page[rd] = true
			return false
		}
		part := len(args) >= 2 && page[strings.TrimPrefix(args[1], "[")] &&
			(op == "add" || strings.HasPrefix(op, "ld") || strings.HasPrefix(op, "st"))
		if !strings.HasPrefix(op, "st") {
			delete(page, rd)
		}
		return part
	}
	return false
}

// mipsStores are the MIPS stores: their first operand is read, not
// written.
var mipsStores = map[string]bool{"sb": true, "sh": true, "sw": true, "swl": true, "swr": true, "sd": true, "sc": true, "swc1": true, "sdc1": true}

// armConds are ARM's condition codes as mnemonics carry them.
var armConds = []string{"eq", "ne", "cs", "hs", "cc", "lo", "mi", "pl", "vs", "vc", "hi", "ls", "ge", "lt", "gt", "le"}

// armCond splits the condition off movw and movt ("movweq", "movw.eq"):
// the mnemonic and its condition, or op and "" for any other.
func armCond(op string) (string, string) {
	for _, base := range []string{"movw", "movt"} {
		if c, ok := strings.CutPrefix(op, base); ok {
			c = strings.TrimPrefix(c, ".")
			if c == "" || c == "al" {
				return base, ""
			}
			if slices.Contains(armConds, c) {
				return base, c
			}
		}
	}
	return op, ""
}

// splitInst splits an instruction's text into its mnemonic and operands.
func splitInst(text string) (string, []string) {
	op, rest, _ := strings.Cut(strings.TrimSpace(text), " ")
	rest = strings.TrimSpace(rest)
	if rest == "" {
		return op, nil
	}
	args := strings.Split(rest, ",")
	for i := range args {
		args[i] = strings.TrimSpace(args[i])
	}
	return op, args
}

// MinConstant is the smallest magnitude of a constant worth listing:
// smaller ones are offsets, counts and flags in every function.
const MinConstant = 256

// Constants are the immediates of insts of at least MinConstant in
// magnitude, each once, in the order first used.
func Constants(insts []Inst) []int64 {
	var out []int64
	seen := map[int64]bool{}
	for _, in := range insts {
		for _, v := range in.Imms {
			if (v >= MinConstant || v <= -MinConstant) && !seen[v] {
				seen[v] = true
				out = append(out, v)
			}
		}
	}
	return out
}

// FirstUses maps each of vals to the address of the first instruction of
// insts that uses it.
func FirstUses(insts []Inst, vals []int64) map[int64]uint64 {
	out := map[int64]uint64{}
	for _, in := range insts {
		for _, v := range in.Imms {
			if _, ok := out[v]; !ok && slices.Contains(vals, v) {
				out[v] = in.Addr
			}
		}
	}
	return out
}

// addrLike matches what in a listing is an address or a distance to
// one: hexadecimal numbers of four digits or more (branch and call
// targets), PC-relative operands (x86-64 `0x2c85(%rip)`, ARM `[pc, #24]`)
// and MIPS GOT slots (`-32744(gp)`). A function that moved, or whose GOT
// slots were laid out again, shows other ones in every branch and load.
var addrLike = regexp.MustCompile(`-?0x[0-9a-f]+\(%rip\)|\[pc, #-?\d+\]|-?\d+\(gp\)|0x[0-9a-f]{4,}`)

// maxDiffInsts bounds the instructions of each side compared with each
// other once the common start and end are set aside.
const maxDiffInsts = 2048

// DiffAround shows how after differs from before around the address at
// in after (the first difference when at is in none): a unified diff of
// at most n lines, "-" for an instruction only before holds, "+" only
// after, " " both, each line its address and text. Instructions compare
// by their text with addresses masked, so code that moved is the same.
func DiffAround(before, after []Inst, at uint64, n int) []string {
	keys := func(l []Inst) []string {
		out := make([]string, len(l))
		for i, in := range l {
			out[i] = addrLike.ReplaceAllString(in.Text, "A")
		}
		return out
	}
	kb, ka := keys(before), keys(after)
	pre := 0
	for pre < len(kb) && pre < len(ka) && kb[pre] == ka[pre] {
		pre++
	}
	suf := 0
	for suf < len(kb)-pre && suf < len(ka)-pre && kb[len(kb)-1-suf] == ka[len(ka)-1-suf] {
		suf++
	}
	b, a := before[pre:len(before)-suf], after[pre:len(after)-suf]
	kb, ka = kb[pre:len(kb)-suf], ka[pre:len(ka)-suf]
	type line struct {
		op byte
		in Inst
	}
	var mid []line
	if len(a) > maxDiffInsts || len(b) > maxDiffInsts {
		// Too long to align: all of the one, then all of the other.
		for _, in := range b {
			mid = append(mid, line{'-', in})
		}
		for _, in := range a {
			mid = append(mid, line{'+', in})
		}
	} else {
		// lcs[i][j]: the longest common run of b[i:] and a[j:].
		lcs := make([][]uint16, len(b)+1)
		for i := range lcs {
			lcs[i] = make([]uint16, len(a)+1)
		}
		for i := len(b) - 1; i >= 0; i-- {
			for j := len(a) - 1; j >= 0; j-- {
				if kb[i] == ka[j] {
					lcs[i][j] = lcs[i+1][j+1] + 1
				} else {
					lcs[i][j] = max16(lcs[i+1][j], lcs[i][j+1])
				}
			}
		}
		i, j := 0, 0
		for i < len(b) || j < len(a) {
			switch {
			case i < len(b) && j < len(a) && kb[i] == ka[j]:
				mid = append(mid, line{' ', a[j]})
				i, j = i+1, j+1
			case j < len(a) && (i == len(b) || lcs[i][j+1] >= lcs[i+1][j]):
				mid = append(mid, line{'+', a[j]})
				j++
			default:
				mid = append(mid, line{'-', b[i]})
				i++
			}
		}
	}
	all := make([]line, 0, pre+len(mid)+suf)
	for _, in := range after[:pre] {
		all = append(all, line{' ', in})
	}
	all = append(all, mid...)
	for _, in := range after[len(after)-suf:] {
		all = append(all, line{' ', in})
	}
	// Centre the window on the change nearest the line of at, or on the
	// first change.
	centre := slices.IndexFunc(all, func(l line) bool { return l.op != ' ' })
	if centre < 0 || n <= 0 {
		return nil
	}
	if at0 := slices.IndexFunc(all, func(l line) bool { return l.op != '-' && l.in.Addr == at }); at0 >= 0 {
		for d := 0; d < len(all); d++ {
			if i := at0 - d; i >= 0 && all[i].op != ' ' {
				centre = i
				break
			}
			if i := at0 + d; i < len(all) && all[i].op != ' ' {
				centre = i
				break
			}
		}
	}
	lo := min(max(centre-n/2, 0), max(len(all)-n, 0))
	hi := min(lo+n, len(all))
	out := make([]string, 0, hi-lo)
	for _, l := range all[lo:hi] {
		out = append(out, fmt.Sprintf("%c %8s  %s", l.op, strconv.FormatUint(l.in.Addr, 16), l.in.Text))
	}
	return out
}

func max16(a, b uint16) uint16 {
	if a > b {
		return a
	}
	return b
}
