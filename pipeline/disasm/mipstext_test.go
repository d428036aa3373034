package disasm

import (
	"bufio"
	"bytes"
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

// mipsObjdump is the binutils objdump for a byte order, or the test is
// skipped.
func mipsObjdump(t *testing.T, bo binary.ByteOrder) string {
	t.Helper()
	name := "mips-linux-gnu-objdump"
	if bo == binary.ByteOrder(binary.LittleEndian) {
		name = "mipsel-linux-gnu-objdump"
	}
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s is not installed: %v", name, err)
	}
	return p
}

// objdumpTarget is a branch or jump target as objdump annotates it in an
// ELF file with symbols: "400a30 <main+0x40>".
var objdumpTarget = regexp.MustCompile(`\b([0-9a-f]+) <[^>]*>`)

// normObjdump turns objdump's instruction text into mipsText's form: one
// space after the mnemonic, targets as bare 0x addresses, .word padded.
func normObjdump(s string) string {
	s = objdumpTarget.ReplaceAllString(s, "0x$1")
	s = strings.Join(strings.Fields(s), " ")
	if v, ok := strings.CutPrefix(s, ".word 0x"); ok {
		if n, err := strconv.ParseUint(v, 16, 32); err == nil {
			s = fmt.Sprintf(".word 0x%08x", n)
		}
	}
	return s
}

// objdumpLines runs objdump -d on a section of path and returns its text
// by address.
func objdumpLines(t *testing.T, tool string, args ...string) map[uint64]string {
	t.Helper()
	out, err := exec.Command(tool, append([]string{"-d", "-z", "--no-show-raw-insn"}, args...)...).Output()
	if err != nil {
		t.Fatalf("%s %v: %v", tool, args, err)
	}
	lines := map[uint64]string{}
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
		lines[a] = normObjdump(text)
	}
	return lines
}

// TestMIPSTextObjdump decodes every word of .text in binaries built by
// Debian's cross compilers, both byte orders, PIC and not, and compares
// each with objdump's line for its address.
func TestMIPSTextObjdump(t *testing.T) {
	root := fixture.Root(t)
	bins := []string{
		"fw/calls/mipsel-base", "fw/calls/mipsel-plant", "fw/calls/mipsel-nopic-base",
		"fw/calls/mips-base", "fw/calls/mips-plant", "fw/calls/mips-feature",
		"fw/binaries/mipsel-blob", "fw/binaries/mips-blob",
		"fw/binaries/mipsel-plain", "fw/binaries/mips-plain",
	}
	paths := make([]string, 0, len(bins)+4)
	for _, b := range bins {
		paths = append(paths, filepath.Join(root, "testdata", "build", b))
	}
	// The cross toolchains' C libraries, when installed, add FPU code and
	// much more of the ISA than a small httpd uses.
	if !testing.Short() {
		for _, l := range []string{"/usr/mipsel-linux-gnu/lib/libc.so.6", "/usr/mips-linux-gnu/lib/libm.so.6"} {
			if _, err := os.Stat(l); err == nil {
				paths = append(paths, l)
			}
		}
	}
	for _, path := range paths {
		name := strings.TrimPrefix(path, filepath.Join(root, "testdata", "build")+"/")
		t.Run(strings.ReplaceAll(name, "/", "_"), func(t *testing.T) {
			f, err := elf.Open(path)
			if err != nil {
				t.Skipf("%s: %v (run scripts/mkfixtures)", name, err)
			}
			defer f.Close()
			if f.Machine != elf.EM_MIPS {
				t.Fatalf("%s is %v", name, f.Machine)
			}
			text := f.Section(".text")
			if text == nil {
				t.Fatalf("%s has no .text", name)
			}
			b, err := text.Data()
			if err != nil {
				t.Fatal(err)
			}
			want := objdumpLines(t, mipsObjdump(t, f.ByteOrder), "-j", ".text", path)
			words, agreed := 0, 0
			var bad []string
			for o := 0; o+4 <= len(b); o += 4 {
				addr := text.Addr + uint64(o)
				w := f.ByteOrder.Uint32(b[o:])
				got, _, _ := mipsText(w, addr)
				words++
				if exp, ok := want[addr]; ok && got == exp {
					agreed++
				} else if len(bad) < 20 {
					bad = append(bad, fmt.Sprintf("%#x %08x: got %q, objdump %q", addr, w, got, exp))
				}
			}
			for _, s := range bad {
				t.Logf("disagreement %s", s)
			}
			pct := 100 * float64(agreed) / float64(max(words, 1))
			t.Logf("%s: %d words, %d agreed, %.3f%%", name, words, agreed, pct)
			if words == 0 || pct < 99.5 {
				t.Errorf("%s: %d of %d words agree with objdump (%.3f%%), want 99.5%%", name, agreed, words, pct)
			}
		})
	}
}

