package disasm

import (
	"encoding/binary"
	"strconv"
)

// A reviewer reads these listings next to what arm-linux-gnueabihf-objdump
// prints for the same binary, so the text follows GNU objdump 2.40 (its
// opcodes/arm-dis.c tables) to the character: gcc's register names (sl, fp,
// ip), decimal immediates, its choice of aliases (stmdb sp! rather than
// push.w, mov.w with a shift rather than lsl.w), and its order of matching
// where encodings overlap. Only its comments ("@ 0x410", "@ (adr ...)") are
// left out. Unknown are the encodings objdump decodes only through what gcc
// -O2 does not emit for armhf userland: NEON data processing, NEON element
// and structure loads other than vld1/vst1 of whole registers, FPA
// arithmetic, XScale, Maverick, MVE and the other v8-M and v8.1-M
// additions, ARMv8 FP (vsel, vrint, vcvta), VFP conversions to fixed point
// and half precision; and the loads and stores whose offset form objdump
// itself calls <undefined>.

var thumbRegs = [16]string{
	"r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7",
	"r8", "r9", "sl", "fp", "ip", "sp", "lr", "pc",
}

// thumbConds is objdump's arm_conditional: 14 prints as "al" and 15 as
// "<und>" when an IT block names them.
var thumbConds = [16]string{
	"eq", "ne", "cs", "cc", "mi", "pl", "vs", "vc",
	"hi", "ls", "ge", "lt", "gt", "le", "al", "<und>",
}

var thumbShifts = [4]string{"lsl", "lsr", "asr", "ror"}

// thumbIT is the IT state carried from one instruction to the next, as the
// CPSR's ITSTATE bits hold it: the condition in the high nibble (its low
// bit shifting with the mask), the mask in the low one; zero outside a
// block. Inside a block objdump prints the condition on every instruction
// and drops the "s" of the 16-bit flag-setting forms, as the CPU executes
// them.
type thumbIT uint8

// thumbText decodes the Thumb instruction at the start of code (little
// endian halfwords), at address addr, into GNU objdump's syntax, returns
// its size in bytes (2 or 4) and the immediate operands it holds, so that a
// caller can list the constants a function uses. ok is false for an
// encoding it does not know: text is then ".inst 0x%04x" (".inst.w
// 0x%08x" for a 32-bit one), the size still right. Branch targets are
// absolute 0x addresses, computed in 32 bits as the CPU does.
//
// The immediates are exactly the #-numbers of the text, in order, as the
// instruction uses them: the ThumbExpandImm value of a modified immediate,
// movw/movt's 16 bits, add/sub/cmp immediates, load/store offsets (negative
// when subtracted), shift amounts, bitfield positions. Branch targets,
// coprocessor fields and the numbers of svc and bkpt are not among them.
//
// thumbText knows nothing of IT blocks: an instruction inside one shows
// without its condition (and a 16-bit one with its "s"). thumbTextIT walks
// them. With fewer than 4 bytes and a first halfword of a 32-bit encoding
// (top five bits 0b11101, 0b11110 or 0b11111) the text is ".inst 0x%04x",
// the size 2 and ok false; with fewer than 2 bytes the text is empty and
// the size 0.
func thumbText(code []byte, addr uint64) (text string, size int, imms []int64, ok bool) {
	return thumbTextIT(code, addr, nil)
}

// thumbTextIT is thumbText that carries the IT state of a sequential walk
// in *it (zero at the start of code), as objdump does: call it for each
// instruction in turn with the same it. A nil it is outside any block.
func thumbTextIT(code []byte, addr uint64, it *thumbIT) (text string, size int, imms []int64, ok bool) {
	if len(code) < 2 {
		return "", 0, nil, false
	}
	var st thumbIT
	if it != nil {
		st = *it
	}
	cond := -1
	var next thumbIT
	if st != 0 {
		cond = int(st >> 4)
		if st&0xf != 8 {
			next = st&0xe0 | (st&0xf)<<1
		}
	}
	var o thumbOut
	pc := uint32(addr)
	hw := uint32(binary.LittleEndian.Uint16(code))
	switch {
	case hw>>11 < 0x1d:
		size = 2
		ok = o.t16(hw, pc, cond)
		if ok && hw&0xff00 == 0xbf00 && hw&0xf != 0 {
			next = thumbIT(hw)
		}
		if !ok {
			o.reset(".inst 0x", uint64(hw), 4)
		}
	case len(code) < 4:
		size = 2
		o.reset(".inst 0x", uint64(hw), 4)
	default:
		size = 4
		g := hw<<16 | uint32(binary.LittleEndian.Uint16(code[2:]))
		if ok = o.t32(g, pc, cond); !ok {
			o.reset(".inst.w 0x", uint64(g), 8)
		}
	}
	if it != nil {
		*it = next
	}
	if o.ni > 0 {
		imms = make([]int64, o.ni)
		copy(imms, o.imms[:o.ni])
	}
	return string(o.text[:o.n]), size, imms, ok
}

// thumbOut builds an instruction's text in place, so that decoding
// allocates only the returned string and slice.
type thumbOut struct {
	text [160]byte
	n    int
	imms [4]int64
	ni   int
}

func (o *thumbOut) str(s string) { o.n += copy(o.text[o.n:], s) }

func (o *thumbOut) ch(c byte) {
	if o.n < len(o.text) {
		o.text[o.n] = c
		o.n++
	}
}

func (o *thumbOut) reg(r uint32) { o.str(thumbRegs[r&15]) }

// sreg writes ", " and a register: the form of every operand after the
// first.
func (o *thumbOut) sreg(r uint32) { o.str(", "); o.reg(r) }

func (o *thumbOut) udec(v uint64) { o.n += len(strconv.AppendUint(o.text[o.n:o.n], v, 10)) }

func (o *thumbOut) dec(v int64) { o.n += len(strconv.AppendInt(o.text[o.n:o.n], v, 10)) }

func (o *thumbOut) record(v int64) {
	if o.ni < len(o.imms) {
		o.imms[o.ni] = v
		o.ni++
	}
}

// imm writes #v, v signed, and records it.
func (o *thumbOut) imm(v int64) { o.str("#"); o.dec(v); o.record(v) }

// uimm writes #v as objdump's %u does, and records it.
func (o *thumbOut) uimm(v uint32) { o.str("#"); o.udec(uint64(v)); o.record(int64(v)) }

func (o *thumbOut) target(a uint32) {
	o.str("0x")
	o.n += len(strconv.AppendUint(o.text[o.n:o.n], uint64(a), 16))
}

// hexw writes v in hex, zero-padded to width digits.
func (o *thumbOut) hexw(v uint64, width int) {
	var b [16]byte
	s := strconv.AppendUint(b[:0], v, 16)
	for i := len(s); i < width; i++ {
		o.str("0")
	}
	o.n += copy(o.text[o.n:], s)
}

// reset replaces whatever was written with prefix and v in hex, for an
// encoding that turned out unknown half way.
func (o *thumbOut) reset(prefix string, v uint64, width int) {
	o.n, o.ni = 0, 0
	o.str(prefix)
	o.hexw(v, width)
}

// mn writes a mnemonic: base, the "s" of a flag-setting form, the IT
// condition when cond >= 0, a width suffix; then the space before the
// operands.
func (o *thumbOut) mn(base, s string, cond int, w string) {
	o.str(base)
	o.str(s)
	if cond >= 0 {
		o.str(thumbConds[cond&15])
	}
	o.str(w)
	o.str(" ")
}

// mn0 writes a mnemonic that has no operands.
func (o *thumbOut) mn0(base string, cond int, w string) {
	o.mn(base, "", cond, w)
	o.n--
}

// flags16 is the "s" a 16-bit data-processing instruction shows outside
// an IT block, where it sets the flags; inside one it does not.
func flags16(cond int) string {
	if cond >= 0 {
		return ""
	}
	return "s"
}

// list16 writes a 16-bit register list: r0-r7 from the low byte, then
// extra (lr or pc) when its bit 8 says so.
func (o *thumbOut) list16(hw uint32, extra uint32) {
	o.str("{")
	sep := ""
	for r := uint32(0); r < 8; r++ {
		if hw&(1<<r) != 0 {
			o.str(sep)
			o.reg(r)
			sep = ", "
		}
	}
	if extra != 0 && hw&0x100 != 0 {
		o.str(sep)
		o.reg(extra)
	}
	o.str("}")
}

// list32 writes the 16-register list of a 32-bit ldm/stm.
func (o *thumbOut) list32(g uint32) {
	o.str("{")
	sep := ""
	for r := uint32(0); r < 16; r++ {
		if g&(1<<r) != 0 {
			o.str(sep)
			o.reg(r)
			sep = ", "
		}
	}
	o.str("}")
}

var (
	thumbDP16   = [16]string{"and", "eor", "lsl", "lsr", "asr", "adc", "sbc", "ror", "tst", "neg", "cmp", "cmn", "orr", "mul", "bic", "mvn"}
	thumbLdst16 = [8]string{"str", "strh", "strb", "ldrsb", "ldr", "ldrh", "ldrb", "ldrsh"}
	thumbExt16  = [4]string{"sxth", "sxtb", "uxth", "uxtb"}
	thumbHints  = [6]string{"nop", "yield", "wfe", "wfi", "sev", "sevl"}
)

