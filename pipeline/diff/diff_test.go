package diff

import (
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/fwvet/fwvet/pipeline"
)

const (
	hashA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	hashB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	hashC = "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
)

// ent builds an entry with Key == Path; mods adjust it.
func ent(path string, typ pipeline.EntryType, mods ...func(*pipeline.Entry)) *pipeline.Entry {
	e := &pipeline.Entry{Path: path, Key: path, Type: typ, Mode: 0o644}
	switch typ {
	case pipeline.TypeDir:
		e.Mode = 0o755
	case pipeline.TypeSymlink:
		e.Mode = 0o777
	}
	for _, m := range mods {
		m(e)
	}
	return e
}

func reg(path, sha string, size int64, mods ...func(*pipeline.Entry)) *pipeline.Entry {
	return ent(path, pipeline.TypeFile, append([]func(*pipeline.Entry){func(e *pipeline.Entry) { e.SHA256, e.Size = sha, size }}, mods...)...)
}

func withMode(m uint32) func(*pipeline.Entry) { return func(e *pipeline.Entry) { e.Mode = m } }
func withUID(u uint32) func(*pipeline.Entry)  { return func(e *pipeline.Entry) { e.UID = u } }
func withGID(g uint32) func(*pipeline.Entry)  { return func(e *pipeline.Entry) { e.GID = g } }
func withTarget(t string) func(*pipeline.Entry) {
	return func(e *pipeline.Entry) { e.LinkTarget = t }
}
func withDev(major, minor uint32) func(*pipeline.Entry) {
	return func(e *pipeline.Entry) { e.Major, e.Minor = major, minor }
}

// want is the expected shape of one change.
type want struct {
	kind      pipeline.ChangeKind
	path      string
	fields    []string
	movedFrom string
	movedTo   string
}

