package disasm

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// TestListing: in every architecture, the plant's new call to system()
// shows in the diff of its function's listings as an added call line at
// the call's own address whose text names the call's target, between
// lines both versions share; and each listing covers its function
// without a gap.
func TestListing(t *testing.T) {
	for arch := range arches {
		t.Run(arch, func(t *testing.T) {
			bb, pb := readFixture(t, arch+"-base"), readFixture(t, arch+"-plant")
			base, plant := load(t, arch+"-base"), load(t, arch+"-plant")
			d := Compare(base, plant)
			var pair *Pair
			for i, p := range d.Matched {
				if calls(p.New, "system") && !calls(p.Old, "system") {
					pair = &d.Matched[i]
				}
			}
			if pair == nil {
				t.Fatal("no function newly calls system")
			}
			site := pair.New.Sites[indexOf(pair.New.Calls, "system")]
			before, err := Listing(bytes.NewReader(bb), int64(len(bb)), base.Arch, pair.Old)
			if err != nil {
				t.Fatal(err)
			}
			after, err := Listing(bytes.NewReader(pb), int64(len(pb)), plant.Arch, pair.New)
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range [][]Inst{before, after} {
				for i := 1; i < len(l); i++ {
					if l[i].Addr != l[i-1].Addr+uint64(l[i-1].Size) {
						t.Fatalf("gap after %#x: %+v then %+v", l[i-1].Addr, l[i-1], l[i])
					}
				}
			}
			lines := DiffAround(before, after, site, 24)
			t.Logf("%s %s at %#x, call at %#x:\n%s", plant.Arch, pair.New.Name, pair.New.Addr, site, strings.Join(lines, "\n"))
			if len(lines) == 0 || len(lines) > 24 {
				t.Fatalf("%d lines", len(lines))
			}
			want := fmt.Sprintf("+ %8x  ", site)
			found, same := false, 0
			for _, l := range lines {
				if strings.HasPrefix(l, want) {
					found = true
				}
				if strings.HasPrefix(l, "  ") {
					same++
				}
			}
			if !found || same == 0 {
				t.Errorf("no added line at the call site %#x, or no shared line", site)
			}
		})
	}
}

func indexOf(l []string, s string) int {
	for i, x := range l {
		if x == s {
			return i
		}
	}
	return -1
}

// FuzzListing: any bytes decode, in every architecture and state, to
// instructions of a size within them, with a text each, and DiffAround of
// two such listings stays within its bound.
func FuzzListing(f *testing.F) {
	f.Add(uint8(0), []byte{0x48, 0xb8, 0x73, 0x70, 0x61, 0x72, 0x72, 0x6f, 0x77, 0x5f, 0x48, 0x39, 0x07})
	f.Add(uint8(4), []byte{0x27, 0xbd, 0xff, 0xe0, 0x3c, 0x02, 0x2a, 0x5f, 0x34, 0x42, 0x1c, 0x3b})
	f.Add(uint8(3), []byte{0x2d, 0xe9, 0xf0, 0x41, 0x40, 0xf2, 0x3b, 0x1c})
	f.Add(uint8(0x83), []byte{0x0c, 0xbf, 0x41, 0xf6, 0x3b, 0x43, 0x40, 0xf2, 0x01, 0x03, 0x08, 0xbf, 0xc2, 0xf6, 0x5f, 0x23})
	f.Fuzz(func(t *testing.T, sel uint8, b []byte) {
		archs := []string{"x86_64", "x86", "aarch64", "arm", "mips", "mipsel"}
		arch := archs[int(sel)%len(archs)]
		var order binary.ByteOrder = binary.LittleEndian
		if arch == "mips" {
			order = binary.BigEndian
		}
		var l []Inst
		var it thumbIT
		for off := 0; off < len(b) && len(l) < 4096; {
			in := decode(arch, sel&0x80 != 0, order, b[off:], uint64(off), &it)
			if in.Size <= 0 {
				break
			}
			if off+in.Size > len(b) || in.Text == "" {
				t.Fatalf("%s at %d: %+v from %d bytes", arch, off, in, len(b)-off)
			}
			l = append(l, in)
			off += in.Size
		}
		l = composeConstants(arch, l)
		half := l[:len(l)/2]
		if d := DiffAround(half, l, uint64(len(b)/2), 24); len(d) > 24 {
			t.Fatalf("%d lines", len(d))
		}
	})
}

// TestConstants: the numeric key of the magicnum build is a constant the
// ping handler newly uses in every architecture, built whole or in two
// halves, and FirstUses places it at an instruction of that function.
func TestConstants(t *testing.T) {
	for _, arch := range []string{"x86_64", "i686", "mipsel", "mips", "armhf", "arm64"} {
		t.Run(arch, func(t *testing.T) {
			cb := readFixture(t, arch+"-magicnum")
			cur := load(t, arch+"-magicnum")
			var users []string
			for i := range cur.Funcs {
				f := &cur.Funcs[i]
				l, err := Listing(bytes.NewReader(cb), int64(len(cb)), cur.Arch, f)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Contains(Constants(l), 0x2a5f1c3b) {
					continue
				}
				users = append(users, f.Name)
				at, ok := FirstUses(l, []int64{0x2a5f1c3b})[0x2a5f1c3b]
				if !ok || at < f.Addr&^1 || at >= f.Addr&^1+f.Size {
					t.Errorf("%s: first use at %#x (%v), outside %#x+%d", f.Name, at, ok, f.Addr, f.Size)
				}
			}
			if len(users) != 1 {
				t.Errorf("functions using 0x2a5f1c3b: %q, want the ping handler", users)
			}
		})
	}
}

