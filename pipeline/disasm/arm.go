package disasm

import (
	"debug/elf"
	"encoding/binary"
	"slices"
	"sort"
	"strings"
)

// arm64Sweep finds AArch64 bl (calls), b (tail jumps) and conditional
// branches (masked) in fixed 32-bit words.
func arm64Sweep(b []byte, base uint64) []event {
	var out []event
	// page and pageAt: the page an adrp put in a register, and where;
	// an add to it within refReach bytes builds an address (evRef).
	var page [32]uint64
	pageAt := [32]int{}
	for i := range pageAt {
		pageAt[i] = -refReach - 1
	}
	for o := 0; o+4 <= len(b); o += 4 {
		w := binary.LittleEndian.Uint32(b[o:])
		addr := base + uint64(o)
		switch {
		case w&0x7c000000 == 0x14000000: // b / bl imm26
			off := int64(int32(w<<6) >> 4)
			k := uint8(evJump)
			if w&0x80000000 != 0 {
				k = evCall
			}
			out = append(out, event{addr: addr, target: addr + uint64(off), kind: k, maskLen: 3})
		case w&0xff000010 == 0x54000000, w&0x7e000000 == 0x34000000, w&0x7e000000 == 0x36000000: // b.cond, cbz/cbnz, tbz/tbnz
			out = append(out, event{addr: addr, kind: evMask, maskLen: 3})
		case w&0x9f000000 == 0x90000000: // adrp
			imm := int64(int32((w>>5&0x7ffff)<<2|w>>29&3)<<11) << 1
			page[w&31], pageAt[w&31] = addr&^0xfff+uint64(imm), o
			out = append(out, event{addr: addr, kind: evMask, maskLen: 4})
		case w&0x9f000000 == 0x10000000: // adr
			imm := int64(int32((w>>5&0x7ffff)<<2|w>>29&3) << 11 >> 11)
			out = append(out, event{addr: addr, target: addr + uint64(imm), kind: evRef, maskLen: 4})
		case w&0xffc00000 == 0x91000000 && o-pageAt[w>>5&31] <= refReach: // add xd, xn, #imm12 after adrp xn
			out = append(out, event{addr: addr, target: page[w>>5&31] + uint64(w>>10&0xfff), kind: evRef})
		}
	}
	return out
}

// arm64Stubs reads the PLT's adrp x16, page; ldr x17, [x16, #off] pairs.
func arm64Stubs(p *prog, r *region) {
	for o := 0; o+8 <= len(r.data); o += 4 {
		w := binary.LittleEndian.Uint32(r.data[o:])
		n := binary.LittleEndian.Uint32(r.data[o+4:])
		if w&0x9f00001f != 0x90000010 || n&0xffc003ff != 0xf9400211 {
			continue
		}
		addr := r.addr + uint64(o)
		imm := int64(int32((w>>5&0x7ffff)<<2|w>>29&3)<<11) << 1 // immhi:immlo << 12, sign-extended
		page := addr&^0xfff + uint64(imm)
		slot := page + uint64(n>>10&0xfff)*8
		if name, ok := p.slots[slot]; ok {
			p.stubs[addr] = name
		}
	}
}

// refReach is how far apart, in bytes, the two instructions that build
// an address may be (adrp and add; a literal load and its add pc).
const refReach = 64

// armImm is an ARM data-processing immediate: imm8 rotated right by 2*rot.
func armImm(w uint32) uint32 {
	v, rot := w&0xff, (w>>8&0xf)*2
	return v>>rot | v<<((32-rot)&31)
}

