package disasm

import (
	"bufio"
	"bytes"
	"cmp"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/fwvet/fwvet/pipeline/fixture"
)

// thumbObjdump is the armhf objdump, or the test is skipped.
func thumbObjdump(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("arm-linux-gnueabihf-objdump")
	if err != nil {
		t.Skipf("arm-linux-gnueabihf-objdump is not installed: %v", err)
	}
	return p
}

var (
	// thumbBranchOp is a mnemonic whose last operand is a target, which
	// objdump prints as bare hex when no symbol is near.
	thumbBranchOp = regexp.MustCompile(`^(b|bl|blx|cbz|cbnz)(eq|ne|cs|cc|mi|pl|vs|vc|hi|ls|ge|lt|gt|le|al)?(\.n|\.w)?$`)
	thumbBareHex  = regexp.MustCompile(`^[0-9a-f]+$`)
)

// thumbNorm turns a line of objdump into thumbText's form: targets as
// 0x addresses, comments dropped, one space between fields.
func thumbNorm(s string) string {
	s = objdumpTarget.ReplaceAllString(s, "0x$1")
	if i := strings.Index(s, "\t@"); i >= 0 {
		s = s[:i]
	}
	if i := strings.Index(s, "\t;"); i >= 0 {
		s = s[:i]
	}
	f := strings.Fields(s)
	if len(f) >= 2 && thumbBranchOp.MatchString(f[0]) && thumbBareHex.MatchString(f[len(f)-1]) {
		f[len(f)-1] = "0x" + f[len(f)-1]
	}
	return strings.Join(f, " ")
}

// thumbLine is one line of objdump's listing.
type thumbLine struct {
	addr uint64
	text string // normalized; "" for data and what objdump cannot decode
}

// thumbListing runs objdump -d with args and returns its lines in address
// order.
func thumbListing(t *testing.T, tool string, args ...string) []thumbLine {
	t.Helper()
	out, err := exec.Command(tool, append([]string{"-d", "--no-show-raw-insn"}, args...)...).Output()
	if err != nil {
		t.Fatalf("%s %v: %v", tool, args, err)
	}
	var lines []thumbLine
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		addr, text, ok := strings.Cut(sc.Text(), ":\t")
		if !ok {
			continue
		}
		a, err := strconv.ParseUint(strings.TrimSpace(addr), 16, 64)
		if err != nil {
			continue
		}
		text = thumbNorm(text)
		if text == "" || text[0] == '.' || strings.HasPrefix(text, "undefined") || strings.Contains(text, "<UNDEFINED>") {
			text = "" // data (.word, .short), or no instruction
		}
		lines = append(lines, thumbLine{a, text})
	}
	return lines
}

// thumbRegions are the Thumb parts of a section by its mapping symbols
// ($t starts one, $a or $d ends it), or all of it when the file has
// none (then objdump must be told -M force-thumb).
func thumbRegions(f *elf.File, sec *elf.Section) (regions [][2]uint64, mapped bool) {
	syms, _ := f.Symbols()
	type mark struct {
		addr  uint64
		thumb bool
	}
	var marks []mark
	for _, s := range syms {
		if int(s.Section) >= len(f.Sections) || f.Sections[s.Section] != sec {
			continue
		}
		kind, _, _ := strings.Cut(s.Name, ".")
		switch kind {
		case "$t":
			marks = append(marks, mark{s.Value, true})
		case "$a", "$d":
			marks = append(marks, mark{s.Value, false})
		}
	}
	end := sec.Addr + sec.Size
	if len(marks) == 0 {
		return [][2]uint64{{sec.Addr, end}}, false
	}
	slices.SortStableFunc(marks, func(a, b mark) int { return cmp.Compare(a.addr, b.addr) })
	for i, m := range marks {
		if !m.thumb {
			continue
		}
		stop := end
		for _, n := range marks[i+1:] {
			if n.addr > m.addr {
				stop = n.addr
				break
			}
		}
		regions = append(regions, [2]uint64{m.addr, stop})
	}
	return regions, true
}

