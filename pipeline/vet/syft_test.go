package vet_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/fixture"
)

// TestSyftSBOMPair: an openssl update (3.0.17 to 3.0.22, real Debian
// packages) declared by the SBOM pair syft wrote of its two root trees
// (pipeline/disclose/testdata/syft, by scripts/mksboms) discloses the
// changes of the files syft ties to the packages, on squashfs images of the
// same trees. Only /etc/fw-release, which no package owns, stays undisclosed
// where syft ties every file (SPDX with a dpkg database); the other shapes
// disclose what evidences a package: its binary, its database entries.
func TestSyftSBOMPair(t *testing.T) {
	for _, tool := range []string{"mksquashfs", "dpkg-deb"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (run make test's set-up)", tool)
		}
	}
	root := fixture.Root(t)
	if _, err := os.Stat(filepath.Join(root, "testdata", "build", "debs-corpus")); err != nil {
		t.Skip("no Debian packages of the corpus (run scripts/mkcorpus)")
	}
	dir := t.TempDir()
	trees := filepath.Join(dir, "trees")
	if out, err := exec.Command(filepath.Join(root, "scripts", "mksboms"), "--trees", trees).CombinedOutput(); err != nil {
		t.Fatalf("scripts/mksboms --trees: %v\n%s", err, out)
	}
	image := func(shape, version string) string {
		img := filepath.Join(dir, shape+"-"+version+".sqfs")
		if _, err := os.Stat(img); err == nil {
			return img
		}
		tree := filepath.Join(trees, shape, version, "rt3200-"+version)
		if out, err := exec.Command("mksquashfs", tree, img, "-noappend", "-all-root", "-no-progress", "-quiet").CombinedOutput(); err != nil {
			t.Fatalf("mksquashfs: %v\n%s", err, out)
		}
		return img
	}
	libcrypto := "/usr/lib/x86_64-linux-gnu/libcrypto.so.3"
	tests := []struct {
		shape, format string
		// Changes that must be disclosed, and that must not be.
		disclosed, undisclosed []string
		// How many changes are disclosed: with a dpkg database, all but
		// /etc/fw-release of the 210; otherwise the few that evidence a
		// package and changed (of 207 changes, 208 with opkg's database).
		n int
	}{
		{"dpkg", "spdx", []string{"/usr/bin/openssl", libcrypto, "/usr/lib/x86_64-linux-gnu/libssl.so.3", "/var/lib/dpkg/status"},
			[]string{"/etc/fw-release"}, 209},
		// syft's CycloneDX gives a deb no files but its database entries.
		{"dpkg", "cdx", []string{"/var/lib/dpkg/status", "/var/lib/dpkg/info/openssl.md5sums"},
			[]string{"/etc/fw-release", "/usr/bin/openssl", libcrypto}, 3},
		// The binary classifier finds openssl in /usr/bin/openssl only.
		{"bare", "spdx", []string{"/usr/bin/openssl"}, []string{"/etc/fw-release", libcrypto}, 1},
		{"bare", "cdx", []string{"/usr/bin/openssl"}, []string{"/etc/fw-release", libcrypto}, 1},
		{"opkg", "spdx", []string{"/usr/bin/openssl", "/usr/lib/opkg/status"}, []string{"/etc/fw-release", libcrypto}, 2},
	}
	log := logrus.New()
	log.SetLevel(logrus.ErrorLevel)
	for _, tt := range tests {
		t.Run(tt.shape+"/"+tt.format, func(t *testing.T) {
			sbom := func(v string) string {
				return filepath.Join(root, "pipeline", "disclose", "testdata", "syft", tt.shape+"-"+v+"."+tt.format+".json")
			}
			rep := runVet(t, log, image(tt.shape, "1.0.0"), image(tt.shape, "1.0.1"), []string{sbom("1.0.0"), sbom("1.0.1")})
			disclosed := map[string]bool{}
			var undisclosed []string
			for _, c := range rep.Changes {
				disclosed[c.Path] = c.Disclosed
				if !c.Disclosed {
					undisclosed = append(undisclosed, c.Path)
				}
			}
			if n := len(rep.Changes) - len(undisclosed); n != tt.n {
				t.Errorf("the SBOM pair discloses %d of %d changes, want %d", n, len(rep.Changes), tt.n)
			}
			for _, p := range tt.disclosed {
				if d, ok := disclosed[p]; !ok || !d {
					t.Errorf("%s: changed %v, disclosed %v; want a disclosed change", p, ok, d)
				}
			}
			for _, p := range tt.undisclosed {
				if d, ok := disclosed[p]; !ok || d {
					t.Errorf("%s: changed %v, disclosed %v; want an undisclosed change", p, ok, d)
				}
			}
			for _, c := range rep.Checks {
				if c.Name == "manifest" && c.Status == pipeline.CheckFail {
					t.Errorf("manifest check failed: %s", c.Detail)
				}
			}
		})
	}
}
