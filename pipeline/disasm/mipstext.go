package disasm

import "strconv"

// A reviewer compares these listings with what objdump shows for the same
// binary, so every choice below (aliases, number bases, which reserved bits
// make a word unknown) follows GNU objdump 2.40 with -m mips:isa32r2. Words
// objdump would decode only through an ASE (DSP, MT, MSA, EVA, XPA, paired
// single, COP2) are reported as unknown rather than guessed at.

// mipsGPR are the o32 names; objdump calls r30 s8, not fp.
var mipsGPR = [32]string{
	"zero", "at", "v0", "v1", "a0", "a1", "a2", "a3",
	"t0", "t1", "t2", "t3", "t4", "t5", "t6", "t7",
	"s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7",
	"t8", "t9", "k0", "k1", "gp", "sp", "s8", "ra",
}

// Operand layouts. Each also fixes which fields must be zero: objdump's
// opcode masks include them, and a word with such a field set is not the
// instruction (or is an ASE variant we leave out).
const (
	mfBad     uint8 = iota
	mfJump          // target
	mfBranch2       // rs,rt,target; alias: rs,target when rt is zero
	mfBranch1       // rs,target; blez and bgtz want rt zero
	mfImm           // rt,rs,simm; alias (li): rt,simm when rs is zero
	mfUimm          // rt,rs,0xuimm; alias (li): rt,0xuimm when rs is zero
	mfLui           // rt,0xuimm
	mfMem           // rt,simm(base)
	mfFMem          // $fN,simm(base)
	mfCMem          // $N,simm(base), a coprocessor 2 register
	mfHint          // 0xN,simm(base)
	mfShift         // rd,rt,0xsa
	mfShiftV        // rd,rt,rs
	mfR3            // rd,rs,rt; alias (move): rd,rs when rt is zero
	mfSub           // rd,rs,rt; alias (neg): rd,rt when rs is zero
	mfR2            // rs,rt
	mfDiv           // zero,rs,rt: objdump names the unused destination
	mfRd            // rd
	mfRs            // rs
	mfTrap          // rs,rt[,0xcode]
	mfTrapImm       // rs,simm
	mfJr
	mfJalr
	mfCode20 // [0xcode]: syscall, sdbbp
	mfBreak
	mfSync
	mfMovci
	mfClz
	mfSynci
)

type mipsOp struct {
	name, alias string
	form        uint8
}

var mipsPrimary = [64]mipsOp{
	0x02: {"j", "", mfJump}, 0x03: {"jal", "", mfJump},
	0x04: {"beq", "beqz", mfBranch2}, 0x05: {"bne", "bnez", mfBranch2},
	0x06: {"blez", "", mfBranch1}, 0x07: {"bgtz", "", mfBranch1},
	0x08: {"addi", "", mfImm}, 0x09: {"addiu", "li", mfImm},
	0x0a: {"slti", "", mfImm}, 0x0b: {"sltiu", "", mfImm},
	0x0c: {"andi", "", mfUimm}, 0x0d: {"ori", "li", mfUimm},
	0x0e: {"xori", "", mfUimm}, 0x0f: {"lui", "", mfLui},
	0x14: {"beql", "beqzl", mfBranch2}, 0x15: {"bnel", "bnezl", mfBranch2},
	0x16: {"blezl", "", mfBranch1}, 0x17: {"bgtzl", "", mfBranch1},
	0x20: {"lb", "", mfMem}, 0x21: {"lh", "", mfMem},
	0x22: {"lwl", "", mfMem}, 0x23: {"lw", "", mfMem},
	0x24: {"lbu", "", mfMem}, 0x25: {"lhu", "", mfMem},
	0x26: {"lwr", "", mfMem},
	0x28: {"sb", "", mfMem}, 0x29: {"sh", "", mfMem},
	0x2a: {"swl", "", mfMem}, 0x2b: {"sw", "", mfMem},
	0x2e: {"swr", "", mfMem}, 0x2f: {"cache", "", mfHint},
	0x30: {"ll", "", mfMem}, 0x31: {"lwc1", "", mfFMem},
	0x32: {"lwc2", "", mfCMem}, 0x33: {"pref", "", mfHint},
	0x35: {"ldc1", "", mfFMem}, 0x36: {"ldc2", "", mfCMem},
	0x38: {"sc", "", mfMem}, 0x39: {"swc1", "", mfFMem},
	0x3a: {"swc2", "", mfCMem},
	0x3d: {"sdc1", "", mfFMem}, 0x3e: {"sdc2", "", mfCMem},
}

