package analyze

import (
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
	for _, arch := range []string{"x86_64", "mipsel", "armhf", "arm64"} {
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
