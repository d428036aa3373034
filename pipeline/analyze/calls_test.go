package analyze

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/disasm"
	"github.com/fwvet/fwvet/pipeline/fixture"
)

// callsFixture reads fw/calls/NAME (scripts/fixtures/calls.sh), skipping
// the test when it was not built yet.
func callsFixture(t *testing.T, name string) string {
	t.Helper()
	p := fixture.Root(t) + "/testdata/build/fw/calls/" + name
	b, err := os.ReadFile(p)
	if err != nil {
		t.Skipf("fixture fw/calls/%s is missing (%v): run scripts/mkfixtures (scripts/fixtures/calls.sh)", name, err)
	}
	return string(b)
}

// TestCallsAdded: a stripped -O2 httpd built by the real compilers for
// x86-64 and 32-bit x86 (each with and without -fno-plt), MIPS (little
// endian, PIC and non-PIC; big endian), 32-bit ARM (Thumb-2) and AArch64. Its
// baseline already imports system() and calls it from the ping handler;
// the plant makes the status handler call it too: one elf-call-added
// naming that function, and one magic-string-added for the key it
// compares a header with. The magic build's ping handler skips its check
// of the host when the User-Agent is a key: one magic-string-added and no
// elf-call-added. A rebuild from another build path, and a declared
// feature adding a handler that calls only snprintf and strlen, give none.
func TestCallsAdded(t *testing.T) {
	for _, arch := range []string{"x86_64", "i686", "mipsel", "mips", "armhf", "arm64", "x86_64-noplt", "i686-noplt", "mipsel-nopic", "armhf-arm", "armhf-routes"} {
		for _, tt := range []struct {
			variant string
			want    bool
		}{
			{"plant", true},
			{"magic", false},
			{"magicnum", false},
			{"inlinekey", false},
			{"rebuilt", false},
			{"shifted", false},
			{"feature", false},
			{"base", false},
		} {
			if strings.Contains(arch, "-") && tt.variant != "plant" && tt.variant != "base" {
				continue // -fno-plt and non-PIC builds: only a base and a plant
			}
			t.Run(arch+"/"+tt.variant, func(t *testing.T) {
				old := fileEntry("/usr/sbin/httpd", callsFixture(t, arch+"-base"), 0o755)
				cur := fileEntry("/usr/sbin/httpd", callsFixture(t, arch+"-"+tt.variant), 0o755)
				ch := changed(old, cur, "content")
				all := analyzeWith(t, Calls{}, scanned(t, ch))
				if tt.variant == "magic" || tt.variant == "inlinekey" {
					// The ping handler skips its check when the User-Agent
					// is a key: no new call, one new compare. With memcmp,
					// x86 and AArch64 compare it through immediates.
					key := map[string]string{"magic": "gannet_57x9", "inlinekey": "sparrow_42x"}[tt.variant]
					m := only(t, all, pipeline.IDMagicStringAdded, pipeline.SeverityHigh, ch)
					if added, _ := m.Evidence["strings_added"].([]string); !slices.Equal(added, []string{key}) {
						t.Errorf("strings_added %q, want the key", added)
					}
					if tt.variant == "inlinekey" {
						contains(t, "message", m.Message, strconv.Quote(key))
						return
					}
					for _, k := range []string{"function", "address", "architecture", "inspect"} {
						if s, _ := m.Evidence[k].(string); s == "" {
							t.Errorf("no %s in the evidence", k)
						}
					}
					contains(t, "message", m.Message, `"gannet_57x9"`, "strncmp")
					return
				}
				if !tt.want {
					none(t, all)
					return
				}
				var fs, magic []pipeline.Finding
				for _, f := range all {
					if f.ID == pipeline.IDMagicStringAdded {
						magic = append(magic, f)
					} else {
						fs = append(fs, f)
					}
				}
				// The plant compares a header with its key: one
				// magic-string-added.
				m := only(t, magic, pipeline.IDMagicStringAdded, pipeline.SeverityHigh, ch)
				if added, _ := m.Evidence["strings_added"].([]string); !slices.Equal(added, []string{"pelican-7731"}) || !m.AllowOnly {
					t.Errorf("magic-string-added strings %q (allow only %v), want the key alone", added, m.AllowOnly)
				}
				if cc, _ := m.Evidence["compare_calls"].([]string); !slices.Contains(cc, "strncmp") {
					t.Errorf("compare_calls %q lack strncmp", cc)
				}
				f := only(t, fs, pipeline.IDELFCallAdded, pipeline.SeverityHigh, ch)
				if !f.AllowOnly {
					t.Error("not AllowOnly: a declared path would hide it")
				}
				added, _ := f.Evidence["calls_added"].([]string)
				if len(added) != 1 || added[0] != "system" {
					t.Errorf("calls_added %q, want [system]", added)
				}
				sites, _ := f.Evidence["call_sites"].(map[string]string)
				if !strings.HasPrefix(sites["system"], "0x") {
					t.Errorf("call_sites %v: no address of the call to system", sites)
				}
				before, _ := f.Evidence["callers_before"].(map[string][]string)
				if len(before["system"]) != 1 {
					t.Errorf("callers_before %v, want the one ping handler", before)
				}
				calls, _ := f.Evidence["calls"].([]string)
				if !strings.Contains(strings.Join(calls, " "), "strncmp") {
					t.Errorf("the planted function's calls %q lack its strncmp", calls)
				}
				for _, k := range []string{"function", "address", "architecture"} {
					if s, _ := f.Evidence[k].(string); s == "" {
						t.Errorf("no %s in the evidence", k)
					}
				}
				contains(t, "message", f.Message, "newly calls system (exec)")
				// The disassembly a reviewer checks the finding by: the
				// region of the new call, added lines and shared ones.
				for _, g := range []pipeline.Finding{f, m} {
					lines, _ := g.Evidence["disassembly"].([]string)
					plus, same := 0, 0
					for _, l := range lines {
						switch {
						case strings.HasPrefix(l, "+ "):
							plus++
						case strings.HasPrefix(l, "  "):
							same++
						}
					}
					if len(lines) > 24 || plus == 0 || same == 0 {
						t.Errorf("%s: disassembly of %d lines, %d added, %d shared:\n%s", g.ID, len(lines), plus, same, strings.Join(lines, "\n"))
					}
					if _, ok := g.Evidence["constants_added"].([]string); !ok {
						t.Errorf("%s: no constants_added in the evidence", g.ID)
					}
				}
			})
		}
	}
}

