package disasm

import (
	"debug/elf"
	"encoding/binary"
)

// MIPS dynamic tags debug/elf knows by number only.
const (
	dtMIPSLocalGotno = elf.DynTag(0x7000000a)
	dtMIPSSymtabno   = elf.DynTag(0x70000011)
	dtMIPSGotsym     = elf.DynTag(0x70000013)
)

// mips register numbers.
const (
	regT7 = 15
	regT8 = 24
	regT9 = 25
	regGP = 28
)

func dynOne(f *elf.File, tag elf.DynTag) (uint64, bool) {
	v, err := f.DynValue(tag)
	if err != nil || len(v) == 0 {
		return 0, false
	}
	return v[0], true
}

// readMIPSGOT maps the global GOT entries (from DT_MIPS_LOCAL_GOTNO on)
// to the .dynsym symbols from DT_MIPS_GOTSYM on, and keeps the GOT's bytes
// for the local entries; _gp is the GOT's address plus 0x7ff0.
func (p *prog) readMIPSGOT(size int64) {
	got, ok := dynOne(p.f, elf.DT_PLTGOT)
	if !ok {
		if s := p.f.Section(".got"); s != nil {
			got, ok = s.Addr, true
		}
	}
	if !ok {
		return
	}
	p.gotAddr, p.gp = got, got+0x7ff0
	for _, s := range p.f.Sections {
		if s.Type == elf.SHT_PROGBITS && s.Flags&elf.SHF_COMPRESSED == 0 && s.Addr <= got && got-s.Addr < s.Size && s.Size <= maxTable &&
			s.Offset <= uint64(size) && s.Size <= uint64(size)-s.Offset {
			if b, err := s.Data(); err == nil {
				p.gotData = b[got-s.Addr:]
			}
			break
		}
	}
	local, ok1 := dynOne(p.f, dtMIPSLocalGotno)
	gotsym, ok2 := dynOne(p.f, dtMIPSGotsym)
	symtabno, ok3 := dynOne(p.f, dtMIPSSymtabno)
	if !ok1 || !ok2 || !ok3 || local > maxTable || gotsym > symtabno || symtabno > uint64(len(p.dynsyms))+1 {
		return
	}
	for i := gotsym; i < symtabno; i++ {
		slot := got + 4*(local+i-gotsym)
		if name := p.dynName(i); name != "" {
			p.slots[slot] = name
		}
	}
}

// gotWord is the GOT word at slot (a local entry's address), or false.
func (p *prog) gotWord(slot uint64) (uint64, bool) {
	if slot < p.gotAddr || slot-p.gotAddr+4 > uint64(len(p.gotData)) {
		return 0, false
	}
	return uint64(p.bo.Uint32(p.gotData[slot-p.gotAddr:])), true
}

// mipsStubs reads .MIPS.stubs (lw $t9, ($gp); move $t7, $ra; jalr $t9;
// li $t8, SYMINDEX) and PLT entries (lui $t7, %hi(slot); lw $t9,
// %lo(slot)($t7)).
func (p *prog) mipsStubs(r *region) {
	bo := p.bo
	for o := 0; o+8 <= len(r.data); o += 4 {
		w, n := bo.Uint32(r.data[o:]), bo.Uint32(r.data[o+4:])
		addr := r.addr + uint64(o)
		switch {
		case w>>26 == 0x23 && w>>21&31 == regGP && w>>16&31 == regT9 && o+16 <= len(r.data):
			li := bo.Uint32(r.data[o+12:])
			if (li>>26 == 0x09 || li>>26 == 0x0d) && li>>21&31 == 0 && li>>16&31 == regT8 {
				if name := p.dynName(uint64(li & 0xffff)); name != "" {
					p.stubs[addr] = name
				}
			}
		case w>>26 == 0x0f && w>>16&31 == regT7 && n>>26 == 0x23 && n>>21&31 == regT7 && n>>16&31 == regT9:
			slot := uint64(uint32(w<<16) + uint32(int32(int16(n))))
			if name, ok := p.slots[slot]; ok {
				p.stubs[addr] = name
			}
		}
	}
}

