package analyze

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/fwvet/fwvet/pipeline"
)

// Programs for the ELF analyzer: the same tool before and after it gained
// a way in.
const (
	progPlain = `#include <stdio.h>
int main(int argc, char **argv) { puts("hello"); return 0; }
`
	progReworded = `#include <stdio.h>
int main(int argc, char **argv) { puts("hello, world"); return argc > 3; }
`
	progBackdoor = `#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
int main(int argc, char **argv) {
	puts("hello");
	if (argc > 5) { system(argv[1]); return socket(AF_INET, SOCK_STREAM, 0); }
	return 0;
}
`
	progShellString = `#include <stdio.h>
int main(int argc, char **argv) { puts(argc > 5 ? "/bin/sh" : "hello"); return 0; }
`
	progStaticSystem = `#include <stdio.h>
#include <stdlib.h>
int main(int argc, char **argv) { puts("hello"); return argc > 5 ? system(argv[1]) : 0; }
`
)

func TestELFImports(t *testing.T) {
	plain := gccBuild(t, progPlain)
	reworded := gccBuild(t, progReworded)
	backdoor := gccBuild(t, progBackdoor)
	movedInterp := gccBuild(t, progPlain, "-Wl,--dynamic-linker=/tmp/.x/ld.so")
	plainInfo, err := readELF(bytes.NewReader(plain), false)
	if err != nil {
		t.Fatal(err)
	}
	if plainInfo.interpreter == "" {
		t.Fatal("a dynamic program without an interpreter")
	}
	const bin = "/usr/bin/tool"
	mod := func(old, cur []byte) *pipeline.Change {
		return changed(fileEntry(bin, string(old), 0o755), fileEntry(bin, string(cur), 0o755), "content")
	}
	tests := []struct {
		name string
		ch   *pipeline.Change
		sev  pipeline.Severity // when a finding is wanted
		msg  string            // "" for no finding
		ev   map[string]any
	}{
		{
			name: "new exec and network imports",
			ch:   mod(plain, backdoor),
			sev:  pipeline.SeverityMedium,
			msg:  "newly imports socket (network), system (exec)",
			ev:   map[string]any{"imports_added": []string{"socket", "system"}, "linking": "dynamic"},
		},
		{
			name: "program interpreter moved out of /lib",
			ch:   mod(plain, movedInterp),
			sev:  pipeline.SeverityHigh,
			msg:  "program interpreter moved to /tmp/.x/ld.so",
			ev:   map[string]any{"interpreter": map[string]string{"old": plainInfo.interpreter, "new": "/tmp/.x/ld.so"}},
		},
		{name: "same imports", ch: mod(plain, reworded)},
		{name: "imports removed", ch: mod(backdoor, plain)},
		{name: "ELF that was not ELF before", ch: mod([]byte("#!/bin/sh\nexec tool.real\n"), backdoor)},
		{name: "ELF added", ch: added(fileEntry(bin, string(backdoor), 0o755))},
		{name: "truncated ELF", ch: mod(plain, backdoor[:200])},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := analyzeWith(t, ELF{}, scanned(t, tt.ch))
			if tt.msg == "" {
				none(t, got)
				return
			}
			f := only(t, got, pipeline.IDELFImportAdded, tt.sev, tt.ch)
			if f.Message != tt.msg {
				t.Errorf("message = %q, want %q", f.Message, tt.msg)
			}
			for k, v := range tt.ev {
				if !reflect.DeepEqual(f.Evidence[k], v) {
					t.Errorf("evidence %s = %#v, want %#v", k, f.Evidence[k], v)
				}
			}
			if _, ok := f.Evidence["build_id"]; !ok {
				t.Errorf("no build_id evidence for two different builds: %v", f.Evidence)
			}
			contains(t, "inspect", f.Evidence["inspect"].(string), "readelf", "DIR"+bin)
		})
	}
}