// TestThumbTextObjdump walks .text of binaries built by Debian's armhf
// cross compiler with thumbTextIT and compares each instruction with
// objdump's line for its address. Where the file keeps its mapping
// symbols only the Thumb regions are walked; a stripped file is walked
// whole as Thumb, literal pools and all, as objdump -M force-thumb does.
func TestThumbTextObjdump(t *testing.T) {
	tool := thumbObjdump(t)
	root := filepath.Join(fixture.Root(t), "testdata", "build")
	var paths []string
	for _, name := range []string{
		"fw/calls/armhf-base", "fw/calls/armhf-plant", "fw/calls/armhf-magic", "fw/calls/armhf-feature",
		"fw/calls/armhf-shifted", "fw/binaries/armhf-blob", "fw/binaries/armhf-ec", "fw/binaries/armhf-ec-feature",
		"fw/binaries/armhf-plain",
	} {
		paths = append(paths, filepath.Join(root, name))
	}
	// The cross toolchain's libraries, when installed, add the VFP code of
	// libm and the C++ of libstdc++; stripped, they are walked whole.
	if !testing.Short() {
		for _, l := range []string{"/usr/arm-linux-gnueabihf/lib/libm.so.6", "/usr/arm-linux-gnueabihf/lib/libc.so.6", "/usr/arm-linux-gnueabihf/lib/libstdc++.so.6"} {
			if _, err := os.Stat(l); err == nil {
				paths = append(paths, l)
			}
		}
	}
	for _, path := range paths {
		name := strings.TrimPrefix(path, root+"/")
		t.Run(strings.ReplaceAll(strings.TrimPrefix(name, "/"), "/", "_"), func(t *testing.T) {
			f, err := elf.Open(path)
			if err != nil {
				t.Skipf("%s: %v (run scripts/mkfixtures)", name, err)
			}
			defer f.Close()
			sec := f.Section(".text")
			if sec == nil || f.Machine != elf.EM_ARM {
				t.Fatalf("%s: no ARM .text", name)
			}
			b, err := sec.Data()
			if err != nil {
				t.Fatal(err)
			}
			regions, mapped := thumbRegions(f, sec)
			args := []string{"-j", ".text", path}
			if !mapped {
				args = append([]string{"-M", "force-thumb"}, args...)
			}
			lines := thumbListing(t, tool, args...)
			at := map[uint64]int{}
			for i, l := range lines {
				at[l.addr] = i
			}
			compared, agreed, unknown := 0, 0, 0
			var bad []string
			for _, r := range regions {
				var it thumbIT
				for a := r[0]; a+2 <= r[1]; {
					o := int(a - sec.Addr)
					got, size, imms, ok := thumbTextIT(b[o:min(len(b), int(r[1]-sec.Addr))], a, &it)
					if size <= 0 {
						break
					}
					if !slices.Equal(imms, thumbImms(got)) {
						t.Errorf("%#x %q: immediates %v", a, got, imms)
					}
					if i, found := at[a]; found && lines[i].text != "" {
						osize := size
						if i+1 < len(lines) {
							osize = int(lines[i+1].addr - a)
						}
						if osize == size {
							compared++
							if got == lines[i].text {
								agreed++
							} else {
								if !ok {
									unknown++
								}
								if len(bad) < 20 {
									bad = append(bad, fmt.Sprintf("%#x %x: got %q, objdump %q", a, b[o:o+size], got, lines[i].text))
								}
							}
						}
					}
					a += uint64(size)
				}
			}
			for _, s := range bad {
				t.Logf("disagreement %s", s)
			}
			pct := 100 * float64(agreed) / float64(max(compared, 1))
			t.Logf("%s: %d instructions compared, %d agreed (%.2f%%); of the rest %d unknown to thumbText", name, compared, agreed, pct, unknown)
			if compared == 0 || pct < 98 {
				t.Errorf("%s: %d of %d instructions agree with objdump (%.2f%%), want 98%%", name, agreed, compared, pct)
			}
		})
	}
}

