package analyze

import (
	"bytes"
	"debug/elf"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/fwvet/fwvet/pipeline"
)

// patchSource is a program with strings to patch: an address in a config
// string, and a long run to change in many places.
var patchSource = `#include <stdio.h>
const char server[] = "server=203.0.113.9;port=8443";
const char table[] = "` + strings.Repeat("ABCDEFGHIJKLMNOP", 20) + `";
int main(int argc, char **argv) { puts(server); puts(table + argc); return 0; }
`

// patchedBinary builds the program and returns its bytes with the given
// edits applied; each edit replaces, at the offset of old, old with new.
func patchedBinary(t *testing.T, edit func(b []byte)) (orig, patched []byte) {
	t.Helper()
	orig = gccBuild(t, patchSource, "-Wl,--build-id=sha1")
	patched = bytes.Clone(orig)
	edit(patched)
	if len(patched) != len(orig) {
		t.Fatal("an edit changed the size")
	}
	return orig, patched
}

func replaceOnce(t *testing.T, b []byte, old, new string) int {
	t.Helper()
	if len(old) != len(new) {
		t.Fatalf("%q and %q differ in length", old, new)
	}
	i := bytes.Index(b, []byte(old))
	if i < 0 || bytes.Count(b, []byte(old)) != 1 {
		t.Fatalf("%q is not in the binary exactly once", old)
	}
	copy(b[i:], new)
	return i
}

// buildIDRange is where the build id's descriptor lies in an ELF file.
func buildIDRange(t *testing.T, b []byte) (off, n int) {
	t.Helper()
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	s := f.Section(".note.gnu.build-id")
	if s == nil {
		t.Fatal("no .note.gnu.build-id section")
	}
	// namesz, descsz, type, "GNU\0", then the descriptor.
	return int(s.Offset) + 16, int(s.Size) - 16
}