var mipsSpecial = [64]mipsOp{
	0x00: {"sll", "", mfShift}, 0x01: {"movf", "movt", mfMovci},
	0x02: {"srl", "ror", mfShift}, 0x03: {"sra", "", mfShift},
	0x04: {"sllv", "", mfShiftV}, 0x06: {"srlv", "rorv", mfShiftV},
	0x07: {"srav", "", mfShiftV},
	0x08: {"jr", "", mfJr}, 0x09: {"jalr", "", mfJalr},
	0x0a: {"movz", "", mfR3}, 0x0b: {"movn", "", mfR3},
	0x0c: {"syscall", "", mfCode20}, 0x0d: {"break", "", mfBreak},
	0x0f: {"sync", "", mfSync},
	0x10: {"mfhi", "", mfRd}, 0x11: {"mthi", "", mfRs},
	0x12: {"mflo", "", mfRd}, 0x13: {"mtlo", "", mfRs},
	0x18: {"mult", "", mfR2}, 0x19: {"multu", "", mfR2},
	0x1a: {"div", "", mfDiv}, 0x1b: {"divu", "", mfDiv},
	0x20: {"add", "", mfR3}, 0x21: {"addu", "move", mfR3},
	0x22: {"sub", "neg", mfSub}, 0x23: {"subu", "negu", mfSub},
	0x24: {"and", "", mfR3}, 0x25: {"or", "move", mfR3},
	0x26: {"xor", "", mfR3}, 0x27: {"nor", "", mfR3},
	0x2a: {"slt", "", mfR3}, 0x2b: {"sltu", "", mfR3},
	0x30: {"tge", "", mfTrap}, 0x31: {"tgeu", "", mfTrap},
	0x32: {"tlt", "", mfTrap}, 0x33: {"tltu", "", mfTrap},
	0x34: {"teq", "", mfTrap}, 0x36: {"tne", "", mfTrap},
}

var mipsRegimm = [32]mipsOp{
	0x00: {"bltz", "", mfBranch1}, 0x01: {"bgez", "b", mfBranch1},
	0x02: {"bltzl", "", mfBranch1}, 0x03: {"bgezl", "", mfBranch1},
	0x08: {"tgei", "", mfTrapImm}, 0x09: {"tgeiu", "", mfTrapImm},
	0x0a: {"tlti", "", mfTrapImm}, 0x0b: {"tltiu", "", mfTrapImm},
	0x0c: {"teqi", "", mfTrapImm}, 0x0e: {"tnei", "", mfTrapImm},
	0x10: {"bltzal", "", mfBranch1}, 0x11: {"bgezal", "bal", mfBranch1},
	0x12: {"bltzall", "", mfBranch1}, 0x13: {"bgezall", "", mfBranch1},
	0x1f: {"synci", "", mfSynci},
}

var mipsSpecial2 = [64]mipsOp{
	0x00: {"madd", "", mfR2}, 0x01: {"maddu", "", mfR2},
	0x02: {"mul", "", mfR3},
	0x04: {"msub", "", mfR2}, 0x05: {"msubu", "", mfR2},
	0x20: {"clz", "", mfClz}, 0x21: {"clo", "", mfClz},
	0x3f: {"sdbbp", "", mfCode20},
}

// Coprocessor 1 arithmetic, by function field. fmts says which of the
// formats objdump accepts.
const (
	mfF3     uint8 = iota + 1 // fd,fs,ft
	mfF2                      // fd,fs
	mfFMovcf                  // fd,fs,$fccN
	mfFMovzn                  // fd,fs,rt
)

// Format bits, by the rs field less 0x10.
const (
	fmtS  = 1 << 0
	fmtD  = 1 << 1
	fmtW  = 1 << 4
	fmtL  = 1 << 5
	fmtSD = fmtS | fmtD
)