// TestCallsNotELF: a modified file that only claims to be an ELF, or is
// one of an unsupported machine, gives no finding and no error.
func TestCallsNotELF(t *testing.T) {
	old := fileEntry("/usr/sbin/httpd", "\x7fELF\x02\x01\x01garbage", 0o755)
	cur := fileEntry("/usr/sbin/httpd", "\x7fELF\x02\x01\x01garbage!", 0o755)
	none(t, analyzeWith(t, Calls{}, scanned(t, changed(old, cur, "content"))))
}

// TestCallsMatching: the rules on synthetic programs. A call that moved
// to another function is no new caller; a new import is
// elf-import-added's; a named function gaining the call is.
func TestCallsMatching(t *testing.T) {
	fn := func(name string, addr uint64, hash string, calls ...string) disasm.Func {
		return disasm.Func{Name: name, Addr: addr, Size: 16, CodeHash: hash, Calls: calls}
	}
	imports := map[string]bool{"system": true, "snprintf": true, "strlen": true, "getpid": true, "popen": true}
	prog := func(im map[string]bool, fs ...disasm.Func) *disasm.Program {
		return &disasm.Program{Arch: "x86_64", Funcs: fs, Imports: im}
	}
	ch := changed(fileEntry("/usr/sbin/httpd", "a", 0o755), fileEntry("/usr/sbin/httpd", "b", 0o755), "content")
	for _, tt := range []struct {
		name     string
		old, cur *disasm.Program
		want     string // the function named, "" for none
	}{
		{"moved", prog(imports, fn("sub_10", 0x10, "a", "system", "snprintf")),
			prog(imports, fn("sub_20", 0x20, "b", "system", "strlen")), ""},
		{"planted", prog(imports, fn("sub_10", 0x10, "a", "system"), fn("sub_30", 0x30, "c", "getpid", "strlen")),
			prog(imports, fn("sub_10", 0x10, "a", "system"), fn("sub_40", 0x40, "d", "getpid", "strlen", "system")), "sub_40"},
		{"new import", prog(map[string]bool{"strlen": true}, fn("sub_30", 0x30, "c", "strlen")),
			prog(imports, fn("sub_30", 0x30, "d", "strlen", "system")), ""},
		{"named", prog(imports, fn("handle_ping", 0x10, "a", "system"), fn("handle_status", 0x30, "c", "getpid")),
			prog(imports, fn("handle_ping", 0x10, "a", "system"), fn("handle_status", 0x30, "d", "getpid", "popen")), "handle_status"},
		{"not risky", prog(imports, fn("f", 0x10, "a", "getpid")), prog(imports, fn("f", 0x10, "b", "getpid", "snprintf")), ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fs := callFindings(ch, tt.old, tt.cur, disasm.Compare(tt.old, tt.cur), nil)
			if tt.want == "" {
				none(t, fs)
				return
			}
			f := only(t, fs, pipeline.IDELFCallAdded, pipeline.SeverityHigh, ch)
			if f.Evidence["function"] != tt.want {
				t.Errorf("function %v, want %s", f.Evidence["function"], tt.want)
			}
		})
	}
}
