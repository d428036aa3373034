package disclose

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/fwvet/fwvet/pipeline"
)

// The SBOMs under testdata/syft are syft v1.57.2's, made by scripts/mksboms
// of two root trees: rt3200-1.0.0 with openssl and libssl3 3.0.17-1~deb12u2,
// rt3200-1.0.1 with 3.0.22-1~deb12u2 (real Debian packages), each with an
// /etc/fw-release no package owns. Each shape is a tree with a dpkg
// database, with none (bare), with an opkg database, and the bare tree
// scanned with --source-name and --source-version (named).

// dpkgFiles reads testdata/syft/dpkg-files.txt: the regular files each deb
// installs, from dpkg-deb -c.
func dpkgFiles(t *testing.T) []string {
	t.Helper()
	f, err := os.Open("testdata/syft/dpkg-files.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 3 {
			t.Fatalf("dpkg-files.txt: line %q is not PACKAGE VERSION PATH", sc.Text())
		}
		seen[fields[2]] = true
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 216 {
		t.Fatalf("dpkg-files.txt lists %d regular files, want openssl's 207 and libssl3's 9", len(seen))
	}
	var out []string
	for p := range seen {
		out = append(out, p)
	}
	return out
}

func sorted(paths ...[]string) []string {
	set := map[string]bool{}
	for _, ps := range paths {
		for _, p := range ps {
			set[p] = true
		}
	}
	out := make([]string, 0, len(set))
	for p := range set {
		out = append(out, escapeGlob(p))
	}
	sort.Strings(out)
	return out
}

func TestSyftSBOMs(t *testing.T) {
	// What each shape ties a package to, besides its regular files in the
	// dpkg shape's SPDX: the files syft says it was found by.
	dpkgEvidence := []string{
		"/var/lib/dpkg/status",
		"/var/lib/dpkg/info/openssl.conffiles", "/var/lib/dpkg/info/openssl.list", "/var/lib/dpkg/info/openssl.md5sums",
		"/var/lib/dpkg/info/libssl3:amd64.md5sums",
		"/usr/share/doc/openssl/copyright", "/usr/share/doc/libssl3/copyright",
	}
	bare := []string{"/usr/bin/openssl"}
	opkg := []string{
		"/usr/bin/openssl", // the binary classifier's openssl 3.0.17
		"/usr/lib/opkg/status", "/usr/lib/opkg/info/openssl.list", "/usr/lib/opkg/info/libssl3.list",
		"/usr/share/doc/openssl/copyright", "/usr/share/doc/libssl3/copyright",
	}
	tests := []struct {
		shape, format string
		changed       []string
		// Product and versions of the firmware: only the named shape has them.
		product, previous, version string
	}{
		// syft's SPDX ties a dpkg package to every regular file it
		// installs (CONTAINS, from its md5sums and conffiles).
		{shape: "dpkg", format: "spdx", changed: sorted(dpkgFiles(t), dpkgEvidence)},
		// syft's CycloneDX has no package's files, only where it was found.
		{shape: "dpkg", format: "cdx", changed: sorted(dpkgEvidence)},
		{shape: "bare", format: "spdx", changed: sorted(bare)},
		{shape: "bare", format: "cdx", changed: sorted(bare)},
		{shape: "bare", format: "cdx16", changed: sorted(bare)},
		{shape: "opkg", format: "spdx", changed: sorted(opkg)},
		{shape: "opkg", format: "cdx", changed: sorted(opkg)},
		{shape: "named", format: "spdx", changed: sorted(bare), product: "RT-3200", previous: "1.0.0", version: "1.0.1"},
		{shape: "named", format: "cdx", changed: sorted(bare), product: "RT-3200", previous: "1.0.0", version: "1.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.shape+"/"+tt.format, func(t *testing.T) {
			file := func(v string) string {
				return filepath.Join("testdata", "syft", tt.shape+"-"+v+"."+tt.format+".json")
			}
			m, err := LoadSBOMPair(file("1.0.0"), file("1.0.1"))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(m.Changed, tt.changed) {
				t.Errorf("changed %d paths, want %d\n got %q\nwant %q", len(m.Changed), len(tt.changed), m.Changed, tt.changed)
			}
			// Both versions install the same files.
			if len(m.Added)+len(m.Removed) != 0 {
				t.Errorf("added %q, removed %q; want none", m.Added, m.Removed)
			}
			// The scanned directory (rt3200-1.0.0, rt3200-1.0.1) is no
			// firmware: it has no version to hold the image to.
			if m.Product != tt.product || m.PreviousVersion != tt.previous || m.Version != tt.version || m.ImageSHA256 != "" {
				t.Errorf("firmware %q %q → %q (image_sha256 %q), want %q %q → %q", m.Product, m.PreviousVersion, m.Version, m.ImageSHA256,
					tt.product, tt.previous, tt.version)
			}
			if slices.Contains(m.Changed, "/etc/fw-release") {
				t.Errorf("/etc/fw-release declared changed: no package owns it")
			}
			// The manifest discloses the openssl update's changes to the
			// candidate, and not the firmware's own file.
			for _, p := range []string{"/usr/bin/openssl", "/etc/fw-release", "/usr/lib/x86_64-linux-gnu/libcrypto.so.3"} {
				ch := change(pipeline.ChangeModified, p)
				check := disclosed(m, Subject{}, []*pipeline.Change{ch}, nil)
				// Not bound to an image (syft gives the scanned tree no
				// digest), the check is skipped, never failed.
				if check.Status == pipeline.CheckFail {
					t.Fatalf("check %+v, want no failure", check)
				}
				if want := slices.Contains(m.Changed, escapeGlob(p)); ch.Disclosed != want {
					t.Errorf("%s: disclosed %v, want %v", p, ch.Disclosed, want)
				}
			}
		})
	}
}