// TestThumbTextRandom feeds objdump random Thumb code and checks every
// instruction thumbText claims to know: what it accepts must be exactly
// objdump's text. Half of the instructions are 32-bit, and a quarter of
// those have pc for Rn, a quarter all ones in their second halfword's
// top four bits (Ra, Rt), a quarter in bits 8-11 (Rd, the load/store
// offset form), so that the special cases are common; IT blocks arise on
// their own.
func TestThumbTextRandom(t *testing.T) {
	if testing.Short() {
		t.Skip("runs objdump on 128k instructions")
	}
	tool := thumbObjdump(t)
	r := rand.New(rand.NewSource(1))
	const base = 0x10000
	var code []byte
	for range 1 << 17 {
		hw := uint16(r.Uint32())
		if r.Intn(2) == 0 { // a 32-bit encoding
			hw |= 0xe800
			if hw&0xf800 == 0xe800 && r.Intn(2) == 0 {
				hw |= 0x1000
			}
		}
		code = append(code, byte(hw), byte(hw>>8))
		if hw>>11 >= 0x1d {
			hw2 := uint16(r.Uint32())
			switch r.Intn(4) {
			case 0:
				hw2 |= 0xf000
			case 1:
				hw2 |= 0x0f00
			}
			if r.Intn(4) == 0 {
				code[len(code)-2] |= 0xf // rn = pc
			}
			code = append(code, byte(hw2), byte(hw2>>8))
		}
	}
	path := filepath.Join(t.TempDir(), "code.bin")
	if err := os.WriteFile(path, code, 0o644); err != nil {
		t.Fatal(err)
	}
	lines := thumbListing(t, tool, "-D", "-b", "binary", "-m", "arm", "-EL", "-M", "force-thumb", fmt.Sprintf("--adjust-vma=%#x", base), path)
	want := map[uint64]string{}
	for _, l := range lines {
		want[l.addr] = l.text
	}
	known, bad := 0, 0
	var it thumbIT
	for o := 0; o+2 <= len(code); {
		addr := uint64(base + o)
		got, size, imms, ok := thumbTextIT(code[o:], addr, &it)
		if !slices.Equal(imms, thumbImms(got)) {
			t.Errorf("%#x %q: immediates %v", addr, got, imms)
		}
		if ok {
			known++
			if exp := want[addr]; got != exp {
				if bad++; bad <= 400 {
					t.Errorf("%#x %x: got %q, objdump %q", addr, code[o:o+size], got, exp)
				}
			}
		}
		o += size
	}
	t.Logf("%d of %d random instructions decoded, %d differ from objdump", known, len(lines), bad)
}

// thumbHex turns "f240 32ff" (halfwords as objdump shows them) into code.
func thumbHex(s string) []byte {
	var b []byte
	for _, h := range strings.Fields(s) {
		v, err := strconv.ParseUint(h, 16, 16)
		if err != nil {
			panic(h)
		}
		b = append(b, byte(v), byte(v>>8))
	}
	return b
}

// thumbImms reads the #-numbers of a text, as thumbText reports them.
func thumbImms(text string) []int64 {
	var out []int64
	for i := 0; i < len(text); i++ {
		if text[i] != '#' {
			continue
		}
		j := i + 1
		if j < len(text) && text[j] == '-' {
			j++
		}
		k := j
		for k < len(text) && text[k] >= '0' && text[k] <= '9' {
			k++
		}
		if k == j || k < len(text) && text[k] == '.' { // #0.0
			continue
		}
		v, err := strconv.ParseInt(text[i+1:k], 10, 64)
		if err != nil {
			continue
		}
		out = append(out, v)
	}
	return out
}

