package vet

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fwvet/fwvet/pipeline"
)

func TestLoadManifest(t *testing.T) {
	const (
		spdxBase = "../disclose/testdata/rt3200-1.0.0.spdx.json"
		cdxCand  = "../disclose/testdata/rt3200-1.0.1.cdx.json"
	)
	dir := t.TempDir()
	release := filepath.Join(dir, "release.json")
	if err := os.WriteFile(release, []byte(`{"version": "1.0.1", "changed": ["/etc/fw-release"]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"changed": ["etc/fw-release"]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		files       []string
		wantChanged string // a path the manifest declares changed; "" for no manifest
		wantRef     string // the input an error names; "" for success
		wantErr     string
	}{
		{name: "none"},
		{name: "release manifest", files: []string{release}, wantChanged: "/etc/fw-release"},
		{name: "bad release manifest", files: []string{bad}, wantRef: bad, wantErr: "not absolute"},
		{name: "one SBOM", files: []string{cdxCand}, wantRef: cdxCand, wantErr: "give --manifest twice"},
		{name: "SBOM pair", files: []string{spdxBase, cdxCand}, wantChanged: "/usr/sbin/dropbear"},
		{name: "bad baseline SBOM", files: []string{bad, cdxCand}, wantRef: bad, wantErr: "neither an SPDX"},
		{name: "bad candidate SBOM", files: []string{spdxBase, bad}, wantRef: bad, wantErr: "neither an SPDX"},
		{name: "three files", files: []string{release, spdxBase, cdxCand}, wantRef: strings.Join([]string{release, spdxBase, cdxCand}, ", "), wantErr: "3 files given"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := loadManifest(tt.files)
			if tt.wantRef != "" {
				var ie *pipeline.InputError
				if !errors.As(err, &ie) || ie.Role != "manifest" || ie.Ref != tt.wantRef || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("loadManifest(%q) error %v; want a manifest input error naming %s and mentioning %q", tt.files, err, tt.wantRef, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("loadManifest(%q): %v", tt.files, err)
			}
			if tt.wantChanged == "" {
				if m != nil {
					t.Errorf("loadManifest(%q) = %+v, want none", tt.files, m)
				}
				return
			}
			if m == nil || !slices.Contains(m.Changed, tt.wantChanged) {
				t.Errorf("loadManifest(%q) = %+v, want %s declared changed", tt.files, m, tt.wantChanged)
			}
		})
	}
}