func TestPatchedInPlace(t *testing.T) {
	tableAt := func(b []byte) int { return bytes.Index(b, []byte(strings.Repeat("ABCDEFGHIJKLMNOP", 20))) }
	flip := func(b []byte, offs ...int) {
		for _, o := range offs {
			b[o] ^= 0x20 // 'A' → 'a': still printable
		}
	}
	var serverAt int
	const (
		oldServer = "server=203.0.113.9;port=8443"
		newServer = "server=198.51.10.9;port=8443"
	)
	tests := []struct {
		name string
		edit func(t *testing.T, b []byte)
		want func(orig []byte) []patchEdit // nil: not a patch
		msg  string
	}{
		{
			name: "a string of the same length replaced",
			edit: func(t *testing.T, b []byte) { serverAt = replaceOnce(t, b, oldServer, newServer) },
			want: func([]byte) []patchEdit {
				// "203.0.113.9" → "198.51.10.9": bytes 0 to 8 of the address differ.
				return []patchEdit{{Offset: int64(serverAt + len("server=")), Length: 9, Old: oldServer, New: newServer, Section: ".rodata"}}
			},
			msg: fmt.Sprintf("patched in place: %q → %q at 0x", oldServer, newServer),
		},
		{
			name: "a string replaced and the build id changed",
			edit: func(t *testing.T, b []byte) {
				serverAt = replaceOnce(t, b, oldServer, newServer)
				off, n := buildIDRange(t, b)
				flip(b, off, off+n-1)
			},
			want: func([]byte) []patchEdit {
				return []patchEdit{{Offset: int64(serverAt + len("server=")), Length: 9, Old: oldServer, New: newServer, Section: ".rodata"}}
			},
			msg: "patched in place",
		},
		{
			name: "eight places changed",
			edit: func(t *testing.T, b []byte) {
				at := tableAt(b)
				for i := range 8 {
					flip(b, at+16*i)
				}
			},
			want: func(orig []byte) []patchEdit {
				at := tableAt(orig)
				var out []patchEdit
				for i := range 8 {
					out = append(out, patchEdit{Offset: int64(at + 16*i), Length: 1, Section: ".rodata"})
				}
				return out
			},
			msg: "and 5 more",
		},
		{
			name: "64 bytes changed in one place",
			edit: func(t *testing.T, b []byte) {
				at := tableAt(b)
				for i := range 64 {
					flip(b, at+i)
				}
			},
			want: func(orig []byte) []patchEdit {
				return []patchEdit{{Offset: int64(tableAt(orig)), Length: 64, Section: ".rodata"}}
			},
			msg: "patched in place",
		},
		// Not patches.
		{
			name: "only the build id changed",
			edit: func(t *testing.T, b []byte) {
				off, n := buildIDRange(t, b)
				for i := range n {
					b[off+i] ^= 0xff
				}
			},
		},
		{
			name: "nine places changed",
			edit: func(t *testing.T, b []byte) {
				at := tableAt(b)
				for i := range 9 {
					flip(b, at+16*i)
				}
			},
		},
		{
			name: "65 bytes changed in one place",
			edit: func(t *testing.T, b []byte) {
				at := tableAt(b)
				for i := range 65 {
					flip(b, at+i)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orig, patched := patchedBinary(t, func(b []byte) { tt.edit(t, b) })
			ch := changed(fileEntry("/usr/sbin/agent", string(orig), 0o755), fileEntry("/usr/sbin/agent", string(patched), 0o755), "content")
			got := analyzeWith(t, Files{}, scanned(t, ch))
			if tt.want == nil {
				f := only(t, got, pipeline.IDFileModified, pipeline.SeverityInfo, ch)
				if p, ok := f.Evidence["patched"]; ok {
					t.Errorf("evidence patched = %#v, want none", p)
				}
				contains(t, "message", f.Message, "content changed")
				return
			}
			f := only(t, got, pipeline.IDFileModified, pipeline.SeverityMedium, ch)
			contains(t, "message", f.Message, tt.msg)
			edits, ok := f.Evidence["patched"].([]patchEdit)
			if !ok {
				t.Fatalf("evidence patched = %#v", f.Evidence["patched"])
			}
			want := tt.want(orig)
			if len(edits) != len(want) {
				t.Fatalf("%d edits, want %d: %+v", len(edits), len(want), edits)
			}
			for i, w := range want {
				e := edits[i]
				if e.Offset != w.Offset || e.Length != w.Length || e.Section != w.Section {
					t.Errorf("edit %d at %#x+%d in %q, want %#x+%d in %q", i, e.Offset, e.Length, e.Section, w.Offset, w.Length, w.Section)
				}
				if w.Old != "" && (e.Old != w.Old || e.New != w.New) {
					t.Errorf("edit %d %q → %q, want %q → %q", i, e.Old, e.New, w.Old, w.New)
				}
				// The strings shown are the bytes at the place, before and after.
				if !strings.Contains(e.Old, string(orig[e.Offset:e.Offset+e.Length])) || !strings.Contains(e.New, string(patched[e.Offset:e.Offset+e.Length])) {
					t.Errorf("edit %d %q → %q does not show the bytes changed", i, e.Old, e.New)
				}
			}
			for k, v := range map[string]any{"old_size": int64(len(orig)), "new_size": int64(len(orig)), "old_sha256": ch.Old.SHA256, "new_sha256": ch.New.SHA256} {
				if f.Evidence[k] != v {
					t.Errorf("evidence %s = %v, want %v", k, f.Evidence[k], v)
				}
			}
		})
	}
}

// TestPatchedNotBinaries: text and data of no known format are compared as
// files, never as patches; nor are two versions of different sizes.
func TestPatchedNotBinaries(t *testing.T) {
	bin := gccBuild(t, patchSource, "-Wl,--build-id=sha1")
	grown := append(bytes.Clone(bin), 0)
	tests := []struct {
		name     string
		old, new string
	}{
		{"text file of the same size", "server=203.0.113.9\nport=8443\n", "server=198.51.10.9\nport=8443\n"},
		{"script of the same size", "#!/bin/sh\ntelnetd -p 23\n", "#!/bin/sh\ntelnetd -p 24\n"},
		{"unknown data of the same size", "\x01\x02\x03\x04\x05AAAA", "\x01\x02\x03\x04\x05AAAB"},
		{"binary that grew by one byte", string(bin), string(grown)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ch := changed(fileEntry("/usr/sbin/x", tt.old, 0o755), fileEntry("/usr/sbin/x", tt.new, 0o755), "content")
			f := only(t, analyzeWith(t, Files{}, scanned(t, ch)), pipeline.IDFileModified, pipeline.SeverityInfo, ch)
			if p, ok := f.Evidence["patched"]; ok {
				t.Errorf("evidence patched = %#v, want none", p)
			}
		})
	}
}

// TestPatchedOtherFormat: a same-size binary of another known format is a
// patch too, with no section named.
func TestPatchedOtherFormat(t *testing.T) {
	old := "\x1f\x8b\x08\x00" + strings.Repeat("\x00", 32) + "update.example.com" + strings.Repeat("\x00", 32)
	cur := strings.Replace(old, "update.example.com", "update.example.org", 1)
	ch := changed(fileEntry("/etc/x.gz", old, 0o644), fileEntry("/etc/x.gz", cur, 0o644), "content")
	f := only(t, analyzeWith(t, Files{}, scanned(t, ch)), pipeline.IDFileModified, pipeline.SeverityMedium, ch)
	want := []patchEdit{{Offset: int64(strings.Index(old, "com")), Length: 3, Old: "update.example.com", New: "update.example.org"}}
	if !reflect.DeepEqual(f.Evidence["patched"], want) {
		t.Errorf("patched = %#v, want %#v", f.Evidence["patched"], want)
	}
}