// BenchmarkDiffAround: the diff of two listings of the largest size it
// aligns, a few instructions apart.
func BenchmarkDiffAround(b *testing.B) {
	var before, after []Inst
	for i := range maxDiffInsts {
		before = append(before, Inst{Addr: uint64(4 * i), Size: 4, Text: fmt.Sprintf("addiu a0,a0,%d", i%97)})
	}
	after = append(after, before...)
	after[1000].Text, after[1500].Text = "jalr t9", "lw t9,-32656(gp)"
	for b.Loop() {
		if len(DiffAround(before, after, 4000, 24)) == 0 {
			b.Fatal("no diff")
		}
	}
}

// TestComposeConditional: in a Thumb IT block the two halves of a constant
// are conditional (as GCC emits them for cond ? K : x); a movt takes the
// movw of its own condition, not the other arm's.
func TestComposeConditional(t *testing.T) {
	for _, tt := range []struct {
		name string
		code []byte
		want int64
		not  int64
	}{
		// itt eq; movweq r3, #0x1c3b; movteq r3, #0x2a5f
		{"itt", []byte{0x04, 0xbf, 0x41, 0xf6, 0x3b, 0x43, 0xc2, 0xf6, 0x5f, 0x23}, 0x2a5f1c3b, 0},
		// ite eq; movweq r3, #0x1c3b; movwne r3, #1; it eq; movteq r3, #0x2a5f
		{"ite", []byte{0x0c, 0xbf, 0x41, 0xf6, 0x3b, 0x43, 0x40, 0xf2, 0x01, 0x03, 0x08, 0xbf, 0xc2, 0xf6, 0x5f, 0x23}, 0x2a5f1c3b, 0x2a5f0001},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var l []Inst
			var it thumbIT
			for off := 0; off < len(tt.code); {
				in := decode("arm", true, binary.LittleEndian, tt.code[off:], uint64(off), &it)
				if in.Size <= 0 {
					t.Fatalf("no instruction at %d", off)
				}
				l = append(l, in)
				off += in.Size
			}
			got := Constants(composeConstants("arm", l))
			if !slices.Contains(got, tt.want) || tt.not != 0 && slices.Contains(got, tt.not) {
				t.Errorf("constants %#x, want %#x (and not %#x); listing %+v", got, tt.want, tt.not, l)
			}
		})
	}
}

// TestAddressParts: immediates that are pieces of addresses (MIPS GOT
// slots, gp's setup and the low part added to an address from the GOT;
// AArch64 page offsets after adrp) are not constants: they change whenever
// the layout does. A constant built in two halves still is one.
func TestAddressParts(t *testing.T) {
	words := func(order binary.ByteOrder, ws ...uint32) []byte {
		b := make([]byte, 4*len(ws))
		for i, w := range ws {
			order.PutUint32(b[4*i:], w)
		}
		return b
	}
	le := binary.LittleEndian
	for _, tt := range []struct {
		arch string
		code []byte
		want []int64
	}{
		// lui gp, 0x2; addiu gp, gp, -30848; addu gp, gp, t9;
		// lw a0, -32732(gp); addiu a0, a0, 4308; lbu v0, 4448(a0);
		// lui v0, 0x2a5f; ori v0, v0, 0x1c3b; sw v0, 4448(a0)
		{"mipsel", words(le, 0x3c1c0002, 0x279c8780, 0x0399e021, 0x8f848024, 0x248410d4, 0x90821160, 0x3c022a5f, 0x34421c3b, 0xac821160),
			[]int64{0x2a5f0000, 0x1c3b, 0x2a5f1c3b}},
		// adrp x2, 0; add x2, x2, #0xfc8; ldr x3, [x2, #4040]; mov x1, #0x200
		{"aarch64", words(le, 0x90000002, 0x913f2042, 0xf947e443, 0xd2804001), []int64{0x200}},
	} {
		t.Run(tt.arch, func(t *testing.T) {
			var l []Inst
			for off := 0; off < len(tt.code); {
				in := decode(tt.arch, false, le, tt.code[off:], uint64(0x950+off), nil)
				if in.Size <= 0 {
					t.Fatalf("no instruction at %d", off)
				}
				l = append(l, in)
				off += in.Size
			}
			if got := Constants(composeConstants(tt.arch, l)); !slices.Equal(got, tt.want) {
				var texts []string
				for _, in := range l {
					texts = append(texts, in.Text)
				}
				t.Errorf("constants %#x, want %#x; listing %q", got, tt.want, texts)
			}
		})
	}
}