// The cases' texts are objdump's (-b binary -m arm -M force-thumb at
// each address), comments left out.
var thumbCases = []struct {
	code string
	addr uint64
	text string
	imms []int64
}{
	{"b570", 0x10400, "push {r4, r5, r6, lr}", nil},
	{"bd70", 0x10402, "pop {r4, r5, r6, pc}", nil},
	{"4a09", 0x10404, "ldr r2, [pc, #36]", []int64{36}},
	{"f240 32ff", 0x10406, "movw r2, #1023", []int64{1023}},
	{"f2c1 2334", 0x1040a, "movt r3, #4660", []int64{4660}},
	{"f501 007f", 0x1040e, "add.w r0, r1, #16711680", []int64{0xff0000}},
	{"eb01 01a3", 0x10412, "add.w r1, r1, r3, asr #2", []int64{2}},
	{"f5ad 6d82", 0x10416, "sub.w sp, sp, #1040", []int64{1040}},
	{"f000 f919", 0x1041a, "bl 0x10650", nil},
	{"f7ff ef3e", 0x1041e, "blx 0x1029c", nil},
	{"b113", 0x10422, "cbz r3, 0x1042a", nil},
	{"b93b", 0x10424, "cbnz r3, 0x10436", nil},
	{"bfd8", 0x10426, "it le", nil},
	{"bf0c", 0x10428, "ite eq", nil},
	{"dd06", 0x1042c, "ble.n 0x1043c", nil},
	{"e7fe", 0x10430, "b.n 0x10430", nil},
	{"f8df a018", 0x10432, "ldr.w sl, [pc, #24]", []int64{24}},
	{"e9c4 6602", 0x10436, "strd r6, r6, [r4, #8]", []int64{8}},
	{"e8bd 87f0", 0x1043a, "ldmia.w sp!, {r4, r5, r6, r7, r8, r9, sl, pc}", nil},
	{"e92d 41f0", 0x1043e, "stmdb sp!, {r4, r5, r6, r7, r8, lr}", nil},
	{"e8df f012", 0x10442, "tbh [pc, r2, lsl #1]", []int64{1}},
	{"ee1d 3f70", 0x10446, "mrc 15, 0, r3, cr13, cr0, {3}", nil},
	{"edd3 0b02", 0x1044a, "vldr d16, [r3, #8]", []int64{8}},
	{"ee07 3a90", 0x1044e, "vmov s15, r3", nil},
	{"ed2d 8b04", 0x10452, "vpush {d8-d9}", nil},
	{"f3c3 2307", 0x1045a, "ubfx r3, r3, #8, #8", []int64{8, 8}},
	{"f363 0a1f", 0x1045e, "bfi sl, r3, #0, #32", []int64{0, 32}},
	{"fb03 2104", 0x10466, "mla r1, r3, r4, r2", nil},
	{"fba0 2301", 0x1046a, "umull r2, r3, r0, r1", nil},
	{"fb90 f0f1", 0x1046e, "sdiv r0, r0, r1", nil},
	{"e853 2f00", 0x1047a, "ldrex r2, [r3]", nil},
	{"e843 1200", 0x1047e, "strex r2, r1, [r3]", nil},
	{"f3bf 8f5b", 0x10482, "dmb ish", nil},
	{"f853 0c04", 0x10494, "ldr.w r0, [r3, #-4]", []int64{-4}},
	{"f843 0d04", 0x10498, "str.w r0, [r3, #-4]!", []int64{-4}},
	{"f813 1b01", 0x1049c, "ldrb.w r1, [r3], #1", []int64{1}},
	{"f852 3021", 0x104a0, "ldr.w r3, [r2, r1, lsl #2]", []int64{2}},
	{"f04f 33ff", 0x104a8, "mov.w r3, #4294967295", []int64{0xffffffff}},
	{"ea5f 0c41", 0x104b4, "movs.w ip, r1, lsl #1", []int64{1}},
	{"1c43", 0x104bc, "adds r3, r0, #1", []int64{1}},
	{"3b01", 0x104be, "subs r3, #1", []int64{1}},
	{"a002", 0x104c8, "add r0, pc, #8", []int64{8}},
	{"0852", 0x104ce, "lsrs r2, r2, #1", []int64{1}},
	{"df00", 0x1048a, "svc 0", nil},
	{"f1b0 3fff", 0x104d6, "cmp.w r0, #4294967295", []int64{0xffffffff}},
	{"e96d 2302", 0x104e8, "strd r2, r3, [sp, #-8]!", []int64{-8}},
	{"f340 0283", 0x104f0, "sbfx r2, r0, #2, #4", []int64{2, 4}},
	// Unknown: what objdump calls undefined, and a 32-bit first
	// halfword with nothing after it.
	{"b700", 0x104d2, ".inst 0xb700", nil},
	{"f0e6 0000", 0x104da, ".inst.w 0xf0e60000", nil},
	{"f0e6", 0x104da, ".inst 0xf0e6", nil},
}

func TestThumbTextTable(t *testing.T) {
	for _, c := range thumbCases {
		code := thumbHex(c.code)
		text, size, imms, ok := thumbText(code, c.addr)
		if text != c.text || !slices.Equal(imms, c.imms) {
			t.Errorf("%s at %#x: got %q %v, want %q %v", c.code, c.addr, text, imms, c.text, c.imms)
		}
		wantOK := !strings.HasPrefix(c.text, ".inst")
		if wantSize := min(len(code), 4); ok != wantOK || size != wantSize && wantOK {
			t.Errorf("%s: size %d ok %v, want %d %v", c.code, size, ok, wantSize, wantOK)
		}
	}
}

