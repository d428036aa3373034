package diff

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/fwvet/fwvet/pipeline"
)

// in puts an entry inside the container files given, outermost first, as
// the unpacker would: the key joins their paths, the chain names them with
// the format each was opened as.
func in(e *pipeline.Entry, containers ...string) *pipeline.Entry {
	chain := []string{"fw.bin", "tar"}
	keys := []string{}
	for _, c := range containers {
		path, format, _ := strings.Cut(c, " ")
		chain = append(chain, path, format)
		keys = append(keys, path)
	}
	e.Container = chain
	e.Key = strings.Join(append(keys, e.Path), "\x00")
	return e
}

func readable(e *pipeline.Entry) *pipeline.Entry {
	e.SetOpen(func(context.Context) (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("")), nil })
	return e
}

func withLabel(l string) func(*pipeline.Entry) { return func(e *pipeline.Entry) { e.Label = l } }

// changeString shows a change as the pairing tests compare it: kind, path
// in its chain (the candidate's, or the baseline's for a removal), fields.
func changeString(ch *pipeline.Change) string {
	s := string(ch.Kind) + " " + pipeline.Where(ch.Container[1:], ch.Path)
	if len(ch.Fields) > 0 {
		s += " " + strings.Join(ch.Fields, ",")
	}
	if ch.Nested {
		s += " nested"
	}
	return s
}

