package disasm

import (
	"bytes"
	"encoding/binary"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fwvet/fwvet/pipeline/fixture"
)

// arches are the fixtures' builds (ARCH-base, ARCH-plant) and their
// machines; the four main ones also have ARCH-rebuilt.
var arches = map[string]string{"x86_64": "x86_64", "mipsel": "mipsel", "mips": "mips", "i686": "x86", "armhf": "arm", "arm64": "aarch64",
	"x86_64-noplt": "x86_64", "i686-noplt": "x86", "mipsel-nopic": "mipsel", "armhf-arm": "arm",
	"armhf-routes": "arm"}

// readFixture reads fw/calls/NAME (scripts/fixtures/calls.sh), skipping
// the test when it was not built yet.
func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixture.Root(t), "testdata", "build", "fw", "calls", name))
	if err != nil {
		t.Skipf("fixture fw/calls/%s is missing (%v): run scripts/mkfixtures (scripts/fixtures/calls.sh)", name, err)
	}
	return b
}

func load(t testing.TB, name string) *Program {
	t.Helper()
	b := readFixture(t, name)
	p, err := Functions(bytes.NewReader(b), int64(len(b)), 1<<20)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return p
}

func calls(f *Func, name string) bool { return slices.Contains(f.Calls, name) }

// TestFunctions: in each architecture's stripped httpd, exactly one
// function (the ping handler) calls system(), through the PLT or GOT
// resolved to its name, and one (main) calls socket, bind, listen, accept
// and recv.
func TestFunctions(t *testing.T) {
	for arch, machine := range arches {
		t.Run(arch, func(t *testing.T) {
			p := load(t, arch+"-base")
			if p.Arch != machine || !p.Stripped || !p.Imports["system"] {
				t.Fatalf("arch %s stripped %v imports system %v", p.Arch, p.Stripped, p.Imports["system"])
			}
			if len(p.Funcs) < 6 || len(p.Funcs) > 40 {
				t.Errorf("%d functions", len(p.Funcs))
			}
			sys := p.Callers("system")
			if len(sys) != 1 {
				t.Fatalf("%d callers of system: %v", len(sys), sys)
			}
			for _, c := range []string{"strstr", "strspn", "snprintf"} {
				if !calls(sys[0], c) {
					t.Errorf("the ping handler %s does not call %s: %v", sys[0].Name, c, sys[0].Calls)
				}
			}
			var main *Func
			for _, f := range p.Callers("socket") {
				main = f
			}
			if main == nil {
				t.Fatal("no function calls socket")
			}
			for _, c := range []string{"bind", "listen", "accept", "recv", "close"} {
				if !calls(main, c) {
					t.Errorf("main (%s) does not call %s: %v", main.Name, c, main.Calls)
				}
			}
			for i, f := range p.Funcs {
				if f.Size == 0 || len(f.CodeHash) != 64 || i > 0 && p.Funcs[i-1].Addr >= f.Addr {
					t.Errorf("function %d: %+v", i, f)
				}
			}
		})
	}
}

// TestCompare: the planted status handler is the one function that gains
// a call to system; the declared feature's new handler calls no import
// that any old function did not.
func TestCompare(t *testing.T) {
	for arch := range arches {
		t.Run(arch, func(t *testing.T) {
			base := load(t, arch+"-base")
			plant := load(t, arch+"-plant")
			d := Compare(base, plant)
			var gained []string
			for _, pr := range d.Matched {
				if calls(pr.New, "system") && !calls(pr.Old, "system") {
					gained = append(gained, pr.New.Name)
				}
			}
			for _, f := range d.Added {
				if calls(f, "system") {
					gained = append(gained, f.Name)
				}
			}
			if len(gained) != 1 {
				t.Fatalf("functions gaining system: %v", gained)
			}
			if f := plant.Func(gained[0]); f == nil || !calls(f, "strncmp") {
				t.Errorf("the planted function %s lacks its strncmp", gained[0])
			} else if strings.HasPrefix(arch, "armhf-") && f.Thumb {
				// In ARM state, entered by blx or a veneer (armhf-arm) or
				// only through a pointer in the data (armhf-routes).
				t.Errorf("the planted function %s was swept as Thumb", f.Name)
			}
			// The ping handler is matched with itself.
			ping := base.Callers("system")[0]
			for _, pr := range d.Matched {
				if pr.Old == ping && !calls(pr.New, "system") {
					t.Errorf("ping handler matched with %s (%v)", pr.New.Name, pr.New.Calls)
				}
			}
			// An unchanged binary matches itself whole.
			same := Compare(base, base)
			if len(same.Added)+len(same.Removed) != 0 || len(same.Matched) != len(base.Funcs) {
				t.Errorf("self-compare: %d added, %d removed", len(same.Added), len(same.Removed))
			}
			for _, pr := range same.Matched {
				if pr.Changed() || pr.Old.Addr != pr.New.Addr {
					t.Errorf("self-compare paired %s with %s", pr.Old.Name, pr.New.Name)
				}
			}
		})
	}
}