// mipsSweep decodes MIPS32 code: jal and bal, j, jalr/jr $t9 after $t9
// was loaded from the GOT (lw $t9, off($gp), optionally followed by
// addiu $t9, $t9, lo for a local function) or built by lui/addiu, the
// conditional branches (masked), and lui $gp (a PIC function's first
// instruction).
func mipsSweep(b []byte, base uint64, bo binary.ByteOrder, p *prog) []event {
	var out []event
	// The imm16 field's bytes.
	immOff := uint8(0)
	if bo == binary.ByteOrder(binary.BigEndian) {
		immOff = 2
	}
	const (
		t9None = iota
		t9Slot
		t9Hi
		t9Abs
	)
	state, val, age := t9None, uint64(0), 0
	// regSlot: the GOT slot a register was loaded from (a call target
	// kept in a saved register across a loop), or 0.
	var regSlot [32]uint64
	// hi and hiAt: what a lui put in a register, and where.
	var hi [32]uint64
	var hiAt [32]int
	for i := range hiAt {
		hiAt[i] = -refReach - 1
	}
	// arriving: $t9 loaded from a GOT slot in the delay slot of a branch
	// to this address (a loop calling the same import).
	arriving := map[uint64]uint64{}
	for o := 0; p != nil && o+8 <= len(b); o += 4 {
		w, n := bo.Uint32(b[o:]), bo.Uint32(b[o+4:])
		op := w >> 26
		if (op == 1 || op >= 4 && op <= 7) && n>>26 == 0x23 && n>>21&31 == regGP && n>>16&31 == regT9 {
			t := base + uint64(o) + 4 + uint64(int64(int16(w)))<<2
			arriving[t] = uint64(uint32(p.gp + uint64(int64(int16(n)))))
		}
	}
	for o := 0; o+4 <= len(b); o += 4 {
		w := bo.Uint32(b[o:])
		addr := base + uint64(o)
		op, rs, rt := w>>26, w>>21&31, w>>16&31
		imm := uint64(int64(int16(w)))
		if age++; age > 24 {
			state = t9None
		}
		if slot, ok := arriving[addr]; ok && state == t9None {
			state, val, age = t9Slot, slot, 0
		}
		switch {
		case op == 3 || op == 2: // jal, j
			t := (addr+4)&0xf0000000 | uint64(w&0x3ffffff)<<2
			k := uint8(evCall)
			if op == 2 {
				k = evJump
			}
			out = append(out, event{addr: addr, target: t, kind: k, maskOff: immOff / 2, maskLen: 3})
		case op == 1 && rs == 0 && rt == 0x11: // bal
			out = append(out, event{addr: addr, target: addr + 4 + imm<<2, kind: evCall, maskOff: immOff, maskLen: 2})
		case op == 1 || op >= 4 && op <= 7 || op >= 0x14 && op <= 0x17: // branches
			out = append(out, event{addr: addr, kind: evMask, maskOff: immOff, maskLen: 2})
			if op == 4 && rs == 0 && rt == 0 { // b: what follows is reached otherwise
				state = t9None
			}
		case op == 0x23 && rs == regGP: // lw x, off($gp)
			out = append(out, event{addr: addr, kind: evMask, maskOff: immOff, maskLen: 2})
			if p != nil {
				regSlot[rt] = uint64(uint32(p.gp + imm))
				if rt == regT9 {
					state, val, age = t9Slot, regSlot[rt], 0
				}
			}
		case op == 0 && w>>11&31 == regT9 && rt == 0 && (w&0x3f == 0x21 || w&0x3f == 0x25): // move $t9, rs
			if regSlot[rs] != 0 {
				state, val, age = t9Slot, regSlot[rs], 0
			} else {
				state = t9None
			}
		case op == 0x0f && rt == regT9: // lui $t9
			state, val, age = t9Hi, uint64(uint32(w<<16)), 0
		case op == 0x0f && rt == regGP:
			out = append(out, event{addr: addr, target: addr, kind: evStart})
		case op == 0x09 && rs == regT9 && rt == regT9: // addiu $t9, $t9, lo
			switch state {
			case t9Hi:
				state, val = t9Abs, uint64(uint32(val+imm))
			case t9Slot:
				if _, global := p.slots[val]; !global {
					if v, ok := p.gotWord(val); ok {
						state, val = t9Abs, uint64(uint32(v+imm))
					}
				}
			}
		case op == 0 && rs == regT9 && (w&0x3f == 9 || w&0x3f == 8): // jalr/jr $t9
			call := w&0x3f == 9
			switch state {
			case t9Slot:
				k := uint8(evCallSlot)
				if !call {
					k = evJumpSlot
				}
				out = append(out, event{addr: addr, target: val, kind: k})
			case t9Abs:
				k := uint8(evCall)
				if !call {
					k = evJump
				}
				out = append(out, event{addr: addr, target: val, kind: k})
			}
			// The callee clobbers $t9.
			state = t9None
		case rt == regT9 && (op >= 0x08 && op <= 0x0f || op >= 0x20 && op <= 0x26), op == 0 && w>>11&31 == regT9:
			// Anything else writing $t9 ends what was known of it.
			state = t9None
		case op == 0x0f: // lui rt, hi
			hi[rt], hiAt[rt] = uint64(uint32(w<<16)), o
		case op == 0x09 && p != nil: // addiu rt, rs, lo: a local GOT page or a lui's half, and its low half
			if _, global := p.slots[regSlot[rs]]; regSlot[rs] != 0 && !global {
				if v, ok := p.gotWord(regSlot[rs]); ok {
					out = append(out, event{addr: addr, target: uint64(uint32(v + imm)), kind: evRef})
				}
			} else if o-hiAt[rs] <= refReach {
				out = append(out, event{addr: addr, target: uint64(uint32(hi[rs] + imm)), kind: evRef})
			}
		}
		// What else writes a register ends its slot.
		switch {
		case op == 0x23 && rs == regGP:
		case op >= 0x08 && op <= 0x0f || op >= 0x20 && op <= 0x26:
			regSlot[rt] = 0
		case op == 0:
			regSlot[w>>11&31] = 0
		}
	}
	return out
}