// t16 decodes a 16-bit instruction; cond is the IT condition, -1 outside a
// block.
func (o *thumbOut) t16(hw, pc uint32, cond int) bool {
	rd, rn := hw&7, hw>>3&7
	switch hw >> 11 {
	case 0, 1, 2: // shift by immediate; lsl #0 is movs
		op, sh := hw>>11, int64(hw>>6&31)
		if op == 0 && sh == 0 {
			o.mn("mov", flags16(cond), cond, "")
			o.reg(rd)
			o.sreg(rn)
			return true
		}
		if op != 0 && sh == 0 {
			sh = 32
		}
		o.mn(thumbShifts[op], flags16(cond), cond, "")
		o.reg(rd)
		o.sreg(rn)
		o.str(", ")
		o.imm(sh)
	case 3: // add/sub register or 3-bit immediate
		name := "add"
		if hw&0x200 != 0 {
			name = "sub"
		}
		o.mn(name, flags16(cond), cond, "")
		o.reg(rd)
		o.sreg(rn)
		if hw&0x400 == 0 {
			o.sreg(hw >> 6 & 7)
		} else {
			o.str(", ")
			o.imm(int64(hw >> 6 & 7))
		}
	case 4, 5, 6, 7: // mov, cmp, add, sub 8-bit immediate
		names := [4]string{"mov", "cmp", "add", "sub"}
		op := hw >> 11 & 3
		s := flags16(cond)
		if op == 1 {
			s = ""
		}
		o.mn(names[op], s, cond, "")
		o.reg(hw >> 8 & 7)
		o.str(", ")
		o.imm(int64(hw & 0xff))
	case 8:
		if hw < 0x4400 {
			op := hw >> 6 & 15
			s := flags16(cond)
			if op == 8 || op == 10 || op == 11 { // tst, cmp, cmn
				s = ""
			}
			o.mn(thumbDP16[op], s, cond, "")
			o.reg(rd)
			o.sreg(rn)
			return true
		}
		return o.special16(hw, cond)
	case 9: // ldr literal
		o.mn("ldr", "", cond, "")
		o.reg(hw >> 8 & 7)
		o.str(", [pc, ")
		o.imm(int64(hw&0xff) * 4)
		o.str("]")
	case 10, 11: // load/store register offset
		o.mn(thumbLdst16[hw>>9&7], "", cond, "")
		o.reg(rd)
		o.str(", [")
		o.reg(rn)
		o.sreg(hw >> 6 & 7)
		o.str("]")
	case 12, 13, 14, 15, 16, 17: // load/store 5-bit immediate
		names := [6]string{"str", "ldr", "strb", "ldrb", "strh", "ldrh"}
		scale := [6]int64{4, 4, 1, 1, 2, 2}
		op := hw>>11 - 12
		o.mn(names[op], "", cond, "")
		o.reg(rd)
		o.str(", [")
		o.reg(rn)
		o.str(", ")
		o.imm(int64(hw>>6&31) * scale[op])
		o.str("]")
	case 18, 19: // load/store sp-relative
		name := "str"
		if hw&0x800 != 0 {
			name = "ldr"
		}
		o.mn(name, "", cond, "")
		o.reg(hw >> 8 & 7)
		o.str(", [sp, ")
		o.imm(int64(hw&0xff) * 4)
		o.str("]")
	case 20, 21: // adr (as objdump prints it: add rd, pc) and add rd, sp
		o.mn("add", "", cond, "")
		o.reg(hw >> 8 & 7)
		if hw&0x800 == 0 {
			o.str(", pc, ")
		} else {
			o.str(", sp, ")
		}
		o.imm(int64(hw&0xff) * 4)
	case 22, 23:
		return o.misc16(hw, pc, cond)
	case 24, 25: // stmia, ldmia (writeback unless the base is loaded)
		rb := hw >> 8 & 7
		if hw&0x800 == 0 {
			o.mn("stmia", "", cond, "")
			o.reg(rb)
			o.str("!, ")
		} else {
			o.mn("ldmia", "", cond, "")
			o.reg(rb)
			if hw&(1<<rb) == 0 {
				o.str("!")
			}
			o.str(", ")
		}
		o.list16(hw, 0)
	case 26, 27:
		switch c := hw >> 8 & 15; c {
		case 15:
			o.mn("svc", "", cond, "")
			o.udec(uint64(hw & 0xff))
		case 14:
			o.mn("udf", "", cond, "")
			o.imm(int64(hw & 0xff))
		default:
			o.mn("b", thumbConds[c], -1, ".n")
			o.target(pc + 4 + uint32(int32(int8(hw))*2))
		}
	case 28: // b
		o.mn("b", "", cond, ".n")
		o.target(pc + 4 + uint32(int32(hw<<21)>>20))
	default:
		return false
	}
	return true
}

// special16 decodes add, cmp and mov with high registers, bx and blx.
func (o *thumbOut) special16(hw uint32, cond int) bool {
	rd, rm := hw&7|hw>>4&8, hw>>3&15
	switch hw >> 8 & 3 {
	case 0:
		o.mn("add", "", cond, "")
	case 1:
		o.mn("cmp", "", cond, "")
	case 2:
		if hw == 0x46c0 { // mov r8, r8
			o.mn0("nop", cond, "")
			return true
		}
		o.mn("mov", "", cond, "")
	default:
		switch {
		case hw&0xff87 == 0x4784:
			o.mn("blxns", "", -1, "")
		case hw&0xff87 == 0x4704:
			o.mn("bxns", "", -1, "")
		case hw&0xff80 == 0x4700:
			o.mn("bx", "", cond, "")
		case hw&0xff87 == 0x4780:
			o.mn("blx", "", cond, "")
		default:
			return false
		}
		o.reg(rm)
		return true
	}
	o.reg(rd)
	o.sreg(rm)
	return true
}

// misc16 decodes 0xb000-0xbfff: sp adjustment, cbz, extends, push/pop,
// rev, breakpoints, hints and IT.
func (o *thumbOut) misc16(hw, pc uint32, cond int) bool {
	rd, rm := hw&7, hw>>3&7
	switch hw >> 8 & 15 {
	case 0x0:
		name := "add"
		if hw&0x80 != 0 {
			name = "sub"
		}
		o.mn(name, "", cond, "")
		o.str("sp, ")
		o.imm(int64(hw&0x7f) * 4)
	case 0x1, 0x3, 0x9, 0xb:
		name := "cbz"
		if hw&0x800 != 0 {
			name = "cbnz"
		}
		o.mn(name, "", -1, "")
		o.reg(rd)
		o.str(", ")
		o.target(pc + 4 + (hw>>3&31)<<1 + (hw>>9&1)<<6)
	case 0x2:
		o.mn(thumbExt16[hw>>6&3], "", cond, "")
		o.reg(rd)
		o.sreg(rm)
	case 0x4, 0x5:
		o.mn("push", "", cond, "")
		o.list16(hw, 14)
	case 0xc, 0xd:
		o.mn("pop", "", cond, "")
		o.list16(hw, 15)
	case 0x6:
		switch {
		case hw&0xfff7 == 0xb610:
			o.mn("setpan", "", -1, "")
			o.imm(int64(hw >> 3 & 1))
		case hw&0xfff7 == 0xb650:
			o.mn("setend", "", -1, "")
			if hw&8 != 0 {
				o.str("be")
			} else {
				o.str("le")
			}
		case hw&0xffe8 == 0xb660:
			name := "cpsie"
			if hw&0x10 != 0 {
				name = "cpsid"
			}
			o.mn(name, "", -1, "")
			o.aif(hw&4 != 0, hw&2 != 0, hw&1 != 0, true)
		default:
			return false
		}
	case 0xa:
		switch hw >> 6 & 3 {
		case 0:
			o.mn("rev", "", cond, "")
		case 1:
			o.mn("rev16", "", cond, "")
		case 2:
			o.mn("hlt", "", -1, "")
			o.str("0x")
			o.hexw(uint64(hw&0x3f), 4)
			return true
		default:
			o.mn("revsh", "", cond, "")
		}
		o.reg(rd)
		o.sreg(rm)
	case 0xe:
		o.mn("bkpt", "", -1, "")
		o.str("0x")
		o.hexw(uint64(hw&0xff), 4)
	case 0xf:
		if hw&0xf != 0 {
			o.str("it")
			for m := hw << 1; m&0xf != 0; m <<= 1 {
				if (hw^m)&0x10 != 0 {
					o.str("e")
				} else {
					o.str("t")
				}
			}
			o.str(" ")
			o.str(thumbConds[hw>>4&15])
			return true
		}
		if h := hw >> 4 & 15; int(h) < len(thumbHints) {
			o.mn0(thumbHints[h], cond, "")
		} else {
			o.mn("nop", "", cond, "")
			o.str("{")
			o.udec(uint64(h))
			o.str("}")
		}
	default:
		return false
	}
	return true
}

// aif writes the interrupt flags of cps: a, i, f. With none and no mode
// after them objdump leaves only the mnemonic.
func (o *thumbOut) aif(a, i, f, last bool) {
	if a {
		o.str("a")
	}
	if i {
		o.str("i")
	}
	if f {
		o.str("f")
	}
	if !a && !i && !f && last {
		o.n--
	}
}

