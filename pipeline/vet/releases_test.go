package vet_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/fixture"
	"github.com/fwvet/fwvet/pipeline/policy"
)

// TestReleasePairs: containers whose names carry the release
// (scripts/fixtures/releases.sh: the version in the uImage name, the FIT
// node names and descriptions, the UBI volume names and the vendor tar's
// member names) are paired by what they are. The clean update passes with
// nothing above info; one planted account is reported once, at
// /etc/passwd inside the candidate's own container chain.
func TestReleasePairs(t *testing.T) {
	log := logrus.New()
	log.SetLevel(logrus.ErrorLevel)
	manifest := []string{filepath.Join(fixture.Root(t), "testdata", "manifests", "rt3200-1.0.1.json")}
	for _, tt := range []struct {
		shape string
		// chain is the container chain of the root file system's entries
		// in the candidate, after the artifact's name.
		chain string
	}{
		{"multi", "uimage › /multi/1 › squashfs"},
		{"flash", "raw › /squashfs-1 › squashfs"},
		{"fit", "fit › /images/filesystem-1 › squashfs"},
		{"ubi", "ubi › /volume-1 › squashfs"},
		{"tar", "tar › /rt3200-rootfs-v1.0.1.squashfs › squashfs"},
	} {
		t.Run(tt.shape, func(t *testing.T) {
			base := fixture.Path(t, "fw/release-"+tt.shape+"-1.0.0.bin")
			clean := runVet(t, log, base, fixture.Path(t, "fw/release-"+tt.shape+"-1.0.1.bin"), manifest)
			if clean.Verdict != pipeline.VerdictPass {
				t.Errorf("clean update: verdict %s (%q), want pass", clean.Verdict, clean.Reasons)
			}
			for _, f := range clean.Findings {
				if f.Severity > pipeline.SeverityInfo || !f.Disclosed {
					t.Errorf("clean update: %s %s %s at %s (disclosed %v): %s", f.Severity, f.ID, f.Path, pipeline.Where(f.Container, ""), f.Disclosed, f.Message)
				}
			}
			// What the release declares is found where the manifest says.
			if !slices.ContainsFunc(clean.Findings, func(f pipeline.Finding) bool {
				return f.ID == pipeline.IDFileModified && f.Path == "/etc/banner" && strings.Join(f.Container[1:], " › ") == tt.chain
			}) {
				t.Errorf("clean update: no file-modified /etc/banner in %s", tt.chain)
			}

			planted := runVet(t, log, base, fixture.Path(t, "fw/release-"+tt.shape+"-1.0.1-account.bin"), manifest)
			if planted.Verdict != pipeline.VerdictFail {
				t.Errorf("planted account: verdict %s, want fail", planted.Verdict)
			}
			var high []string
			for _, f := range planted.Findings {
				if f.Severity > pipeline.SeverityInfo {
					high = append(high, f.ID+" "+f.Path+" in "+strings.Join(f.Container[1:], " › "))
				}
			}
			want := []string{"account-added /etc/passwd in " + tt.chain}
			if !slices.Equal(high, want) {
				t.Errorf("planted account: findings above info %q, want %q", high, want)
			}
		})
	}
}