var mipsCOP1 = [64]struct {
	name string
	form uint8
	fmts uint8
}{
	0x00: {"add", mfF3, fmtSD}, 0x01: {"sub", mfF3, fmtSD},
	0x02: {"mul", mfF3, fmtSD}, 0x03: {"div", mfF3, fmtSD},
	0x04: {"sqrt", mfF2, fmtSD}, 0x05: {"abs", mfF2, fmtSD},
	0x06: {"mov", mfF2, fmtSD}, 0x07: {"neg", mfF2, fmtSD},
	0x08: {"round.l", mfF2, fmtSD}, 0x09: {"trunc.l", mfF2, fmtSD},
	0x0a: {"ceil.l", mfF2, fmtSD}, 0x0b: {"floor.l", mfF2, fmtSD},
	0x0c: {"round.w", mfF2, fmtSD}, 0x0d: {"trunc.w", mfF2, fmtSD},
	0x0e: {"ceil.w", mfF2, fmtSD}, 0x0f: {"floor.w", mfF2, fmtSD},
	0x11: {"mov", mfFMovcf, fmtSD},
	0x12: {"movz", mfFMovzn, fmtSD}, 0x13: {"movn", mfFMovzn, fmtSD},
	0x15: {"recip", mfF2, fmtSD}, 0x16: {"rsqrt", mfF2, fmtSD},
	0x20: {"cvt.s", mfF2, fmtD | fmtW | fmtL},
	0x21: {"cvt.d", mfF2, fmtS | fmtW | fmtL},
	0x24: {"cvt.w", mfF2, fmtSD}, 0x25: {"cvt.l", mfF2, fmtSD},
}

// mipsFmt names the formats by the rs field less 0x10.
var mipsFmt = [8]string{"s", "d", "", "", "w", "l"}

var mipsCond = [16]string{
	"f", "un", "eq", "ueq", "olt", "ult", "ole", "ule",
	"sf", "ngle", "seq", "ngl", "lt", "nge", "le", "ngt",
}

// mipsFCR are objdump's names for the FPU control registers; the rest
// print as $N.
var mipsFCR = [32]string{
	0: "c1_fir", 1: "c1_ufr", 4: "c1_unfr",
	25: "c1_fccr", 26: "c1_fexr", 28: "c1_fenr", 31: "c1_fcsr",
}

// mipsCOP1X are the indexed loads and stores and the fused multiply-adds
// (fd,fr,fs,ft; the last digit of the function field is the format).
var mipsCOP1X = [64]string{
	0x00: "lwxc1", 0x01: "ldxc1", 0x05: "luxc1",
	0x08: "swxc1", 0x09: "sdxc1", 0x0d: "suxc1", 0x0f: "prefx",
	0x20: "madd.s", 0x21: "madd.d", 0x28: "msub.s", 0x29: "msub.d",
	0x30: "nmadd.s", 0x31: "nmadd.d", 0x38: "nmsub.s", 0x39: "nmsub.d",
}

// mipsCP0 are objdump's MIPS32r2 names for coprocessor 0 registers by
// number and select; an empty name prints as $N or $N,S.
var mipsCP0 = [32][8]string{
	0:  {"c0_index", "c0_mvpcontrol", "c0_mvpconf0", "c0_mvpconf1"},
	1:  {"c0_random", "c0_vpecontrol", "c0_vpeconf0", "c0_vpeconf1", "c0_yqmask", "c0_vpeschedule", "c0_vpeschefback"},
	2:  {"c0_entrylo0", "c0_tcstatus", "c0_tcbind", "c0_tcrestart", "c0_tchalt", "c0_tccontext", "c0_tcschedule", "c0_tcschefback"},
	3:  {"c0_entrylo1"},
	4:  {"c0_context", "c0_contextconfig"},
	5:  {"c0_pagemask", "c0_pagegrain"},
	6:  {"c0_wired", "c0_srsconf0", "c0_srsconf1", "c0_srsconf2", "c0_srsconf3", "c0_srsconf4"},
	7:  {"c0_hwrena"},
	8:  {"c0_badvaddr"},
	9:  {"c0_count"},
	10: {"c0_entryhi"},
	11: {"c0_compare"},
	12: {"c0_status", "c0_intctl", "c0_srsctl", "c0_srsmap"},
	13: {"c0_cause"},
	14: {"c0_epc"},
	15: {"c0_prid", "c0_ebase"},
	16: {"c0_config", "c0_config1", "c0_config2", "c0_config3"},
	17: {"c0_lladdr"},
	18: {"c0_watchlo", "c0_watchlo,1", "c0_watchlo,2", "c0_watchlo,3", "c0_watchlo,4", "c0_watchlo,5", "c0_watchlo,6", "c0_watchlo,7"},
	19: {"c0_watchhi", "c0_watchhi,1", "c0_watchhi,2", "c0_watchhi,3", "c0_watchhi,4", "c0_watchhi,5", "c0_watchhi,6", "c0_watchhi,7"},
	20: {"c0_xcontext"},
	23: {"c0_debug", "c0_tracecontrol", "c0_tracecontrol2", "c0_usertracedata", "c0_tracebpc"},
	24: {"c0_depc"},
	25: {"c0_perfcnt", "c0_perfcnt,1", "c0_perfcnt,2", "c0_perfcnt,3", "c0_perfcnt,4", "c0_perfcnt,5", "c0_perfcnt,6", "c0_perfcnt,7"},
	26: {"c0_errctl"},
	27: {"c0_cacheerr", "c0_cacheerr,1", "c0_cacheerr,2", "c0_cacheerr,3"},
	28: {"c0_taglo", "c0_datalo", "c0_taglo1", "c0_datalo1", "c0_taglo2", "c0_datalo2", "c0_taglo3", "c0_datalo3"},
	29: {"c0_taghi", "c0_datahi", "c0_taghi1", "c0_datahi1", "c0_taghi2", "c0_datahi2", "c0_taghi3", "c0_datahi3"},
	30: {"c0_errorepc"},
	31: {"c0_desave"},
}

