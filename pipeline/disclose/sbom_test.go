package disclose

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/bmatcuk/doublestar/v4"

	"github.com/fwvet/fwvet/pipeline"
)

// The testdata SBOMs describe one release of an RT-3200 in both formats,
// each document naming its files in a different way:
//
//	package     1.0.0                                      1.0.1
//	RT-3200     the firmware, owns /etc/fw-release         the firmware, owns /etc/fw-release
//	busybox     1.36.1: /bin/busybox, its copyright        1.36.1: the same
//	dropbear    2022.83: /usr/sbin/dropbear,               2024.85: /usr/sbin/dropbear,
//	            /etc/init.d/S50dropbear,                   /etc/init.d/S50dropbear,
//	            /usr/lib/dropbear/old-helper               /usr/lib/dropbear/helper
//	acme-help   1.0: /www/help.html                        -
//	acme-doc    -                                          1.0: /usr/share/doc/acme/NEWS,
//	                                                       /usr/share/doc/acme/notes[1]*.txt
//	(none)      /etc/passwd                                /etc/passwd
var sbomFiles = map[string][2]string{
	"SPDX":      {"testdata/rt3200-1.0.0.spdx.json", "testdata/rt3200-1.0.1.spdx.json"},
	"CycloneDX": {"testdata/rt3200-1.0.0.cdx.json", "testdata/rt3200-1.0.1.cdx.json"},
}

const rt3200Digest = "5e2b9f0c7d1a8e3f4b6c9d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c"

// sbomPairs are every pairing of a baseline SBOM with a candidate SBOM,
// mixed formats included.
func sbomPairs() map[string][2]string {
	pairs := map[string][2]string{}
	for bf, b := range sbomFiles {
		for cf, c := range sbomFiles {
			pairs[bf+" baseline, "+cf+" candidate"] = [2]string{b[0], c[1]}
		}
	}
	return pairs
}

func TestLoadSBOMPair(t *testing.T) {
	want := &Manifest{
		Product:         "RT-3200",
		ImageSHA256:     rt3200Digest,
		PreviousVersion: "1.0.0",
		Version:         "1.0.1",
		// dropbear changed version: all its files, of either version.
		// acme-doc is new: its files, glob characters escaped.
		Changed: []string{
			"/etc/init.d/S50dropbear",
			"/usr/lib/dropbear/helper",
			"/usr/lib/dropbear/old-helper",
			"/usr/sbin/dropbear",
			"/usr/share/doc/acme/NEWS",
			`/usr/share/doc/acme/notes\[1\]\*.txt`,
		},
		Added: []string{
			"/usr/lib/dropbear/helper",
			"/usr/share/doc/acme/NEWS",
			`/usr/share/doc/acme/notes\[1\]\*.txt`,
		},
		// acme-help is gone, and so is a file of dropbear's old version.
		Removed: []string{"/usr/lib/dropbear/old-helper", "/www/help.html"},
	}
	for name, pair := range sbomPairs() {
		t.Run(name, func(t *testing.T) {
			m, err := LoadSBOMPair(pair[0], pair[1])
			if err != nil {
				t.Fatalf("LoadSBOMPair: %v", err)
			}
			if !reflect.DeepEqual(m, want) {
				t.Errorf("derived manifest\n%+v\nwant\n%+v", *m, *want)
			}
		})
	}

	t.Run("same SBOM twice declares nothing", func(t *testing.T) {
		for format, files := range sbomFiles {
			m, err := LoadSBOMPair(files[1], files[1])
			if err != nil {
				t.Fatalf("%s: %v", format, err)
			}
			if len(m.Changed)+len(m.Added)+len(m.Removed) != 0 || m.Version != "1.0.1" || m.PreviousVersion != "1.0.1" {
				t.Errorf("%s: %+v, want no declared path and version 1.0.1 on both sides", format, *m)
			}
		}
	})

	t.Run("no firmware described", func(t *testing.T) {
		dir := t.TempDir()
		spdx := writeFile(t, dir, "plain.spdx.json", spdxDoc(`[
			{"name": "zlib", "SPDXID": "SPDXRef-zlib", "versionInfo": "1.3", "downloadLocation": "NOASSERTION", "filesAnalyzed": true,
			 "checksums": [{"algorithm": "SHA256", "checksumValue": "`+rt3200Digest+`"}]}]`, `[]`, `[]`))
		cdx := writeFile(t, dir, "plain.cdx.json", cdxDoc(`[{"type": "library", "name": "zlib", "version": "1.3"}]`))
		// An element of another document is not this one's firmware, even
		// when a package here has the same identifier.
		external := writeFile(t, dir, "external.spdx.json", strings.Replace(spdxDoc(`[
			{"name": "zlib", "SPDXID": "SPDXRef-zlib", "versionInfo": "1.3", "downloadLocation": "NOASSERTION", "filesAnalyzed": true}]`, `[]`,
			`[{"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": "DocumentRef-ext:SPDXRef-zlib"}]`),
			`"packages"`, `"externalDocumentRefs": [{"externalDocumentId": "DocumentRef-ext", "spdxDocument": "https://acme.example/spdx/ext",
			 "checksum": {"algorithm": "SHA1", "checksumValue": "1111111111111111111111111111111111111111"}}], "packages"`, 1))
		for _, f := range []string{spdx, cdx, external} {
			m, err := LoadSBOMPair(f, f)
			if err != nil {
				t.Fatal(err)
			}
			if m.Version != "" || m.PreviousVersion != "" || m.ImageSHA256 != "" || m.Product != "" {
				t.Errorf("%s: version %q, previous %q, image_sha256 %q, product %q; want them empty when no firmware is described",
					f, m.Version, m.PreviousVersion, m.ImageSHA256, m.Product)
			}
		}
	})
}