// t32 decodes a 32-bit instruction, first halfword high: objdump tries the
// coprocessor tables (VFP, then generic coprocessor) before the Thumb-2
// one.
func (o *thumbOut) t32(g, pc uint32, cond int) bool {
	hw1 := g >> 16
	switch {
	case hw1&0xec00 == 0xec00:
		// v8.1-M's vscclrm and system-register vldr/vstr come first in
		// objdump's table; they take some vldmia pc and ldc/stc p15 forms.
		if g&0xffbf0e00 == 0xec9f0a00 && (g&0x100 == 0 || g&1 == 0) ||
			g&0xfe001f80 == 0xec000f80 && g&0x01200000 != 0 {
			return false
		}
		if g>>28 == 0xe && o.vfp(g, cond) {
			return true
		}
		return o.coproc(g, cond)
	case hw1&0xfe00 == 0xe800:
		return o.ldstm32(g, cond)
	case hw1&0xfe00 == 0xea00:
		return g&0x8000 == 0 && o.dpReg32(g, cond)
	case hw1&0xf800 == 0xf000:
		switch {
		case g&0x8000 != 0:
			return o.branch32(g, pc, cond)
		case hw1&0x200 == 0:
			return o.dpImm32(g, cond)
		default:
			return o.plainImm32(g, cond)
		}
	case hw1&0xfe00 == 0xf800:
		return o.ldst32(g, cond)
	case hw1&0xff00 == 0xfa00:
		return g&0xf000 == 0xf000 && o.dpReg3(g, cond)
	case hw1&0xff00 == 0xfb00:
		return o.mul32(g, cond)
	}
	return false
}

// thumbExpandImm is ThumbExpandImm of the i:imm3:imm8 fields of g.
func thumbExpandImm(g uint32) uint32 {
	bits := g&0xff | g>>4&0x700 | g>>15&0x800
	imm8 := bits & 0xff
	switch bits >> 8 {
	case 0:
		return imm8
	case 1:
		return imm8<<16 | imm8
	case 2:
		return imm8<<24 | imm8<<8
	case 3:
		return imm8<<24 | imm8<<16 | imm8<<8 | imm8
	}
	rot := bits >> 7 & 31
	v := bits&0x7f | 0x80
	return v>>rot | v<<(32-rot)
}

// shifted writes a register with an immediate shift (objdump's %S).
func (o *thumbOut) shifted(g uint32) {
	o.reg(g & 15)
	sh := int64(g>>6&3 | g>>10&0x1c)
	switch typ := g >> 4 & 3; {
	case typ == 0 && sh == 0:
	case typ == 3 && sh == 0:
		o.str(", rrx")
	default:
		if sh == 0 {
			sh = 32
		}
		o.str(", ")
		o.str(thumbShifts[typ])
		o.str(" ")
		o.imm(sh)
	}
}

// thumbDP32 names the data-processing ops by bits 24-21; wide tells
// which of them objdump writes with ".w" (orn and rsb have no 16-bit
// form to tell apart).
var thumbDP32 = [16]struct {
	name string
	wide bool
}{
	0: {"and", true}, 1: {"bic", true}, 2: {"orr", true}, 3: {"orn", false},
	4: {"eor", true}, 8: {"add", true}, 10: {"adc", true}, 11: {"sbc", true},
	13: {"sub", true}, 14: {"rsb", false},
}

// dpOp32 writes the mnemonic and first operands of a 32-bit
// data-processing instruction; operand writes the last one. It knows the
// compare forms (no destination), mov and mvn (no first operand) and the
// rest.
func (o *thumbOut) dpOp32(g uint32, cond int, operand func()) bool {
	op, rn, rd := g>>21&15, g>>16&15, g>>8&15
	s := ""
	if g&0x100000 != 0 {
		s = "s"
	}
	if s != "" && rd == 15 {
		cmp := ""
		w := ".w"
		switch op {
		case 0:
			cmp = "tst"
		case 4:
			cmp, w = "teq", ""
		case 8:
			cmp = "cmn"
		case 13:
			cmp = "cmp"
		}
		if cmp != "" {
			o.mn(cmp, "", cond, w)
			o.reg(rn)
			o.str(", ")
			operand()
			return true
		}
	}
	if rn == 15 && (op == 2 || op == 3) {
		name := "mov"
		if op == 3 {
			name = "mvn"
		}
		o.mn(name, s, cond, ".w")
		o.reg(rd)
		o.str(", ")
		operand()
		return true
	}
	d := thumbDP32[op]
	if d.name == "" {
		return false
	}
	w := ""
	if d.wide {
		w = ".w"
	}
	o.mn(d.name, s, cond, w)
	o.reg(rd)
	o.sreg(rn)
	o.str(", ")
	operand()
	return true
}

// dpImm32 decodes data processing with a modified immediate.
func (o *thumbOut) dpImm32(g uint32, cond int) bool {
	return o.dpOp32(g, cond, func() { o.uimm(thumbExpandImm(g)) })
}

// dpReg32 decodes data processing with a shifted register, and pkhbt/tb.
func (o *thumbOut) dpReg32(g uint32, cond int) bool {
	if g>>20&0xfff == 0xeac {
		if g&0x10 != 0 {
			return false
		}
		name := "pkhbt"
		if g&0x20 != 0 {
			name = "pkhtb"
		}
		o.mn(name, "", cond, "")
		o.reg(g >> 8 & 15)
		o.sreg(g >> 16 & 15)
		o.str(", ")
		o.shifted(g)
		return true
	}
	return o.dpOp32(g, cond, func() { o.shifted(g) })
}

// plainImm32 decodes addw, subw, movw, movt, the saturations and the
// bitfield instructions.
func (o *thumbOut) plainImm32(g uint32, cond int) bool {
	rn, rd := g>>16&15, g>>8&15
	imm12 := g&0xff | g>>4&0x700 | g>>15&0x800
	switch op := g >> 20 & 0x1f; op {
	case 0x00, 0x0a:
		name := "addw"
		if op == 0x0a {
			name = "subw"
		}
		o.mn(name, "", cond, "")
		o.reg(rd)
		o.sreg(rn)
		o.str(", ")
		o.uimm(imm12)
		return true
	case 0x04, 0x0c:
		name := "movw"
		if op == 0x0c {
			name = "movt"
		}
		o.mn(name, "", cond, "")
		o.reg(rd)
		o.str(", ")
		o.uimm(imm12 | rn<<12)
		return true
	}
	// The rest has no i bit, and bit 5 of the second halfword clear.
	if g&0x04000020 != 0 {
		return false
	}
	lsb := int64(g>>6&3 | g>>10&0x1c)
	switch op := g >> 20 & 0x1f; op {
	case 0x10, 0x12, 0x18, 0x1a:
		name, add := "ssat", int64(1)
		if op >= 0x18 {
			name, add = "usat", 0
		}
		if op&2 != 0 && g&0x70c0 == 0 { // ssat16, usat16
			o.mn(name, "16", cond, "")
			o.reg(rd)
			o.str(", ")
			o.imm(int64(g&31) + add)
			o.sreg(rn)
			return true
		}
		o.mn(name, "", cond, "")
		o.reg(rd)
		o.str(", ")
		o.imm(int64(g&31) + add)
		o.sreg(rn)
		switch {
		case op&2 != 0:
			o.str(", asr ")
			o.imm(lsb)
		case lsb != 0:
			o.str(", lsl ")
			o.imm(lsb)
		}
	case 0x14, 0x1c:
		name := "sbfx"
		if op == 0x1c {
			name = "ubfx"
		}
		o.mn(name, "", cond, "")
		o.reg(rd)
		o.sreg(rn)
		o.str(", ")
		o.imm(lsb)
		o.str(", ")
		o.imm(int64(g&31) + 1)
	case 0x16:
		if rn == 15 {
			o.mn("bfc", "", cond, "")
			o.reg(rd)
		} else {
			o.mn("bfi", "", cond, "")
			o.reg(rd)
			o.sreg(rn)
		}
		o.str(", ")
		o.imm(lsb)
		o.str(", ")
		o.uimm(uint32(int64(g&31) - lsb + 1)) // objdump's %u of msb-lsb+1
	default:
		return false
	}
	return true
}

// branch32 decodes b.w, bl, blx, conditional b.w and the control
// instructions that share their space.
func (o *thumbOut) branch32(g, pc uint32, cond int) bool {
	s := g >> 26 & 1
	switch g & 0xd000 {
	case 0xd000, 0xc000, 0x9000:
		if g&0xd001 == 0xc001 { // blx with an odd offset: v8.1-M's bf* there
			return false
		}
		i1 := ^(g>>13 ^ s) & 1
		i2 := ^(g>>11 ^ s) & 1
		off := int32((s<<24|i1<<23|i2<<22|g>>4&0x3ff000|g<<1&0xffe)<<7) >> 7
		t := pc + 4 + uint32(off)
		switch g & 0xd000 {
		case 0xd000:
			o.mn("bl", "", cond, "")
		case 0xc000:
			o.mn("blx", "", cond, "")
			t &^= 2
		default:
			o.mn("b", "", cond, ".w")
		}
		o.target(t)
		return true
	}
	if c := g >> 22 & 15; c < 14 {
		off := int32((s<<20|g>>11&1<<19|g>>13&1<<18|g>>4&0x3f000|g<<1&0xffe)<<11) >> 11
		o.mn("b", thumbConds[c], -1, ".w")
		o.target(pc + 4 + uint32(off))
		return true
	}
	return o.control32(g, cond)
}