// mipsHWR are objdump's names for the hardware registers rdhwr reads by
// number; the rest, like the TLS pointer $29, print as $N.
var mipsHWR = [...]string{"hwr_cpunum", "hwr_synci_step", "hwr_cc", "hwr_ccres"}

// mipsCP0Ops are the COP0 function-field operations that take no operands.
var mipsCP0Ops = [64]string{
	0x01: "tlbr", 0x02: "tlbwi", 0x06: "tlbwr", 0x08: "tlbp",
	0x18: "eret", 0x1f: "deret",
}

// mipsText decodes the MIPS32 instruction w (already in the image's byte
// order, as a uint32), at address addr, into GNU objdump's syntax
// (mnemonic, a space, operands separated by commas, registers by their ABI
// names; branch and jump targets as absolute hex addresses, 0x-prefixed),
// and returns the immediate operands it holds (sign- or zero-extended as
// the instruction uses them; for lui the value shifted left 16; not
// branch/jump targets) so that a caller can list the constants a function
// uses. ok is false for a word it does not know; text is then
// ".word 0x%08x".
//
// imms are the numbers the text shows, in its order, other than registers
// and targets: shift amounts, ext/ins positions and sizes, trap and break
// codes and cache/pref hints count. lui's is sign-extended from 32 bits,
// as the CPU does, so lui then addiu sums to the 32-bit value either way.
// Addresses are MIPS32 ones: addr is taken modulo 2^32 and targets wrap.
func mipsText(w uint32, addr uint64) (text string, imms []int64, ok bool) {
	var o mipsOut
	if !o.decode(w, uint32(addr)+4) {
		var b [16]byte
		n := copy(b[:], ".word 0x")
		for s := 28; s >= 0; s -= 4 {
			b[n] = "0123456789abcdef"[w>>s&15]
			n++
		}
		return string(b[:n]), nil, false
	}
	if o.ni > 0 {
		imms = append(make([]int64, 0, o.ni), o.imms[:o.ni]...)
	}
	if o.args == 0 && o.name != "" {
		return o.name, imms, true // no copy for a bare mnemonic
	}
	return string(o.text[:o.n]), imms, true
}

// mipsOut accumulates one instruction's text on the stack, so that the
// only allocations are the results. The longest text, an ins with a
// wrapped size, is about 30 bytes.
type mipsOut struct {
	text [64]byte
	n    int
	args int
	name string // the mnemonic, when it was a single table string
	imms [4]int64
	ni   int
}

func (o *mipsOut) str(s string) { o.n += copy(o.text[o.n:], s) }

func (o *mipsOut) op(name string) { o.str(name); o.name = name }

// opf writes a mnemonic built from a base and a format suffix.
func (o *mipsOut) opf(base, fmt string) { o.str(base); o.str("."); o.str(fmt) }