func TestPairing(t *testing.T) {
	tests := []struct {
		name       string
		base, cand []*pipeline.Entry
		want       []string
	}{
		{
			name: "a renamed member is paired by format",
			base: []*pipeline.Entry{
				reg("/rootfs-v1.0.0.squashfs", hashA, 10),
				in(reg("/etc/passwd", hashA, 1), "/rootfs-v1.0.0.squashfs squashfs"),
				in(reg("/etc/banner", hashA, 1), "/rootfs-v1.0.0.squashfs squashfs"),
			},
			cand: []*pipeline.Entry{
				reg("/rootfs-v1.0.1.squashfs", hashB, 10),
				in(reg("/etc/passwd", hashA, 1), "/rootfs-v1.0.1.squashfs squashfs"),
				in(reg("/etc/banner", hashB, 1), "/rootfs-v1.0.1.squashfs squashfs"),
			},
			want: []string{
				"modified tar › /rootfs-v1.0.1.squashfs content nested",
				"modified tar › /rootfs-v1.0.1.squashfs › squashfs › /etc/banner content",
			},
		},
		{
			name: "paired by equal bytes before format order",
			base: []*pipeline.Entry{
				reg("/a-1.tar", hashA, 10), in(reg("/x", hashA, 1), "/a-1.tar tar"),
				reg("/b-1.tar", hashB, 10), in(reg("/y", hashB, 1), "/b-1.tar tar"),
			},
			cand: []*pipeline.Entry{
				reg("/a-2.tar", hashB, 10), in(reg("/y", hashB, 1), "/a-2.tar tar"),
				reg("/b-2.tar", hashC, 10), in(reg("/x", hashC, 1), "/b-2.tar tar"),
			},
			// a-2 holds b-1's bytes, so it is b-1; b-2 is what is left: a-1.
			want: []string{"modified tar › /b-2.tar content nested", "modified tar › /b-2.tar › tar › /x content"},
		},
		{
			name: "formats differ: removed and added",
			base: []*pipeline.Entry{reg("/fs-1.img", hashA, 10), in(reg("/x", hashA, 1), "/fs-1.img squashfs")},
			cand: []*pipeline.Entry{reg("/fs-2.img", hashB, 10), in(reg("/x", hashA, 1), "/fs-2.img ext4")},
			want: []string{
				"removed tar › /fs-1.img nested", "removed tar › /fs-1.img › squashfs › /x",
				"added tar › /fs-2.img nested", "added tar › /fs-2.img › ext4 › /x",
			},
		},
		{
			name: "a name still used in the candidate is not taken over",
			base: []*pipeline.Entry{reg("/fw-1.sqfs", hashA, 10), in(reg("/x", hashA, 1), "/fw-1.sqfs squashfs")},
			cand: []*pipeline.Entry{
				reg("/fw-1.sqfs", hashC, 3),
				reg("/fw-2.sqfs", hashB, 10), in(reg("/x", hashA, 1), "/fw-2.sqfs squashfs"),
			},
			want: []string{
				"modified tar › /fw-1.sqfs content", "removed tar › /fw-1.sqfs › squashfs › /x",
				"added tar › /fw-2.sqfs nested", "added tar › /fw-2.sqfs › squashfs › /x",
			},
		},
		{
			name: "a container with equal bytes is not compared inside",
			base: []*pipeline.Entry{
				readable(reg("/t.tar", hashA, 10)),
				in(reg("/unread", "", 1), "/t.tar tar"),
				reg("/etc/fw-release", hashA, 1),
			},
			cand: []*pipeline.Entry{
				readable(reg("/t.tar", hashA, 10)),
				in(reg("/unread", "", 1), "/t.tar tar"),
				reg("/etc/fw-release", hashB, 1),
			},
			want: []string{"modified tar › /etc/fw-release content"},
		},
		{
			name: "a header label is metadata, not a path",
			base: []*pipeline.Entry{reg("/kernel", hashA, 1, withLabel("RT-3200 kernel 1.0.0"))},
			cand: []*pipeline.Entry{reg("/kernel", hashA, 1, withLabel("RT-3200 kernel 1.0.1"))},
			want: []string{"metadata tar › /kernel label"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, e := range append(tt.base, tt.cand...) {
				if e.Container == nil {
					in(e)
				}
			}
			changes := Trees(pipeline.NewTree(tt.base, nil), pipeline.NewTree(tt.cand, nil))
			var got []string
			for _, ch := range changes {
				got = append(got, changeString(ch))
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("changes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			for i := 1; i < len(changes); i++ {
				if changes[i-1].Key >= changes[i].Key {
					t.Errorf("changes out of key order: %q before %q", changes[i-1].Key, changes[i].Key)
				}
			}
		})
	}
}

// TestSameProblem: a problem the baseline has at the same place of the
// paired container, or inside a container of equal bytes, is not new.
func TestSameProblem(t *testing.T) {
	base := pipeline.NewTree([]*pipeline.Entry{
		in(readable(reg("/same.tar", hashA, 10))),
		in(readable(reg("/fw-1.tar", hashA, 10))), in(reg("/x", hashA, 1), "/fw-1.tar tar"),
	}, []pipeline.Problem{{Kind: pipeline.ProblemUnsafe, Container: []string{"fw.bin", "tar", "/fw-1.tar", "tar"}, Path: "/../evil", Reason: "climbs out"}})
	cand := pipeline.NewTree([]*pipeline.Entry{
		in(readable(reg("/same.tar", hashA, 10))),
		in(readable(reg("/fw-2.tar", hashB, 10))), in(reg("/x", hashA, 1), "/fw-2.tar tar"),
	}, nil)
	p := Pair(base, cand)
	for _, tt := range []struct {
		name string
		pr   pipeline.Problem
		want bool
	}{
		{"same problem in the renamed container", pipeline.Problem{Kind: pipeline.ProblemUnsafe, Container: []string{"fw.bin", "tar", "/fw-2.tar", "tar"}, Path: "/../evil", Reason: "climbs out"}, true},
		{"another path", pipeline.Problem{Kind: pipeline.ProblemUnsafe, Container: []string{"fw.bin", "tar", "/fw-2.tar", "tar"}, Path: "/../other", Reason: "climbs out"}, false},
		{"another kind", pipeline.Problem{Kind: pipeline.ProblemLimit, Container: []string{"fw.bin", "tar", "/fw-2.tar", "tar"}, Path: "/../evil", Reason: "climbs out"}, false},
		{"inside a container of equal bytes", pipeline.Problem{Kind: pipeline.ProblemUnsafe, Container: []string{"fw.bin", "tar", "/same.tar", "tar"}, Path: "/../x", Reason: "climbs out"}, true},
		{"at the top", pipeline.Problem{Kind: pipeline.ProblemUnsafe, Container: []string{"fw.bin", "tar"}, Path: "/../x", Reason: "climbs out"}, false},
		{"same problem, reason naming the candidate", pipeline.Problem{Kind: pipeline.ProblemUnsafe, Container: []string{"fw-2.bin", "tar", "/fw-2.tar", "tar"}, Path: "/../evil", Reason: "fw-2.bin › tar › /fw-2.tar: climbs out"}, true},
		{"a limit opening a file of equal bytes", pipeline.Problem{Kind: pipeline.ProblemLimit, Limit: "max-ratio", Container: []string{"fw.bin", "tar"}, Path: "/same.tar", Reason: "a decompression bomb"}, true},
		{"a limit opening a changed file", pipeline.Problem{Kind: pipeline.ProblemLimit, Limit: "max-ratio", Container: []string{"fw.bin", "tar"}, Path: "/fw-2.tar", Reason: "a decompression bomb"}, false},
		{"an entry refused at a file of equal bytes", pipeline.Problem{Kind: pipeline.ProblemUnsafe, Container: []string{"fw.bin", "tar"}, Path: "/same.tar", Reason: "collides"}, false},
	} {
		if got := p.SameProblem(tt.pr); got != tt.want {
			t.Errorf("%s: SameProblem = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestBaseUnchanged: a limit the baseline hit is not held against it
// where the candidate hits the same one in or at a container equal on
// both sides, and is where the candidate's file differs.
func TestBaseUnchanged(t *testing.T) {
	bomb := func(img, file string) pipeline.Problem {
		return pipeline.Problem{Kind: pipeline.ProblemLimit, Limit: "max-ratio", Container: []string{img, "tar"}, Path: file, Reason: img + ": a decompression bomb"}
	}
	base := pipeline.NewTree([]*pipeline.Entry{
		in(readable(reg("/same.gz", hashA, 10))), in(readable(reg("/other.gz", hashA, 10))),
	}, []pipeline.Problem{bomb("a.bin", "/same.gz"), bomb("a.bin", "/other.gz")})
	cand := pipeline.NewTree([]*pipeline.Entry{
		in(readable(reg("/same.gz", hashA, 10))), in(readable(reg("/other.gz", hashB, 10))),
	}, []pipeline.Problem{bomb("b.bin", "/same.gz"), bomb("b.bin", "/other.gz")})
	p := Pair(base, cand)
	if !p.BaseUnchanged(base.Problems[0]) {
		t.Error("the baseline's limit at a file equal on both sides is held against it")
	}
	if p.BaseUnchanged(base.Problems[1]) {
		t.Error("the baseline's limit at a file that changed is not held against it")
	}
}