// thumbBarriers are the dmb/dsb options objdump names.
var thumbBarriers = [16]string{
	1: "oshld", 2: "oshst", 3: "osh", 5: "nshld", 6: "unst", 7: "un",
	9: "ishld", 10: "ishst", 11: "ish", 13: "ld", 14: "st", 15: "sy",
}

// control32 decodes hints, barriers, mrs/msr and the rest of the branch
// space with condition 14 or 15.
func (o *thumbOut) control32(g uint32, cond int) bool {
	switch {
	case g&0xffffff00 == 0xf3af8000:
		h := g & 0xff
		switch {
		case h < 6:
			o.mn0(thumbHints[h], cond, ".w")
		case h == 0x10:
			o.str("esb")
		case h == 0x14:
			o.str("csdb")
		case h == 0x0f:
			o.str("bti")
		case h == 0x0d, h == 0x1d, h == 0x2d:
			o.str([3]string{"pacbti", "pac", "aut"}[h>>4])
			o.str(" r12, lr, sp")
		case h >= 0xf0:
			o.mn("dbg", "", cond, "")
			o.imm(int64(h & 15))
		default:
			o.mn("nop", "", cond, ".w")
			o.str("{")
			o.udec(uint64(h))
			o.str("}")
		}
	case g&0xffffff1f == 0xf3af8400, g&0xffffff1f == 0xf3af8600:
		o.str("cpsi")
		if g&0x200 != 0 {
			o.str("d.w ")
		} else {
			o.str("e.w ")
		}
		o.aif(g&0x80 != 0, g&0x40 != 0, g&0x20 != 0, true)
	case g&0xffffffe0 == 0xf3af8100:
		o.str("cps ")
		o.imm(int64(g & 31))
	case g&0xffffff00 == 0xf3af8500, g&0xffffff00 == 0xf3af8700:
		o.str("cpsi")
		if g&0x200 != 0 {
			o.str("d ")
		} else {
			o.str("e ")
		}
		o.aif(g&0x80 != 0, g&0x40 != 0, g&0x20 != 0, false)
		o.str(", ")
		o.imm(int64(g & 31))
	case g == 0xf3bf8f2f:
		o.mn0("clrex", cond, "")
	case g == 0xf3bf8f4c:
		o.mn0("dfb", cond, "")
	case g == 0xf3bf8f40:
		o.str("ssbb")
	case g == 0xf3bf8f44:
		o.str("pssbb")
	case g == 0xf3bf8f70:
		o.str("sb")
	case g&0xffffffe0 == 0xf3bf8f40: // dsb, dmb
		name := "dsb"
		if g&0x10 != 0 {
			name = "dmb"
		}
		o.mn(name, "", cond, "")
		if b := thumbBarriers[g&15]; b != "" {
			o.str(b)
		} else {
			o.imm(int64(g & 15))
		}
	case g&0xfffffff0 == 0xf3bf8f60:
		o.mn("isb", "", cond, "")
		if g&15 == 15 {
			o.str("sy")
		} else {
			o.imm(int64(g & 15))
		}
	case g&0xfff0ffff == 0xf3c08f00:
		o.mn("bxj", "", cond, "")
		o.reg(g >> 16)
	case g&0xffe0f000 == 0xf3e08000:
		o.mn("mrs", "", cond, "")
		o.reg(g >> 8)
		o.str(", ")
		if g&0xff == 0 || g&0x20 != 0 {
			o.banked(g>>16&15 | g&0x30 | g>>14&0x40)
		} else {
			o.str(thumbPSR(g & 0xff))
		}
	case g&0xffffff00 == 0xf3de8f00:
		o.mn("subs", "", cond, "")
		o.str("pc, lr, ")
		o.imm(int64(g & 0xff))
	case g&0xffe0f000 == 0xf3808000:
		o.mn("msr", "", cond, "")
		switch {
		case g&0xff == 0:
			if g&0x100000 != 0 {
				o.str("SPSR_")
			} else {
				o.str("CPSR_")
			}
			for i := range 4 {
				if g&(0x800>>i) != 0 {
					o.ch("fsxc"[i])
				}
			}
		case g&0x20 != 0:
			o.banked(g>>8&15 | g&0x30 | g>>14&0x40)
		default:
			o.str(thumbPSR(g & 0xff))
		}
		o.sreg(g >> 16)
	case g&0xfff0f000 == 0xf7e08000:
		o.mn("hvc", "", cond, "")
		o.uimm(g&0xfff | g>>4&0xf000)
	case g&0xfff0f000 == 0xf7f08000:
		o.mn("smc", "", cond, "")
		o.uimm(g>>16&15 | g&0xff0 | (g&15)<<12)
	case g&0xfff0f000 == 0xf7f0a000:
		o.mn("udf", "", cond, ".w")
		o.uimm(g>>4&0xf000 | g&0xfff)
	case g&0xfffffffc == 0xf78f8000:
		o.str("dcps")
		o.udec(uint64(g & 3))
	default:
		return false
	}
	return true
}

// banked writes an ARMv7 banked or special register, as objdump's
// banked_regname does.
func (o *thumbOut) banked(sysm uint32) {
	var s string
	switch {
	case sysm == 15:
		s = "CPSR"
	case sysm == 79:
		s = "SPSR"
	case sysm >= 32 && sysm <= 38:
		s = [7]string{"R8_usr", "R9_usr", "R10_usr", "R11_usr", "R12_usr", "SP_usr", "LR_usr"}[sysm-32]
	case sysm >= 40 && sysm <= 46:
		s = [7]string{"R8_fiq", "R9_fiq", "R10_fiq", "R11_fiq", "R12_fiq", "SP_fiq", "LR_fiq"}[sysm-40]
	case sysm >= 48 && sysm <= 55:
		s = [8]string{"LR_irq", "SP_irq", "LR_svc", "SP_svc", "LR_abt", "SP_abt", "LR_und", "SP_und"}[sysm-48]
	case sysm == 60:
		s = "LR_mon"
	case sysm == 61:
		s = "SP_mon"
	case sysm == 62:
		s = "ELR_hyp"
	case sysm == 63:
		s = "SP_hyp"
	case sysm == 110:
		s = "SPSR_fiq"
	case sysm == 112:
		s = "SPSR_irq"
	case sysm == 114:
		s = "SPSR_svc"
	case sysm == 116:
		s = "SPSR_abt"
	case sysm == 118:
		s = "SPSR_und"
	case sysm == 124:
		s = "SPSR_mon"
	case sysm == 126:
		s = "SPSR_hyp"
	}
	if s != "" {
		o.str(s)
		return
	}
	o.str("(UNDEF: ")
	o.udec(uint64(sysm))
	o.str(")")
}

// thumbPSR is objdump's psr_name: the M-profile special registers, which
// it prints for an mrs/msr SYSm field of the A profile as well.
func thumbPSR(r uint32) string {
	switch r {
	case 0x0:
		return "APSR"
	case 0x1:
		return "IAPSR"
	case 0x2:
		return "EAPSR"
	case 0x3:
		return "PSR"
	case 0x5:
		return "IPSR"
	case 0x6:
		return "EPSR"
	case 0x7:
		return "IEPSR"
	case 0x8:
		return "MSP"
	case 0x9:
		return "PSP"
	case 0xa:
		return "MSPLIM"
	case 0xb:
		return "PSPLIM"
	case 0x10:
		return "PRIMASK"
	case 0x11:
		return "BASEPRI"
	case 0x12:
		return "BASEPRI_MAX"
	case 0x13:
		return "FAULTMASK"
	case 0x14:
		return "CONTROL"
	case 0x88:
		return "MSP_NS"
	case 0x89:
		return "PSP_NS"
	case 0x8a:
		return "MSPLIM_NS"
	case 0x8b:
		return "PSPLIM_NS"
	case 0x90:
		return "PRIMASK_NS"
	case 0x91:
		return "BASEPRI_NS"
	case 0x93:
		return "FAULTMASK_NS"
	case 0x94:
		return "CONTROL_NS"
	case 0x98:
		return "SP_NS"
	}
	return "<unknown>"
}

