package analyze

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/fwvet/fwvet/pipeline"
)

// TestExplain: the function-level diff of the stripped httpd of
// scripts/fixtures/calls.sh, for each architecture. The plant shows as one
// changed function that newly calls system (and the strncmp of its key),
// with no call that only moved to a renamed sub_ADDR reported; a rebuild
// from another build path is the same code, not disassembled; a path that
// names no modified binary is an error that says so.
func TestExplain(t *testing.T) {
	for _, arch := range []string{"x86_64", "i686", "mipsel", "mips", "armhf", "arm64"} {
		t.Run(arch, func(t *testing.T) {
			base := fileEntry("/usr/sbin/httpd", callsFixture(t, arch+"-base"), 0o755)
			explain := func(variant, path string) (*pipeline.FunctionDiff, error) {
				ch := changed(base, fileEntry("/usr/sbin/httpd", callsFixture(t, arch+"-"+variant), 0o755), "content")
				return Explain(context.Background(), &pipeline.AnalysisInput{Changes: []*pipeline.Change{ch}, WorkDir: t.TempDir()}, path)
			}
			fd, err := explain("plant", "/usr/sbin/httpd")
			if err != nil {
				t.Fatal(err)
			}
			if fd.SameCode || fd.Architecture == "" || !fd.Stripped {
				t.Errorf("plant: same code %v, architecture %q, stripped %v", fd.SameCode, fd.Architecture, fd.Stripped)
			}
			var gained []string
			for _, f := range fd.Changed {
				if slices.Contains(f.CallsAdded, "system") {
					gained = append(gained, f.Name)
					if !slices.Contains(f.CallsAdded, "strncmp") && !slices.Contains(f.CallsAdded, "strstr") {
						t.Errorf("%s newly calls %q: the compare of the key is missing", f.Name, f.CallsAdded)
					}
				}
			}
			for _, f := range fd.Added {
				if slices.Contains(f.Calls, "system") {
					gained = append(gained, f.Name)
				}
			}
			// The key the plant compares is a string the changed
			// function newly references and compares.
			var key bool
			for _, f := range fd.Changed {
				key = key || slices.Contains(f.StringsAdded, "pelican-7731") && slices.Contains(f.ComparedAdded, "pelican-7731")
			}
			for _, f := range fd.Added {
				key = key || slices.Contains(f.Strings, "pelican-7731")
			}
			if !key {
				t.Errorf("no function newly references the key\n%+v", fd)
			}
			if len(gained) != 1 {
				t.Errorf("functions gaining system: %q, want the one status handler\n%+v", gained, fd)
			}
			if fd.Unchanged+len(fd.Changed) == 0 {
				t.Error("no function matched between the versions")
			}

			// A key that is a number is a constant the function newly
			// uses, whether the compiler loads it whole or in two halves.
			fd, err = explain("magicnum", "/usr/sbin/httpd")
			if err != nil {
				t.Fatal(err)
			}
			var users []string
			for _, f := range fd.Changed {
				if slices.Contains(f.ConstantsAdded, "0x2a5f1c3b") {
					users = append(users, f.Name)
				}
			}
			for _, f := range fd.Added {
				if slices.Contains(f.Constants, "0x2a5f1c3b") {
					users = append(users, f.Name)
				}
			}
			if len(users) != 1 {
				t.Errorf("functions newly using 0x2a5f1c3b: %q, want the ping handler\n%+v", users, fd)
			}
			// The plant uses no new constant beyond the string lengths and
			// the like its new code needs: none of the key's.
			if fd, err := explain("rebuilt", "/usr/sbin/httpd"); err == nil {
				for _, f := range fd.Changed {
					if len(f.ConstantsAdded) > 0 {
						t.Errorf("rebuilt: %s newly uses %q", f.Name, f.ConstantsAdded)
					}
				}
			}

			fd, err = explain("rebuilt", "/usr/sbin/httpd")
			if err != nil || !fd.SameCode || len(fd.Changed)+len(fd.Added)+len(fd.Removed) != 0 || fd.Architecture == "" {
				t.Errorf("rebuilt: %+v, %v; want the same code", fd, err)
			}
			if _, err := explain("plant", "/usr/sbin/telnetd"); !errors.Is(err, ErrNotExplainable) {
				t.Errorf("explaining a path not in the changes: %v, want ErrNotExplainable", err)
			}
		})
	}
	old := fileEntry("/etc/banner", "hello 1.0\n", 0o644)
	ch := changed(old, fileEntry("/etc/banner", "hello 1.1\n", 0o644), "content")
	if _, err := Explain(context.Background(), &pipeline.AnalysisInput{Changes: []*pipeline.Change{ch}, WorkDir: t.TempDir()}, "/etc/banner"); !errors.Is(err, ErrNotExplainable) {
		t.Errorf("explaining a text file: %v, want ErrNotExplainable", err)
	}
}
