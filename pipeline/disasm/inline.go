package disasm

import (
	"maps"
	"regexp"
	"strconv"
	"strings"
)

// InlineCompares are the strings that insts compare memory with through
// immediates rather than a call: GCC inlines memcmp, strncmp and strcmp
// with a short literal on x86-64 and AArch64 (`movabs $K,%rax; cmp
// %rax,(%rdi)`; `ldr x2, [x0]; mov x1, #K; movk ...; cmp x2, x1`), so the
// literal lies in the code, not in read-only data. The pieces compared at
// offsets from one base register are laid side by side; each run of at
// least four printable bytes from the lowest offset is one string, in the
// order its first piece is compared. ARM and MIPS call memcmp instead,
// and their literals are in Strings.
func InlineCompares(arch string, insts []Inst) []string {
	var c inlineCmp
	switch arch {
	case "x86_64", "x86":
		c.x86(insts)
	case "aarch64":
		c.arm64(insts)
	}
	return c.strings()
}

// piece is bytes compared with memory at off from the register base.
type piece struct {
	base string
	off  int64
	b    []byte
}

type inlineCmp struct {
	pieces []piece
}

func (c *inlineCmp) add(base string, off, v int64, size int) {
	if size <= 0 || size > 8 {
		return
	}
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(uint64(v) >> (8 * i))
	}
	c.pieces = append(c.pieces, piece{base, off, b})
}

// maxLandings bounds the branch targets whose registers are kept.
const maxLandings = 256

// maxInlineOff bounds the offsets laid out: an inlined compare covers a
// literal of a few dozen bytes at most.
const maxInlineOff = 256

// strings lays out the pieces of each base register. A piece whose
// bytes disagree with those already laid at its offsets starts a new
// layout: two compares of one pointer with different literals.
func (c *inlineCmp) strings() []string {
	var out []string
	type layout struct {
		base  string
		bytes map[int64]byte
	}
	var open []*layout
	flush := func(l *layout) {
		lo := int64(maxInlineOff)
		for o := range l.bytes {
			lo = min(lo, o)
		}
		var s []byte
		for o := lo; ; o++ {
			b, ok := l.bytes[o]
			if !ok || b == 0 {
				break
			}
			if b < 0x20 || b > 0x7e {
				return
			}
			s = append(s, b)
		}
		if len(s) >= 4 {
			out = append(out, string(s))
		}
	}
	for _, p := range c.pieces {
		if p.off < 0 || p.off >= maxInlineOff {
			continue
		}
		var l *layout
		for _, o := range open {
			if o.base == p.base {
				l = o
			}
		}
		if l != nil {
			for i, b := range p.b {
				if old, ok := l.bytes[p.off+int64(i)]; ok && old != b {
					flush(l)
					l.bytes = map[int64]byte{}
					break
				}
			}
		} else {
			l = &layout{base: p.base, bytes: map[int64]byte{}}
			open = append(open, l)
		}
		for i, b := range p.b {
			l.bytes[p.off+int64(i)] = b
		}
	}
	for _, l := range open {
		flush(l)
	}
	return out
}

var (
	// AT&T operands: $imm, %reg, and disp(%base).
	x86Imm = regexp.MustCompile(`^\$(-?0x[0-9a-f]+|-?\d+)$`)
	x86Mem = regexp.MustCompile(`^(-?0x[0-9a-f]+|-?\d+)?\((%[a-z0-9]+)\)$`)
)

// x86Sizes are the operand sizes a compare's suffix gives.
var x86Sizes = map[byte]int{'b': 1, 'w': 2, 'l': 4, 'q': 8}

func parseInt(s string) (int64, bool) {
	v, err := strconv.ParseInt(s, 0, 64)
	if err != nil {
		u, err := strconv.ParseUint(s, 0, 64)
		return int64(u), err == nil
	}
	return v, true
}