// ldstm32 decodes load/store multiple, dual and exclusive, and tbb/tbh.
func (o *thumbOut) ldstm32(g uint32, cond int) bool {
	rn, rt, rt2, rd := g>>16&15, g>>12&15, g>>8&15, g&15
	p, u, w, l := g>>24&1, g>>23&1, g>>21&1, g>>20&1
	if g == 0xe97fe97f {
		o.str("sg")
		return true
	}
	if g&0xffff2000 == 0xe89f0000 { // v8.1-M's clrm takes ldmia.w pc
		o.mn("clrm", "", cond, "")
		o.str("{")
		sep := ""
		for r := uint32(0); r < 16; r++ {
			if g&(1<<r) != 0 {
				o.str(sep)
				switch r {
				case 13:
					o.str("(invalid: sp)")
				case 15:
					o.str("APSR")
				default:
					o.reg(r)
				}
				sep = ", "
			}
		}
		o.str("}")
		return true
	}
	if g&0x400000 == 0 {
		switch {
		case p != u: // ia, db
			var name string
			switch {
			case p == 0 && l == 0:
				name = "stmia"
			case p == 0:
				name = "ldmia"
			case l == 0:
				name = "stmdb"
			default:
				name = "ldmdb"
			}
			wide := ""
			if p == 0 {
				wide = ".w"
			}
			o.mn(name, "", cond, wide)
			o.reg(rn)
			if w != 0 {
				o.str("!")
			}
			o.str(", ")
			o.list32(g)
		case l == 0 && g&0xffe0 == 0xc000: // srsdb, srsia
			o.mn([2]string{"srsdb", "srsia"}[p], "", cond, "")
			o.reg(rn)
			if w != 0 {
				o.str("!")
			}
			o.str(", ")
			o.imm(int64(g & 31))
		case l == 1 && g&0xffff == 0xc000: // rfedb, rfeia
			o.mn([2]string{"rfedb", "rfeia"}[p], "", cond, "")
			o.reg(rn)
			if w != 0 {
				o.str("!")
			}
		default:
			return false
		}
		return true
	}
	if p == 1 || w == 1 { // ldrd, strd
		name := "strd"
		if l != 0 {
			name = "ldrd"
		}
		o.mn(name, "", cond, "")
		o.reg(rt)
		o.sreg(rt2)
		o.str(", [")
		o.reg(rn)
		off := int64(g&0xff) * 4
		if u == 0 {
			off = -off
		}
		switch {
		case p == 1 && u == 1 && off == 0: // objdump drops the ! here too
			o.str("]")
		case p == 1:
			o.str(", ")
			o.imm8neg(off, u)
			o.str("]")
			if w != 0 {
				o.str("!")
			}
		default:
			o.str("], ")
			o.imm8neg(off, u)
		}
		return true
	}
	op := g >> 4 & 15
	switch {
	case u == 0 && l == 0 && g&0xf03f == 0xf000: // tt, ttt, tta, ttat
		o.str([4]string{"tt ", "ttt ", "tta ", "ttat "}[g>>6&3])
		o.reg(rt2)
		o.sreg(rn)
	case u == 0 && l == 0: // strex
		o.mn("strex", "", cond, "")
		o.reg(rt2)
		o.sreg(rt)
		o.str(", [")
		o.reg(rn)
		if g&0xff != 0 {
			o.str(", ")
			o.imm(int64(g&0xff) * 4)
		}
		o.str("]")
	case u == 0: // ldrex
		if g&0xf00 != 0xf00 {
			return false
		}
		o.mn("ldrex", "", cond, "")
		o.reg(rt)
		o.str(", [")
		o.reg(rn)
		if g&0xff != 0 {
			o.str(", ")
			o.imm(int64(g&0xff) * 4)
		}
		o.str("]")
	case l == 1 && g&0xffe0 == 0xf000: // tbb, tbh
		if op == 0 {
			o.mn("tbb", "", cond, "")
		} else {
			o.mn("tbh", "", cond, "")
		}
		o.str("[")
		o.reg(rn)
		o.sreg(rd)
		if op == 1 {
			o.str(", lsl ")
			o.imm(1)
		}
		o.str("]")
	default:
		return o.excl32(g, cond)
	}
	return true
}

// imm8neg writes the offset of ldrd/strd: objdump keeps the sign of a
// subtracted zero.
func (o *thumbOut) imm8neg(off int64, u uint32) {
	if u == 0 && off == 0 {
		o.str("#-0")
		o.record(0)
		return
	}
	o.imm(off)
}

// excl32 decodes the byte, halfword and doubleword exclusives and the
// v8 acquire/release forms (objdump knows them in any architecture).
func (o *thumbOut) excl32(g uint32, cond int) bool {
	rn, rt, rt2, rd := g>>16&15, g>>12&15, g>>8&15, g&15
	op := g >> 4 & 15
	store := g&0x100000 == 0
	sfx := [16]string{4: "b", 5: "h", 8: "b", 9: "h", 12: "b", 13: "h"}[op]
	// excl writes an exclusive store (status register, then the value or
	// pair) or load (the value or pair; its rd must read 15).
	excl := func(st, ld, sfx string, pair bool) bool {
		if store {
			o.mn(st, sfx, cond, "")
			o.reg(rd)
			o.sreg(rt)
		} else {
			if rd != 15 {
				return false
			}
			o.mn(ld, sfx, cond, "")
			o.reg(rt)
		}
		if pair {
			o.sreg(rt2)
		}
		return true
	}
	switch {
	case (op == 4 || op == 5) && rt2 == 15:
		if !excl("strex", "ldrex", sfx, false) {
			return false
		}
	case op == 7:
		if !excl("strexd", "ldrexd", "", true) {
			return false
		}
	case op >= 8 && op <= 10 && rt2 == 15 && rd == 15:
		name := "stl"
		if !store {
			name = "lda"
		}
		o.mn(name, sfx, cond, "")
		o.reg(rt)
	case op >= 12 && op <= 14 && rt2 == 15:
		if !excl("stlex", "ldaex", sfx, false) {
			return false
		}
	case op == 15:
		if !excl("stlexd", "ldaexd", "", true) {
			return false
		}
	default:
		return false
	}
	o.str(", [")
	o.reg(rn)
	o.str("]")
	return true
}

// ldst32 decodes the single loads and stores, and pld/pli.
func (o *thumbOut) ldst32(g uint32, cond int) bool {
	hw1 := g >> 16
	l := g >> 20 & 1
	if hw1&0xff00 == 0xf900 && l == 0 {
		return o.vld1(g, cond)
	}
	rt := g >> 12 & 15
	size, signed := g>>21&3, g>>24&1
	if l == 0 && signed != 0 {
		return false
	}
	pre := ""
	switch {
	case rt == 15 && l == 1 && g&0xff600000 == 0xf8000000:
		pre = "pld"
	case rt == 15 && l == 1 && g&0xff600000 == 0xf9000000:
		pre = "pli"
	case rt == 15 && l == 1 && g&0xff600000 == 0xf8200000:
		pre = "pldw"
	}
	if pre != "" {
		o.mn(pre, "", cond, "")
		return o.addr32(g)
	}
	name := "str"
	if l != 0 {
		name = "ldr"
	}
	o.str(name)
	switch {
	case size == 0 && signed != 0:
		o.str("sb")
	case size == 0:
		o.str("b")
	case size == 1 && signed != 0:
		o.str("sh")
	case size == 1:
		o.str("h")
	case size == 3 || signed != 0:
		o.str("??")
	}
	if g&0x800f00 == 0xe00 { // ldrt, strt and their widths
		o.mn("t", "", cond, "")
	} else {
		o.mn("", "", cond, ".w")
	}
	o.reg(rt)
	o.str(", ")
	return o.addr32(g)
}

// vld1 decodes the NEON loads and stores of one to four whole registers
// (vld1/vst1, multiple structures), which memcpy uses; the other element
// and structure forms are unknown.
func (o *thumbOut) vld1(g uint32, cond int) bool {
	n := [16]uint32{2: 4, 6: 3, 7: 1, 10: 2}[g>>8&15]
	if g&0x800000 != 0 || n == 0 {
		return false
	}
	o.mn([2]string{"vst1", "vld1"}[g>>21&1], "", cond, "")
	o.n--
	o.str([4]string{".8 ", ".16 ", ".32 ", ".64 "}[g>>6&3])
	rd := g>>12&15 | g>>18&16
	o.str("{d")
	o.udec(uint64(rd))
	if n > 1 {
		o.str("-d")
		o.udec(uint64(rd + n - 1))
	}
	o.str("}, [")
	o.reg(g >> 16)
	if a := g >> 4 & 3; a != 0 {
		o.str(" :")
		o.udec(32 << a)
	}
	o.str("]")
	switch rm := g & 15; rm {
	case 13:
		o.str("!")
	case 15:
	default:
		o.sreg(rm)
	}
	return true
}

// addr32 writes the address of a 32-bit load or store (objdump's %a).
func (o *thumbOut) addr32(g uint32) bool {
	rn := g >> 16 & 15
	i12, i8 := int64(g&0xfff), int64(g&0xff)
	var off int64
	wb, post := false, false
	switch {
	case g&0x800000 != 0:
		off = i12
	case rn == 15:
		off = -i12
	case g&0xf00 == 0:
		o.str("[")
		o.reg(rn)
		o.sreg(g & 15)
		if sh := g >> 4 & 3; sh != 0 {
			o.str(", lsl ")
			o.imm(int64(sh))
		}
		o.str("]")
		return true
	default:
		switch g >> 8 & 15 {
		case 0xe:
			off = i8
		case 0xc:
			off = -i8
		case 0xf:
			off, wb = i8, true
		case 0xd:
			off, wb = -i8, true
		case 0xb:
			off, post = i8, true
		case 0x9:
			off, post = -i8, true
		default:
			return false
		}
	}
	o.str("[")
	o.reg(rn)
	if post {
		o.str("], ")
		o.imm(off)
		return true
	}
	if off != 0 {
		o.str(", ")
		o.imm(off)
	}
	o.str("]")
	if wb {
		o.str("!")
	}
	return true
}