// sep starts an operand: a space before the first, commas after.
func (o *mipsOut) sep() {
	c := byte(',')
	if o.args == 0 {
		c = ' '
	}
	o.args++
	if o.n < len(o.text) {
		o.text[o.n] = c
		o.n++
	}
}

func (o *mipsOut) record(v int64) {
	if o.ni < len(o.imms) {
		o.imms[o.ni] = v
		o.ni++
	}
}

func (o *mipsOut) gpr(r uint32) { o.sep(); o.str(mipsGPR[r&31]) }

// numReg writes a register shown by number: $fN, $fccN, $N.
func (o *mipsOut) numReg(prefix string, r uint32) {
	o.sep()
	o.str(prefix)
	o.n += len(strconv.AppendUint(o.text[o.n:o.n], uint64(r), 10))
}

func (o *mipsOut) fpr(r uint32) { o.numReg("$f", r) }

func (o *mipsOut) dec(v int64) {
	o.sep()
	o.n += len(strconv.AppendInt(o.text[o.n:o.n], v, 10))
	o.record(v)
}

// hex writes v as objdump does for unsigned fields and records val.
func (o *mipsOut) hex(v uint32, val int64) {
	o.sep()
	o.str("0x")
	o.n += len(strconv.AppendUint(o.text[o.n:o.n], uint64(v), 16))
	o.record(val)
}

func (o *mipsOut) target(t uint32) {
	o.sep()
	o.str("0x")
	o.n += len(strconv.AppendUint(o.text[o.n:o.n], uint64(t), 16))
}

// mem writes off(base); off is recorded as an immediate.
func (o *mipsOut) mem(off int64, base uint32) {
	o.dec(off)
	o.str("(")
	o.str(mipsGPR[base&31])
	o.str(")")
}

// decode writes w's text; pc is the address of its delay slot, which
// branch offsets and the jump region count from.
func (o *mipsOut) decode(w, pc uint32) bool {
	op := w >> 26
	rs, rt := w>>21&31, w>>16&31
	simm := int64(int16(w))
	branch := pc + uint32(simm)<<2
	switch op {
	case 0x00:
		return o.special(w)
	case 0x01:
		e := mipsRegimm[rt]
		switch e.form {
		case mfBranch1:
			if rs == 0 && e.alias != "" {
				o.op(e.alias)
			} else {
				o.op(e.name)
				o.gpr(rs)
			}
			o.target(branch)
		case mfTrapImm:
			o.op(e.name)
			o.gpr(rs)
			o.dec(simm)
		case mfSynci:
			o.op(e.name)
			o.mem(simm, rs)
		default:
			return false
		}
		return true
	case 0x10:
		return o.cop0(w)
	case 0x11:
		return o.cop1(w, pc)
	case 0x13:
		return o.cop1x(w)
	case 0x1c:
		return o.special2(w)
	case 0x1f:
		return o.special3(w)
	}
	e := mipsPrimary[op]
	switch e.form {
	case mfJump:
		o.op(e.name)
		o.target(pc&0xf0000000 | (w&0x3ffffff)<<2)
	case mfBranch2:
		switch {
		case op == 0x04 && rs == 0 && rt == 0:
			o.op("b")
		case rt == 0:
			o.op(e.alias)
			o.gpr(rs)
		default:
			o.op(e.name)
			o.gpr(rs)
			o.gpr(rt)
		}
		o.target(branch)
	case mfBranch1:
		if rt != 0 {
			return false
		}
		o.op(e.name)
		o.gpr(rs)
		o.target(branch)
	case mfImm:
		if rs == 0 && e.alias != "" {
			o.op(e.alias)
			o.gpr(rt)
		} else {
			o.op(e.name)
			o.gpr(rt)
			o.gpr(rs)
		}
		o.dec(simm)
	case mfUimm:
		if rs == 0 && e.alias != "" {
			o.op(e.alias)
			o.gpr(rt)
		} else {
			o.op(e.name)
			o.gpr(rt)
			o.gpr(rs)
		}
		o.hex(w&0xffff, int64(w&0xffff))
	case mfLui:
		if rs != 0 {
			return false
		}
		o.op(e.name)
		o.gpr(rt)
		o.hex(w&0xffff, int64(int32(w<<16)))
	case mfMem:
		o.op(e.name)
		o.gpr(rt)
		o.mem(simm, rs)
	case mfFMem:
		o.op(e.name)
		o.fpr(rt)
		o.mem(simm, rs)
	case mfCMem:
		o.op(e.name)
		o.numReg("$", rt)
		o.mem(simm, rs)
	case mfHint:
		o.op(e.name)
		o.hex(rt, int64(rt))
		o.mem(simm, rs)
	default:
		return false
	}
	return true
}