// x86 finds `cmp $K,disp(%base)` and a register loaded with `mov(abs)
// $K,%reg` then compared with, or xored into from, memory.
func (c *inlineCmp) x86(insts []Inst) {
	held := map[string]int64{} // register -> the constant it was loaded with
	for _, in := range insts {
		op, args := splitInst(in.Text)
		if len(args) != 2 {
			continue
		}
		src, dst := args[0], args[1]
		switch {
		case op == "mov" || op == "movabs" || op == "movq" || op == "movl":
			if m := x86Imm.FindStringSubmatch(src); m != nil && strings.HasPrefix(dst, "%") {
				if v, ok := parseInt(m[1]); ok {
					held[dst] = v
					continue
				}
			}
			delete(held, dst)
		case strings.HasPrefix(op, "cmp") || strings.HasPrefix(op, "xor") || strings.HasPrefix(op, "sub"):
			if m := x86Imm.FindStringSubmatch(src); m != nil {
				if mem := x86Mem.FindStringSubmatch(dst); mem != nil {
					size, ok := x86Sizes[op[len(op)-1]]
					if v, vok := parseInt(m[1]); ok && vok {
						off, _ := parseInt(mem[1])
						c.add(mem[2], off, v, size)
					}
				}
				continue
			}
			// cmp %reg,mem or xor mem,%reg with reg holding a constant.
			reg, memArg := src, dst
			if strings.HasPrefix(dst, "%") {
				reg, memArg = dst, src
			}
			if v, ok := held[reg]; ok {
				if mem := x86Mem.FindStringSubmatch(memArg); mem != nil {
					off, _ := parseInt(mem[1])
					c.add(mem[2], off, v, x86RegSize(reg))
				}
			}
			if !strings.HasPrefix(op, "cmp") && strings.HasPrefix(dst, "%") {
				delete(held, dst) // xor and sub leave another value
			}
		default:
			if strings.HasPrefix(dst, "%") {
				delete(held, dst)
			}
		}
	}
}

// x86RegSize is the width of a general register by its AT&T name.
func x86RegSize(r string) int {
	r = strings.TrimPrefix(r, "%")
	switch {
	case strings.HasPrefix(r, "r") && !strings.HasSuffix(r, "d") && !strings.HasSuffix(r, "w") && !strings.HasSuffix(r, "b"):
		return 8
	case strings.HasPrefix(r, "e"), strings.HasSuffix(r, "d"):
		return 4
	}
	return 2
}

var (
	a64Mem = regexp.MustCompile(`^\[(x\d+|sp)(?:, ?#(-?0x[0-9a-f]+|-?\d+))?\]$`)
	a64Imm = regexp.MustCompile(`^#(-?0x[0-9a-f]+|-?\d+)$`)
)

// a64Reg names the register of an AArch64 operand, w or x.
func a64Reg(s string) (string, int, bool) {
	if len(s) < 2 || (s[0] != 'x' && s[0] != 'w') {
		return "", 0, false
	}
	if _, err := strconv.Atoi(s[1:]); err != nil {
		return "", 0, false
	}
	if s[0] == 'x' {
		return s[1:], 8, true
	}
	return s[1:], 4, true
}