// thumbPar names the parallel add/subtract instructions by op1 (hw1 bits
// 6-4) and op2 (hw2 bits 6-4).
var thumbPar = [7][7]string{
	{"sadd8", "qadd8", "shadd8", "", "uadd8", "uqadd8", "uhadd8"},
	{"sadd16", "qadd16", "shadd16", "", "uadd16", "uqadd16", "uhadd16"},
	{"sasx", "qasx", "shasx", "", "uasx", "uqasx", "uhasx"},
	{},
	{"ssub8", "qsub8", "shsub8", "", "usub8", "uqsub8", "uhsub8"},
	{"ssub16", "qsub16", "shsub16", "", "usub16", "uqsub16", "uhsub16"},
	{"ssax", "qsax", "shsax", "", "usax", "uqsax", "uhsax"},
}

var (
	thumbExt32  = [6]string{"sxth", "uxth", "sxtb16", "uxtb16", "sxtb", "uxtb"}
	thumbExtA32 = [6]string{"sxtah", "uxtah", "sxtab16", "uxtab16", "sxtab", "uxtab"}
)

// dpReg3 decodes 0xfa00-0xfaff: register-controlled shifts, extends,
// parallel arithmetic, saturating arithmetic, rev, clz and sel.
func (o *thumbOut) dpReg3(g uint32, cond int) bool {
	rn, rd, rm := g>>16&15, g>>8&15, g&15
	op1, op2 := g>>20&15, g>>4&15
	switch {
	case op1 < 8 && op2 == 0:
		s := ""
		if op1&1 != 0 {
			s = "s"
		}
		o.mn(thumbShifts[op1>>1], s, cond, ".w")
		o.reg(rd)
		o.sreg(rn)
		o.sreg(rm)
		return true
	case op1 < 6 && op2&0xc == 8:
		if rn == 15 {
			w := ".w"
			if op1 == 2 || op1 == 3 {
				w = ""
			}
			o.mn(thumbExt32[op1], "", cond, w)
			o.reg(rd)
		} else {
			o.mn(thumbExtA32[op1], "", cond, "")
			o.reg(rd)
			o.sreg(rn)
		}
		o.sreg(rm)
		if rot := g >> 4 & 3; rot != 0 {
			o.str(", ror ")
			o.imm(int64(rot) * 8)
		}
		return true
	case op1 >= 8 && op1 != 11 && op1 != 15 && op2 < 7:
		name := thumbPar[op1-8][op2]
		if name == "" {
			return false
		}
		o.mn(name, "", cond, "")
		o.reg(rd)
		o.sreg(rn)
		o.sreg(rm)
		return true
	case op1 == 8 && op2 >= 8 && op2 < 12: // qadd, qdadd, qsub, qdsub: rm first
		o.mn([4]string{"qadd", "qdadd", "qsub", "qdsub"}[op2-8], "", cond, "")
		o.reg(rd)
		o.sreg(rm)
		o.sreg(rn)
		return true
	case op1 == 9 && op2 >= 8 && op2 < 12:
		names := [4]string{"rev", "rev16", "rbit", "revsh"}
		w := ".w"
		if op2 == 10 {
			w = ""
		}
		o.mn(names[op2-8], "", cond, w)
		o.reg(rd)
		o.sreg(rn)
		return true
	case op1 == 10 && op2 == 8:
		o.mn("sel", "", cond, "")
		o.reg(rd)
		o.sreg(rn)
		o.sreg(rm)
		return true
	case op1 == 11 && op2 == 8:
		o.mn("clz", "", cond, "")
		o.reg(rd)
		o.sreg(rn)
		return true
	case (op1 == 12 || op1 == 13) && op2 >= 8 && op2 < 11:
		o.str("crc32")
		if op1 == 13 {
			o.str("c")
		}
		o.str([3]string{"b ", "h ", "w "}[op2-8])
		if op1 == 12 && op2 == 9 {
			rd = g >> 9 & 7 // objdump prints crc32h's destination from bits 9-11
		}
		o.reg(rd)
		o.sreg(rn)
		o.sreg(rm)
		return true
	}
	return false
}

// mul32 decodes 0xfb00-0xfbff: multiplies, multiply-accumulates, long
// multiplies and the divides.
func (o *thumbOut) mul32(g uint32, cond int) bool {
	rn, ra, rd, rm := g>>16&15, g>>12&15, g>>8&15, g&15
	op1, op2 := g>>20&15, g>>4&15
	tb := func(b uint32) string {
		if g&(1<<b) != 0 {
			return "t"
		}
		return "b"
	}
	x := func(c string) string {
		if g&0x10 != 0 {
			return c
		}
		return ""
	}
	// three writes rd, rn, rm; four adds ra.
	three := func(name, sfx string) {
		o.mn(name, sfx, cond, "")
		o.reg(rd)
		o.sreg(rn)
		o.sreg(rm)
	}
	four := func(name, sfx string) {
		three(name, sfx)
		o.sreg(ra)
	}
	long := func(name, sfx string) {
		o.mn(name, sfx, cond, "")
		o.reg(ra)
		o.sreg(rd)
		o.sreg(rn)
		o.sreg(rm)
	}
	switch op1 {
	case 0:
		switch {
		case op2 == 0 && ra == 15:
			o.mn("mul", "", cond, ".w")
			o.reg(rd)
			o.sreg(rn)
			o.sreg(rm)
		case op2 == 0:
			four("mla", "")
		case op2 == 1:
			four("mls", "")
		default:
			return false
		}
	case 1:
		if op2&0xc != 0 {
			return false
		}
		if ra == 15 {
			three("smul", tb(5)+tb(4))
		} else {
			four("smla", tb(5)+tb(4))
		}
	case 2, 3, 4:
		if op2&0xe != 0 {
			return false
		}
		names := [3][2]string{{"smuad", "smlad"}, {"smulw", "smlaw"}, {"smusd", "smlsd"}}[op1-2]
		sfx := x("x")
		if op1 == 3 {
			sfx = tb(4)
		}
		if ra == 15 {
			three(names[0], sfx)
		} else {
			four(names[1], sfx)
		}
	case 5:
		switch {
		case rd == 15 && op2 == 0:
			o.str("autg")
		case rd == 15 && op2 == 1:
			o.str("bxaut")
		case op2&0xe != 0:
			return false
		case ra == 15:
			three("smmul", x("r"))
			return true
		default:
			four("smmla", x("r"))
			return true
		}
		o.mn("", "", cond, "")
		o.reg(ra)
		o.sreg(rn)
		o.sreg(rm)
	case 6:
		switch {
		case ra == 15 && op2 == 0:
			three("pacg", "")
		case op2&0xe == 0:
			four("smmls", x("r"))
		default:
			return false
		}
	case 7:
		switch {
		case op2 != 0:
			return false
		case ra == 15:
			three("usad8", "")
		default:
			four("usada8", "")
		}
	case 8, 10, 14:
		switch {
		case op2 == 0:
			long([16]string{8: "smull", 10: "umull", 14: "umlal"}[op1], "")
		case op1 == 14 && op2 == 6:
			long("umaal", "")
		default:
			return false
		}
	case 9, 11:
		if op2 != 15 || ra != 15 {
			return false
		}
		name := "sdiv"
		if op1 == 11 {
			name = "udiv"
		}
		three(name, "")
	case 12:
		switch {
		case op2 == 0:
			long("smlal", "")
		case op2&0xc == 8:
			long("smlal", tb(5)+tb(4))
		case op2&0xe == 0xc:
			long("smlald", x("x"))
		default:
			return false
		}
	case 13:
		if op2&0xe != 0xc {
			return false
		}
		long("smlsld", x("x"))
	default:
		return false
	}
	return true
}

// vfpOp is a VFP data-processing instruction: objdump's coprocessor table
// entries for cp10/cp11, in its order. name holds the letters before the
// condition; typ what comes after it. regs gives the operands: 'y' single,
// 'z' double, each followed by the field (1 Vd, 2 Vn, 0 Vm); '#' is
// objdump's imm8, '0' the literal #0.0.
type vfpOp struct {
	val, mask uint32
	name, typ string
	regs      string
}