// TestThumbTextIT walks IT blocks as objdump prints them: the condition
// on each instruction of the block, the 16-bit ones without their "s";
// thumbText alone shows them as outside any block.
func TestThumbTextIT(t *testing.T) {
	const seq = "bf0c 2001 2000 bfd8 f641 7098 bf1c 1880 e7fe 4770 bf08 f000 f800 bf00"
	want := []string{
		"ite eq", "moveq r0, #1", "movne r0, #0",
		"it le", "movwle r0, #8088",
		"itt ne", "addne r0, r0, r2", "bne.n 0x10410",
		"bx lr",
		"it eq", "bleq 0x1041a",
		"nop",
	}
	alone := []string{
		"ite eq", "movs r0, #1", "movs r0, #0",
		"it le", "movw r0, #8088",
		"itt ne", "adds r0, r0, r2", "b.n 0x10410",
		"bx lr",
		"it eq", "bl 0x1041a",
		"nop",
	}
	code := thumbHex(seq)
	var it thumbIT
	for i, o := 0, 0; o < len(code); i++ {
		got, size, _, _ := thumbTextIT(code[o:], 0x10400+uint64(o), &it)
		plain, _, _, _ := thumbText(code[o:], 0x10400+uint64(o))
		if i >= len(want) || got != want[i] || plain != alone[i] {
			t.Fatalf("instruction %d at %#x: got %q (alone %q), want %q (%q)", i, 0x10400+o, got, plain, want[min(i, len(want)-1)], alone[min(i, len(alone)-1)])
		}
		o += size
	}
	if it != 0 {
		t.Errorf("IT state %#x after the last block", it)
	}
}

// TestThumbTextAllocs checks that decoding allocates only the returned
// text and immediates.
func TestThumbTextAllocs(t *testing.T) {
	push, add := thumbHex("b570"), thumbHex("f501 007f")
	if n := testing.AllocsPerRun(100, func() { thumbText(push, 0x10400) }); n > 1 {
		t.Errorf("push: %v allocations, want 1", n)
	}
	var it thumbIT
	if n := testing.AllocsPerRun(100, func() { thumbTextIT(add, 0x10400, &it) }); n > 2 {
		t.Errorf("add.w: %v allocations, want 2", n)
	}
}

// FuzzThumbText: any code of two bytes or more and any address give a
// text, a size of 2 or 4 that fits the code (a 32-bit first halfword with
// fewer than 4 bytes is reported unknown, size 2), immediates that are the
// text's #-numbers, and no panic, with or without an IT state.
func FuzzThumbText(f *testing.F) {
	for _, c := range thumbCases {
		f.Add(thumbHex(c.code), c.addr, uint8(0))
	}
	f.Add(thumbHex("bf0c 2001"), uint64(0xfffffffe), uint8(0x0c))
	f.Fuzz(func(t *testing.T, code []byte, addr uint64, state uint8) {
		if len(code) < 2 {
			return
		}
		it := thumbIT(state)
		for i, decode := range []func() (string, int, []int64, bool){
			func() (string, int, []int64, bool) { return thumbText(code, addr) },
			func() (string, int, []int64, bool) { return thumbTextIT(code, addr, &it) },
		} {
			text, size, imms, ok := decode()
			switch {
			case text == "":
				t.Fatalf("%d %x: empty text", i, code)
			case size != 2 && size != 4, size > len(code):
				t.Fatalf("%d %x: size %d for %d bytes (%q)", i, code, size, len(code), text)
			case !ok && !strings.HasPrefix(text, ".inst"):
				t.Fatalf("%d %x: unknown but %q", i, code, text)
			case ok && strings.HasPrefix(text, ".inst"):
				t.Fatalf("%d %x: known but %q", i, code, text)
			case !slices.Equal(imms, thumbImms(text)):
				t.Fatalf("%d %x: %q with immediates %v", i, code, text, imms)
			}
			if wide := binary.LittleEndian.Uint16(code)>>11 >= 0x1d; wide && len(code) >= 4 && size != 4 || !wide && size != 2 {
				t.Fatalf("%d %x: size %d", i, code, size)
			}
		}
	})
}