// TestUnchangedContainers: a container whose bytes are the same on both
// sides (Go's archive/tar test data in a real /usr: tars with entries that
// climb out) changes nothing. It is not descended into for the diff, and
// what it holds is not reported as new: the update, which only changes a
// declared file, passes.
func TestUnchangedContainers(t *testing.T) {
	if _, err := exec.LookPath("mksquashfs"); err != nil {
		t.Skip("mksquashfs is not installed (run make test's set-up)")
	}
	log := logrus.New()
	log.SetLevel(logrus.ErrorLevel)
	dir := t.TempDir()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	tw := tar.NewWriter(zw)
	zeros := make([]byte, 32<<20)
	if err := tw.WriteHeader(&tar.Header{Name: "zeros", Mode: 0o644, Size: int64(len(zeros))}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(zeros); err != nil || tw.Close() != nil || zw.Close() != nil {
		t.Fatal("writing many-zeros.tar.gz:", err)
	}
	zerosGz := gz.Bytes()
	image := func(version string, tars ...string) string {
		root := filepath.Join(dir, version)
		td := filepath.Join(root, "usr", "lib", "go", "src", "archive", "tar", "testdata")
		if err := os.MkdirAll(td, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, name := range tars {
			if err := os.WriteFile(filepath.Join(td, name), fixture.ReadFile(t, "hostile/"+name), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		// A stream that a limit refuses to expand (like Go's
		// gnu-sparse-many-zeros.tar.bz2), the same on both sides: the limit
		// holds equally for the baseline, so it is no change.
		if err := os.WriteFile(filepath.Join(td, "many-zeros.tar.gz"), zerosGz, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, "etc", "fw-release"), []byte(version+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		img := filepath.Join(dir, "usr-"+version+".sqfs")
		if out, err := exec.Command("mksquashfs", root, img, "-noappend", "-all-root", "-no-progress", "-quiet").CombinedOutput(); err != nil {
			t.Fatalf("mksquashfs: %v\n%s", err, out)
		}
		return img
	}
	manifest := filepath.Join(dir, "release.json")
	if err := os.WriteFile(manifest, []byte(`{"version": "1.0.1", "changed": ["/etc/fw-release"]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	base := image("1.0.0", "dotdot.tar", "hardlink-out.tar")
	rep := runVet(t, log, base, image("1.0.1", "dotdot.tar", "hardlink-out.tar"), []string{manifest})
	if rep.Verdict != pipeline.VerdictPass || len(rep.Findings) != 1 || rep.Findings[0].Path != "/etc/fw-release" {
		t.Errorf("verdict %s (%q), findings %s; want pass with only /etc/fw-release", rep.Verdict, rep.Reasons, summary(rep.Findings))
	}
	// The same tars arriving new in the candidate are reported.
	rep = runVet(t, log, image("0.9.0"), image("1.0.2", "dotdot.tar"), []string{manifest})
	if !slices.ContainsFunc(rep.Findings, func(f pipeline.Finding) bool { return f.ID == pipeline.IDUnsafeEntry }) {
		t.Errorf("a new tar's escaping entries are not reported: %s", summary(rep.Findings))
	}
}

// TestCutShortIsAnError: a squashfs whose walk a limit stops (a sparse
// 1 GiB file that makes it a decompression bomb) leaves the rest of the
// image unread. The unpack check is an error, so a policy that ranks
// unsafe-entry low cannot pass it.
func TestCutShortIsAnError(t *testing.T) {
	if _, err := exec.LookPath("mksquashfs"); err != nil {
		t.Skip("mksquashfs is not installed (run make test's set-up)")
	}
	log := logrus.New()
	log.SetLevel(logrus.ErrorLevel)
	dir := t.TempDir()
	// No release file: which files the bomb leaves unread varies from run
	// to run, and the version must not be one of them.
	image := func(version string, bomb bool) string {
		root := filepath.Join(dir, version)
		if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, "etc", "banner"), []byte("router "+version+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if bomb {
			data := filepath.Join(root, "data")
			if err := os.MkdirAll(data, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(mustCreate(t, filepath.Join(data, "a-sparse")), 1<<30); err != nil {
				t.Fatal(err)
			}
			for i := range 2000 {
				if err := os.WriteFile(filepath.Join(data, "z-"+strconv.Itoa(i)), []byte("unread "+strconv.Itoa(i)), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
		img := filepath.Join(dir, version+".sqfs")
		if out, err := exec.Command("mksquashfs", root, img, "-noappend", "-all-root", "-no-progress", "-quiet").CombinedOutput(); err != nil {
			t.Fatalf("mksquashfs: %v\n%s", err, out)
		}
		return img
	}
	manifest := filepath.Join(dir, "release.json")
	if err := os.WriteFile(manifest, []byte(`{"changed": ["/etc/banner"], "added": ["/data"]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	lenient := policy.Default()
	lenient.ReviewOn = pipeline.SeverityMedium
	lenient.Severity = map[string]pipeline.Severity{pipeline.IDUnsafeEntry: pipeline.SeverityLow}
	rep := runVetPolicy(t, log, image("1.0.0", false), image("1.0.1", true), []string{manifest}, lenient)
	var unpack *pipeline.Check
	for i := range rep.Checks {
		if rep.Checks[i].Name == "unpack" {
			unpack = &rep.Checks[i]
		}
	}
	if unpack == nil || unpack.Status != pipeline.CheckError || !strings.Contains(unpack.Detail, "not read to the end") {
		t.Errorf("unpack check %+v, want an error: the image was not read to the end", unpack)
	}
	if rep.Verdict != pipeline.VerdictFail {
		t.Errorf("verdict %s (%q), want fail", rep.Verdict, rep.Reasons)
	}
}

func mustCreate(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	return path
}

// TestHeaderOnlyUpdate: a uImage around the same kernel with a new name,
// time and CRC is an update of nothing but its header: it passes, with the
// name's change reported as info.
func TestHeaderOnlyUpdate(t *testing.T) {
	log := logrus.New()
	log.SetLevel(logrus.ErrorLevel)
	manifest := filepath.Join(t.TempDir(), "release.json")
	if err := os.WriteFile(manifest, []byte(`{"product": "RT-3200", "version": "1.0.1"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	rep := runVet(t, log, fixture.Path(t, "fw/release-kernel-1.0.0.uimage"), fixture.Path(t, "fw/release-kernel-1.0.1.uimage"), []string{manifest})
	if rep.Verdict != pipeline.VerdictPass {
		t.Errorf("verdict %s (%q), want pass", rep.Verdict, rep.Reasons)
	}
	if len(rep.Findings) != 1 || rep.Findings[0].ID != pipeline.IDMetadataChanged || rep.Findings[0].Severity != pipeline.SeverityInfo ||
		rep.Findings[0].Path != "/kernel" || rep.Findings[0].Evidence["new_label"] != "RT-3200 kernel 1.0.1" {
		t.Errorf("findings %+v, want one info metadata-changed of /kernel's label", rep.Findings)
	}
}