func TestSBOMDisclosure(t *testing.T) {
	tests := []struct {
		kind pipeline.ChangeKind
		path string
		want bool
		why  string
	}{
		{pipeline.ChangeModified, "/usr/sbin/dropbear", true, "dropbear changed version"},
		{pipeline.ChangeMetadata, "/etc/init.d/S50dropbear", true, "dropbear changed version"},
		{pipeline.ChangeAdded, "/usr/lib/dropbear/helper", true, "new in dropbear's new version"},
		{pipeline.ChangeRemoved, "/usr/lib/dropbear/old-helper", true, "only in dropbear's old version"},
		{pipeline.ChangeRemoved, "/usr/sbin/dropbear", false, "both versions of dropbear have it"},
		{pipeline.ChangeAdded, "/usr/share/doc/acme/NEWS", true, "acme-doc is a new package"},
		{pipeline.ChangeModified, "/usr/share/doc/acme/NEWS", true, "a new package's file may have moved in"},
		{pipeline.ChangeAdded, "/usr/share/doc/acme/notes[1]*.txt", true, "the literal name"},
		{pipeline.ChangeAdded, "/usr/share/doc/acme/notes1.txt", false, "a declared name is never a glob"},
		{pipeline.ChangeAdded, "/usr/share/doc/acme/notes[1]-draft.txt", false, "a declared name is never a glob"},
		{pipeline.ChangeAdded, "/usr/share/doc/acme", false, "directories are not declared"},
		{pipeline.ChangeRemoved, "/www/help.html", true, "acme-help is gone"},
		{pipeline.ChangeModified, "/www/help.html", false, "acme-help's files are declared removed only"},
		{pipeline.ChangeModified, "/bin/busybox", false, "busybox kept its version"},
		{pipeline.ChangeModified, "/etc/passwd", false, "no package owns it"},
		{pipeline.ChangeAdded, "/etc/shadow", false, "in no SBOM"},
		{pipeline.ChangeModified, "/etc/fw-release", false, "the firmware's own file: its version changes every release"},
	}
	for name, pair := range sbomPairs() {
		m, err := LoadSBOMPair(pair[0], pair[1])
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, tt := range tests {
			t.Run(name+"/"+string(tt.kind)+tt.path, func(t *testing.T) {
				ch := change(tt.kind, tt.path)
				f := pipeline.NewFinding(pipeline.IDFileModified, tt.path, nil, "x")
				f.Key = ch.Key
				findings := []pipeline.Finding{f}
				check := disclosed(m, Subject{Digests: []string{"sha256:" + rt3200Digest}}, []*pipeline.Change{ch}, findings)
				if check.Status != pipeline.CheckPass {
					t.Fatalf("check %+v, want pass: the candidate's SBOM names this digest", check)
				}
				if ch.Disclosed != tt.want || findings[0].Disclosed != tt.want {
					t.Errorf("%s %s: change disclosed %v, finding disclosed %v; want %v (%s)", tt.kind, tt.path, ch.Disclosed, findings[0].Disclosed, tt.want, tt.why)
				}
			})
		}
	}

	t.Run("bound to the candidate's digest", func(t *testing.T) {
		m, err := LoadSBOMPair(sbomFiles["SPDX"][0], sbomFiles["CycloneDX"][1])
		if err != nil {
			t.Fatal(err)
		}
		ch := change(pipeline.ChangeModified, "/usr/sbin/dropbear")
		check := disclosed(m, Subject{Digests: []string{"sha256:" + digest}}, []*pipeline.Change{ch}, nil)
		if check.Status != pipeline.CheckFail || ch.Disclosed {
			t.Errorf("another image: check %+v, disclosed %v; want fail and nothing disclosed", check, ch.Disclosed)
		}
	})
}

