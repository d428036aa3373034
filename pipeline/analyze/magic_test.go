package analyze

import (
	"testing"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/disasm"
)

// TestSecretLike: the strings taken for a key or password, and the
// routes, options and words that are not.
func TestSecretLike(t *testing.T) {
	for s, want := range map[string]bool{
		"pelican-7731":            true,
		"w302r_mfg":               true,
		"xmlset_roodkcableoj2884": true,
		"<<< %s(un='%s') = %u":    true, // a format string
		"letmein!":                true,
		"GET /version":            false,
		"--json":                  false,
		"/cgi-bin/login":          false,
		"password":                false,
		"ab1":                     false, // too short
		"v1.2.3":                  true,
	} {
		if got := secretLike(s); got != want {
			t.Errorf("secretLike(%q) = %v, want %v", s, got, want)
		}
	}
}

// TestMagicMatching: the rules on synthetic programs. A compare that
// moved to another function, or of a string the old binary referenced, is
// not new; one in a new function is.
func TestMagicMatching(t *testing.T) {
	fn := func(name string, addr uint64, hash string, compared ...string) disasm.Func {
		return disasm.Func{Name: name, Addr: addr, Size: 16, CodeHash: hash, Calls: []string{"strcmp"}, Strings: compared, Compared: compared}
	}
	prog := func(fs ...disasm.Func) *disasm.Program {
		return &disasm.Program{Arch: "mipsel", Funcs: fs, Imports: map[string]bool{"strcmp": true}}
	}
	ch := changed(fileEntry("/usr/sbin/httpd", "a", 0o755), fileEntry("/usr/sbin/httpd", "b", 0o755), "content")
	for _, tt := range []struct {
		name     string
		old, cur *disasm.Program
		want     string
	}{
		{"planted", prog(fn("auth", 0x10, "a", "admin")), prog(fn("auth", 0x10, "b", "admin", "r00t-4u")), "auth"},
		{"moved", prog(fn("auth", 0x10, "a", "r00t-4u")), prog(fn("check", 0x40, "b", "r00t-4u")), ""},
		{"known string", prog(fn("auth", 0x10, "a"), disasm.Func{Name: "log", Addr: 0x30, Strings: []string{"r00t-4u"}}),
			prog(fn("auth", 0x10, "b", "r00t-4u")), ""},
		{"new function", prog(fn("auth", 0x10, "a")), prog(fn("auth", 0x10, "a"), fn("sub_80", 0x80, "c", "k3y-99")), "sub_80"},
		{"route", prog(fn("dispatch", 0x10, "a", "GET /")), prog(fn("dispatch", 0x10, "b", "GET /", "GET /version")), ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fs := magicFindings(ch, tt.old, tt.cur, disasm.Compare(tt.old, tt.cur), nil)
			if tt.want == "" {
				none(t, fs)
				return
			}
			f := only(t, fs, pipeline.IDMagicStringAdded, pipeline.SeverityHigh, ch)
			if f.Evidence["function"] != tt.want {
				t.Errorf("function %v, want %s", f.Evidence["function"], tt.want)
			}
		})
	}
}