// TestMIPSTextRandom feeds objdump random words (fields zeroed at random,
// so that canonical encodings are common) and checks every word mipsText
// claims to know: what it accepts must be exactly objdump's text.
func TestMIPSTextRandom(t *testing.T) {
	if testing.Short() {
		t.Skip("runs objdump on 64k words")
	}
	tool := mipsObjdump(t, binary.BigEndian)
	r := rand.New(rand.NewSource(1))
	const base = 0x400000
	words := make([]uint32, 1<<16)
	var buf bytes.Buffer
	for i := range words {
		w := r.Uint32()
		for _, f := range []uint{6, 11, 16, 21} {
			if r.Intn(3) == 0 {
				w &^= 31 << f
			}
		}
		words[i] = w
		_ = binary.Write(&buf, binary.BigEndian, w)
	}
	path := filepath.Join(t.TempDir(), "words.bin")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	want := objdumpLines(t, tool, "-D", "-b", "binary", "-m", "mips:isa32r2", "-EB",
		fmt.Sprintf("--adjust-vma=%#x", base), path)
	known, bad := 0, 0
	for i, w := range words {
		addr := uint64(base + 4*i)
		got, _, ok := mipsText(w, addr)
		if !ok {
			continue
		}
		known++
		if exp := want[addr]; got != exp {
			if bad++; bad <= 20 {
				t.Errorf("%08x: got %q, objdump %q", w, got, exp)
			}
		}
	}
	t.Logf("%d of %d random words decoded, %d differ from objdump", known, len(words), bad)
}

func TestMIPSTextTable(t *testing.T) {
	const pc = 0x400a30
	for _, c := range []struct {
		w    uint32
		text string
		imms []int64
	}{
		{0x00000000, "nop", nil},
		{0x3c1c0002, "lui gp,0x2", []int64{0x20000}},
		{0x3c028000, "lui v0,0x8000", []int64{-0x80000000}},
		{0x279c8860, "addiu gp,gp,-30624", []int64{-30624}},
		{0x27bdffe0, "addiu sp,sp,-32", []int64{-32}},
		{0x24050002, "li a1,2", []int64{2}},
		{0x34028000, "li v0,0x8000", []int64{0x8000}},
		{0x3442ffff, "ori v0,v0,0xffff", []int64{0xffff}},
		{0x304200ff, "andi v0,v0,0xff", []int64{0xff}},
		{0x2c420001, "sltiu v0,v0,1", []int64{1}},
		{0x2a100002, "slti s0,s0,2", []int64{2}},
		{0x0399e021, "addu gp,gp,t9", nil},
		{0x00a03021, "move a2,a1", nil},
		{0x02002025, "move a0,s0", nil},
		{0x00051023, "negu v0,a1", nil},
		{0x00a01027, "nor v0,a1,zero", nil},
		{0x00031080, "sll v0,v1,0x2", []int64{2}},
		{0x00221902, "ror v1,v0,0x4", []int64{4}},
		{0x8f998054, "lw t9,-32684(gp)", []int64{-32684}},
		{0xafbf001c, "sw ra,28(sp)", []int64{28}},
		{0x93a20010, "lbu v0,16(sp)", []int64{16}},
		{0x1000fffe, "b 0x400a2c", nil},
		{0x10400010, "beqz v0,0x400a74", nil},
		{0x1462fff0, "bne v1,v0,0x4009f4", nil},
		{0x04110004, "bal 0x400a44", nil},
		{0x0600fffd, "bltz s0,0x400a28", nil},
		{0x0c100290, "jal 0x400a40", nil},
		{0x08100290, "j 0x400a40", nil},
		{0x0320f809, "jalr t9", nil},
		{0x00a01009, "jalr v0,a1", nil},
		{0x03e00008, "jr ra", nil},
		{0x03e00408, "jr.hb ra", nil},
		{0x7c433980, "ext v1,v0,0x6,0x8", []int64{6, 8}},
		{0x7c4339c4, "ins v1,v0,0x7,0x1", []int64{7, 1}},
		{0x7c0210a0, "wsbh v0,v0", nil},
		{0x7c021420, "seb v0,v0", nil},
		{0x7c03e83b, "rdhwr v1,$29", nil},
		{0x00a3001b, "divu zero,a1,v1", nil},
		{0x006001f4, "teq v1,zero,0x7", []int64{7}},
		{0x00001010, "mfhi v0", nil},
		{0x70a41002, "mul v0,a1,a0", nil},
		{0x70821020, "clz v0,a0", nil},
		{0x0000000f, "sync", nil},
		{0x0000000c, "syscall", nil},
		{0x0007000d, "break 0x7", []int64{7}},
		{0x0085100b, "movn v0,a0,a1", nil},
		{0xc4a20010, "lwc1 $f2,16(a1)", []int64{16}},
		{0xd7a00028, "ldc1 $f0,40(sp)", []int64{40}},
		{0x44822000, "mtc1 v0,$f4", nil},
		{0x4443f800, "cfc1 v1,c1_fcsr", nil},
		{0x46241000, "add.d $f0,$f2,$f4", nil},
		{0x4620103c, "c.lt.d $f2,$f0", nil},
		{0x45010003, "bc1t 0x400a40", nil},
		{0x46800021, "cvt.d.w $f0,$f0", nil},
		{0x4620000d, "trunc.w.d $f0,$f0", nil},
		{0x4c831021, "madd.d $f0,$f4,$f2,$f3", nil},
		{0x40026000, "mfc0 v0,c0_status", nil},
		{0x41606000, "di", nil},
		{0xcc850010, "pref 0x5,16(a0)", []int64{5, 16}},
		{0xc0a20000, "ll v0,0(a1)", []int64{0}},
		{0xffffffff, ".word 0xffffffff", nil},
		{0x7c001a30, ".word 0x7c001a30", nil}, // dpax.w.ph: the DSP ASE
		{0x00851818, ".word 0x00851818", nil}, // mult $ac3: the DSP ASE
	} {
		text, imms, ok := mipsText(c.w, pc)
		if text != c.text || !slices.Equal(imms, c.imms) || ok != !strings.HasPrefix(c.text, ".word") {
			t.Errorf("%08x: got %q %v %v, want %q %v", c.w, text, imms, ok, c.text, c.imms)
		}
	}
}