func TestImagePath(t *testing.T) {
	tests := []struct {
		name, want string
		wantErr    string
	}{
		{name: "./usr/bin/x", want: "/usr/bin/x"},
		{name: "/usr/bin/x", want: "/usr/bin/x"},
		{name: "usr/bin/x", want: "/usr/bin/x"},
		{name: "//usr//bin/./x", want: "/usr/bin/x"},
		{name: "/usr/bin/x/", want: "/usr/bin/x"},
		{name: "../../etc/passwd", want: "/etc/passwd"},
		{name: "./a b/[c]*", want: "/a b/[c]*"},
		{name: "", wantErr: "without a name"},
		{name: "/", wantErr: "root directory"},
		{name: ".", wantErr: "root directory"},
		{name: "./", wantErr: "root directory"},
		{name: "/usr/..", wantErr: "root directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := imagePath(tt.name)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("imagePath(%q) = %q, %v; want an error mentioning %q", tt.name, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("imagePath(%q) = %q, %v; want %q", tt.name, got, err, tt.want)
			}
		})
	}
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// spdxDoc is a minimal SPDX 2.3 document with the given packages, files and
// relationships (JSON arrays).
func spdxDoc(packages, files, relationships string) string {
	return `{"spdxVersion": "SPDX-2.3", "dataLicense": "CC0-1.0", "SPDXID": "SPDXRef-DOCUMENT", "name": "t",
 "documentNamespace": "https://acme.example/spdx/t", "creationInfo": {"created": "2026-11-01T10:00:00Z", "creators": ["Tool: test"]},
 "packages": ` + packages + `, "files": ` + files + `, "relationships": ` + relationships + `}`
}

// cdxDoc is a minimal CycloneDX 1.5 BOM with the given components.
func cdxDoc(components string) string {
	return `{"bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1, "components": ` + components + `}`
}