func (o *mipsOut) special(w uint32) bool {
	rs, rt, rd, sa := w>>21&31, w>>16&31, w>>11&31, w>>6&31
	e := mipsSpecial[w&63]
	switch e.form {
	case mfShift:
		// The no-operand forms of sll zero,zero,N are hints objdump names.
		switch w {
		case 0:
			o.op("nop")
			return true
		case 1 << 6:
			o.op("ssnop")
			return true
		case 3 << 6:
			o.op("ehb")
			return true
		case 5 << 6:
			o.op("pause")
			return true
		}
		name := e.name
		if rs == 1 && e.alias != "" {
			name = e.alias // the rotate reuses srl's rs field
		} else if rs != 0 {
			return false
		}
		o.op(name)
		o.gpr(rd)
		o.gpr(rt)
		o.hex(sa, int64(sa))
	case mfShiftV:
		name := e.name
		if sa == 1 && e.alias != "" {
			name = e.alias
		} else if sa != 0 {
			return false
		}
		o.op(name)
		o.gpr(rd)
		o.gpr(rt)
		o.gpr(rs)
	case mfR3:
		if sa != 0 {
			return false
		}
		if rt == 0 && e.alias != "" {
			o.op(e.alias)
			o.gpr(rd)
			o.gpr(rs)
			return true
		}
		o.op(e.name)
		o.gpr(rd)
		o.gpr(rs)
		o.gpr(rt)
	case mfSub:
		if sa != 0 {
			return false
		}
		if rs == 0 {
			o.op(e.alias)
			o.gpr(rd)
			o.gpr(rt)
			return true
		}
		o.op(e.name)
		o.gpr(rd)
		o.gpr(rs)
		o.gpr(rt)
	case mfR2, mfDiv:
		// A nonzero rd is a DSP accumulator: an ASE form.
		if rd != 0 || sa != 0 {
			return false
		}
		o.op(e.name)
		if e.form == mfDiv {
			o.gpr(0)
		}
		o.gpr(rs)
		o.gpr(rt)
	case mfRd:
		if rs != 0 || rt != 0 || sa != 0 {
			return false
		}
		o.op(e.name)
		o.gpr(rd)
	case mfRs:
		if rt != 0 || rd != 0 || sa != 0 {
			return false
		}
		o.op(e.name)
		o.gpr(rs)
	case mfTrap:
		o.op(e.name)
		o.gpr(rs)
		o.gpr(rt)
		if code := w >> 6 & 0x3ff; code != 0 {
			o.hex(code, int64(code))
		}
	case mfJr:
		name := e.name
		switch {
		case w>>6&0x7fff == 0:
		case w>>6&0x7fff == 0x10:
			name = "jr.hb"
		default:
			return false
		}
		o.op(name)
		o.gpr(rs)
	case mfJalr:
		name := e.name
		switch {
		case rt != 0:
			return false
		case sa == 0x10:
			name = "jalr.hb"
		case sa != 0:
			return false
		}
		o.op(name)
		if rd != 31 {
			o.gpr(rd)
		}
		o.gpr(rs)
	case mfCode20:
		o.op(e.name)
		if code := w >> 6 & 0xfffff; code != 0 {
			o.hex(code, int64(code))
		}
	case mfBreak:
		o.op(e.name)
		c1, c2 := w>>16&0x3ff, w>>6&0x3ff
		if c1 != 0 || c2 != 0 {
			o.hex(c1, int64(c1))
		}
		if c2 != 0 {
			o.hex(c2, int64(c2))
		}
	case mfSync:
		if w>>11 != 0 {
			return false
		}
		switch sa {
		case 0:
			o.op("sync")
		case 0x04:
			o.op("sync_wmb")
		case 0x10:
			o.op("sync_mb")
		case 0x11:
			o.op("sync_acquire")
		case 0x12:
			o.op("sync_release")
		case 0x13:
			o.op("sync_rmb")
		default:
			o.op("sync")
			o.hex(sa, int64(sa))
		}
	case mfMovci:
		if sa != 0 || rt&2 != 0 {
			return false
		}
		name := e.name
		if rt&1 != 0 {
			name = e.alias
		}
		o.op(name)
		o.gpr(rd)
		o.gpr(rs)
		o.numReg("$fcc", rt>>2)
	default:
		return false
	}
	return true
}