// TestCodeDigest: a rebuild that differs only in its build id has the
// same code digest; the plant does not.
func TestCodeDigest(t *testing.T) {
	for _, arch := range []string{"x86_64", "i686", "mipsel", "mips", "armhf", "arm64"} {
		t.Run(arch, func(t *testing.T) {
			digest := func(name string) string {
				b := readFixture(t, arch+"-"+name)
				d, err := CodeDigest(bytes.NewReader(b), int64(len(b)), 1<<24)
				if err != nil {
					t.Fatal(err)
				}
				return d
			}
			base, rebuilt, plant := digest("base"), digest("rebuilt"), digest("plant")
			if !bytes.Equal(readFixture(t, arch+"-base"), readFixture(t, arch+"-rebuilt")) && base != rebuilt {
				t.Error("a build-id-only rebuild changed the code digest")
			}
			if base == plant {
				t.Error("the plant has the baseline's code digest")
			}
		})
	}
}

// TestSymbols: an unstripped build's functions carry their names.
func TestSymbols(t *testing.T) {
	p := load(t, "x86_64-symbols")
	if p.Stripped {
		t.Fatal("read as stripped")
	}
	byBase := func(name string) *Func {
		for i := range p.Funcs {
			if baseName(p.Funcs[i].Name) == name {
				return &p.Funcs[i]
			}
		}
		return nil
	}
	// GCC names its clones handle_ping.isra.0 and the like.
	ping, status, main := byBase("handle_ping"), byBase("handle_status"), byBase("main")
	if ping == nil || status == nil || main == nil {
		t.Fatalf("functions %v", p.Funcs)
	}
	if !calls(ping, "system") || calls(status, "system") || !calls(main, "socket") || !calls(main, "dispatch.isra.0") {
		t.Errorf("ping %v, status %v, main %v", ping.Calls, status.Calls, main.Calls)
	}
	if c := p.Callers("system"); len(c) != 1 || c[0] != ping {
		t.Errorf("callers of system: %v", c)
	}
}

// TestBounds: too little code budget is an error; so are truncated and
// garbled files, never a panic.
func TestBounds(t *testing.T) {
	b := readFixture(t, "x86_64-base")
	if _, err := Functions(bytes.NewReader(b), int64(len(b)), 64); err == nil {
		t.Error("a 64-byte code budget was enough")
	}
	for _, n := range []int{0, 4, 64, 200, len(b) / 2, len(b) - 1} {
		_, _ = Functions(bytes.NewReader(b[:n]), int64(n), 1<<20)
	}
	if _, err := Functions(bytes.NewReader([]byte("\x7fELF\x02\x01\x01")), 7, 1<<20); err == nil {
		t.Error("a 7-byte ELF parsed")
	}
}

// TestThumbBranch: encodings from the armhf fixture (objdump -M
// force-thumb).
func TestThumbBranch(t *testing.T) {
	for _, tt := range []struct {
		h1, h2 uint16
		addr   uint64
		target uint64
		kind   uint8
	}{
		{0xf7ff, 0xefc6, 0x6c6, 0x654, evCall}, // blx socket@plt
		{0xf000, 0xf935, 0x722, 0x991, evCall}, // bl (Thumb)
		{0xf7ff, 0xffbf, 0x822, 0x7a5, evCall}, // bl backwards
		{0xf000, 0xb800, 0x100, 0x105, evJump}, // b.w +0
		{0xf7ff, 0xbffe, 0x100, 0x101, evJump}, // b.w . (to itself)
	} {
		target, kind, ok := thumbBranch(tt.h1, tt.h2, tt.addr)
		if !ok || target != tt.target || kind != tt.kind {
			t.Errorf("%04x %04x at %#x = %#x kind %d ok %v, want %#x kind %d", tt.h1, tt.h2, tt.addr, target, kind, ok, tt.target, tt.kind)
		}
	}
	if _, _, ok := thumbBranch(0xf8d0, 0x1000, 0); ok {
		t.Error("ldr.w decoded as a branch")
	}
}