func TestLoadSBOMErrors(t *testing.T) {
	good := sbomFiles["CycloneDX"][0]
	spdxValid, err := os.ReadFile(sbomFiles["SPDX"][1])
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, content, wantErr string
	}{
		{"empty file", ``, "not a JSON SBOM"},
		{"XML", `<bom xmlns="http://cyclonedx.org/schema/bom/1.5"/>`, "not a JSON SBOM"},
		{"truncated", string(spdxValid[:len(spdxValid)/2]), "not a JSON SBOM"},
		{"array", `[]`, "not a JSON SBOM"},
		{"release manifest", `{"version": "1.0.1", "changed": ["/etc/passwd"]}`, "neither an SPDX SBOM"},
		{"unknown document", `{"name": "x", "packages": []}`, "neither an SPDX SBOM"},
		{"both markers", `{"spdxVersion": "SPDX-2.3", "bomFormat": "CycloneDX"}`, "both spdxVersion and bomFormat"},
		{"SPDX unknown version", `{"spdxVersion": "SPDX-9.9"}`, "reading SPDX JSON"},
		{"SPDX bad identifier", strings.Replace(string(spdxValid), `"SPDXRef-Package-busybox"`, `"busybox"`, 1), "reading SPDX JSON"},
		{"SPDX wrong type", `{"spdxVersion": "SPDX-2.3", "packages": {}}`, "reading SPDX JSON"},
		{"SPDX package without a name", spdxDoc(`[{"SPDXID": "SPDXRef-p", "downloadLocation": "NOASSERTION"}]`, `[]`, `[]`), "without a name"},
		{"SPDX file naming the root", spdxDoc(
			`[{"name": "p", "SPDXID": "SPDXRef-p", "downloadLocation": "NOASSERTION", "filesAnalyzed": true, "hasFiles": ["SPDXRef-f"]}]`,
			`[{"fileName": "./", "SPDXID": "SPDXRef-f", "checksums": [{"algorithm": "SHA1", "checksumValue": "1111111111111111111111111111111111111111"}]}]`,
			`[]`), "root directory"},
		{"SPDX bad firmware digest", spdxDoc(
			`[{"name": "fw", "SPDXID": "SPDXRef-fw", "downloadLocation": "NOASSERTION", "checksums": [{"algorithm": "SHA256", "checksumValue": "abcd"}]}]`,
			`[]`, `[{"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": "SPDXRef-fw"}]`), "not 64 hex digits"},
		{"CycloneDX 1.4", `{"bomFormat": "CycloneDX", "specVersion": "1.4", "version": 1}`, "fwvet reads 1.5 and later"},
		{"CycloneDX unknown version", `{"bomFormat": "CycloneDX", "specVersion": "9.9", "version": 1}`, "reading CycloneDX JSON"},
		{"CycloneDX without version", `{"bomFormat": "CycloneDX", "version": 1}`, "without a specVersion"},
		{"CycloneDX other bomFormat", `{"bomFormat": "SPDX", "specVersion": "1.5", "version": 1}`, "not CycloneDX"},
		{"CycloneDX wrong type", `{"bomFormat": "CycloneDX", "specVersion": "1.5", "components": {}}`, "reading CycloneDX JSON"},
		{"CycloneDX component without a name", cdxDoc(`[{"type": "library", "version": "1"}]`), "without a name"},
		{"CycloneDX occurrence naming the root", cdxDoc(`[{"type": "library", "name": "p", "evidence": {"occurrences": [{"location": "/"}]}}]`), "root directory"},
		{"CycloneDX file component without a name", cdxDoc(`[{"type": "library", "name": "p", "components": [{"type": "file"}]}]`), "without a name"},
		{"CycloneDX bad firmware digest", `{"bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1,
			"metadata": {"component": {"type": "firmware", "name": "fw", "hashes": [{"alg": "SHA-256", "content": "` + strings.Repeat("z", 64) + `"}]}}}`, "not 64 hex digits"},
	}
	dir := t.TempDir()
	for i, tt := range tests {
		bad := writeFile(t, dir, fmt.Sprintf("bad-%02d.json", i), tt.content)
		for _, order := range []struct {
			name                string
			baseline, candidate string
		}{{"as baseline", bad, good}, {"as candidate", good, bad}} {
			t.Run(tt.name+"/"+order.name, func(t *testing.T) {
				m, err := LoadSBOMPair(order.baseline, order.candidate)
				if err == nil {
					t.Fatalf("LoadSBOMPair = %+v, want an error", m)
				}
				checkSBOMError(t, err, bad, tt.wantErr)
			})
		}
	}

	t.Run("missing file", func(t *testing.T) {
		missing := filepath.Join(dir, "missing.json")
		_, err := LoadSBOMPair(good, missing)
		checkSBOMError(t, err, missing, "no such file")
	})
}

// checkSBOMError checks that err is a manifest input error about file.
func checkSBOMError(t *testing.T, err error, file, want string) {
	t.Helper()
	var ie *pipeline.InputError
	if !errors.As(err, &ie) || ie.Role != "manifest" || ie.Ref != file {
		t.Errorf("error %q (%T), want a *pipeline.InputError with role manifest naming %s", err, err, file)
	}
	if !strings.Contains(err.Error(), file) || !strings.Contains(err.Error(), want) {
		t.Errorf("error %q, want it to name %s and mention %q", err, file, want)
	}
}