var vfpOps = []vfpOp{
	{0x0eb50a40, 0x0fbf0f70, "vcmp", ".f32", "y1 0"},
	{0x0eb50b40, 0x0fbf0f70, "vcmp", ".f64", "z1 0"},
	{0x0eb00a40, 0x0fbf0fd0, "vmov", ".f32", "y1y0"},
	{0x0eb00ac0, 0x0fbf0fd0, "vabs", ".f32", "y1y0"},
	{0x0eb00b40, 0x0fbf0fd0, "vmov", ".f64", "z1z0"},
	{0x0eb00bc0, 0x0fbf0fd0, "vabs", ".f64", "z1z0"},
	{0x0eb10a40, 0x0fbf0fd0, "vneg", ".f32", "y1y0"},
	{0x0eb10ac0, 0x0fbf0fd0, "vsqrt", ".f32", "y1y0"},
	{0x0eb10b40, 0x0fbf0fd0, "vneg", ".f64", "z1z0"},
	{0x0eb10bc0, 0x0fbf0fd0, "vsqrt", ".f64", "z1z0"},
	{0x0eb70ac0, 0x0fbf0fd0, "vcvt", ".f64.f32", "z1y0"},
	{0x0eb70bc0, 0x0fbf0fd0, "vcvt", ".f32.f64", "y1z0"},
	{0x0eb80a40, 0x0fbf0f50, "vcvt", ".f32.?32", "y1y0"},
	{0x0eb80b40, 0x0fbf0f50, "vcvt", ".f64.?32", "z1y0"},
	{0x0eb40a40, 0x0fbf0f50, "vcmp", ".f32", "y1y0"},
	{0x0eb40b40, 0x0fbf0f50, "vcmp", ".f64", "z1z0"},
	{0x0ebc0a40, 0x0fbe0f50, "vcvt", ".!32.f32", "y1y0"},
	{0x0ebc0b40, 0x0fbe0f50, "vcvt", ".!32.f64", "y1z0"},
	{0x0eb00a00, 0x0fb00ff0, "vmov", ".f32", "y1 #"},
	{0x0eb00b00, 0x0fb00ff0, "vmov", ".f64", "z1 #"},
	{0x0e000a00, 0x0fb00f50, "vmla", ".f32", "y1y2y0"},
	{0x0e000a40, 0x0fb00f50, "vmls", ".f32", "y1y2y0"},
	{0x0e000b00, 0x0fb00f50, "vmla", ".f64", "z1z2z0"},
	{0x0e000b40, 0x0fb00f50, "vmls", ".f64", "z1z2z0"},
	{0x0e100a00, 0x0fb00f50, "vnmls", ".f32", "y1y2y0"},
	{0x0e100a40, 0x0fb00f50, "vnmla", ".f32", "y1y2y0"},
	{0x0e100b00, 0x0fb00f50, "vnmls", ".f64", "z1z2z0"},
	{0x0e100b40, 0x0fb00f50, "vnmla", ".f64", "z1z2z0"},
	{0x0e200a00, 0x0fb00f50, "vmul", ".f32", "y1y2y0"},
	{0x0e200a40, 0x0fb00f50, "vnmul", ".f32", "y1y2y0"},
	{0x0e200b00, 0x0fb00f50, "vmul", ".f64", "z1z2z0"},
	{0x0e200b40, 0x0fb00f50, "vnmul", ".f64", "z1z2z0"},
	{0x0e300a00, 0x0fb00f50, "vadd", ".f32", "y1y2y0"},
	{0x0e300a40, 0x0fb00f50, "vsub", ".f32", "y1y2y0"},
	{0x0e300b00, 0x0fb00f50, "vadd", ".f64", "z1z2z0"},
	{0x0e300b40, 0x0fb00f50, "vsub", ".f64", "z1z2z0"},
	{0x0e800a00, 0x0fb00f50, "vdiv", ".f32", "y1y2y0"},
	{0x0e800b00, 0x0fb00f50, "vdiv", ".f64", "z1z2z0"},
	{0x0ea00a00, 0x0fb00f50, "vfma", ".f32", "y1y2y0"},
	{0x0ea00b00, 0x0fb00f50, "vfma", ".f64", "z1z2z0"},
	{0x0ea00a40, 0x0fb00f50, "vfms", ".f32", "y1y2y0"},
	{0x0ea00b40, 0x0fb00f50, "vfms", ".f64", "z1z2z0"},
	{0x0e900a40, 0x0fb00f50, "vfnma", ".f32", "y1y2y0"},
	{0x0e900b40, 0x0fb00f50, "vfnma", ".f64", "z1z2z0"},
	{0x0e900a00, 0x0fb00f50, "vfnms", ".f32", "y1y2y0"},
	{0x0e900b00, 0x0fb00f50, "vfnms", ".f64", "z1z2z0"},
}

// vreg writes a VFP register: single (Vx:bit) or double (bit:Vx), the
// field given as objdump's %y/%z codes 0 (Vm), 1 (Vd), 2 (Vn).
func (o *thumbOut) vreg(g uint32, single bool, field byte) {
	var v, b uint32
	switch field {
	case '0':
		v, b = g&15, g>>5&1
	case '1':
		v, b = g>>12&15, g>>22&1
	default:
		v, b = g>>16&15, g>>7&1
	}
	if single {
		o.str("s")
		o.udec(uint64(v<<1 | b))
	} else {
		o.str("d")
		o.udec(uint64(b<<4 | v))
	}
}

// vlist writes the register list of vldm/vstm/vpush/vpop: objdump's %B for
// doubles, %y3 for singles, %z3 for the fldmx/fstmx forms.
func (o *thumbOut) vlist(g uint32, kind byte) {
	o.str("{")
	switch kind {
	case 'B':
		reg := g>>12&15 | g>>18&16
		n := g >> 1 & 0x3f
		o.str("d")
		o.udec(uint64(reg))
		switch {
		case n == 1:
		case reg+n > 32:
			o.str("-<overflow reg d")
			o.udec(uint64(reg + n - 1))
			o.str(">")
		default:
			o.str("-d")
			o.dec(int64(reg) + int64(n) - 1)
		}
	default:
		single := kind == 'y'
		var reg uint32
		n := int64(g & 0xff)
		if single {
			reg = g>>11&0x1e | g>>22&1
			o.str("s")
		} else {
			reg = g>>12&15 | g>>18&16
			n >>= 1
			o.str("d")
		}
		o.udec(uint64(reg))
		if n--; n != 0 {
			if single {
				o.str("-s")
			} else {
				o.str("-d")
			}
			o.dec(int64(reg) + n)
		}
	}
	o.str("}")
}

// caddr writes the address of a coprocessor load or store (objdump's %A);
// scale is 4, or 2 for cp9.
func (o *thumbOut) caddr(g uint32, scale int64) {
	p, u, w := g>>24&1, g>>23&1, g>>21&1
	off := int64(g & 0xff)
	o.str("[")
	o.reg(g >> 16)
	if p != 0 || w != 0 {
		off *= scale
		if u == 0 {
			off = -off
		}
	}
	if p != 0 {
		switch {
		case off != 0:
			o.str(", ")
			o.imm(off)
			o.str("]")
			if w != 0 {
				o.str("!")
			}
		case u == 0:
			o.str(", #-0]")
			o.record(0)
		default:
			o.str("]")
		}
		return
	}
	o.str("]")
	switch {
	case w == 0:
		o.str(", {")
		if u == 0 && off == 0 {
			o.str("-")
		}
		o.dec(off)
		o.str("}")
	case off != 0:
		o.str(", ")
		o.imm(off)
	case u == 0:
		o.str(", #-0")
		o.record(0)
	}
}

// vfpSys are the VFP system registers of vmrs/vmsr, by number.
var vfpSys = [16]string{
	0: "fpsid", 1: "fpscr", 2: "fpscr_nzcvqc", 5: "mvfr2", 6: "mvfr1", 7: "mvfr0",
	8: "fpexc", 9: "fpinst", 10: "fpinst2", 14: "fpcxt_ns", 15: "fpcxt_s",
}

// vfp decodes the VFP loads, stores, moves and arithmetic, and vdup (hw1
// 0xec00-0xefff).
func (o *thumbOut) vfp(g uint32, cond int) bool {
	cp := g >> 8 & 15
	rn, rt := g>>16&15, g>>12&15
	if cp != 10 && cp != 11 {
		return false
	}
	dbl := cp == 11
	switch {
	case g&0x0e000000 == 0x0c000000 && g&0x01a00000 != 0: // load/store
		store := g&0x100000 == 0
		switch {
		case g&0x0fbf0e00 == 0x0d2d0a00 && (!dbl || g&1 == 0):
			o.mn("vpush", "", cond, "")
		case g&0x0fbf0e00 == 0x0cbd0a00 && (!dbl || g&1 == 0):
			o.mn("vpop", "", cond, "")
		case g&0x0fa00e00 == 0x0d200a00 || g&0x0f800e00 == 0x0c800a00: // db!, ia
			name := "vstm"
			if !store {
				name = "vldm"
			}
			if dbl && g&1 != 0 {
				name = "fstm"
				if !store {
					name = "fldm"
				}
			}
			sfx := "ia"
			if g&0x1000000 != 0 {
				sfx = "db"
			}
			if dbl && g&1 != 0 {
				sfx += "x"
			}
			o.mn(name, sfx, cond, "")
			o.reg(rn)
			if g&0x200000 != 0 {
				o.str("!")
			}
			o.str(", ")
			switch {
			case !dbl:
				o.vlist(g, 'y')
			case g&1 != 0:
				o.vlist(g, 'z')
			default:
				o.vlist(g, 'B')
			}
			return true
		case g&0x0f200e00 == 0x0d000a00:
			name := "vstr"
			if !store {
				name = "vldr"
			}
			o.mn(name, "", cond, "")
			o.vreg(g, !dbl, '1')
			o.str(", ")
			o.caddr(g, 4)
			return true
		default:
			return false
		}
		if dbl {
			o.vlist(g, 'B')
		} else {
			o.vlist(g, 'y')
		}
		return true
	case g&0x0fe00fd0 == 0x0c400a10 || g&0x0fe00fd0 == 0x0c400b10: // vmov, two core registers
		toCore, rt2 := g&0x100000 != 0, rn
		o.mn("vmov", "", cond, "")
		if toCore {
			o.reg(rt)
			o.sreg(rt2)
			o.str(", ")
		}
		if dbl {
			o.str("d")
			o.udec(uint64(g&15 | g>>1&16))
		} else {
			r := g&15<<1 | g>>5&1
			o.str("s")
			o.udec(uint64(r))
			o.str(", s")
			o.udec(uint64(r + 1))
		}
		if !toCore {
			o.sreg(rt)
			o.sreg(rt2)
		}
		return true
	case g&0x0f000010 == 0x0e000010:
		return o.vfpMove(g, cond)
	case g&0x0f000010 == 0x0e000000:
		for _, v := range vfpOps {
			if g&v.mask != v.val {
				continue
			}
			o.str(v.name)
			switch {
			case v.name == "vcmp" && g&0x80 != 0:
				o.str("e")
			case v.typ == ".!32.f32" || v.typ == ".!32.f64":
				if g&0x80 == 0 {
					o.str("r")
				}
			}
			if cond >= 0 {
				o.str(thumbConds[cond])
			}
			for i := 0; i < len(v.typ); i++ {
				switch c := v.typ[i]; c {
				case '?':
					o.str([2]string{"u", "s"}[g>>7&1])
				case '!':
					o.str([2]string{"u", "s"}[g>>16&1])
				default:
					o.ch(c)
				}
			}
			for i := 0; i+1 < len(v.regs); i += 2 {
				if i == 0 {
					o.str(" ")
				} else {
					o.str(", ")
				}
				switch v.regs[i] {
				case 'y':
					o.vreg(g, true, v.regs[i+1])
				case 'z':
					o.vreg(g, false, v.regs[i+1])
				default:
					if v.regs[i+1] == '0' {
						o.str("#0.0")
					} else {
						o.imm(int64(g&15 | g>>12&0xf0))
					}
				}
			}
			return true
		}
	}
	return false
}

