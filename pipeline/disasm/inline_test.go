package disasm

import (
	"slices"
	"strings"
	"testing"
)

func insts(lines ...string) []Inst {
	out := make([]Inst, len(lines))
	for i, l := range lines {
		addr, text, _ := strings.Cut(l, " ")
		a, _ := parseInt("0x" + addr)
		out[i] = Inst{Addr: uint64(a), Text: text}
	}
	return out
}

// TestInlineCompares: the literal of an inlined memcmp is laid out from
// its pieces, however the compiler splits it; a literal stored rather
// than compared, or bytes that are no text, are none.
func TestInlineCompares(t *testing.T) {
	for _, tt := range []struct {
		name, arch string
		code       []Inst
		want       []string
	}{
		{"x86-64 movabs and cmpl", "x86_64", insts(
			"0 mov $0x5f776f7272617073,%rax", "a cmp %rax,(%rdi)", "d je 0x20", "f mov $0x1,%eax",
			"20 xor %eax,%eax", "22 cmpl $0x7832345f,0x7(%rdi)", "29 jne 0xf"), []string{"sparrow_42x"}},
		{"i686 cmpl", "x86", insts(
			"0 mov 0x4(%esp),%eax", "4 cmpl $0x72617073,(%eax)", "a je 0x18",
			"18 cmpl $0x5f776f72,0x4(%eax)", "1f jne 0xc", "21 cmpl $0x7832345f,0x7(%eax)"), []string{"sparrow_42x"}},
		{"x86-64 store, not a compare", "x86_64", insts(
			"0 mov $0x5f776f7272617073,%rax", "a mov %rax,(%rdi)"), nil},
		{"x86-64 two literals, one pointer", "x86_64", insts(
			"0 cmpl $0x64636261,(%rdi)", "6 cmpl $0x68676665,0x4(%rdi)",
			"c cmpl $0x31333337,(%rdi)", "12 cmpl $0x21212121,0x4(%rdi)"), []string{"abcdefgh", "7331!!!!"}},
		{"x86-64 bytes that are no text", "x86_64", insts(
			"0 mov $0x1122334455667788,%rax", "a cmp %rax,(%rdi)"), nil},
		{"aarch64 through another register and a branch", "aarch64", insts(
			"e08 ldur x2, [x0, #12]", "e0c add x1, x0, #0xc", "e10 mov x0, #0x7073",
			"e14 movk x0, #0x7261, lsl #16", "e18 movk x0, #0x6f72, lsl #32", "e1c movk x0, #0x5f77, lsl #48",
			"e20 cmp x2, x0", "e24 b.eq 0xea0", "e28 mov x0, x19", "e2c adrp x1, 0x1000", "e30 add x1, x1, #0x30",
			"ea0 ldrh w2, [x1,#8]", "ea4 mov w0, #0x3234", "ea8 cmp w2, w0", "eac b.ne 0xe28",
			"eb0 ldrb w0, [x1,#10]", "eb4 cmp w0, #0x78"), []string{"sparrow_42x"}},
		{"aarch64 compare of two loads", "aarch64", insts(
			"0 ldr x2, [x0]", "4 ldr x1, [x3]", "8 cmp x2, x1"), nil},
		{"mips has none", "mips", insts("0 lui v0,0x7370"), nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := InlineCompares(tt.arch, tt.code); !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// FuzzInlineCompares: whatever text a listing holds, laying out its
// compares ends, in strings of printable bytes.
func FuzzInlineCompares(f *testing.F) {
	f.Add("x86_64", "mov $0x5f776f7272617073,%rax\ncmp %rax,(%rdi)\ncmpl $0x7832345f,0x7(%rdi)")
	f.Add("aarch64", "ldur x2, [x0, #12]\nadd x1, x0, #0xc\nmov x0, #0x7073\ncmp x2, x0\nb.eq 0x40\nldrb w0, [x1,#10]\ncmp w0, #0x78")
	f.Fuzz(func(t *testing.T, arch, text string) {
		var code []Inst
		for i, l := range strings.Split(text, "\n") {
			code = append(code, Inst{Addr: uint64(i * 4), Text: l})
		}
		for _, s := range InlineCompares(arch, code) {
			if len(s) < 4 || strings.IndexFunc(s, func(r rune) bool { return r < 0x20 || r > 0x7e }) >= 0 {
				t.Fatalf("%q", s)
			}
		}
	})
}
