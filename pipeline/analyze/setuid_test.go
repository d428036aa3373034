package analyze

import (
	"context"
	"strings"
	"testing"

	"github.com/fwvet/fwvet/pipeline"
)

func TestSetuid(t *testing.T) {
	symlink := func(path string) *pipeline.Entry {
		return &pipeline.Entry{Path: path, Key: path, Type: pipeline.TypeSymlink, Mode: 0o777, LinkTarget: "busybox"}
	}
	moved := added(fileEntry("/usr/sbin/helper", "ELF", 0o4755))
	moved.MovedFrom = "/usr/bin/helper"
	tests := []struct {
		name    string
		ch      *pipeline.Change
		want    bool
		wantMsg string
		wantEv  map[string]any
	}{
		{
			name:    "new setuid file",
			ch:      added(fileEntry("/usr/bin/helper", "ELF", 0o4755)),
			want:    true,
			wantMsg: "setuid",
			wantEv:  map[string]any{"mode": "4755"},
		},
		{
			name:    "new setgid file",
			ch:      added(fileEntry("/usr/bin/wall", "ELF", 0o2755)),
			want:    true,
			wantMsg: "setgid",
			wantEv:  map[string]any{"mode": "2755"},
		},
		{
			name:    "new setuid and setgid file",
			ch:      added(fileEntry("/usr/bin/both", "ELF", 0o6711)),
			want:    true,
			wantMsg: "setuid and setgid",
			wantEv:  map[string]any{"mode": "6711"},
		},
		{
			name:    "moved setuid file",
			ch:      moved,
			want:    true,
			wantEv:  map[string]any{"moved_from": "/usr/bin/helper"},
			wantMsg: "setuid",
		},
		{
			name:    "symlink replaced by a setuid file",
			ch:      changed(symlink("/bin/su"), fileEntry("/bin/su", "ELF", 0o4755), "type", "mode"),
			want:    true,
			wantMsg: "setuid",
		},
		{name: "new plain file", ch: added(fileEntry("/usr/bin/plain", "ELF", 0o755))},
		{name: "new sticky file", ch: added(fileEntry("/usr/bin/sticky", "ELF", 0o1755))},
		{name: "new setuid directory", ch: added(dirEntry("/var/spool", 0o4755))},
		{name: "new setgid directory", ch: added(dirEntry("/var/mail", 0o2775))},
		{name: "removed setuid file", ch: removed(fileEntry("/bin/su", "ELF", 0o4755))},
		{
			name:    "existing file gains setuid",
			ch:      changed(fileEntry("/bin/busybox", "ELF", 0o755), fileEntry("/bin/busybox", "ELF", 0o4755), "mode"),
			want:    true,
			wantMsg: "gains setuid (mode 0755 → 4755)",
			wantEv:  map[string]any{"mode": "4755", "old_mode": "0755"},
		},
		{
			name:    "setuid file gains setgid as its content changes",
			ch:      changed(fileEntry("/bin/su", "ELF1", 0o4755), fileEntry("/bin/su", "ELF2", 0o6755), "content", "mode"),
			want:    true,
			wantMsg: "gains setgid",
		},
		{
			name: "setuid file loses setgid",
			ch:   changed(fileEntry("/bin/su", "ELF", 0o6755), fileEntry("/bin/su", "ELF", 0o4755), "mode"),
		},
		{
			name: "existing setuid file changes content",
			ch:   changed(fileEntry("/bin/su", "ELF1", 0o4755), fileEntry("/bin/su", "ELF2", 0o4755), "content"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Setuid{}.Analyze(context.Background(), input(tt.ch))
			if err != nil {
				t.Fatalf("Analyze: %v", err)
			}
			if !tt.want {
				if len(got) != 0 {
					t.Errorf("findings: %s", marshal(t, got))
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("%d findings, want 1: %s", len(got), marshal(t, got))
			}
			f := got[0]
			if f.ID != pipeline.IDSetuidAdded || f.Severity != pipeline.SeverityHigh {
				t.Errorf("finding = %s/%s, want setuid-added/high", f.ID, f.Severity)
			}
			if f.Path != tt.ch.Path || f.Key != tt.ch.Key {
				t.Errorf("finding path %q key %q, want %q", f.Path, f.Key, tt.ch.Path)
			}
			if !strings.Contains(f.Message, tt.wantMsg) {
				t.Errorf("message %q does not mention %q", f.Message, tt.wantMsg)
			}
			if f.Evidence["sha256"] != tt.ch.New.SHA256 || f.Evidence["sha256"] == "" {
				t.Errorf("evidence sha256 = %v, want %s", f.Evidence["sha256"], tt.ch.New.SHA256)
			}
			for k, v := range tt.wantEv {
				if f.Evidence[k] != v {
					t.Errorf("evidence %s = %#v, want %#v", k, f.Evidence[k], v)
				}
			}
		})
	}
}

// TestSetuidGainedIsMetadataHigh: an existing file gaining setuid is
// setuid-added, and Files also ranks its metadata-changed finding high.
func TestSetuidGainedIsMetadataHigh(t *testing.T) {
	ch := changed(fileEntry("/bin/busybox", "ELF", 0o755), fileEntry("/bin/busybox", "ELF", 0o4755), "mode")
	in := input(ch)
	fs, err := Setuid{}.Analyze(context.Background(), in)
	if err != nil || len(fs) != 1 || fs[0].ID != pipeline.IDSetuidAdded {
		t.Fatalf("Setuid = %s, %v; want one setuid-added", marshal(t, fs), err)
	}
	fs, err = Files{}.Analyze(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 1 {
		t.Fatalf("Files gave %d findings, want 1: %s", len(fs), marshal(t, fs))
	}
	if fs[0].ID != pipeline.IDMetadataChanged || fs[0].Severity != pipeline.SeverityHigh {
		t.Errorf("Files = %s/%s, want metadata-changed/high", fs[0].ID, fs[0].Severity)
	}
	if !strings.Contains(fs[0].Message, "setuid") {
		t.Errorf("message %q does not mention setuid", fs[0].Message)
	}
}