// vfpMove decodes the VFP and NEON moves to and from core registers, vmrs,
// vmsr and vdup.
func (o *thumbOut) vfpMove(g uint32, cond int) bool {
	rt := g >> 12 & 15
	dn := g>>16&15 | g>>3&16
	scalar := func(idx uint32) {
		o.str("d")
		o.udec(uint64(dn))
		o.str("[")
		o.udec(uint64(idx))
		o.str("]")
	}
	toCore := g&0x100000 != 0
	us := [2]string{"s", "u"}[g>>23&1]
	switch {
	case g&0x0fd00f70 == 0x0e000b10 || g&0x0f500f70 == 0x0e100b10: // .32
		o.mn("vmov", "", cond, ".32")
		if toCore {
			o.reg(rt)
			o.str(", ")
			scalar(g >> 21 & 1)
		} else {
			scalar(g >> 21 & 1)
			o.sreg(rt)
		}
	case g&0x0fd00f30 == 0x0e000b30 || g&0x0f500f30 == 0x0e100b30: // .16
		idx := g>>6&1 | g>>20&2
		if toCore {
			o.mn("vmov", "", cond, "."+us+"16")
			o.reg(rt)
			o.str(", ")
			scalar(idx)
		} else {
			o.mn("vmov", "", cond, ".16")
			scalar(idx)
			o.sreg(rt)
		}
	case g&0x0fd00f10 == 0x0e400b10 || g&0x0f500f10 == 0x0e500b10: // .8
		idx := g>>5&3 | g>>19&4
		if toCore {
			o.mn("vmov", "", cond, "."+us+"8")
			o.reg(rt)
			o.str(", ")
			scalar(idx)
		} else {
			o.mn("vmov", "", cond, ".8")
			scalar(idx)
			o.sreg(rt)
		}
	case g&0x0fffffff == 0x0ef1fa10:
		o.mn("vmrs", "", cond, "")
		o.str("APSR_nzcv, fpscr")
	case g&0x0fe00fff == 0x0ee00a10:
		sys := vfpSys[g>>16&15]
		o.mn([2]string{"vmsr", "vmrs"}[g>>20&1], "", cond, "")
		if toCore {
			o.reg(rt)
			o.str(", ")
		}
		if sys != "" {
			o.str(sys)
		} else {
			o.str("<impl def 0x")
			o.hexw(uint64(g>>16&15), 1)
			o.str(">")
		}
		if !toCore {
			o.sreg(rt)
		}
	case g&0x0fe00f7f == 0x0e000a10:
		o.mn("vmov", "", cond, "")
		if toCore {
			o.reg(rt)
			o.str(", ")
			o.vreg(g, true, '2')
		} else {
			o.vreg(g, true, '2')
			o.sreg(rt)
		}
	case g&0xff900f5f == 0xee800b10: // vdup
		size := [4]string{".32", ".16", ".8", ""}[g>>21&2|g>>5&1]
		if size == "" {
			return false
		}
		o.mn("vdup", "", cond, size)
		if g&0x200000 != 0 {
			if dn&1 != 0 {
				o.str("<illegal reg q")
				o.udec(uint64(dn >> 1))
				o.str(".5>")
			} else {
				o.str("q")
				o.udec(uint64(dn >> 1))
			}
		} else {
			o.str("d")
			o.udec(uint64(dn))
		}
		o.sreg(rt)
	default:
		return false
	}
	return true
}

// thumbCoprocs are the coprocessors whose generic instructions objdump
// prints as such: the others have extension tables of their own first
// (FPA on 1, Maverick on 4-6, VFP on 9-11; in the unconditional space
// ARMv8 FP and Advanced SIMD on 8-13). XScale takes a few cp0 forms.
const (
	thumbCoprocs  = 1<<0 | 1<<2 | 1<<3 | 1<<7 | 1<<8 | 1<<12 | 1<<13 | 1<<14 | 1<<15
	thumbCoprocs2 = 0xffff &^ (1<<8 | 1<<9 | 1<<10 | 1<<11 | 1<<12 | 1<<13)
	thumbFPAPrec  = "sdep"
	thumbFPACount = "4123"
)

// coproc decodes the generic coprocessor instructions (mcr, mrc, ldc, stc,
// cdp, mcrr, mrrc and their "2" forms), which objdump tries after VFP, and
// the FPA loads and stores glibc's setjmp still has.
func (o *thumbOut) coproc(g uint32, cond int) bool {
	cp := uint64(g >> 8 & 15)
	two := g>>28 == 0xf
	if !two && g&0x0e000000 == 0x0c000000 && (cp == 1 || cp == 2) {
		return o.fpa(g, cond)
	}
	if two && thumbCoprocs2&(1<<cp) == 0 || !two && thumbCoprocs&(1<<cp) == 0 {
		return false
	}
	if g&0xfff00ff0 == 0xee200010 || g&0xfff00ff0 == 0xee280010 || g&0xfffc0ff0 == 0xee2c0010 ||
		g&0xffe00fff == 0xec400000 { // XScale mia, miaph, miaxy, mar, mra
		return false
	}
	name := ""
	switch {
	case g&0x0ff00000 == 0x0c400000 || g&0x0ff00000 == 0x0c500000:
		name = "mcrr"
		if g&0x100000 != 0 {
			name = "mrrc"
		}
		if two {
			name += "2"
		}
		o.mn(name, "", cond, "")
		o.udec(cp)
		o.str(", ")
		o.udec(uint64(g >> 4 & 15))
		o.sreg(g >> 12)
		o.sreg(g >> 16)
		o.str(", cr")
		o.udec(uint64(g & 15))
		return true
	case g&0x0f000000 == 0x0e000000:
		if g&0x10 == 0 {
			name = "cdp"
		} else if g&0x100000 != 0 {
			name = "mrc"
		} else {
			name = "mcr"
		}
		if two {
			name += "2"
		}
		o.mn(name, "", cond, "")
		o.udec(cp)
		o.str(", ")
		if name[:3] == "cdp" {
			o.udec(uint64(g >> 20 & 15))
			o.str(", cr")
			o.udec(uint64(g >> 12 & 15))
		} else {
			o.udec(uint64(g >> 21 & 7))
			o.str(", ")
			if name == "mrc" && g&0xf000 == 0xf000 {
				o.str("APSR_nzcv")
			} else {
				o.reg(g >> 12)
			}
		}
		o.str(", cr")
		o.udec(uint64(g >> 16 & 15))
		o.str(", cr")
		o.udec(uint64(g & 15))
		o.str(", {")
		o.udec(uint64(g >> 5 & 7))
		o.str("}")
		return true
	case g&0x0e000000 == 0x0c000000:
		name = "stc"
		if g&0x100000 != 0 {
			name = "ldc"
		}
		if two {
			name += "2"
		}
		l := ""
		if g&0x400000 != 0 {
			l = "l"
		}
		o.mn(name, l, cond, "")
		o.udec(cp)
		o.str(", cr")
		o.udec(uint64(g >> 12 & 15))
		o.str(", ")
		scale := int64(4)
		if cp == 9 {
			scale = 2
		}
		o.caddr(g, scale)
		return true
	}
	return false
}

// fpa decodes the FPA loads and stores: ldf/stf (cp1) and lfm/sfm (cp2).
func (o *thumbOut) fpa(g uint32, cond int) bool {
	sel := g&0x8000>>15 | g&0x400000>>21
	load := g&0x100000 != 0
	if g>>8&15 == 1 {
		o.mn([2]string{"stf", "ldf"}[g>>20&1], "", cond, "")
		o.n--
		o.ch(thumbFPAPrec[sel])
		o.str(" f")
		o.udec(uint64(g >> 12 & 7))
		o.str(", ")
	} else {
		name := "sfm"
		if load {
			name = "lfm"
		}
		o.mn(name, "", cond, "")
		o.str("f")
		o.udec(uint64(g >> 12 & 7))
		o.str(", ")
		o.ch(thumbFPACount[sel])
		o.str(", ")
	}
	o.caddr(g, 4)
	return true
}