// TestMIPSSweep: lw $t9, off($gp); jalr $t9 names the GOT slot, in both
// byte orders; jal and bal give their targets.
func TestMIPSSweep(t *testing.T) {
	words := []uint32{
		0x8f998054, // lw t9, -32684(gp)
		0x00003025, // move a2, zero
		0x0320f809, // jalr t9
		0x00000000, // nop
		0x0c000100, // jal 0x400
		0x00000000,
		0x04110003, // bal +3 → 0x18+4+12
		0x00000000,
	}
	for _, bo := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
		b := make([]byte, 4*len(words))
		for i, w := range words {
			bo.PutUint32(b[4*i:], w)
		}
		p := &prog{gp: 0x17ff0, bo: bo}
		ev := mipsSweep(b, 0, bo, p)
		var got []event
		for _, e := range ev {
			if e.kind != evMask {
				got = append(got, event{addr: e.addr, target: e.target, kind: e.kind})
			}
		}
		want := []event{{addr: 8, target: 0x17ff0 - 32684, kind: evCallSlot}, {addr: 0x10, target: 0x400, kind: evCall}, {addr: 0x18, target: 0x28, kind: evCall}}
		if !slices.Equal(got, want) {
			t.Errorf("%v: %+v, want %+v", bo, got, want)
		}
	}
}

// TestARMStubs: the ARM-mode PLT stub names its GOT slot.
func TestARMStubs(t *testing.T) {
	b := make([]byte, 12)
	for i, w := range []uint32{0xe28fc600, 0xe28cca01, 0xe5bcfa1c} {
		binary.LittleEndian.PutUint32(b[4*i:], w)
	}
	p := &prog{bo: binary.LittleEndian, slots: map[uint64]string{0x600 + 8 + 0x1000 + 0xa1c: "system"}, stubs: map[uint64]string{}}
	armStubs(p, &region{name: ".plt", addr: 0x600, data: b})
	if p.stubs[0x600] != "system" {
		t.Errorf("stubs %v", p.stubs)
	}
}

func checkEvents(t *testing.T, ev []event, base uint64, n int) {
	for i, e := range ev {
		if e.addr < base || e.addr >= base+uint64(n) || i > 0 && ev[i-1].addr >= e.addr {
			t.Fatalf("event %d at %#x out of order or range", i, e.addr)
		}
	}
}

func FuzzFunctions(f *testing.F) {
	// The small builds: the fuzzer minimizes every input it finds
	// interesting, which takes long on the 15-67 KB x86-64 and arm64 ones.
	for _, arch := range []string{"armhf", "mipsel"} {
		if b, err := os.ReadFile(filepath.Join(fixture.Root(f), "testdata", "build", "fw", "calls", arch+"-base")); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("\x7fELF\x01\x01\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Functions(bytes.NewReader(b), int64(len(b)), 1<<20)
		if err != nil && strings.Contains(err.Error(), "runtime error") {
			// Recovered, but a bug: an index went unchecked.
			t.Fatal(err)
		}
		if err == nil && len(p.Funcs) > MaxFuncs {
			t.Fatalf("%d functions", len(p.Funcs))
		}
		_, _ = CodeDigest(bytes.NewReader(b), int64(len(b)), 1<<20)
		if err == nil {
			Compare(p, p)
		}
	})
}

func FuzzThumb(f *testing.F) {
	f.Add([]byte{0xff, 0xf7, 0xc6, 0xef, 0x00, 0xe0})
	f.Fuzz(func(t *testing.T, b []byte) {
		checkEvents(t, thumbSweep(b, 0x1000), 0x1000, len(b))
		checkEvents(t, armSweep(b, 0x1000), 0x1000, len(b))
		checkEvents(t, arm64Sweep(b, 0x1000), 0x1000, len(b))
	})
}

func FuzzMIPS(f *testing.F) {
	f.Add([]byte{0x54, 0x80, 0x99, 0x8f, 0x09, 0xf8, 0x20, 0x03})
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, bo := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
			p := &prog{gp: 0x7ff0, bo: bo, slots: map[uint64]string{}, stubs: map[uint64]string{}, gotData: b}
			checkEvents(t, mipsSweep(b, 0x400, bo, p), 0x400, len(b))
			p.mipsStubs(&region{addr: 0x400, data: b})
		}
	})
}

func FuzzX86(f *testing.F) {
	f.Add([]byte{0xe8, 0, 0, 0, 0, 0xff, 0x25, 1, 2, 3, 4})
	f.Fuzz(func(t *testing.T, b []byte) {
		checkEvents(t, x86Sweep(b, 0x1000, 64, 0, true), 0x1000, len(b))
		checkEvents(t, x86Sweep(b, 0x1000, 32, 0x4000, true), 0x1000, len(b))
	})
}