// arm64 follows registers loaded from memory (ldr, ldur, ldrh, ldrb) and
// registers built from immediates (mov, movk), and takes a cmp of the
// one with the other, or with an immediate, as a piece.
func (c *inlineCmp) arm64(insts []Inst) {
	type loaded struct {
		base string
		off  int64
		size int
	}
	mem := map[string]loaded{}
	held := map[string]int64{}
	// alias holds a register set to another plus an offset (add xD, xS,
	// #n), so that loads through either lay out one literal.
	type ptr struct {
		base string
		off  int64
	}
	alias := map[string]ptr{}
	resolve := func(r string) ptr {
		if p, ok := alias[r]; ok {
			return p
		}
		return ptr{r, 0}
	}
	// An inlined compare goes on where its b.eq lands, often further on
	// than code that reuses the registers: the registers as the branch
	// leaves them are taken up again there.
	type regs struct {
		mem   map[string]loaded
		held  map[string]int64
		alias map[string]ptr
	}
	landing := map[uint64]regs{}
	for _, in := range insts {
		if r, ok := landing[in.Addr]; ok {
			mem, held, alias = r.mem, r.held, r.alias
		}
		op, args := splitInst(in.Text)
		if op == "b.eq" && len(args) == 1 {
			if t, ok := parseInt(args[0]); ok && uint64(t) > in.Addr && len(landing) < maxLandings {
				landing[uint64(t)] = regs{maps.Clone(mem), maps.Clone(held), maps.Clone(alias)}
			}
			continue
		}
		// "[x0, #8]" was split at its comma.
		if n := len(args); n >= 3 && strings.HasPrefix(args[n-2], "[") && strings.HasSuffix(args[n-1], "]") {
			args = append(args[:n-2], args[n-2]+", "+args[n-1])
		}
		if len(args) < 2 {
			continue
		}
		rd, _, rdOK := a64Reg(args[0])
		switch op {
		case "ldr", "ldur", "ldrh", "ldurh", "ldrb", "ldurb":
			m := a64Mem.FindStringSubmatch(args[1])
			_, w, ok := a64Reg(args[0])
			if m == nil || !ok {
				break
			}
			size := w
			switch op {
			case "ldrh", "ldurh":
				size = 2
			case "ldrb", "ldurb":
				size = 1
			}
			off := int64(0)
			if m[2] != "" {
				off, _ = parseInt(m[2])
			}
			b := resolve(strings.TrimPrefix(m[1], "x"))
			mem[rd] = loaded{b.base, b.off + off, size}
			delete(held, rd)
			delete(alias, rd)
			continue
		case "add":
			if len(args) == 3 && rdOK {
				rs, _, ok := a64Reg(args[1])
				m := a64Imm.FindStringSubmatch(args[2])
				if v, vok := parseInt(strings.TrimPrefix(args[2], "#")); ok && m != nil && vok {
					b := resolve(rs)
					delete(mem, rd)
					delete(held, rd)
					alias[rd] = ptr{b.base, b.off + v}
					continue
				}
			}
		case "mov", "movz":
			if m := a64Imm.FindStringSubmatch(args[1]); m != nil && rdOK {
				if v, ok := parseInt(m[1]); ok {
					held[rd] = v
					delete(mem, rd)
					continue
				}
			}
		case "movk":
			if m := a64Imm.FindStringSubmatch(args[1]); m != nil && rdOK {
				shift := int64(0)
				if len(args) == 3 {
					if s, ok := strings.CutPrefix(args[2], "lsl #"); ok {
						shift, _ = parseInt(s)
					}
				}
				if v, ok := parseInt(m[1]); ok && shift < 64 {
					if h, ok := held[rd]; ok {
						held[rd] = h&^(0xffff<<shift) | v<<shift
						continue
					}
				}
			}
		case "cmp":
			a, _, aok := a64Reg(args[0])
			if !aok {
				break
			}
			if m := a64Imm.FindStringSubmatch(args[1]); m != nil {
				if l, ok := mem[a]; ok {
					if v, ok := parseInt(m[1]); ok {
						c.add(l.base, l.off, v, l.size)
					}
				}
				continue
			}
			b, _, bok := a64Reg(args[1])
			if !bok {
				break
			}
			if l, ok := mem[a]; ok {
				if v, ok := held[b]; ok {
					c.add(l.base, l.off, v, l.size)
				}
			} else if l, ok := mem[b]; ok {
				if v, ok := held[a]; ok {
					c.add(l.base, l.off, v, l.size)
				}
			}
			continue
		}
		if rdOK {
			delete(mem, rd)
			delete(held, rd)
			delete(alias, rd)
		}
	}
}