func TestSyftLocation(t *testing.T) {
	for _, tt := range []struct {
		name string
		want bool
	}{
		{"syft:location:0:path", true},
		{"syft:location:12:path", true},
		{"syft:location::path", false},
		{"syft:location:0:layerID", false},
		{"syft:location:x:path", false},
		{"syft:package:foundBy", false},
		{"syft:location:0:path:x", false},
		{"cdx:location:0:path", false},
	} {
		if got := syftLocation(tt.name); got != tt.want {
			t.Errorf("syftLocation(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestDescribedRoot: the element an SBOM describes is the firmware when it
// has a version or a SHA-256; without either (the directory syft scanned,
// named after it) it names nothing, and its files are still nobody's.
func TestDescribedRoot(t *testing.T) {
	tests := []struct {
		name, version, sha256 string
		wantProduct           string
	}{
		{"scanned dir", "", "", ""},
		{"RT-3200", "1.0.1", "", "RT-3200"},
		{"RT-3200", "", rt3200Digest, "RT-3200"},
	}
	dir := t.TempDir()
	for i, tt := range tests {
		var sums, hashes string
		if tt.sha256 != "" {
			sums = `, "checksums": [{"algorithm": "SHA256", "checksumValue": "` + tt.sha256 + `"}]`
			hashes = `, "hashes": [{"alg": "SHA-256", "content": "` + tt.sha256 + `"}]`
		}
		spdx := writeFile(t, dir, fmt.Sprintf("%d.spdx.json", i), spdxDoc(`[
			{"name": "`+tt.name+`", "SPDXID": "SPDXRef-root", "versionInfo": "`+tt.version+`", "downloadLocation": "NOASSERTION", "filesAnalyzed": true`+sums+`}]`,
			`[{"fileName": "etc/fw-release", "SPDXID": "SPDXRef-f", "checksums": [{"algorithm": "SHA1", "checksumValue": "1111111111111111111111111111111111111111"}]}]`,
			`[{"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": "SPDXRef-root"},
			  {"spdxElementId": "SPDXRef-root", "relationshipType": "CONTAINS", "relatedSpdxElement": "SPDXRef-f"}]`))
		cdx := writeFile(t, dir, fmt.Sprintf("%d.cdx.json", i), `{"bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1,
			"metadata": {"component": {"type": "file", "name": "`+tt.name+`", "version": "`+tt.version+`"`+hashes+`,
			 "components": [{"type": "file", "name": "/etc/fw-release"}]}}}`)
		for _, f := range []string{spdx, cdx} {
			t.Run(filepath.Base(f), func(t *testing.T) {
				base := sbomFiles["CycloneDX"][0]
				m, err := LoadSBOMPair(base, f)
				if err != nil {
					t.Fatal(err)
				}
				if m.Product != tt.wantProduct || m.Version != tt.version || m.ImageSHA256 != tt.sha256 {
					t.Errorf("product %q, version %q, image_sha256 %q; want %q, %q, %q",
						m.Product, m.Version, m.ImageSHA256, tt.wantProduct, tt.version, tt.sha256)
				}
				if slices.Contains(m.Changed, "/etc/fw-release") || slices.Contains(m.Added, "/etc/fw-release") {
					t.Errorf("the described root's file declared: %+v", *m)
				}
			})
		}
	}
}