func (o *mipsOut) special2(w uint32) bool {
	rs, rt, rd, sa := w>>21&31, w>>16&31, w>>11&31, w>>6&31
	e := mipsSpecial2[w&63]
	switch e.form {
	case mfR2:
		if rd != 0 || sa != 0 {
			return false
		}
		o.op(e.name)
		o.gpr(rs)
		o.gpr(rt)
	case mfR3:
		if sa != 0 {
			return false
		}
		o.op(e.name)
		o.gpr(rd)
		o.gpr(rs)
		o.gpr(rt)
	case mfClz:
		// The ISA wants the destination in both rd and rt; objdump
		// settles for one of them being zero and shows the other.
		if sa != 0 || rt != rd && rt != 0 && rd != 0 {
			return false
		}
		o.op(e.name)
		o.gpr(rd | rt)
		o.gpr(rs)
	case mfCode20:
		o.op(e.name)
		if code := w >> 6 & 0xfffff; code != 0 {
			o.hex(code, int64(code))
		}
	default:
		return false
	}
	return true
}

func (o *mipsOut) special3(w uint32) bool {
	rs, rt, rd, sa := w>>21&31, w>>16&31, w>>11&31, w>>6&31
	switch w & 63 {
	case 0x00: // ext rt,rs,pos,size: rd holds size-1
		o.op("ext")
		o.gpr(rt)
		o.gpr(rs)
		o.hex(sa, int64(sa))
		o.hex(rd+1, int64(rd+1))
	case 0x04: // ins rt,rs,pos,size: rd holds pos+size-1
		// objdump shows an impossible size as it computes it, wrapped.
		size := rd + 1 - sa
		o.op("ins")
		o.gpr(rt)
		o.gpr(rs)
		o.hex(sa, int64(sa))
		o.hex(size, int64(int32(size)))
	case 0x20:
		if rs != 0 {
			return false
		}
		switch sa {
		case 0x02:
			o.op("wsbh")
		case 0x10:
			o.op("seb")
		case 0x18:
			o.op("seh")
		default:
			return false
		}
		o.gpr(rd)
		o.gpr(rt)
	case 0x3b:
		if rs != 0 || sa != 0 {
			return false
		}
		o.op("rdhwr")
		o.gpr(rt)
		if rd < uint32(len(mipsHWR)) {
			o.sep()
			o.str(mipsHWR[rd])
		} else {
			o.numReg("$", rd)
		}
	default:
		return false
	}
	return true
}

func (o *mipsOut) cop0(w uint32) bool {
	rs, rt, rd := w>>21&31, w>>16&31, w>>11&31
	switch {
	case rs == 0x00 || rs == 0x04: // mfc0, mtc0
		if w>>3&0xff != 0 {
			return false
		}
		if rs == 0 {
			o.op("mfc0")
		} else {
			o.op("mtc0")
		}
		o.gpr(rt)
		sel := w & 7
		if name := mipsCP0[rd][sel]; name != "" {
			o.sep()
			o.str(name)
		} else {
			o.numReg("$", rd)
			if sel != 0 {
				o.str(",")
				o.n += len(strconv.AppendUint(o.text[o.n:o.n], uint64(sel), 10))
			}
		}
	case rs == 0x0a || rs == 0x0e: // rdpgpr, wrpgpr
		if w&0x7ff != 0 {
			return false
		}
		if rs == 0x0a {
			o.op("rdpgpr")
		} else {
			o.op("wrpgpr")
		}
		o.gpr(rd)
		o.gpr(rt)
	case rs == 0x0b: // di, ei; the MT ASE shares the encoding
		if rd != 12 || w&0x7df != 0 {
			return false
		}
		if w&0x20 == 0 {
			o.op("di")
		} else {
			o.op("ei")
		}
		if rt != 0 {
			o.gpr(rt)
		}
	case rs >= 0x10:
		if w&63 == 0x20 { // wait [0xcode]
			o.op("wait")
			if code := w >> 6 & 0x7ffff; code != 0 {
				o.hex(code, int64(code))
			}
			return true
		}
		name := mipsCP0Ops[w&63]
		if name == "" || w>>6&0x7ffff != 0 {
			return false
		}
		o.op(name)
	default:
		return false
	}
	return true
}