// TestMIPSTextAllocs: the listing of a large function must not cost more
// than the returned string and slice, and a bare mnemonic nothing.
func TestMIPSTextAllocs(t *testing.T) {
	for _, c := range []struct {
		w    uint32
		want float64
	}{{0x00000000, 0}, {0x0320f809, 1}, {0x27bdffe0, 2}, {0x46241000, 1}, {0xffffffff, 1}} {
		if n := testing.AllocsPerRun(100, func() { mipsText(c.w, 0x400000) }); n > c.want {
			t.Errorf("%08x: %v allocations, want at most %v", c.w, n, c.want)
		}
	}
}

func FuzzMIPSText(f *testing.F) {
	for _, w := range []uint32{0, 0x3c1c0002, 0x27bdffe0, 0x1000ffff, 0x0320f809, 0x7c433980, 0x7c4331c4,
		0x4620103c, 0x4c831021, 0x40026000, 0xffffffff, 0x0000000d} {
		f.Add(w, uint64(0x400a30))
	}
	f.Add(uint32(0x0411ffff), uint64(0))
	f.Add(uint32(0x0bffffff), uint64(0xfffffffc))
	f.Fuzz(func(t *testing.T, w uint32, addr uint64) {
		text, imms, ok := mipsText(w, addr)
		if text == "" || strings.ContainsAny(text, "\x00\t\n") || strings.HasSuffix(text, " ") || strings.HasSuffix(text, ",") {
			t.Fatalf("%08x: text %q", w, text)
		}
		if !ok && (text != fmt.Sprintf(".word 0x%08x", w) || imms != nil) {
			t.Fatalf("%08x: unknown, but text %q imms %v", w, text, imms)
		}
		if ok && strings.HasPrefix(text, ".word") {
			t.Fatalf("%08x: known, but text %q", w, text)
		}
		if again, _, _ := mipsText(w, addr+1<<32); again != text {
			t.Fatalf("%08x: address bits above 32 changed %q to %q", w, text, again)
		}
	})
}