// armStubs reads the ARM-mode PLT stubs: add ip, pc, #a; add ip, ip, #b;
// ldr pc, [ip, #c]! (the slot is stub+8+a+b+c). A Thumb entry (bx pc;
// nop) before a stub is mapped too.
func armStubs(p *prog, r *region) {
	bo := p.bo
	for o := 0; o+12 <= len(r.data); o += 4 {
		w1, w2, w3 := bo.Uint32(r.data[o:]), bo.Uint32(r.data[o+4:]), bo.Uint32(r.data[o+8:])
		if w1&0xfffff000 != 0xe28fc000 || w2&0xfffff000 != 0xe28cc000 || w3&0xfffff000 != 0xe5bcf000 {
			continue
		}
		addr := r.addr + uint64(o)
		slot := uint64(uint32(addr) + 8 + armImm(w1) + armImm(w2) + w3&0xfff)
		name, ok := p.slots[slot]
		if !ok {
			continue
		}
		p.stubs[addr] = name
		if o >= 4 && bo.Uint16(r.data[o-4:]) == 0x4778 { // bx pc
			p.stubs[addr-4] = name
		}
	}
}

// armSweep finds ARM-mode bl, blx imm, b (tail jumps) and conditional
// branches.
func armSweep(b []byte, base uint64) []event {
	var out []event
	var lit literals
	lit.init()
	for o := 0; o+4 <= len(b); o += 4 {
		w := binary.LittleEndian.Uint32(b[o:])
		addr := base + uint64(o)
		off := int64(int32(w<<8) >> 6)
		switch {
		case lit.pool[addr]:
		case w&0x0f7f0000 == 0x051f0000: // ldr rt, [pc, #±imm12]
			at := addr + 8 - uint64(w&0xfff)
			if w>>23&1 == 1 {
				at = addr + 8 + uint64(w&0xfff)
			}
			if v, ok := lit.load(b, base, at, int(w>>12&15), o); ok {
				out = append(out, event{addr: addr, target: v, kind: evRef})
			}
		case w&0x0fff0ff0 == 0x008f0000: // add rd, pc, rm: PIC, rm holding an offset from here
			if v, ok := lit.get(int(w&15), o); ok {
				out = append(out, event{addr: addr, target: uint64(uint32(v + addr + 8)), kind: evRef})
			}
		case w>>25 == 0x7d: // blx imm (to Thumb)
			t := uint64(int64(addr) + 8 + off + int64(w>>23&2))
			out = append(out, event{addr: addr, target: t, kind: evCall, maskLen: 3})
		case w>>28 == 0xf:
		case w>>24&0xf == 0xb: // bl
			out = append(out, event{addr: addr, target: uint64(int64(addr) + 8 + off), kind: evCall, maskLen: 3})
		case w>>24&0xf == 0xa: // b
			k := uint8(evMask)
			if w>>28 == 0xe {
				k = evJump
			}
			out = append(out, event{addr: addr, target: uint64(int64(addr) + 8 + off), kind: k, maskLen: 3})
		}
	}
	return out
}

// thumbBranch decodes a Thumb-2 32-bit branch with link or unconditional
// branch (the halfwords h1, h2 at addr): BL, BLX (to ARM) and B.W (T4).
// ok is false for anything else.
func thumbBranch(h1, h2 uint16, addr uint64) (target uint64, kind uint8, ok bool) {
	if h1&0xf800 != 0xf000 || h2&0xc000 != 0xc000 && h2&0xd000 != 0x9000 {
		return 0, 0, false
	}
	s := uint32(h1>>10) & 1
	j1, j2 := uint32(h2>>13)&1, uint32(h2>>11)&1
	i1, i2 := ^(j1^s)&1, ^(j2^s)&1
	imm := s<<24 | i1<<23 | i2<<22 | uint32(h1&0x3ff)<<12 | uint32(h2&0x7ff)<<1
	off := int64(int32(imm<<7) >> 7)
	pc := int64(addr) + 4
	switch {
	case h2&0xd000 == 0xd000: // BL
		return uint64(pc+off) | 1, evCall, true
	case h2&0xd000 == 0xc000: // BLX: to ARM, from Align(PC, 4)
		if h2&1 != 0 {
			return 0, 0, false
		}
		return uint64(pc&^3 + off), evCall, true
	default: // B.W
		return uint64(pc+off) | 1, evJump, true
	}
}

