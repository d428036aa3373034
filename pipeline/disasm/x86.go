package disasm

import (
	"golang.org/x/arch/x86/x86asm"
)

// x86Sweep decodes x86 code linearly, in 64- or 32-bit mode: direct calls
// and jumps, calls and jumps through GOT slots, conditional branches
// (masked) and endbr64/endbr32 (a function's first instruction under CET).
// A slot is rip-relative in 64-bit code; in 32-bit code it is [ebx+X],
// ebx holding got (the PIC convention: the GOT's address, in every
// function that calls through it), or an absolute [X]. Addresses of data
// (lea, and in code at a fixed address, abs, immediates) are evRef.
func x86Sweep(b []byte, base uint64, mode int, got uint64, abs bool) []event {
	var out []event
	for o := 0; o < len(b); {
		if o+4 <= len(b) && b[o] == 0xf3 && b[o+1] == 0x0f && b[o+2] == 0x1e && (b[o+3] == 0xfa || b[o+3] == 0xfb) {
			out = append(out, event{addr: base + uint64(o), target: base + uint64(o), kind: evStart})
			o += 4
			continue
		}
		inst, err := x86asm.Decode(b[o:], mode)
		if err != nil || inst.Len == 0 {
			o++
			continue
		}
		addr := base + uint64(o)
		next := addr + uint64(inst.Len)
		e := event{addr: addr}
		if inst.PCRel > 0 {
			e.maskOff, e.maskLen = uint8(inst.PCRelOff), uint8(inst.PCRel)
		}
		switch inst.Op {
		case x86asm.CALL, x86asm.JMP:
			call := inst.Op == x86asm.CALL
			switch a := inst.Args[0].(type) {
			case x86asm.Rel:
				e.target = next + uint64(int64(a))
				e.kind = map[bool]uint8{true: evCall, false: evJump}[call]
			case x86asm.Mem:
				slot, ok := uint64(0), false
				switch {
				case a.Index != 0:
				case mode == 64 && a.Base == x86asm.RIP:
					slot, ok = next+uint64(a.Disp), true
				case mode == 32 && a.Base == x86asm.EBX && got != 0:
					slot, ok = uint64(uint32(got+uint64(a.Disp))), true
				case mode == 32 && got != 0 && a.Disp < 0 && a.Base != 0 && a.Base != x86asm.ESP && a.Base != x86asm.EBP:
					// gcc may keep the GOT's address in another register;
					// -fno-plt slots lie below it, where no object's field
					// off a pointer does.
					slot, ok = uint64(uint32(got+uint64(a.Disp))), true
				case mode == 32 && a.Base == 0 && a.Segment == 0:
					slot, ok = uint64(uint32(a.Disp)), true
				}
				if ok {
					e.target = slot
					e.kind = map[bool]uint8{true: evCallSlot, false: evJumpSlot}[call]
					// The displacement is the instruction's last 4 bytes.
					e.maskOff, e.maskLen = uint8(inst.Len-4), 4
				}
			}
		case x86asm.LEA:
			// The address of data: rip-relative, or off the GOT's address
			// in 32-bit PIC code (whichever register holds it).
			if a, ok := inst.Args[1].(x86asm.Mem); ok && a.Index == 0 && a.Segment == 0 {
				switch {
				case mode == 64 && a.Base == x86asm.RIP:
					e.target, e.kind = next+uint64(a.Disp), evRef
				case mode == 32 && got != 0 && a.Base != 0 && a.Base != x86asm.ESP && a.Base != x86asm.EBP:
					e.target, e.kind = uint64(uint32(got+uint64(a.Disp))), evRef
				}
			}
		case x86asm.MOV, x86asm.PUSH:
			// An absolute address, only in code linked at a fixed address:
			// in a PIE small numbers would look like addresses.
			src := inst.Args[0]
			if inst.Op == x86asm.MOV {
				src = inst.Args[1]
			}
			if a, ok := src.(x86asm.Imm); ok && abs && a > 0 {
				e.target, e.kind = uint64(a), evRef
			}
		}
		if e.kind == 0 && inst.PCRel > 0 {
			e.kind = evMask
		}
		if e.kind != 0 {
			out = append(out, e)
		}
		o += inst.Len
	}
	return out
}

// x86Stubs maps each PLT stub (.plt, .plt.sec, .plt.got) to the import
// whose GOT slot its jmp [rip+X] reads.
func x86Stubs(p *prog, r *region) {
	align := uint64(16)
	if r.name == ".plt.got" {
		align = 8
	}
	mode, got := 64, uint64(0)
	if p.arch == "x86" {
		mode, got = 32, p.gotBase()
	}
	for _, e := range x86Sweep(r.data, r.addr, mode, got, false) {
		if e.kind != evJumpSlot {
			continue
		}
		if n, ok := p.slots[e.target]; ok {
			stub := e.addr &^ (align - 1)
			if stub < r.addr {
				stub = r.addr
			}
			p.stubs[stub] = n
		}
	}
}

// gotBase is where a 32-bit PIC binary's ebx points: the start of
// .got.plt (_GLOBAL_OFFSET_TABLE_), or of .got when there is none; 0 for
// neither.
func (p *prog) gotBase() uint64 {
	for _, name := range []string{".got.plt", ".got"} {
		if s := p.f.Section(name); s != nil {
			return s.Addr
		}
	}
	return 0
}