func (o *mipsOut) cop1(w, pc uint32) bool {
	rs, rt, fs, fd := w>>21&31, w>>16&31, w>>11&31, w>>6&31
	switch rs {
	case 0x00, 0x03, 0x04, 0x07: // mfc1, mfhc1, mtc1, mthc1
		if w&0x7ff != 0 {
			return false
		}
		o.op([8]string{"mfc1", "", "", "mfhc1", "mtc1", "", "", "mthc1"}[rs])
		o.gpr(rt)
		o.fpr(fs)
		return true
	case 0x02, 0x06: // cfc1, ctc1
		if w&0x7ff != 0 {
			return false
		}
		if rs == 0x02 {
			o.op("cfc1")
		} else {
			o.op("ctc1")
		}
		o.gpr(rt)
		if name := mipsFCR[fs]; name != "" {
			o.sep()
			o.str(name)
		} else {
			o.numReg("$", fs)
		}
		return true
	case 0x08: // bc1f, bc1t, bc1fl, bc1tl [$fccN,]target
		o.op([4]string{"bc1f", "bc1t", "bc1fl", "bc1tl"}[rt&3])
		if cc := rt >> 2; cc != 0 {
			o.numReg("$fcc", cc)
		}
		o.target(pc + uint32(int64(int16(w)))<<2)
		return true
	case 0x10, 0x11, 0x14, 0x15:
	default:
		return false
	}
	fmt := mipsFmt[rs-0x10]
	fn := w & 63
	if fn >= 0x30 { // c.cond.fmt [$fccN,]fs,ft
		if rs > 0x11 || fd&3 != 0 {
			return false
		}
		o.str("c.")
		o.opf(mipsCond[fn&15], fmt)
		if cc := fd >> 2; cc != 0 {
			o.numReg("$fcc", cc)
		}
		o.fpr(fs)
		o.fpr(rt)
		return true
	}
	e := mipsCOP1[fn]
	if e.fmts&(1<<(rs-0x10)) == 0 {
		return false
	}
	switch e.form {
	case mfF3:
		o.opf(e.name, fmt)
		o.fpr(fd)
		o.fpr(fs)
		o.fpr(rt)
	case mfF2:
		if rt != 0 {
			return false
		}
		o.opf(e.name, fmt)
		o.fpr(fd)
		o.fpr(fs)
	case mfFMovcf:
		if rt&2 != 0 {
			return false
		}
		if rt&1 == 0 {
			o.opf("movf", fmt)
		} else {
			o.opf("movt", fmt)
		}
		o.fpr(fd)
		o.fpr(fs)
		o.numReg("$fcc", rt>>2)
	case mfFMovzn:
		o.opf(e.name, fmt)
		o.fpr(fd)
		o.fpr(fs)
		o.gpr(rt)
	default:
		return false
	}
	return true
}

func (o *mipsOut) cop1x(w uint32) bool {
	base, index, fs, fd := w>>21&31, w>>16&31, w>>11&31, w>>6&31
	fn := w & 63
	name := mipsCOP1X[fn]
	switch {
	case name == "":
		return false
	case fn >= 0x20: // fd,fr,fs,ft with fr in the rs field
		o.op(name)
		o.fpr(fd)
		o.fpr(base)
		o.fpr(fs)
		o.fpr(index)
		return true
	case fn == 0x0f: // prefx hint,index(base): the hint is in the fs field
		if fd != 0 {
			return false
		}
		o.op(name)
		o.hex(fs, int64(fs))
	case fn < 0x08: // loads: fd,index(base)
		if fs != 0 {
			return false
		}
		o.op(name)
		o.fpr(fd)
	default: // stores: fs,index(base)
		if fd != 0 {
			return false
		}
		o.op(name)
		o.fpr(fs)
	}
	o.gpr(index)
	o.str("(")
	o.str(mipsGPR[base])
	o.str(")")
	return true
}