// thumbSweep walks Thumb-2 code halfword by halfword: BL, BLX, B.W and
// the conditional branches (masked).
func thumbSweep(b []byte, base uint64) []event {
	var out []event
	var lit literals
	lit.init()
	armEnd := 0 // the end of a run of ARM-mode words (armRun), stepped over
	for o := 0; o+2 <= len(b); {
		h1 := binary.LittleEndian.Uint16(b[o:])
		addr := base + uint64(o)
		if lit.pool[addr] {
			o += 4
			continue
		}
		if o >= armEnd && o%4 == 0 {
			armEnd = o + armRun(b[o:])
		}
		if o < armEnd {
			o += 2
			continue
		}
		if t, n := thumbVeneer(b[o:], addr); n > 0 {
			out = append(out, event{addr: addr, target: t, kind: evARM})
			o += n
			continue
		}
		if h1>>11 < 0x1d { // 16-bit instruction
			switch {
			case h1&0xf800 == 0x4800: // ldr rt, [pc, #imm8*4]
				if v, ok := lit.load(b, base, (addr+4)&^3+uint64(h1&0xff)<<2, int(h1>>8&7), o); ok {
					out = append(out, event{addr: addr, target: v, kind: evRef})
				}
			case h1&0xff78 == 0x4478: // add rdn, pc
				if v, ok := lit.get(int(h1>>4&8|h1&7), o); ok {
					out = append(out, event{addr: addr, target: uint64(uint32(v + addr + 4)), kind: evRef})
				}
			}
			if h1&0xf800 == 0xe000 { // B (T2): a tail jump when it leaves the function
				off := int64(int16(h1<<5) >> 4)
				out = append(out, event{addr: addr, target: uint64(int64(addr) + 4 + off), kind: evJump, maskLen: 1})
			} else if h1&0xf000 == 0xd000 && h1&0x0e00 != 0x0e00 || h1&0xf500 == 0xb100 {
				out = append(out, event{addr: addr, kind: evMask, maskLen: 1})
			}
			o += 2
			continue
		}
		if o+4 > len(b) {
			break
		}
		h2 := binary.LittleEndian.Uint16(b[o+2:])
		if h1&0xff7f == 0xf85f { // ldr.w rt, [pc, #±imm12]
			at := (addr+4)&^3 - uint64(h2&0xfff)
			if h1&0x80 != 0 {
				at = (addr+4)&^3 + uint64(h2&0xfff)
			}
			if v, ok := lit.load(b, base, at, int(h2>>12), o); ok {
				out = append(out, event{addr: addr, target: v, kind: evRef})
			}
		}
		if t, k, ok := thumbBranch(h1, h2, addr); ok {
			out = append(out, event{addr: addr, target: t &^ 1, kind: k, maskLen: 4})
			if k == evCall && t&1 == 0 {
				// BLX: what it calls is ARM code (or the PLT, which is).
				// Events are one to an address: this one is at the
				// instruction's second halfword.
				out = append(out, event{addr: addr + 2, target: t, kind: evARM})
			}
		} else if h1&0xf800 == 0xf000 && h2&0xd000 == 0x8000 { // B<c>.W
			out = append(out, event{addr: addr, kind: evMask, maskLen: 4})
		}
		o += 4
	}
	return out
}

// literals tracks the words that literal-pool loads put in registers: an
// absolute address in code linked at a fixed address, or in PIC code an
// offset that an add rd, pc within refReach bytes turns into one.
type literals struct {
	val [16]uint64
	at  [16]int
	// pool holds the addresses of the words loaded: data, not code, so
	// the sweep steps over them rather than taking one for a branch.
	pool map[uint64]bool
}

// maxPool bounds the pool words remembered at once.
const maxPool = 4096

func (l *literals) init() {
	for i := range l.at {
		l.at[i] = -refReach - 1
	}
	l.pool = map[uint64]bool{}
}

// load reads the pool word at address at (in b, which starts at base) into
// register rt at offset o.
func (l *literals) load(b []byte, base, at uint64, rt, o int) (uint64, bool) {
	if at < base || at-base+4 > uint64(len(b)) || rt > 15 {
		return 0, false
	}
	v := uint64(binary.LittleEndian.Uint32(b[at-base:]))
	l.val[rt], l.at[rt] = v, o
	if len(l.pool) >= maxPool {
		// The sweep is past the words behind it; those ahead are within
		// a load's reach (4 KiB), so few are left.
		for a := range l.pool {
			if a < base+uint64(o) {
				delete(l.pool, a)
			}
		}
	}
	l.pool[at] = true
	return v, true
}

