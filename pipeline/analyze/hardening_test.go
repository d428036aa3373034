package analyze

import (
	"bytes"
	"debug/elf"
	"strings"
	"testing"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/fixture"
)

// TestHardeningRegressed: one daemon built by the real compilers for
// x86-64, MIPS (little endian), 32-bit ARM and AArch64
// (scripts/fixtures/hardening.sh), hardened, then with one measure taken
// away. Each loss is one hardening-regressed finding naming it; a rebuild
// from another build path with the same flags, and a binary that gains
// hardening, are not.
func TestHardeningRegressed(t *testing.T) {
	for _, arch := range []string{"x86_64", "i686", "mipsel", "mips", "armhf", "arm64"} {
		for _, tt := range []struct {
			variant string
			lost    string // "" for no finding
		}{
			{"rebuilt", ""},
			{"no-ssp", "stack protector"},
			{"no-fortify", "FORTIFY"},
			{"no-pie", "PIE"},
			{"partial-relro", "RELRO (full → partial)"},
			{"no-relro", "RELRO (full → none)"},
			{"execstack", "NX"},
		} {
			t.Run(arch+"/"+tt.variant, func(t *testing.T) {
				old := fileEntry("/usr/sbin/diagd", string(fixture.ReadFile(t, "fw/hardening/"+arch+"-hardened")), 0o755)
				cur := fileEntry("/usr/sbin/diagd", string(fixture.ReadFile(t, "fw/hardening/"+arch+"-"+tt.variant)), 0o755)
				ch := changed(old, cur, "content")
				var fs []pipeline.Finding
				for _, f := range analyzeWith(t, ELF{}, scanned(t, ch)) {
					if f.ID == pipeline.IDHardeningRegressed {
						fs = append(fs, f)
					}
				}
				if tt.lost == "" {
					none(t, fs)
					return
				}
				f := only(t, fs, pipeline.IDHardeningRegressed, pipeline.SeverityMedium, ch)
				lost, _ := f.Evidence["lost"].([]string)
				if len(lost) != 1 || !strings.HasPrefix(lost[0], tt.lost) {
					t.Errorf("lost %q, want only %q", lost, tt.lost)
				}
				if m, _ := f.Evidence["machine"].(string); m == "" {
					t.Error("no machine in the evidence")
				}
			})
		}
		// Gaining hardening is no regression.
		t.Run(arch+"/gained", func(t *testing.T) {
			old := fileEntry("/usr/sbin/diagd", string(fixture.ReadFile(t, "fw/hardening/"+arch+"-no-ssp")), 0o755)
			cur := fileEntry("/usr/sbin/diagd", string(fixture.ReadFile(t, "fw/hardening/"+arch+"-hardened")), 0o755)
			for _, f := range analyzeWith(t, ELF{}, scanned(t, changed(old, cur, "content"))) {
				if f.ID == pipeline.IDHardeningRegressed {
					t.Errorf("gaining a stack protector reported: %s", f.Message)
				}
			}
		})
	}
}

// sstrip removes a file's section header table as sstrip does: the loader
// needs none, and router firmware often ships without.
func sstrip(t *testing.T, b []byte) []byte {
	t.Helper()
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out := append([]byte(nil), b...)
	bo := f.ByteOrder
	if f.Class == elf.ELFCLASS64 {
		bo.PutUint64(out[0x28:], 0) // e_shoff
		bo.PutUint16(out[0x3c:], 0) // e_shnum
		bo.PutUint16(out[0x3e:], 0) // e_shstrndx
	} else {
		bo.PutUint32(out[0x20:], 0)
		bo.PutUint16(out[0x30:], 0)
		bo.PutUint16(out[0x32:], 0)
	}
	return out
}

// TestHardeningWithoutSections: BIND_NOW is read from PT_DYNAMIC when
// the section table is gone, so that a sstripped full-RELRO binary keeps
// its full RELRO and no regression is reported against its unstripped self.
func TestHardeningWithoutSections(t *testing.T) {
	for _, arch := range []string{"x86_64", "i686", "mipsel", "mips", "armhf", "arm64"} {
		t.Run(arch, func(t *testing.T) {
			b := fixture.ReadFile(t, "fw/hardening/"+arch+"-hardened")
			for name, data := range map[string][]byte{"with sections": b, "sstripped": sstrip(t, b)} {
				f, err := elf.NewFile(bytes.NewReader(data))
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				h, ok := readHardening(f, &elfInfo{})
				if !ok || h.RELRO != "full" {
					t.Errorf("%s: RELRO %q (ok %v), want full", name, h.RELRO, ok)
				}
			}
		})
	}
}
