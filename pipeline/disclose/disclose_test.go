package disclose

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/fwvet/fwvet/pipeline"
)

const digest = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr string // "" means success
	}{
		{
			name: "full manifest",
			in: `{"vendor": "Acme Networks", "product": "RT-3200",
 "image": "rt3200-1.0.1.bin", "image_sha256": "` + digest + `",
 "previous_version": "1.0.0", "version": "1.0.1",
 "changed": ["/etc/fw-release", "/usr/sbin/dropbear"],
 "added":   ["/etc/init.d/S55factory-diag", "/usr/share/doc/*", "/usr/lib/**/*.so"],
 "removed": ["/www/help.html"],
 "release_notes": "fixes"}`,
		},
		{name: "empty object", in: `{}`},
		{name: "digest with prefix", in: `{"image_sha256": "sha256:` + digest + `"}`},
		{name: "digest in upper case", in: `{"image_sha256": "` + strings.ToUpper(digest) + `"}`},
		{name: "trailing whitespace", in: "{}\n\n  "},
		{name: "relative changed", in: `{"changed": ["etc/passwd"]}`, wantErr: "not absolute"},
		{name: "relative added", in: `{"added": ["./x"]}`, wantErr: "not absolute"},
		{name: "relative removed", in: `{"removed": ["*"]}`, wantErr: "not absolute"},
		{name: "empty path", in: `{"changed": [""]}`, wantErr: "not absolute"},
		{name: "bad glob bracket", in: `{"changed": ["/etc/[abc"]}`, wantErr: "not a valid glob"},
		{name: "bad glob brace", in: `{"added": ["/etc/{a,b"]}`, wantErr: "not a valid glob"},
		{name: "digest too short", in: `{"image_sha256": "abc123"}`, wantErr: "not a SHA-256"},
		{name: "digest not hex", in: `{"image_sha256": "` + strings.Repeat("g", 64) + `"}`, wantErr: "not a SHA-256"},
		{name: "digest too long", in: `{"image_sha256": "` + digest + `00"}`, wantErr: "not a SHA-256"},
		{name: "digest other algorithm", in: `{"image_sha256": "sha512:` + digest + `"}`, wantErr: "not a SHA-256"},
		{name: "trailing object", in: `{} {}`, wantErr: "trailing data"},
		{name: "trailing garbage", in: `{"vendor": "x"} garbage`, wantErr: "trailing data"},
		{name: "trailing closing brace", in: `{"vendor": "x"}}`, wantErr: "trailing data"},
		{name: "trailing closing bracket", in: `{"vendor": "x"}]`, wantErr: "trailing data"},
		{name: "not JSON", in: `vendor: acme`, wantErr: "not a JSON release manifest"},
		{name: "array", in: `["/etc/passwd"]`, wantErr: "not a JSON release manifest"},
		{name: "wrong type", in: `{"changed": "/etc/passwd"}`, wantErr: "not a JSON release manifest"},
		{name: "empty input", in: ``, wantErr: "not a JSON release manifest"},
		{name: "SPDX SBOM", in: `{"spdxVersion": "SPDX-2.3", "SPDXID": "SPDXRef-DOCUMENT"}`, wantErr: "an SBOM, not a JSON release manifest"},
		{name: "CycloneDX SBOM", in: `{"bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1}`, wantErr: "give --manifest twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse(strings.NewReader(tt.in))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if m == nil {
					t.Fatal("Parse returned nil manifest and no error")
				}
				return
			}
			if err == nil {
				t.Fatalf("Parse(%s) = %+v, want an error mentioning %q", tt.in, m, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Parse error %q, want it to mention %q", err, tt.wantErr)
			}
			if m != nil {
				t.Errorf("Parse returned a manifest with an error")
			}
		})
	}
}