func TestELFStatic(t *testing.T) {
	plain := gccBuild(t, progPlain, "-static")
	reworded := gccBuild(t, progReworded, "-static")
	shell := gccBuild(t, progShellString, "-static")
	withSystem := gccBuild(t, progStaticSystem, "-static")
	if bytes.Contains(plain, []byte("/bin/sh")) {
		t.Fatal("the plain static program already holds /bin/sh")
	}
	const bin = "/sbin/tool"
	mod := func(old, cur []byte) *pipeline.Change {
		return changed(fileEntry(bin, string(old), 0o755), fileEntry(bin, string(cur), 0o755), "content")
	}
	tests := []struct {
		name    string
		ch      *pipeline.Change
		msg     []string // nil for no finding
		strings []string // evidence strings_added, nil for none
	}{
		{
			name:    "static binary gains /bin/sh",
			ch:      mod(plain, shell),
			msg:     []string{`newly imports "/bin/sh" (string)`},
			strings: []string{"/bin/sh"},
		},
		{
			name: "static binary gains system()",
			ch:   mod(plain, withSystem),
			msg:  []string{"system (exec, symbol)", `"/bin/sh" (string)`},
		},
		{name: "static binary reworded", ch: mod(plain, reworded)},
		{name: "static binary loses /bin/sh", ch: mod(shell, plain)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := analyzeWith(t, ELF{}, scanned(t, tt.ch))
			if tt.msg == nil {
				none(t, got)
				return
			}
			f := only(t, got, pipeline.IDELFImportAdded, pipeline.SeverityMedium, tt.ch)
			contains(t, "message", f.Message, tt.msg...)
			if f.Evidence["linking"] != "static" {
				t.Errorf("linking = %v, want static", f.Evidence["linking"])
			}
			if tt.strings != nil && !reflect.DeepEqual(f.Evidence["strings_added"], tt.strings) {
				t.Errorf("strings_added = %#v, want %#v", f.Evidence["strings_added"], tt.strings)
			}
			secs, _ := f.Evidence["sections_changed"].([]string)
			if !containsString(secs, ".text") && !containsString(secs, ".rodata") {
				t.Errorf("sections_changed = %q, want .text or .rodata among them", secs)
			}
		})
	}
}

// TestReadELF: static detection, imports and the interpreter, on real
// binaries and on a hand-made ELF header.
func TestReadELF(t *testing.T) {
	dyn, err := readELF(bytes.NewReader(gccBuild(t, progBackdoor)), false)
	if err != nil {
		t.Fatal(err)
	}
	if dyn.static || !dyn.imports["system"] || !dyn.imports["socket"] || !dyn.imports["puts"] || dyn.interpreter == "" || dyn.buildID == "" {
		t.Errorf("dynamic: static %t, imports %v, interpreter %q, build id %q", dyn.static, dyn.imports, dyn.interpreter, dyn.buildID)
	}
	if !reflect.DeepEqual(dyn.needed, []string{"libc.so.6"}) {
		t.Errorf("needed = %q, want [libc.so.6]", dyn.needed)
	}
	st, err := readELF(bytes.NewReader(gccBuild(t, progStaticSystem, "-static")), true)
	if err != nil {
		t.Fatal(err)
	}
	if !st.static || len(st.imports) != 0 || !st.symbols["system"] || !st.symbols["main"] || st.interpreter != "" {
		t.Errorf("static: static %t, %d imports, system %t, main %t, interpreter %q", st.static, len(st.imports), st.symbols["system"], st.symbols["main"], st.interpreter)
	}
	if s := st.sections[".text"]; s.sha256 == "" || s.size == 0 {
		t.Errorf(".text = %+v, want hashed", s)
	}
	// A minimal ELF64 header and nothing else: no sections, so no .dynamic.
	h := make([]byte, 64)
	copy(h, "\x7fELF\x02\x01\x01")
	h[16], h[18], h[20] = 2, 62, 1 // ET_EXEC, EM_X86_64, EV_CURRENT
	h[52] = 64                     // e_ehsize
	bare, err := readELF(bytes.NewReader(h), true)
	if err != nil {
		t.Fatalf("hand-made ELF: %v", err)
	}
	if !bare.static || len(bare.imports) != 0 || len(bare.sections) != 0 {
		t.Errorf("hand-made ELF: static %t, imports %v, sections %v", bare.static, bare.imports, bare.sections)
	}
	if _, err := readELF(bytes.NewReader([]byte("#!/bin/sh\n")), false); err == nil {
		t.Error("readELF took a script for ELF")
	}
}

func containsString(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