// get is the word register r was loaded with, if within refReach of o.
func (l *literals) get(r, o int) (uint64, bool) {
	if r > 15 || o-l.at[r] > refReach {
		return 0, false
	}
	return l.val[r], true
}

// thumbVeneer recognizes the linker's Thumb-to-ARM veneer at the start of
// b, at addr, which a Thumb call or tail jump to an ARM-mode function goes
// through: bx pc; nop; then in ARM state either ldr ip, [pc]; add pc, ip,
// pc; .word offset (PIC) or ldr pc, [pc, #-4]; .word target. It returns
// the ARM function's address and the veneer's length, or 0 for none.
func thumbVeneer(b []byte, addr uint64) (uint64, int) {
	if len(b) < 12 || addr%4 != 0 {
		return 0, 0
	}
	le := binary.LittleEndian
	if h1, h2 := le.Uint16(b), le.Uint16(b[2:]); h1 != 0x4778 || h2 != 0x46c0 && h2 != 0xe7fd {
		return 0, 0
	}
	switch w1 := le.Uint32(b[4:]); {
	case w1 == 0xe51ff004: // ldr pc, [pc, #-4]
		return uint64(le.Uint32(b[8:])), 12
	case w1 == 0xe59fc000 && len(b) >= 16 && le.Uint32(b[8:]) == 0xe08cf00f: // ldr ip, [pc]; add pc, ip, pc
		return uint64(uint32(int64(addr) + 16 + int64(int32(le.Uint32(b[12:]))))), 16
	}
	return 0, 0
}

// maxPointerBytes bounds the data armPointers reads.
const maxPointerBytes = 16 << 20

// codePointers are the functions of a Thumb binary that its data points
// to: the words of its allocated data sections (a table of handlers,
// .dynamic's DT_INIT, .init_array) whose value is an address in its Thumb
// code. An even one is ARM-mode code where a run of ARM-mode words begins
// (armRun); an odd one, a Thumb function whose first instruction pushes
// lr (push, or push.w). Handlers reached through such a table alone are
// in no call: without these, an ARM-mode one would be swept as Thumb, and
// the sweep of an ARM-mode function would run on into the Thumb function
// after it.
func (p *prog) codePointers() (arm, thumb []uint64) {
	if p.arch != "arm" {
		return nil, nil
	}
	left := uint64(maxPointerBytes)
	for _, s := range p.f.Sections {
		if s.Flags&elf.SHF_ALLOC == 0 || s.Flags&elf.SHF_EXECINSTR != 0 || s.Type == elf.SHT_NOBITS || s.Size < 4 || s.Size > left {
			continue
		}
		left -= s.Size
		b, err := s.Data()
		if err != nil {
			continue
		}
		for i := 0; i+4 <= len(b); i += 4 {
			v := uint64(p.bo.Uint32(b[i:]))
			a := v &^ 1
			if v&3 == 2 {
				continue
			}
			r := p.regionOf(a)
			if r == nil || !r.thumb || p.isPLT(a) {
				continue
			}
			code := r.data[a-r.addr:]
			switch {
			case v&1 == 0 && armRun(code) > 0:
				arm = append(arm, a)
			case v&1 == 1 && thumbPushLR(code, p.bo):
				thumb = append(thumb, a)
			}
		}
	}
	// Sorted and compacted only now: a set of every word seen would cost
	// as much as the data it read.
	slices.Sort(arm)
	slices.Sort(thumb)
	return slices.Compact(arm), slices.Compact(thumb)
}

// thumbPushLR reports whether b starts with a Thumb push of lr: push
// {…, lr} (0xb5xx) or push.w {…, lr} (0xe92d, then bit 14).
func thumbPushLR(b []byte, bo binary.ByteOrder) bool {
	if len(b) < 2 {
		return false
	}
	h := bo.Uint16(b)
	return h&0xff00 == 0xb500 || h == 0xe92d && len(b) >= 4 && bo.Uint16(b[2:])&0x4000 != 0
}