func TestParseFields(t *testing.T) {
	m, err := Parse(strings.NewReader(`{"vendor": "Acme", "product": "RT-3200", "image": "a.bin",
		"image_sha256": "sha256:` + digest + `", "previous_version": "1.0.0", "version": "1.0.1",
		"changed": ["/a"], "added": ["/b", "/c/**"], "removed": ["/d"], "release_notes": "n"}`))
	if err != nil {
		t.Fatal(err)
	}
	want := &Manifest{Vendor: "Acme", Product: "RT-3200", Image: "a.bin", ImageSHA256: "sha256:" + digest,
		PreviousVersion: "1.0.0", Version: "1.0.1", Changed: []string{"/a"}, Added: []string{"/b", "/c/**"},
		Removed: []string{"/d"}, ReleaseNotes: "n"}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("Parse = %+v, want %+v", m, want)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	if err := os.WriteFile(good, []byte(`{"version": "2.0", "changed": ["/etc/fw-release"]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"changed": ["etc/fw-release"]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := Load(good)
	if err != nil || m.Version != "2.0" || len(m.Changed) != 1 {
		t.Errorf("Load(good) = %+v, %v", m, err)
	}
	if _, err := Load(bad); err == nil {
		t.Error("Load(bad) succeeded")
	}
	if _, err := Load(filepath.Join(dir, "missing.json")); err == nil {
		t.Error("Load(missing) succeeded")
	}
}

func change(kind pipeline.ChangeKind, path string) *pipeline.Change {
	return &pipeline.Change{Kind: kind, Path: path, Key: path}
}

func TestApplyCoverage(t *testing.T) {
	m := &Manifest{
		Changed: []string{"/etc/fw-release", "/usr/sbin/dropbear", "/www/help.html", "/etc/config"},
		Added:   []string{"/etc/init.d/S55factory-diag", "/usr/share/doc/*", "/usr/lib/**/*.so", "/opt/app"},
		Removed: []string{"/www/old", "/var/lib/*.db"},
	}
	tests := []struct {
		kind pipeline.ChangeKind
		path string
		want bool
	}{
		// exact paths under the matching action
		{pipeline.ChangeModified, "/etc/fw-release", true},
		{pipeline.ChangeMetadata, "/usr/sbin/dropbear", true},
		{pipeline.ChangeAdded, "/etc/init.d/S55factory-diag", true},
		// listed under another action
		{pipeline.ChangeRemoved, "/www/help.html", false},
		{pipeline.ChangeAdded, "/etc/fw-release", false},
		{pipeline.ChangeModified, "/etc/init.d/S55factory-diag", false},
		{pipeline.ChangeRemoved, "/usr/sbin/dropbear", false},
		{pipeline.ChangeModified, "/www/old", false},
		// not listed
		{pipeline.ChangeModified, "/etc/passwd", false},
		{pipeline.ChangeAdded, "/etc/init.d/S55factory-diag2", false},
		{pipeline.ChangeAdded, "/etc/init.d/S55", false},
		// * and **
		{pipeline.ChangeAdded, "/usr/share/doc/README", true},
		{pipeline.ChangeAdded, "/usr/share/doc", false},
		{pipeline.ChangeAdded, "/usr/share/docs/README", false},
		{pipeline.ChangeAdded, "/usr/lib/libx.so", true},
		{pipeline.ChangeAdded, "/usr/lib/a/b/libx.so", true},
		{pipeline.ChangeAdded, "/usr/lib/a/b/libx.so.1", false},
		{pipeline.ChangeAdded, "/usr/lib/a/b/libx.a", false},
		{pipeline.ChangeRemoved, "/var/lib/users.db", true},
		{pipeline.ChangeRemoved, "/var/lib/users.dbx", false},
		// a pattern naming a directory covers what is beneath it
		{pipeline.ChangeAdded, "/opt/app", true},
		{pipeline.ChangeAdded, "/opt/app/bin/tool", true},
		{pipeline.ChangeAdded, "/opt/application", false},
		{pipeline.ChangeModified, "/opt/app/bin/tool", false},
		{pipeline.ChangeRemoved, "/www/old/index.html", true},
		{pipeline.ChangeModified, "/etc/config/network", true},
		{pipeline.ChangeAdded, "/usr/share/doc/pkg/copyright", true},
		{pipeline.ChangeAdded, "/usr/share", false},
		{pipeline.ChangeAdded, "/", false},
	}
	for _, tt := range tests {
		t.Run(string(tt.kind)+tt.path, func(t *testing.T) {
			ch := change(tt.kind, tt.path)
			check := disclosed(m, Subject{}, []*pipeline.Change{ch}, nil)
			if check.Status != pipeline.CheckSkip {
				t.Errorf("check = %+v, want skip (no image_sha256)", check)
			}
			if ch.Disclosed != tt.want {
				t.Errorf("%s %s disclosed = %v, want %v", tt.kind, tt.path, ch.Disclosed, tt.want)
			}
		})
	}
}

func TestApplyCheck(t *testing.T) {
	other := strings.Repeat("f", 64)
	ver := func(v, src string) *pipeline.Version { return &pipeline.Version{Value: v, Source: src} }
	tests := []struct {
		name       string
		m          Manifest
		subject    Subject
		wantStatus pipeline.CheckStatus
		wantDetail string
	}{
		{
			name:       "digest matches",
			m:          Manifest{ImageSHA256: digest},
			subject:    Subject{Digests: []string{"sha256:" + digest}},
			wantStatus: pipeline.CheckPass,
		},
		{
			name:       "digest with prefix matches",
			m:          Manifest{ImageSHA256: "sha256:" + digest},
			subject:    Subject{Digests: []string{"sha256:" + digest}},
			wantStatus: pipeline.CheckPass,
		},
		{
			name:       "digest in upper case matches",
			m:          Manifest{ImageSHA256: "sha256:" + strings.ToUpper(digest)},
			subject:    Subject{Digests: []string{"sha256:" + digest}},
			wantStatus: pipeline.CheckPass,
		},
		{
			name:       "digest of the carried firmware file matches",
			m:          Manifest{ImageSHA256: digest},
			subject:    Subject{Digests: []string{"sha256:" + other, "sha256:" + digest}},
			wantStatus: pipeline.CheckPass,
		},
		{
			name:       "digest mismatch",
			m:          Manifest{ImageSHA256: other},
			subject:    Subject{Digests: []string{"sha256:" + digest}},
			wantStatus: pipeline.CheckFail,
			wantDetail: "discloses nothing",
		},
		{
			name:       "digest but no candidate digests",
			m:          Manifest{ImageSHA256: digest},
			subject:    Subject{},
			wantStatus: pipeline.CheckFail,
		},
		{
			name:       "no digest",
			m:          Manifest{},
			subject:    Subject{Digests: []string{"sha256:" + digest}},
			wantStatus: pipeline.CheckSkip,
			wantDetail: "no image_sha256",
		},
		{
			name:       "version matches",
			m:          Manifest{ImageSHA256: digest, Version: "1.0.1"},
			subject:    Subject{Digests: []string{"sha256:" + digest}, CandidateVersion: ver("1.0.1", "/etc/os-release")},
			wantStatus: pipeline.CheckPass,
		},
		{
			name:       "version matches in another form",
			m:          Manifest{ImageSHA256: digest, Version: "V1.0.1"},
			subject:    Subject{Digests: []string{"sha256:" + digest}, CandidateVersion: ver("1.0.1", "/etc/os-release")},
			wantStatus: pipeline.CheckPass,
		},
		{
			name:       "version differs",
			m:          Manifest{ImageSHA256: digest, Version: "1.0.1"},
			subject:    Subject{Digests: []string{"sha256:" + digest}, CandidateVersion: ver("1.0.2", "/etc/os-release")},
			wantStatus: pipeline.CheckFail,
			wantDetail: "version 1.0.1",
		},
		{
			name:       "version differs without digest",
			m:          Manifest{Version: "2.0"},
			subject:    Subject{CandidateVersion: ver("1.0", "/etc/fw-release")},
			wantStatus: pipeline.CheckFail,
		},
		{
			name:       "versions cannot be ordered",
			m:          Manifest{ImageSHA256: digest, Version: "latest"},
			subject:    Subject{Digests: []string{"sha256:" + digest}, CandidateVersion: ver("1.0.1", "/etc/os-release")},
			wantStatus: pipeline.CheckFail,
		},
		{
			name:       "candidate version taken from the manifest is not checked against it",
			m:          Manifest{ImageSHA256: digest, Version: "1.0.1"},
			subject:    Subject{Digests: []string{"sha256:" + digest}, CandidateVersion: ver("9.9", "manifest")},
			wantStatus: pipeline.CheckPass,
		},
		{
			name:       "unknown candidate version",
			m:          Manifest{ImageSHA256: digest, Version: "1.0.1"},
			subject:    Subject{Digests: []string{"sha256:" + digest}},
			wantStatus: pipeline.CheckPass,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.m.Changed = []string{"/etc/fw-release"}
			ch := change(pipeline.ChangeModified, "/etc/fw-release")
			findings := []pipeline.Finding{{ID: pipeline.IDFileModified, Path: "/etc/fw-release", Key: "/etc/fw-release"}}
			check := disclosed(&tt.m, tt.subject, []*pipeline.Change{ch}, findings)
			if check.Name != "manifest" {
				t.Errorf("check name = %q, want manifest", check.Name)
			}
			if check.Status != tt.wantStatus {
				t.Errorf("check status = %s (%s), want %s", check.Status, check.Detail, tt.wantStatus)
			}
			if !strings.Contains(check.Detail, tt.wantDetail) {
				t.Errorf("check detail %q, want it to mention %q", check.Detail, tt.wantDetail)
			}
			wantDisclosed := tt.wantStatus != pipeline.CheckFail
			if ch.Disclosed != wantDisclosed {
				t.Errorf("change disclosed = %v, want %v", ch.Disclosed, wantDisclosed)
			}
			if findings[0].Disclosed != wantDisclosed {
				t.Errorf("finding disclosed = %v, want %v", findings[0].Disclosed, wantDisclosed)
			}
		})
	}
}

func TestApplyFindings(t *testing.T) {
	m := &Manifest{
		ImageSHA256: digest,
		Changed:     []string{"/etc/passwd"},
		Added:       []string{"/usr/sbin/*"},
	}
	changes := []*pipeline.Change{
		change(pipeline.ChangeModified, "/etc/passwd"),
		change(pipeline.ChangeAdded, "/usr/sbin/tool"),
		change(pipeline.ChangeAdded, "/etc/init.d/S99backdoor"),
	}
	findings := []pipeline.Finding{
		{ID: pipeline.IDAccountAdded, Path: "/etc/passwd", Key: "/etc/passwd"},
		{ID: pipeline.IDFileModified, Path: "/etc/passwd", Key: "/etc/passwd"},
		{ID: pipeline.IDSetuidAdded, Path: "/usr/sbin/tool", Key: "/usr/sbin/tool"},
		{ID: pipeline.IDServiceAdded, Path: "/etc/init.d/S99backdoor", Key: "/etc/init.d/S99backdoor"},
		{ID: pipeline.IDUnsafeEntry, Path: "/usr/sbin/tool", Key: "/usr/sbin/tool"},
		{ID: pipeline.IDUnsafeEntry, Path: "/etc/passwd", Key: "/etc/passwd"},
		{ID: pipeline.IDEndpointAdded, Path: "/usr/sbin/tool"}, // no key: about no one change
	}
	want := []bool{true, true, true, false, false, false, false}
	check := disclosed(m, Subject{Digests: []string{"sha256:" + digest}}, changes, findings)
	if check.Status != pipeline.CheckPass {
		t.Fatalf("check = %+v, want pass", check)
	}
	if !strings.Contains(check.Detail, "2 of 3") {
		t.Errorf("check detail %q, want it to count 2 of 3 changes", check.Detail)
	}
	for i, f := range findings {
		if f.Disclosed != want[i] {
			t.Errorf("finding %d %s %s disclosed = %v, want %v", i, f.ID, f.Path, f.Disclosed, want[i])
		}
	}
	for i, w := range []bool{true, true, false} {
		if changes[i].Disclosed != w {
			t.Errorf("change %s disclosed = %v, want %v", changes[i].Path, changes[i].Disclosed, w)
		}
	}
}

func TestApplyDowngrade(t *testing.T) {
	ver := func(v string) *pipeline.Version { return &pipeline.Version{Value: v, Source: "/etc/os-release"} }
	tests := []struct {
		name     string
		version  string
		previous string
		baseline *pipeline.Version
		want     bool
	}{
		{"declared rollback from the baseline", "1.0.0", "1.0.1", ver("1.0.1"), true},
		{"declared rollback, baseline in another form", "1.0.0", "1.0.1", ver("V1.0.1"), true},
		{"previous is not the baseline", "1.0.0", "1.0.1", ver("1.0.2"), false},
		{"manifest declares an upgrade", "1.0.2", "1.0.1", ver("1.0.1"), false},
		{"manifest declares the same version", "1.0.1", "1.0.1", ver("1.0.1"), false},
		{"no previous_version", "1.0.0", "", ver("1.0.1"), false},
		{"no version", "", "1.0.1", ver("1.0.1"), false},
		{"no baseline version", "1.0.0", "1.0.1", nil, false},
		{"previous cannot be ordered against baseline", "1.0.0", "1.0.1", ver("unknown"), false},
		{"version cannot be ordered against previous", "1.0a", "1.0.1", ver("1.0.1"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &Manifest{ImageSHA256: digest, Version: tt.version, PreviousVersion: tt.previous}
			findings := []pipeline.Finding{{ID: pipeline.IDDowngrade, Path: "/etc/os-release", Key: "/etc/os-release"}}
			// The change to the release file is not disclosed, so only the
			// rollback declaration can disclose the downgrade finding.
			changes := []*pipeline.Change{change(pipeline.ChangeModified, "/etc/os-release")}
			check := disclosed(m, Subject{Digests: []string{"sha256:" + digest}, BaselineVersion: tt.baseline}, changes, findings)
			if check.Status != pipeline.CheckPass {
				t.Fatalf("check = %+v, want pass", check)
			}
			if findings[0].Disclosed != tt.want {
				t.Errorf("downgrade disclosed = %v, want %v", findings[0].Disclosed, tt.want)
			}
		})
	}
}

func TestApplyDowngradeNotDisclosedByPath(t *testing.T) {
	// Listing the release file as changed discloses the change, not a rollback.
	m := &Manifest{ImageSHA256: digest, Version: "1.0.0", PreviousVersion: "0.9", Changed: []string{"/etc/os-release"}}
	changes := []*pipeline.Change{change(pipeline.ChangeModified, "/etc/os-release")}
	findings := []pipeline.Finding{{ID: pipeline.IDDowngrade, Path: "/etc/os-release", Key: "/etc/os-release"}}
	disclosed(m, Subject{Digests: []string{"sha256:" + digest}, BaselineVersion: &pipeline.Version{Value: "1.0.1"}}, changes, findings)
	if !changes[0].Disclosed {
		t.Error("release file change not disclosed")
	}
	if findings[0].Disclosed {
		t.Error("downgrade disclosed by the release file's path")
	}
}

func TestApplyMismatchDisclosesNothing(t *testing.T) {
	m := &Manifest{
		ImageSHA256:     strings.Repeat("e", 64),
		Version:         "1.0.0",
		PreviousVersion: "1.0.1",
		Changed:         []string{"/**"},
		Added:           []string{"/**"},
		Removed:         []string{"/**"},
	}
	changes := []*pipeline.Change{
		change(pipeline.ChangeModified, "/a"),
		change(pipeline.ChangeAdded, "/b"),
		change(pipeline.ChangeRemoved, "/c"),
	}
	findings := []pipeline.Finding{
		{ID: pipeline.IDFileModified, Key: "/a"},
		{ID: pipeline.IDFileAdded, Key: "/b"},
		{ID: pipeline.IDDowngrade, Key: "/etc/os-release"},
	}
	check := disclosed(m, Subject{Digests: []string{"sha256:" + digest}, BaselineVersion: &pipeline.Version{Value: "1.0.1"}}, changes, findings)
	if check.Status != pipeline.CheckFail {
		t.Errorf("check = %+v, want fail", check)
	}
	for _, c := range changes {
		if c.Disclosed {
			t.Errorf("change %s disclosed by a manifest for another image", c.Path)
		}
	}
	for _, f := range findings {
		if f.Disclosed {
			t.Errorf("finding %s disclosed by a manifest for another image", f.ID)
		}
	}
}

// TestApplyHeaders: a change to a container's own bytes or to a header's
// label is disclosed when all that changed inside it is, and not before.
func TestApplyHeaders(t *testing.T) {
	m := &Manifest{Changed: []string{"/etc/banner"}}
	// nested builds a change of a container file holding the given ones.
	nested := func(key string, fields ...string) *pipeline.Change {
		return &pipeline.Change{Kind: pipeline.ChangeModified, Path: key[strings.LastIndexByte(key, 0)+1:], Key: key, Fields: fields, Nested: true}
	}
	inside := func(container, path string) *pipeline.Change {
		return &pipeline.Change{Kind: pipeline.ChangeModified, Path: path, Key: container + "\x00" + path, Fields: []string{"content"}}
	}
	label := &pipeline.Change{Kind: pipeline.ChangeMetadata, Path: "/kernel", Key: "/kernel", Fields: []string{"label"}}
	tests := []struct {
		name    string
		changes []*pipeline.Change
		want    []bool
	}{
		{"declared contents", []*pipeline.Change{nested("/fw.sqfs", "content"), inside("/fw.sqfs", "/etc/banner")}, []bool{true, true}},
		{"undeclared contents", []*pipeline.Change{nested("/fw.sqfs", "content"), inside("/fw.sqfs", "/etc/banner"), inside("/fw.sqfs", "/etc/passwd")}, []bool{false, true, false}},
		{"a header alone", []*pipeline.Change{nested("/fw.sqfs", "content", "label")}, []bool{true}},
		{"a label alone", []*pipeline.Change{label}, []bool{true}},
		{"a mode is not a header", []*pipeline.Change{nested("/fw.sqfs", "content", "mode"), inside("/fw.sqfs", "/etc/banner")}, []bool{false, true}},
		{"a plain file's content is not a header", []*pipeline.Change{{Kind: pipeline.ChangeModified, Path: "/kernel", Key: "/kernel", Fields: []string{"content", "label"}}}, []bool{false}},
		{
			"nested two deep, inner undeclared",
			[]*pipeline.Change{nested("/a.tar", "content"), nested("/a.tar\x00/fw.sqfs", "content"), inside("/a.tar\x00/fw.sqfs", "/etc/shadow"), inside("/a.tar", "/etc/banner")},
			[]bool{false, false, false, true},
		},
		{
			"nested two deep, all declared",
			[]*pipeline.Change{nested("/a.tar", "content"), nested("/a.tar\x00/fw.sqfs", "content"), inside("/a.tar\x00/fw.sqfs", "/etc/banner")},
			[]bool{true, true, true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, ch := range tt.changes {
				ch.Disclosed = false
			}
			findings := []pipeline.Finding{{ID: pipeline.IDFileModified, Path: tt.changes[0].Path, Key: tt.changes[0].Key}}
			disclosed(m, Subject{}, tt.changes, findings)
			for i, ch := range tt.changes {
				if ch.Disclosed != tt.want[i] {
					t.Errorf("change %q disclosed = %v, want %v", ch.Key, ch.Disclosed, tt.want[i])
				}
			}
			if findings[0].Disclosed != tt.want[0] {
				t.Errorf("finding on %q disclosed = %v, want %v", findings[0].Key, findings[0].Disclosed, tt.want[0])
			}
		})
	}
}

// TestAllow: a finding that judges what a binary's change does is
// disclosed only by an allow entry naming its id for its path, never by the
// path being declared changed.
func TestAllow(t *testing.T) {
	for _, tt := range []struct {
		name  string
		allow string
		want  bool
	}{
		{"path declared changed only", ``, false},
		{"allowed", `, "allow": [{"path": "/usr/sbin/httpd", "ids": ["hardening-regressed"], "reason": "built without PIE for the old bootloader"}]`, true},
		{"allowed by glob", `, "allow": [{"path": "/usr/sbin/*", "ids": ["file-modified", "hardening-regressed"]}]`, true},
		{"another id allowed", `, "allow": [{"path": "/usr/sbin/httpd", "ids": ["file-modified"]}]`, false},
		{"another path allowed", `, "allow": [{"path": "/usr/sbin/dropbear", "ids": ["hardening-regressed"]}]`, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse(strings.NewReader(`{"changed": ["/usr/sbin/httpd"]` + tt.allow + `}`))
			if err != nil {
				t.Fatal(err)
			}
			ch := change(pipeline.ChangeModified, "/usr/sbin/httpd")
			findings := []pipeline.Finding{
				{ID: pipeline.IDHardeningRegressed, Path: "/usr/sbin/httpd", Key: "/usr/sbin/httpd", AllowOnly: true},
				{ID: pipeline.IDFileModified, Path: "/usr/sbin/httpd", Key: "/usr/sbin/httpd"},
			}
			disclosed(m, Subject{}, []*pipeline.Change{ch}, findings)
			if findings[0].Disclosed != tt.want {
				t.Errorf("hardening-regressed disclosed = %v, want %v", findings[0].Disclosed, tt.want)
			}
			if !findings[1].Disclosed || !ch.Disclosed {
				t.Errorf("the declared change itself is not disclosed")
			}
		})
	}
	for _, bad := range []string{
		`{"allow": [{"path": "usr/sbin/httpd", "ids": ["hardening-regressed"]}]}`,
		`{"allow": [{"path": "/usr/sbin/httpd", "ids": []}]}`,
		`{"allow": [{"path": "/usr/sbin/httpd", "ids": ["no-such-id"]}]}`,
	} {
		if _, err := Parse(strings.NewReader(bad)); err == nil || !strings.Contains(err.Error(), "allow[0]") {
			t.Errorf("Parse(%s) = %v, want an error naming allow[0]", bad, err)
		}
	}
}

// disclosed runs Disclose and copies its answers into the arguments, so
// that the tables above read the way they always have.
func disclosed(m *Manifest, s Subject, changes []*pipeline.Change, findings []pipeline.Finding) pipeline.Check {
	d := m.Disclose(s, changes, findings)
	for i := range changes {
		*changes[i] = *d.Changes[i]
	}
	copy(findings, d.Findings)
	return d.Check
}

func TestDiscloseLeavesItsInput(t *testing.T) {
	const digest = "1111111111111111111111111111111111111111111111111111111111111111"
	m := &Manifest{ImageSHA256: digest, Changed: []string{"/etc/fw-release"}, Added: []string{"/usr/share/doc/*"}}
	changes := []*pipeline.Change{
		{Kind: pipeline.ChangeModified, Path: "/etc/fw-release", Key: "/etc/fw-release"},
		{Kind: pipeline.ChangeAdded, Path: "/usr/share/doc/README", Key: "/usr/share/doc/README"},
		{Kind: pipeline.ChangeAdded, Path: "/usr/sbin/telnetd", Key: "/usr/sbin/telnetd"},
	}
	findings := []pipeline.Finding{{ID: pipeline.IDFileModified, Path: "/etc/fw-release", Key: "/etc/fw-release"}}
	d := m.Disclose(Subject{Digests: []string{"sha256:" + digest}}, changes, findings)
	if d.Check.Status != pipeline.CheckPass {
		t.Fatalf("check %+v, want pass", d.Check)
	}
	for i, want := range []bool{true, true, false} {
		if d.Changes[i].Disclosed != want {
			t.Errorf("disclosure of %s = %v, want %v", d.Changes[i].Path, d.Changes[i].Disclosed, want)
		}
		if changes[i].Disclosed {
			t.Errorf("the caller's change %s was marked disclosed", changes[i].Path)
		}
	}
	if !d.Findings[0].Disclosed || findings[0].Disclosed {
		t.Errorf("finding disclosed %v in the result and %v in the caller's slice; want true and false", d.Findings[0].Disclosed, findings[0].Disclosed)
	}
}