func TestSBOMBounds(t *testing.T) {
	// What the candidate SBOMs hold: the CycloneDX one lists acme-doc twice
	// (a component and a nested data component of the same name).
	tests := []struct {
		file    string
		lim     sbomLimits
		wantErr string
	}{
		{sbomFiles["CycloneDX"][1], sbomLimits{bytes: 1 << 20, packages: 4, files: 7}, ""},
		{sbomFiles["CycloneDX"][1], sbomLimits{bytes: 1 << 20, packages: 3, files: 7}, "more than 3 packages"},
		{sbomFiles["CycloneDX"][1], sbomLimits{bytes: 1 << 20, packages: 4, files: 6}, "more than 6 files"},
		{sbomFiles["SPDX"][1], sbomLimits{bytes: 1 << 20, packages: 3, files: 7}, ""},
		{sbomFiles["SPDX"][1], sbomLimits{bytes: 1 << 20, packages: 2, files: 7}, "more than 2 packages"},
		{sbomFiles["SPDX"][1], sbomLimits{bytes: 1 << 20, packages: 3, files: 6}, "more than 6 files"},
		{sbomFiles["SPDX"][1], sbomLimits{bytes: 1000, packages: 3, files: 7}, "larger than 1000 bytes"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s %+v", filepath.Base(tt.file), tt.lim), func(t *testing.T) {
			// The baseline is the same file, so that the limit is hit in the
			// candidate only when the baseline passed it.
			_, err := loadSBOMPair(tt.file, tt.file, tt.lim)
			if tt.wantErr == "" {
				if err != nil {
					t.Errorf("at the limits: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("past the limits, no error")
			}
			checkSBOMError(t, err, tt.file, tt.wantErr)
		})
	}

	// The defaults hold too: a BOM that lists one more package than they
	// allow, and a file one byte larger than they allow.
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString(`{"bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1, "components": [`)
	for i := 0; i <= defaultSBOMLimits.packages; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"type":"library","name":"p"}`)
	}
	b.WriteString(`]}`)
	many := writeFile(t, dir, "many.cdx.json", b.String())
	_, err := LoadSBOMPair(sbomFiles["CycloneDX"][0], many)
	checkSBOMError(t, err, many, fmt.Sprintf("more than %d packages", defaultSBOMLimits.packages))

	huge := filepath.Join(dir, "huge.json")
	f, err := os.Create(huge)
	if err != nil {
		t.Fatal(err)
	}
	// Sparse: it costs no disk.
	if err := f.Truncate(defaultSBOMLimits.bytes + 1); err != nil {
		t.Fatal(err)
	}
	f.Close()
	_, err = LoadSBOMPair(huge, sbomFiles["CycloneDX"][1])
	checkSBOMError(t, err, huge, fmt.Sprintf("larger than %d bytes", defaultSBOMLimits.bytes))
}

func TestEscapeGlob(t *testing.T) {
	for _, p := range []string{
		"/usr/bin/x",
		"/usr/share/doc/acme/notes[1]*.txt",
		"/a{b,c}/d?e",
		`/odd\name`,
		"/x/**/y",
		"/a}b]c,d",
	} {
		pat := escapeGlob(p)
		if !doublestar.ValidatePattern(pat) {
			t.Errorf("escapeGlob(%q) = %q, not a valid pattern", p, pat)
			continue
		}
		if ok, _ := doublestar.Match(pat, p); !ok {
			t.Errorf("escapeGlob(%q) = %q does not match the path itself", p, pat)
		}
		if lit, ok := literal(pat); !ok || lit != p {
			t.Errorf("literal(escapeGlob(%q)) = %q, %v; want the path back", p, lit, ok)
		}
	}
}

// TestPatternSet checks the literal fast path against doublestar itself.
func TestPatternSet(t *testing.T) {
	patterns := []string{
		"/etc/fw-release", `/usr/share/notes\[1\]\*.txt`, "/opt/app", "/usr/share/doc/*",
		"/usr/lib/**/*.so", "/etc/{a,b}.conf", `/odd\\name`, "/srv/a]b", "/srv/a,b",
	}
	paths := []string{
		"/etc/fw-release", "/etc/fw-release2", "/usr/share/notes[1]*.txt", "/usr/share/notes1x.txt",
		"/opt/app", "/opt/app/bin/x", "/opt/application", "/usr/share/doc/README", "/usr/share/doc/a/b",
		"/usr/lib/a/libx.so", "/usr/lib/libx.so.1", "/etc/a.conf", "/etc/c.conf", `/odd\name`, "/oddname",
		"/srv/a]b", "/srv/a,b", "/srv/ab", "/",
	}
	set := newPatternSet(patterns)
	if len(set.literal) != 4 {
		t.Errorf("%d literal patterns (%v), want 4: the globs are left to doublestar", len(set.literal), set.literal)
	}
	for _, p := range paths {
		want := false
		for q := p; ; q = filepath.Dir(q) {
			for _, pat := range patterns {
				if ok, _ := doublestar.Match(pat, q); ok {
					want = true
				}
			}
			if q == "/" {
				break
			}
		}
		if got := set.covers(p); got != want {
			t.Errorf("covers(%q) = %v, doublestar says %v", p, got, want)
		}
	}
}