// armFunctions finds the ARM-mode functions of a Thumb binary: those a
// BLX or a veneer enters, those the data points to (ptrs, from
// codePointers, as thumbPtrs are its Thumb ones), and symbols of an even
// address in Thumb code.
// Swept as Thumb, their words read as branches to anywhere; each is swept
// again as ARM, up to the next function that something outside it
// names, and what its Thumb sweep made up (starts named by events within
// it alone) is dropped. It returns the ARM functions' starts.
func (p *prog) armFunctions(starts map[uint64]string, sized map[uint64]uint64, ptrs, thumbPtrs []uint64) map[uint64]bool {
	if p.arch != "arm" {
		return nil
	}
	arm := map[uint64]bool{}
	for _, a := range ptrs {
		arm[a] = true
	}
	named := map[uint64][]uint64{} // start -> the addresses of the events naming it
	for _, a := range thumbPtrs {
		named[a] = []uint64{0} // named by the data: from outside any function
	}
	for _, r := range p.regions {
		if !r.thumb {
			continue
		}
		for _, e := range r.events {
			if e.kind == evARM && r.contains(e.target) && !p.isPLT(e.target) {
				arm[e.target] = true
			}
			if e.kind == evCall || e.kind == evJump || e.kind == evARM || e.kind == evStart {
				if len(named[e.target]) < 16 {
					named[e.target] = append(named[e.target], e.addr)
				}
			}
		}
	}
	if syms, err := p.f.Symbols(); err == nil {
		for _, s := range syms {
			if elf.ST_TYPE(s.Info) == elf.STT_FUNC && s.Value&1 == 0 && s.Section != elf.SHN_UNDEF {
				if r := p.regionOf(s.Value); r != nil && r.thumb {
					arm[s.Value] = true
				}
			}
		}
	}
	if len(arm) == 0 {
		return nil
	}
	for a := range arm {
		if _, ok := starts[a]; !ok {
			delete(arm, a)
		}
	}
	addrs := make([]uint64, 0, len(starts))
	for a := range starts {
		addrs = append(addrs, a)
	}
	slices.Sort(addrs)
	for a := range arm {
		r := p.regionOf(a)
		end := r.addr + uint64(len(r.data))
		i, _ := slices.BinarySearch(addrs, a)
		for _, s := range addrs[i+1:] {
			if s >= end {
				break
			}
			outside := false
			for _, at := range named[s] {
				outside = outside || at < a || at >= s
			}
			if outside || !strings.HasPrefix(starts[s], "sub_") {
				end = s
				break
			}
			delete(starts, s) // named from inside the ARM code alone
		}
		if sz := sized[a]; sz > 0 && sz < end-a {
			end = a + sz
		}
		lo := sort.Search(len(r.events), func(i int) bool { return r.events[i].addr >= a })
		hi := sort.Search(len(r.events), func(i int) bool { return r.events[i].addr >= end })
		swept := armSweep(r.data[a-r.addr:end-r.addr], a)
		r.events = slices.Concat(r.events[:lo:lo], swept, r.events[hi:])
	}
	return arm
}

// minARMRun is how many ARM-mode words in a row armRun takes for ARM code.
const minARMRun = 4

// armRun is the length in bytes of the run of ARM-mode words that starts
// b, or 0 when it is shorter than minARMRun words. An ARM word of the
// always condition (0xe in its top nibble, the upper halfword in memory)
// reads in Thumb as an unconditional branch every four bytes, which Thumb
// code never is; crt's ARM-mode helpers in a Thumb binary are such a run,
// and swept as Thumb they jump into the functions after them.
func armRun(b []byte) int {
	n := 0
	for n+4 <= len(b) && binary.LittleEndian.Uint32(b[n:])>>28 == 0xe {
		n += 4
	}
	if n < 4*minARMRun {
		return 0
	}
	return n
}