func TestTrees(t *testing.T) {
	tests := []struct {
		name string
		base []*pipeline.Entry
		cand []*pipeline.Entry
		want []want
	}{
		{
			name: "identical",
			base: []*pipeline.Entry{reg("/bin/sh", hashA, 10), ent("/etc", pipeline.TypeDir), ent("/bin/ls", pipeline.TypeSymlink, withTarget("busybox"))},
			cand: []*pipeline.Entry{reg("/bin/sh", hashA, 10), ent("/etc", pipeline.TypeDir), ent("/bin/ls", pipeline.TypeSymlink, withTarget("busybox"))},
		},
		{
			name: "both empty",
		},
		{
			name: "added",
			base: []*pipeline.Entry{reg("/a", hashA, 1)},
			cand: []*pipeline.Entry{reg("/a", hashA, 1), reg("/b", hashB, 2)},
			want: []want{{kind: pipeline.ChangeAdded, path: "/b"}},
		},
		{
			name: "everything added to an empty baseline",
			cand: []*pipeline.Entry{reg("/b", hashB, 2), ent("/a", pipeline.TypeDir)},
			want: []want{{kind: pipeline.ChangeAdded, path: "/a"}, {kind: pipeline.ChangeAdded, path: "/b"}},
		},
		{
			name: "removed",
			base: []*pipeline.Entry{reg("/a", hashA, 1), reg("/b", hashB, 2)},
			cand: []*pipeline.Entry{reg("/b", hashB, 2)},
			want: []want{{kind: pipeline.ChangeRemoved, path: "/a"}},
		},
		{
			name: "content modified",
			base: []*pipeline.Entry{reg("/a", hashA, 1)},
			cand: []*pipeline.Entry{reg("/a", hashB, 1)},
			want: []want{{kind: pipeline.ChangeModified, path: "/a", fields: []string{"content"}}},
		},
		{
			name: "same hash different size",
			base: []*pipeline.Entry{reg("/a", hashA, 1)},
			cand: []*pipeline.Entry{reg("/a", hashA, 2)},
			want: []want{{kind: pipeline.ChangeModified, path: "/a", fields: []string{"content"}}},
		},
		{
			name: "unreadable on both sides counts as modified",
			base: []*pipeline.Entry{reg("/a", "", 5)},
			cand: []*pipeline.Entry{reg("/a", "", 5)},
			want: []want{{kind: pipeline.ChangeModified, path: "/a", fields: []string{"content"}}},
		},
		{
			name: "unreadable in candidate counts as modified",
			base: []*pipeline.Entry{reg("/a", hashA, 5)},
			cand: []*pipeline.Entry{reg("/a", "", 5)},
			want: []want{{kind: pipeline.ChangeModified, path: "/a", fields: []string{"content"}}},
		},
		{
			name: "mode",
			base: []*pipeline.Entry{reg("/a", hashA, 1, withMode(0o755))},
			cand: []*pipeline.Entry{reg("/a", hashA, 1, withMode(0o4755))},
			want: []want{{kind: pipeline.ChangeMetadata, path: "/a", fields: []string{"mode"}}},
		},
		{
			name: "uid",
			base: []*pipeline.Entry{reg("/a", hashA, 1)},
			cand: []*pipeline.Entry{reg("/a", hashA, 1, withUID(1000))},
			want: []want{{kind: pipeline.ChangeMetadata, path: "/a", fields: []string{"uid"}}},
		},
		{
			name: "gid",
			base: []*pipeline.Entry{reg("/a", hashA, 1, withGID(5))},
			cand: []*pipeline.Entry{reg("/a", hashA, 1)},
			want: []want{{kind: pipeline.ChangeMetadata, path: "/a", fields: []string{"gid"}}},
		},
		{
			name: "directory mode and owner",
			base: []*pipeline.Entry{ent("/tmp", pipeline.TypeDir, withMode(0o755))},
			cand: []*pipeline.Entry{ent("/tmp", pipeline.TypeDir, withMode(0o1777), withUID(1), withGID(2))},
			want: []want{{kind: pipeline.ChangeMetadata, path: "/tmp", fields: []string{"mode", "uid", "gid"}}},
		},
		{
			name: "symlink target",
			base: []*pipeline.Entry{ent("/bin/sh", pipeline.TypeSymlink, withTarget("busybox"))},
			cand: []*pipeline.Entry{ent("/bin/sh", pipeline.TypeSymlink, withTarget("/tmp/evil"))},
			want: []want{{kind: pipeline.ChangeMetadata, path: "/bin/sh", fields: []string{"link_target"}}},
		},
		{
			name: "device numbers",
			base: []*pipeline.Entry{ent("/dev/mem", pipeline.TypeChar, withDev(1, 1))},
			cand: []*pipeline.Entry{ent("/dev/mem", pipeline.TypeChar, withDev(1, 2))},
			want: []want{{kind: pipeline.ChangeMetadata, path: "/dev/mem", fields: []string{"device"}}},
		},
		{
			name: "content and metadata",
			base: []*pipeline.Entry{reg("/a", hashA, 1, withMode(0o644))},
			cand: []*pipeline.Entry{reg("/a", hashB, 1, withMode(0o755), withUID(3))},
			want: []want{{kind: pipeline.ChangeModified, path: "/a", fields: []string{"content", "mode", "uid"}}},
		},
		{
			name: "file replaced by symlink",
			base: []*pipeline.Entry{reg("/bin/sh", hashA, 1, withMode(0o777))},
			cand: []*pipeline.Entry{ent("/bin/sh", pipeline.TypeSymlink, withTarget("busybox"))},
			want: []want{{kind: pipeline.ChangeModified, path: "/bin/sh", fields: []string{"type"}}},
		},
		{
			name: "directory replaced by file",
			base: []*pipeline.Entry{ent("/x", pipeline.TypeDir)},
			cand: []*pipeline.Entry{reg("/x", hashA, 1, withMode(0o755))},
			want: []want{{kind: pipeline.ChangeModified, path: "/x", fields: []string{"type"}}},
		},
		{
			name: "char device replaced by block device",
			base: []*pipeline.Entry{ent("/dev/x", pipeline.TypeChar, withDev(8, 0))},
			cand: []*pipeline.Entry{ent("/dev/x", pipeline.TypeBlock, withDev(8, 0))},
			want: []want{{kind: pipeline.ChangeModified, path: "/dev/x", fields: []string{"type"}}},
		},
		{
			name: "move detected by hash",
			base: []*pipeline.Entry{reg("/usr/bin/tool", hashA, 7)},
			cand: []*pipeline.Entry{reg("/usr/sbin/tool", hashA, 7)},
			want: []want{
				{kind: pipeline.ChangeRemoved, path: "/usr/bin/tool", movedTo: "/usr/sbin/tool"},
				{kind: pipeline.ChangeAdded, path: "/usr/sbin/tool", movedFrom: "/usr/bin/tool"},
			},
		},
		{
			name: "move to an earlier key",
			base: []*pipeline.Entry{reg("/z/tool", hashA, 7)},
			cand: []*pipeline.Entry{reg("/a/tool", hashA, 7)},
			want: []want{
				{kind: pipeline.ChangeAdded, path: "/a/tool", movedFrom: "/z/tool"},
				{kind: pipeline.ChangeRemoved, path: "/z/tool", movedTo: "/a/tool"},
			},
		},
		{
			name: "different contents are not a move",
			base: []*pipeline.Entry{reg("/old", hashA, 7)},
			cand: []*pipeline.Entry{reg("/new", hashB, 7)},
			want: []want{
				{kind: pipeline.ChangeAdded, path: "/new"},
				{kind: pipeline.ChangeRemoved, path: "/old"},
			},
		},
		{
			name: "unreadable files are not a move",
			base: []*pipeline.Entry{reg("/old", "", 7)},
			cand: []*pipeline.Entry{reg("/new", "", 7)},
			want: []want{
				{kind: pipeline.ChangeAdded, path: "/new"},
				{kind: pipeline.ChangeRemoved, path: "/old"},
			},
		},
		{
			name: "symlinks are not moves",
			base: []*pipeline.Entry{ent("/old", pipeline.TypeSymlink, withTarget("x"))},
			cand: []*pipeline.Entry{ent("/new", pipeline.TypeSymlink, withTarget("x"))},
			want: []want{
				{kind: pipeline.ChangeAdded, path: "/new"},
				{kind: pipeline.ChangeRemoved, path: "/old"},
			},
		},
		{
			name: "two copies moved pair one to one",
			base: []*pipeline.Entry{reg("/a1", hashC, 3), reg("/a2", hashC, 3)},
			cand: []*pipeline.Entry{reg("/b1", hashC, 3), reg("/b2", hashC, 3), reg("/b3", hashC, 3)},
			want: []want{
				{kind: pipeline.ChangeRemoved, path: "/a1", movedTo: "/b1"},
				{kind: pipeline.ChangeRemoved, path: "/a2", movedTo: "/b2"},
				{kind: pipeline.ChangeAdded, path: "/b1", movedFrom: "/a1"},
				{kind: pipeline.ChangeAdded, path: "/b2", movedFrom: "/a2"},
				{kind: pipeline.ChangeAdded, path: "/b3"},
			},
		},
		{
			name: "mixed, keys sorted from unsorted input",
			base: []*pipeline.Entry{reg("/etc/shadow", hashB, 4), reg("/www/help.html", hashC, 5), reg("/etc/passwd", hashA, 3), ent("/etc", pipeline.TypeDir)},
			cand: []*pipeline.Entry{reg("/usr/sbin/dropbear", hashC, 9), reg("/etc/passwd", hashC, 3), ent("/etc", pipeline.TypeDir), reg("/etc/shadow", hashB, 4, withMode(0o600)), reg("/etc/init.d/S55", hashA, 1)},
			want: []want{
				{kind: pipeline.ChangeAdded, path: "/etc/init.d/S55"},
				{kind: pipeline.ChangeModified, path: "/etc/passwd", fields: []string{"content"}},
				{kind: pipeline.ChangeMetadata, path: "/etc/shadow", fields: []string{"mode"}},
				{kind: pipeline.ChangeAdded, path: "/usr/sbin/dropbear", movedFrom: "/www/help.html"},
				{kind: pipeline.ChangeRemoved, path: "/www/help.html", movedTo: "/usr/sbin/dropbear"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Trees(pipeline.NewTree(tt.base, nil), pipeline.NewTree(tt.cand, nil))
			if len(got) != len(tt.want) {
				t.Fatalf("Trees returned %d changes, want %d:\n%s", len(got), len(tt.want), dump(got))
			}
			for i, w := range tt.want {
				c := got[i]
				if c.Kind != w.kind || c.Path != w.path || c.Key != w.path {
					t.Errorf("change %d = %s %s (key %s), want %s %s", i, c.Kind, c.Path, c.Key, w.kind, w.path)
				}
				if !reflect.DeepEqual(c.Fields, w.fields) {
					t.Errorf("change %d (%s) fields = %v, want %v", i, c.Path, c.Fields, w.fields)
				}
				if c.MovedFrom != w.movedFrom || c.MovedTo != w.movedTo {
					t.Errorf("change %d (%s) moved from %q to %q, want from %q to %q", i, c.Path, c.MovedFrom, c.MovedTo, w.movedFrom, w.movedTo)
				}
				if c.Disclosed {
					t.Errorf("change %d (%s) is disclosed straight out of diff", i, c.Path)
				}
				checkSides(t, c)
			}
			if !sort.SliceIsSorted(got, func(i, j int) bool { return got[i].Key < got[j].Key }) {
				t.Errorf("changes not sorted by key:\n%s", dump(got))
			}
		})
	}
}

// checkSides asserts Old and New are set as the change kind requires and
// belong to the change's key.
func checkSides(t *testing.T, c *pipeline.Change) {
	t.Helper()
	switch c.Kind {
	case pipeline.ChangeAdded:
		if c.Old != nil || c.New == nil {
			t.Errorf("%s %s: Old=%v New=%v, want only New", c.Kind, c.Path, c.Old, c.New)
		}
	case pipeline.ChangeRemoved:
		if c.Old == nil || c.New != nil {
			t.Errorf("%s %s: Old=%v New=%v, want only Old", c.Kind, c.Path, c.Old, c.New)
		}
	default:
		if c.Old == nil || c.New == nil {
			t.Errorf("%s %s: Old=%v New=%v, want both", c.Kind, c.Path, c.Old, c.New)
		}
	}
	if e := c.Entry(); e == nil || e.Key != c.Key {
		t.Errorf("%s %s: entry %v does not match key %q", c.Kind, c.Path, e, c.Key)
	}
}

func TestTreesNestedContainers(t *testing.T) {
	// The same path in two file systems is two entries; Key tells them apart
	// and the change carries the candidate's container chain.
	mk := func(key, sha string, container ...string) *pipeline.Entry {
		e := reg("/etc/passwd", sha, 3)
		e.Key, e.Container = key, container
		return e
	}
	base := pipeline.NewTree([]*pipeline.Entry{
		mk("/etc/passwd", hashA, "old.bin"),
		mk("rootfs/etc/passwd", hashA, "old.bin", "squashfs@0x100"),
	}, nil)
	cand := pipeline.NewTree([]*pipeline.Entry{
		mk("/etc/passwd", hashA, "new.bin"),
		mk("rootfs/etc/passwd", hashB, "new.bin", "squashfs@0x200"),
	}, nil)
	got := Trees(base, cand)
	if len(got) != 1 {
		t.Fatalf("Trees returned %d changes, want 1:\n%s", len(got), dump(got))
	}
	c := got[0]
	if c.Key != "rootfs/etc/passwd" || c.Path != "/etc/passwd" || c.Kind != pipeline.ChangeModified {
		t.Errorf("change = %s %s key %s, want modified /etc/passwd key rootfs/etc/passwd", c.Kind, c.Path, c.Key)
	}
	if !reflect.DeepEqual(c.Container, []string{"new.bin", "squashfs@0x200"}) {
		t.Errorf("container = %v, want the candidate's", c.Container)
	}
}

func dump(cs []*pipeline.Change) string {
	var b strings.Builder
	for _, c := range cs {
		b.WriteString("  " + string(c.Kind) + " " + c.Key + " " + strings.Join(c.Fields, ",") + " from=" + c.MovedFrom + " to=" + c.MovedTo + "\n")
	}
	return b.String()
}