// TestMutations: the small builds with header, table and code fields set
// to boundary values (as the fuzzer does, but deterministic and quick) give
// results or errors, never a recovered runtime error.
func TestMutations(t *testing.T) {
	r := rand.New(rand.NewSource(2))
	vals := []uint64{0, 1, 0xff, 0xffff, 0x7fffffff, 0xffffffff, 1 << 31, 1 << 40, 0xffffffffffffffff, 0x1000, 0x10000}
	for _, a := range []string{"armhf", "mipsel", "mips", "x86_64", "i686", "mipsel-nopic"} {
		b := readFixture(t, a+"-base")
		for i := 0; i < 1000; i++ {
			c := append([]byte(nil), b...)
			for j := 0; j < 1+r.Intn(4); j++ {
				o := r.Intn(len(c) - 8)
				v := vals[r.Intn(len(vals))]
				switch r.Intn(4) {
				case 0:
					c[o] = byte(v)
				case 1:
					binary.LittleEndian.PutUint16(c[o:], uint16(v))
				case 2:
					binary.LittleEndian.PutUint32(c[o:], uint32(v))
				default:
					binary.LittleEndian.PutUint64(c[o:], v)
				}
			}
			p, err := Functions(bytes.NewReader(c), int64(len(c)), 1<<20)
			if err != nil && strings.Contains(err.Error(), "runtime error") {
				t.Fatalf("%s mutation %d: %v", a, i, err)
			}
			if err == nil {
				Compare(p, p)
			}
			if _, err := CodeDigest(bytes.NewReader(c), int64(len(c)), 1<<20); err != nil && strings.Contains(err.Error(), "runtime error") {
				t.Fatalf("%s mutation %d: %v", a, i, err)
			}
		}
	}
}

// TestStrings: in every build, the ping handler builds the addresses of
// its strings ("host=", its command's format), the dispatcher passes its
// routes to strncmp, and the plant's status handler passes its key to
// strncmp: Strings and Compared, from lea, adrp/add, literal pools and
// the MIPS GOT. On armhf the plant's key and its strncmp are in one
// function only because crt's ARM-mode words are stepped over (armRun).
func TestStrings(t *testing.T) {
	for arch := range arches {
		t.Run(arch, func(t *testing.T) {
			p := load(t, arch+"-base")
			sys := p.Callers("system")
			if len(sys) != 1 {
				t.Fatalf("%d callers of system", len(sys))
			}
			for _, s := range []string{"host=", "ping -c 1 %.*s >/tmp/ping.out", "bad host"} {
				if !slices.Contains(sys[0].Strings, s) {
					t.Errorf("the ping handler does not reference %q: %q", s, sys[0].Strings)
				}
			}
			if slices.Contains(sys[0].Compared, "bad host") {
				t.Errorf("the ping handler compares %q, which it only sends: %q", "bad host", sys[0].Compared)
			}
			var routes bool
			for _, f := range p.Funcs {
				if slices.Contains(f.Compared, "GET /status") && slices.Contains(f.Compared, "GET /ping") {
					routes = true
				}
				if slices.Contains(f.Compared, "pelican-7731") {
					t.Errorf("%s compares the plant's key in the base", f.Name)
				}
			}
			// armhf-routes reads its routes from a table, not from code.
			if !routes && arch != "armhf-routes" {
				t.Error("no function passes the routes to strncmp")
			}
			plant := load(t, arch+"-plant")
			var key bool
			for _, f := range plant.Funcs {
				key = key || slices.Contains(f.Compared, "pelican-7731")
			}
			if !key {
				for _, f := range plant.Funcs {
					t.Logf("%s %#x calls %q strings %q compared %q", f.Name, f.Addr, f.Calls, f.Strings, f.Compared)
				}
				t.Error("no function of the plant compares the key")
			}
		})
	}
}

// TestARMRun: crt's ARM-mode call_weak_fn (as in the armhf fixtures) is a
// run the Thumb sweep steps over; three such words, or Thumb code with
// two blx in a row, are not.
func TestARMRun(t *testing.T) {
	words := func(ws ...uint32) []byte {
		var b []byte
		for _, w := range ws {
			b = binary.LittleEndian.AppendUint32(b, w)
		}
		return b
	}
	for _, tt := range []struct {
		name string
		b    []byte
		want int
	}{
		{"call_weak_fn", words(0xe59f3014, 0xe59f2014, 0xe08f3003, 0xe7932002, 0x012fff1e), 16},
		{"three words", words(0xe59f3014, 0xe59f2014, 0xe08f3003, 0x012fff1e), 0},
		{"thumb blx blx", words(0xef28f7ff, 0xef7af7ff, 0x00001888, 0x00000068), 0},
	} {
		if got := armRun(tt.b); got != tt.want {
			t.Errorf("%s: armRun = %d, want %d", tt.name, got, tt.want)
		}
	}
}
