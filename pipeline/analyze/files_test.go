package analyze

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/fwvet/fwvet/pipeline"
)

func TestFiles(t *testing.T) {
	link := func(target string) *pipeline.Entry {
		return &pipeline.Entry{Path: "/bin/sh", Key: "/bin/sh", Type: pipeline.TypeSymlink, Mode: 0o777, LinkTarget: target}
	}
	dev := func(minor uint32) *pipeline.Entry {
		return &pipeline.Entry{Path: "/dev/mtd0", Key: "/dev/mtd0", Type: pipeline.TypeChar, Mode: 0o600, Major: 90, Minor: minor}
	}
	withOwner := func(e *pipeline.Entry, uid, gid uint32) *pipeline.Entry { e.UID, e.GID = uid, gid; return e }
	movedIn := added(fileEntry("/usr/sbin/tool", "x", 0o755))
	movedIn.MovedFrom = "/usr/bin/tool"
	movedOut := removed(fileEntry("/usr/bin/tool", "x", 0o755))
	movedOut.MovedTo = "/usr/sbin/tool"

	type want struct {
		id  string
		sev pipeline.Severity
		msg string
		ev  map[string]any
	}
	tests := []struct {
		name string
		ch   *pipeline.Change
		want []want
	}{
		{
			name: "added file",
			ch:   added(fileEntry("/etc/banner", "hello", 0o644)),
			want: []want{{id: pipeline.IDFileAdded, sev: pipeline.SeverityInfo, msg: "file of 5 bytes added", ev: map[string]any{"mode": "0644", "size": int64(5)}}},
		},
		{
			name: "added directory",
			ch:   added(dirEntry("/opt", 0o755)),
			want: []want{{id: pipeline.IDFileAdded, sev: pipeline.SeverityInfo, msg: "directory added"}},
		},
		{
			name: "added setuid file is still info here",
			ch:   added(fileEntry("/bin/x", "x", 0o4755)),
			want: []want{{id: pipeline.IDFileAdded, sev: pipeline.SeverityInfo, ev: map[string]any{"mode": "4755"}}},
		},
		{
			name: "moved in",
			ch:   movedIn,
			want: []want{{id: pipeline.IDFileAdded, sev: pipeline.SeverityInfo, msg: "moved from /usr/bin/tool", ev: map[string]any{"moved_from": "/usr/bin/tool"}}},
		},
		{
			name: "removed file",
			ch:   removed(fileEntry("/www/help.html", "<html>", 0o644)),
			want: []want{{id: pipeline.IDFileRemoved, sev: pipeline.SeverityInfo, msg: "removed"}},
		},
		{
			name: "moved out",
			ch:   movedOut,
			want: []want{{id: pipeline.IDFileRemoved, sev: pipeline.SeverityInfo, msg: "moved to /usr/sbin/tool", ev: map[string]any{"moved_to": "/usr/sbin/tool"}}},
		},
		{
			name: "modified content",
			ch:   changed(fileEntry("/etc/fw-release", "VERSION=1", 0o644), fileEntry("/etc/fw-release", "VERSION=22", 0o644), "content"),
			want: []want{{id: pipeline.IDFileModified, sev: pipeline.SeverityInfo, msg: "9 → 10 bytes", ev: map[string]any{"old_size": int64(9), "new_size": int64(10)}}},
		},
		{
			name: "modified content and mode",
			ch:   changed(fileEntry("/usr/bin/a", "1", 0o644), fileEntry("/usr/bin/a", "2", 0o755), "content", "mode"),
			want: []want{
				{id: pipeline.IDFileModified, sev: pipeline.SeverityInfo},
				{id: pipeline.IDMetadataChanged, sev: pipeline.SeverityLow, ev: map[string]any{"old_mode": "0644", "new_mode": "0755"}},
			},
		},
		{
			name: "modified content and gains setgid",
			ch:   changed(fileEntry("/usr/bin/a", "1", 0o755), fileEntry("/usr/bin/a", "2", 0o2755), "content", "mode"),
			want: []want{
				{id: pipeline.IDFileModified, sev: pipeline.SeverityInfo},
				{id: pipeline.IDMetadataChanged, sev: pipeline.SeverityHigh, msg: "gains setgid"},
			},
		},
		{
			name: "type change",
			ch:   changed(fileEntry("/bin/sh", "ELF", 0o777), link("busybox"), "type"),
			want: []want{{id: pipeline.IDFileModified, sev: pipeline.SeverityInfo, msg: "file replaced by a symlink", ev: map[string]any{"old_type": pipeline.TypeFile, "new_type": pipeline.TypeSymlink}}},
		},
		{
			name: "mode of a sensitive file",
			ch:   changed(fileEntry("/etc/shadow", "s", 0o600), fileEntry("/etc/shadow", "s", 0o644), "mode"),
			want: []want{{id: pipeline.IDMetadataChanged, sev: pipeline.SeverityHigh, msg: "security-sensitive", ev: map[string]any{"old_mode": "0600", "new_mode": "0644"}}},
		},
		{
			name: "mode",
			ch:   changed(fileEntry("/usr/share/x", "s", 0o600), fileEntry("/usr/share/x", "s", 0o644), "mode"),
			want: []want{{id: pipeline.IDMetadataChanged, sev: pipeline.SeverityLow, ev: map[string]any{"old_mode": "0600", "new_mode": "0644"}}},
		},
		{
			name: "gains setuid",
			ch:   changed(fileEntry("/bin/busybox", "b", 0o755), fileEntry("/bin/busybox", "b", 0o4755), "mode"),
			want: []want{{id: pipeline.IDMetadataChanged, sev: pipeline.SeverityHigh, msg: "gains setuid (mode 0755 → 4755)"}},
		},
		{
			name: "gains setuid and setgid",
			ch:   changed(fileEntry("/bin/busybox", "b", 0o755), fileEntry("/bin/busybox", "b", 0o6755), "mode"),
			want: []want{{id: pipeline.IDMetadataChanged, sev: pipeline.SeverityHigh, msg: "setuid and setgid"}},
		},
		{
			name: "gains setgid keeping setuid",
			ch:   changed(fileEntry("/bin/busybox", "b", 0o4755), fileEntry("/bin/busybox", "b", 0o6755), "mode"),
			want: []want{{id: pipeline.IDMetadataChanged, sev: pipeline.SeverityHigh, msg: "gains setgid"}},
		},
		{
			name: "loses setuid",
			ch:   changed(fileEntry("/bin/su", "b", 0o4755), fileEntry("/bin/su", "b", 0o755), "mode"),
			want: []want{{id: pipeline.IDMetadataChanged, sev: pipeline.SeverityLow}},
		},
		{
			name: "directory gains setgid",
			ch:   changed(dirEntry("/var/mail", 0o775), dirEntry("/var/mail", 0o2775), "mode"),
			want: []want{{id: pipeline.IDMetadataChanged, sev: pipeline.SeverityLow}},
		},
		{
			name: "gains sticky",
			ch:   changed(dirEntry("/tmp", 0o777), dirEntry("/tmp", 0o1777), "mode"),
			want: []want{{id: pipeline.IDMetadataChanged, sev: pipeline.SeverityLow}},
		},
		{
			name: "owner",
			ch:   changed(fileEntry("/etc/x", "x", 0o644), withOwner(fileEntry("/etc/x", "x", 0o644), 1000, 100), "uid", "gid"),
			want: []want{{id: pipeline.IDMetadataChanged, sev: pipeline.SeverityLow, ev: map[string]any{"old_uid": uint32(0), "new_uid": uint32(1000), "old_gid": uint32(0), "new_gid": uint32(100)}}},
		},
		{
			name: "link target",
			ch:   changed(link("busybox"), link("/tmp/sh"), "link_target"),
			want: []want{{id: pipeline.IDMetadataChanged, sev: pipeline.SeverityLow, ev: map[string]any{"old_link_target": "busybox", "new_link_target": "/tmp/sh"}}},
		},
		{
			name: "device",
			ch:   changed(dev(0), dev(1), "device"),
			want: []want{{id: pipeline.IDMetadataChanged, sev: pipeline.SeverityLow, ev: map[string]any{"old_device": "90:0", "new_device": "90:1"}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Files{}.Analyze(context.Background(), input(tt.ch))
			if err != nil {
				t.Fatalf("Analyze: %v", err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("%d findings, want %d: %s", len(got), len(tt.want), marshal(t, got))
			}
			for i, w := range tt.want {
				f := got[i]
				if f.ID != w.id || f.Severity != w.sev {
					t.Errorf("finding %d = %s/%s, want %s/%s", i, f.ID, f.Severity, w.id, w.sev)
				}
				if f.Path != tt.ch.Path || f.Key != tt.ch.Key {
					t.Errorf("finding %d path %q key %q, want %q", i, f.Path, f.Key, tt.ch.Key)
				}
				if !strings.Contains(f.Message, w.msg) {
					t.Errorf("finding %d message %q does not mention %q", i, f.Message, w.msg)
				}
				for k, v := range w.ev {
					if !reflect.DeepEqual(f.Evidence[k], v) {
						t.Errorf("finding %d evidence %s = %#v, want %#v", i, k, f.Evidence[k], v)
					}
				}
				if f.ID == pipeline.IDMetadataChanged {
					var fields []string
					for _, fl := range tt.ch.Fields {
						if fl != "content" && fl != "type" {
							fields = append(fields, fl)
						}
					}
					if !reflect.DeepEqual(f.Evidence["fields"], fields) {
						t.Errorf("finding %d evidence fields = %v, want %v", i, f.Evidence["fields"], fields)
					}
				}
			}
		})
	}
}

func TestFilesOnePerChange(t *testing.T) {
	changes := []*pipeline.Change{
		added(fileEntry("/a", "a", 0o644)),
		removed(fileEntry("/b", "b", 0o644)),
		changed(fileEntry("/c", "c1", 0o644), fileEntry("/c", "c2", 0o644), "content"),
		changed(fileEntry("/d", "d", 0o644), fileEntry("/d", "d", 0o640), "mode"),
	}
	got, err := Files{}.Analyze(context.Background(), input(changes...))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{pipeline.IDFileAdded, pipeline.IDFileRemoved, pipeline.IDFileModified, pipeline.IDMetadataChanged}
	if len(got) != len(want) {
		t.Fatalf("%d findings, want %d: %s", len(got), len(want), marshal(t, got))
	}
	for i, id := range want {
		if got[i].ID != id || got[i].Key != changes[i].Key {
			t.Errorf("finding %d = %s for %s, want %s for %s", i, got[i].ID, got[i].Key, id, changes[i].Key)
		}
		if got[i].Severity != pipeline.DefaultSeverity[id] {
			t.Errorf("finding %d severity %s, want %s", i, got[i].Severity, pipeline.DefaultSeverity[id])
		}
	}
}
