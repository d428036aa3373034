package equivalence_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/equivalence"
	"github.com/fwvet/fwvet/pipeline/unpack"
)

// fixtureDir is where scripts/fixtures/equivalence.sh writes the pairs.
func fixtureDir(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "..", "..", "testdata", "build", "fw", "equivalence")
	if _, err := os.Stat(filepath.Join(dir, "rt3200-fw-1.2.3.squashfs")); err != nil {
		t.Skipf("fixture missing: run scripts/mkfixtures (or bash scripts/fixtures/equivalence.sh SRC testdata/build/fw): %v", err)
	}
	return dir
}

type side struct {
	art  *pipeline.Artifact
	tree *pipeline.Tree
}

func load(t *testing.T, path string) side {
	t.Helper()
	ctx := context.Background()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	art := &pipeline.Artifact{Ref: path, Name: filepath.Base(path), Path: path, Size: int64(len(b)),
		Digest: "sha256:" + hex.EncodeToString(sum[:]), MediaType: "application/octet-stream"}
	u, err := unpack.New(unpack.Options{Limits: pipeline.DefaultLimits(), WorkDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	tree, err := u.Unpack(ctx, art)
	if err != nil {
		// As the command does: an image that cannot be unpacked is one opaque part.
		tree = pipeline.NewTree(nil, []pipeline.Problem{{Kind: pipeline.ProblemCorrupt, Container: []string{art.Name}, Path: "/", Reason: err.Error()}})
		tree.Incomplete = true
	}
	t.Cleanup(func() { tree.Close() })
	return side{art, tree}
}

func compare(t *testing.T, shipped, rebuilt string) *equivalence.Report {
	t.Helper()
	a, b := load(t, shipped), load(t, rebuilt)
	rep, err := equivalence.Compare(context.Background(), equivalence.Options{
		Shipped: a.tree, Rebuilt: b.tree,
		ShippedSubject: pipeline.Subject{Ref: shipped, Digest: a.art.Digest, Size: a.art.Size},
		RebuiltSubject: pipeline.Subject{Ref: rebuilt, Digest: b.art.Digest, Size: b.art.Size},
		ShippedPath:    a.art.Path, RebuiltPath: b.art.Path,
		Tool: pipeline.Tool{Name: "fwvet", Version: "test"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func file(rep *equivalence.Report, path string) *equivalence.File {
	for _, f := range rep.Files {
		if f.Path == path {
			return f
		}
	}
	return nil
}

func ruleIDs(f *equivalence.File) []string {
	var ids []string
	for _, a := range f.Rules {
		ids = append(ids, a.ID)
	}
	return ids
}

// TestFixturePairs compares the shipped image with each rebuild of
// scripts/fixtures/equivalence.sh.
func TestFixturePairs(t *testing.T) {
	dir := fixtureDir(t)
	shipped := filepath.Join(dir, "rt3200-fw-1.2.3.squashfs")
	// explainedBy is the rule that must explain each file of a clean rebuild.
	explainedBy := map[string]string{
		"/usr/sbin/diagd":                "elf-build-id",
		"/usr/bin/ledctl":                "elf-build-id",
		"/lib/modules/wdt.ko":            "module-signature",
		"/usr/share/doc/diagd/README.gz": "gzip-header",
		"/etc/build-info":                "build-date",
		"/www/ui.tar":                    "container-metadata",
		"/www/ui.zip":                    "zip-timestamps",
		"/www/ui.ext4":                   "ext4-timestamps",
	}
	for _, tc := range []struct {
		name    string
		verdict equivalence.Verdict
		// class of the named file, and the functions it must name.
		path      string
		class     equivalence.Class
		sections  []string
		functions []string
	}{
		{name: "rebuild", verdict: equivalence.VerdictEquivalent},
		{name: "code", verdict: equivalence.VerdictNotEquivalent, path: "/usr/sbin/diagd", class: equivalence.ClassUnexplained,
			sections: []string{".text"}, functions: []string{"checksum"}},
		{name: "rodata", verdict: equivalence.VerdictNotEquivalent, path: "/usr/sbin/diagd", class: equivalence.ClassUnexplained,
			sections: []string{".rodata"}},
		{name: "extra", verdict: equivalence.VerdictNotEquivalent, path: "/usr/bin/extra", class: equivalence.ClassOnlyRebuilt},
		{name: "mode", verdict: equivalence.VerdictNotEquivalent, path: "/usr/sbin/diagd", class: equivalence.ClassUnexplained},
		{name: "truncated", verdict: equivalence.VerdictInconclusive, class: equivalence.ClassOpaque},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := compare(t, shipped, filepath.Join(dir, "rt3200-fw-1.2.3-"+tc.name+".squashfs"))
			if rep.Verdict != tc.verdict {
				var b bytes.Buffer
				equivalence.EncodeText(&b, rep)
				t.Fatalf("verdict %s, want %s\n%s", rep.Verdict, tc.verdict, b.String())
			}
			if tc.name != "truncated" {
				for p, id := range explainedBy {
					if tc.path == p {
						continue
					}
					f := file(rep, p)
					if f == nil || f.Class != equivalence.ClassExplained || !slices.Contains(ruleIDs(f), id) {
						t.Errorf("%s: %+v, want explained by %s", p, f, id)
						continue
					}
					if f.NormalizedShipped == "" || f.NormalizedShipped != f.NormalizedRebuilt {
						t.Errorf("%s: normalized digests %q and %q", p, f.NormalizedShipped, f.NormalizedRebuilt)
					}
				}
				if f := file(rep, "/etc/passwd"); f == nil || f.Class != equivalence.ClassIdentical {
					t.Errorf("/etc/passwd: %+v, want identical", f)
				}
			}
			if tc.class == equivalence.ClassOpaque {
				if rep.Summary[equivalence.ClassOpaque] == 0 {
					t.Errorf("summary %v, want an opaque part", rep.Summary)
				}
				return
			}
			if tc.path == "" {
				if n := len(rep.Unexplained()); n != 0 {
					t.Errorf("%d files not explained", n)
				}
				return
			}
			f := file(rep, tc.path)
			if f == nil {
				t.Fatalf("%s not in the report", tc.path)
			}
			if f.Class != tc.class {
				t.Fatalf("%s: class %s, want %s (%s)", tc.path, f.Class, tc.class, f.Reason)
			}
			if tc.name == "mode" && (f.Differences == nil || !slices.Contains(f.Differences.Fields, "mode")) {
				t.Errorf("mode: differences %+v, want mode", f.Differences)
			}
			for _, s := range tc.sections {
				if f.Differences == nil || !slices.Contains(f.Differences.Sections, s) {
					t.Errorf("sections %v, want %s", f.Differences, s)
				}
			}
			if f.Differences != nil && slices.Contains(f.Differences.Sections, ".note.gnu.build-id") {
				t.Errorf("sections %v name the masked build id", f.Differences.Sections)
			}
			for _, fn := range tc.functions {
				if !slices.Contains(f.Differences.Functions, fn) {
					t.Errorf("functions %v, want %s", f.Differences.Functions, fn)
				}
			}
			if tc.name == "code" && slices.Contains(f.Differences.Functions, "serve") {
				t.Errorf("functions %v name serve, which did not change", f.Differences.Functions)
			}
		})
	}
}

func TestBitIdentical(t *testing.T) {
	dir := fixtureDir(t)
	p := filepath.Join(dir, "rt3200-fw-1.2.3.squashfs")
	rep := compare(t, p, p)
	if rep.Verdict != equivalence.VerdictBitIdentical || rep.Summary[equivalence.ClassIdentical] == 0 {
		t.Fatalf("verdict %s, summary %v", rep.Verdict, rep.Summary)
	}
}

// TestReportFormats: the JSON carries the schema, header and per-file
// evidence; the text starts with the verdict and lists unexplained files
// first; the HTML page is self-contained.
func TestReportFormats(t *testing.T) {
	dir := fixtureDir(t)
	rep := compare(t, filepath.Join(dir, "rt3200-fw-1.2.3.squashfs"), filepath.Join(dir, "rt3200-fw-1.2.3-code.squashfs"))
	var j bytes.Buffer
	if err := equivalence.Encode(&j, rep, "json"); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(j.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc["schema"] != equivalence.Schema || doc["verdict"] != "not-equivalent" {
		t.Errorf("schema %v verdict %v", doc["schema"], doc["verdict"])
	}
	if d, _ := doc["rules_digest"].(string); d != equivalence.RulesDigest(equivalence.Rules()) {
		t.Errorf("rules_digest %q", d)
	}
	for _, k := range []string{"shipped", "rebuilt", "tool", "files", "summary", "rules"} {
		if doc[k] == nil {
			t.Errorf("no %q in the JSON report", k)
		}
	}
	files := doc["files"].([]any)
	first := files[0].(map[string]any)
	if first["class"] != "unexplained" {
		t.Errorf("first file %v, want an unexplained one", first)
	}
	if !strings.Contains(j.String(), `"functions": [`) || !strings.Contains(j.String(), `"normalized_shipped"`) {
		t.Errorf("JSON lacks functions or normalized digests:\n%s", j.String())
	}

	var txt bytes.Buffer
	if err := equivalence.Encode(&txt, rep, "text"); err != nil {
		t.Fatal(err)
	}
	s := txt.String()
	if !strings.HasPrefix(s, "NOT-EQUIVALENT: ") {
		t.Errorf("text starts %q", s[:min(len(s), 40)])
	}
	if u, e := strings.Index(s, "\nunexplained "), strings.Index(s, "\nexplained "); u < 0 || e < 0 || u > e {
		t.Errorf("unexplained files are not listed first:\n%s", s)
	}
	if !strings.Contains(s, "functions: checksum") {
		t.Errorf("text does not name the function:\n%s", s)
	}

	var h bytes.Buffer
	if err := equivalence.Encode(&h, rep, "html"); err != nil {
		t.Fatal(err)
	}
	page := h.String()
	for _, bad := range []string{"<script", "<link", "src=\"http", "@import"} {
		if strings.Contains(page, bad) {
			t.Errorf("HTML page is not self-contained: %s", bad)
		}
	}
	if !strings.Contains(page, "NOT-EQUIVALENT") || !strings.Contains(page, "checksum") {
		t.Errorf("HTML page lacks the verdict or function")
	}
	if u, e := strings.Index(page, "c-unexplained"), strings.Index(page, "c-explained\""); u < 0 || e < 0 || u > e {
		t.Errorf("HTML does not list unexplained files first")
	}
	if err := equivalence.Encode(&h, rep, "xml"); err == nil {
		t.Error("unknown format accepted")
	}
}

func TestProvenance(t *testing.T) {
	dir := fixtureDir(t)
	prov := filepath.Join(t.TempDir(), "provenance.json")
	if err := os.WriteFile(prov, []byte(`{"_type":"https://in-toto.io/Statement/v1"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	a, b := load(t, filepath.Join(dir, "rt3200-fw-1.2.3.squashfs")), load(t, filepath.Join(dir, "rt3200-fw-1.2.3-rebuild.squashfs"))
	rep, err := equivalence.Compare(context.Background(), equivalence.Options{Shipped: a.tree, Rebuilt: b.tree, Provenance: prov,
		ShippedSubject: pipeline.Subject{Digest: a.art.Digest}, RebuiltSubject: pipeline.Subject{Digest: b.art.Digest}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Provenance == nil || !strings.HasPrefix(rep.Provenance.Digest, "sha256:") || rep.Provenance.Size == 0 {
		t.Errorf("provenance %+v", rep.Provenance)
	}
	if _, err := equivalence.Compare(context.Background(), equivalence.Options{Shipped: a.tree, Rebuilt: b.tree, Provenance: prov + ".missing"}); err == nil {
		t.Error("a missing provenance file is not an error")
	}
}

// TestLimitHit: a file over the per-file limit that differs is limit-hit,
// and the verdict inconclusive; an ELF file over it is streamed, with the
// same outcome as in memory.
func TestLimitHit(t *testing.T) {
	dir := fixtureDir(t)
	a, b := load(t, filepath.Join(dir, "rt3200-fw-1.2.3.squashfs")), load(t, filepath.Join(dir, "rt3200-fw-1.2.3-rebuild.squashfs"))
	rep, err := equivalence.Compare(context.Background(), equivalence.Options{Shipped: a.tree, Rebuilt: b.tree, MaxFileBytes: 100,
		ShippedSubject: pipeline.Subject{Digest: a.art.Digest}, RebuiltSubject: pipeline.Subject{Digest: b.art.Digest}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Verdict != equivalence.VerdictInconclusive {
		t.Fatalf("verdict %s", rep.Verdict)
	}
	if f := file(rep, "/lib/modules/wdt.ko"); f == nil || f.Class != equivalence.ClassLimitHit {
		t.Errorf("/lib/modules/wdt.ko: %+v, want limit-hit", f)
	}
	if f := file(rep, "/etc/build-info"); f == nil || f.Class != equivalence.ClassLimitHit {
		t.Errorf("/etc/build-info: %+v, want limit-hit", f)
	}
	for _, p := range []string{"/www/ui.zip", "/www/ui.ext4"} {
		if f := file(rep, p); f == nil || f.Class != equivalence.ClassLimitHit {
			t.Errorf("%s: %+v, want limit-hit: its records are not read in place", p, f)
		}
	}
	mem := compare(t, filepath.Join(dir, "rt3200-fw-1.2.3.squashfs"), filepath.Join(dir, "rt3200-fw-1.2.3-rebuild.squashfs"))
	f, g := file(rep, "/usr/sbin/diagd"), file(mem, "/usr/sbin/diagd")
	if f == nil || f.Class != equivalence.ClassExplained || f.NormalizedShipped != g.NormalizedShipped || len(f.Rules[0].Ranges) != 2 {
		t.Errorf("/usr/sbin/diagd streamed: %+v, in memory %+v", f, g)
	}
}

func entry(path string, mode, uid uint32, sum string) *pipeline.Entry {
	e := &pipeline.Entry{Path: path, Key: path, Container: []string{"img.bin"}, Type: pipeline.TypeFile, Mode: mode, UID: uid, Size: 1, SHA256: sum}
	if sum == "" {
		e.Type, e.Size = pipeline.TypeDir, 0
	}
	return e
}

// TestOwners: a rebuild run as another user changes every owner alike,
// which is explained; one file's new owner is not.
func TestOwners(t *testing.T) {
	run := func(shipped, rebuilt []*pipeline.Entry) *equivalence.Report {
		rep, err := equivalence.Compare(context.Background(), equivalence.Options{
			Shipped: pipeline.NewTree(shipped, nil), Rebuilt: pipeline.NewTree(rebuilt, nil),
			ShippedSubject: pipeline.Subject{Digest: "sha256:1"}, RebuiltSubject: pipeline.Subject{Digest: "sha256:2"}})
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	rep := run([]*pipeline.Entry{entry("/", 0o755, 1000, ""), entry("/a", 0o644, 1000, "aa"), entry("/b", 0o644, 1000, "bb")},
		[]*pipeline.Entry{entry("/", 0o755, 0, ""), entry("/a", 0o644, 0, "aa"), entry("/b", 0o644, 0, "bb")})
	if rep.Verdict != equivalence.VerdictEquivalent || file(rep, "/b").Class != equivalence.ClassExplained {
		t.Errorf("every owner 1000 → 0: %s %+v", rep.Verdict, file(rep, "/b"))
	}
	rep = run([]*pipeline.Entry{entry("/", 0o755, 0, ""), entry("/a", 0o644, 0, "aa"), entry("/b", 0o644, 0, "bb")},
		[]*pipeline.Entry{entry("/", 0o755, 0, ""), entry("/a", 0o644, 0, "aa"), entry("/b", 0o644, 1000, "bb")})
	if f := file(rep, "/b"); rep.Verdict != equivalence.VerdictNotEquivalent || f.Class != equivalence.ClassUnexplained {
		t.Errorf("one owner 0 → 1000: %s %+v", rep.Verdict, f)
	}
	// A directory's mode and a file's setuid bit are never explained.
	rep = run([]*pipeline.Entry{entry("/", 0o755, 0, ""), entry("/a", 0o755, 0, "aa")},
		[]*pipeline.Entry{entry("/", 0o777, 0, ""), entry("/a", 0o4755, 0, "aa")})
	if rep.Verdict != equivalence.VerdictNotEquivalent || file(rep, "/").Class != equivalence.ClassUnexplained || file(rep, "/a").Class != equivalence.ClassUnexplained {
		t.Errorf("modes: %s %v", rep.Verdict, rep.Summary)
	}
}

// TestFlashPair: a raw flash image (uImage, erased flash, squashfs) of
// each build: the carved regions pair up and every difference is explained.
func TestFlashPair(t *testing.T) {
	dir := fixtureDir(t)
	a, b := filepath.Join(dir, "rt3200-flash-1.2.3.bin"), filepath.Join(dir, "rt3200-flash-1.2.3-rebuild.bin")
	if _, err := os.Stat(a); err != nil {
		t.Skipf("fixture missing: run scripts/mkfixtures: %v", err)
	}
	rep := compare(t, a, b)
	if rep.Verdict != equivalence.VerdictEquivalent {
		var buf bytes.Buffer
		equivalence.EncodeText(&buf, rep)
		t.Fatalf("verdict %s\n%s", rep.Verdict, buf.String())
	}
	for _, p := range []string{"/uimage-1", "/squashfs-1", "rt3200-flash-1.2.3-rebuild.bin"} {
		f := file(rep, p)
		if f == nil || f.Class != equivalence.ClassExplained || !slices.Contains(ruleIDs(f), "container-metadata") {
			t.Errorf("%s: %+v, want explained by container-metadata", p, f)
		}
	}
	if f := file(rep, "/usr/sbin/diagd"); f == nil || !slices.Contains(ruleIDs(f), "elf-build-id") {
		t.Errorf("/usr/sbin/diagd: %+v", f)
	}
}

// TestTopLevelImages: an ext4 or zip image given as the artifact itself
// (a shipped rootfs.ext4, an update bundle) is held whole within the
// per-file limit, so its time rule runs on it: equivalent. Over the limit,
// the rule cannot run and the image is limit-hit, never unexplained nor
// explained.
func TestTopLevelImages(t *testing.T) {
	dir := fixtureDir(t)
	for _, ext := range []string{"ext4", "zip"} {
		t.Run(ext, func(t *testing.T) {
			shipped, rebuilt := filepath.Join(dir, "ui-shipped."+ext), filepath.Join(dir, "ui-rebuilt."+ext)
			rep := compare(t, shipped, rebuilt)
			if rep.Verdict != equivalence.VerdictEquivalent {
				var b bytes.Buffer
				equivalence.EncodeText(&b, rep)
				t.Fatalf("verdict %s, want equivalent\n%s", rep.Verdict, b.String())
			}
			f := file(rep, "ui-rebuilt."+ext)
			if f == nil || f.Class != equivalence.ClassExplained || !slices.Contains(ruleIDs(f), ext+"-timestamps") {
				t.Errorf("the image: %+v, want explained by %s-timestamps", f, ext)
			}
			a, b := load(t, shipped), load(t, rebuilt)
			rep, err := equivalence.Compare(context.Background(), equivalence.Options{Shipped: a.tree, Rebuilt: b.tree, MaxFileBytes: 100,
				ShippedSubject: pipeline.Subject{Ref: shipped, Digest: a.art.Digest, Size: a.art.Size},
				RebuiltSubject: pipeline.Subject{Ref: rebuilt, Digest: b.art.Digest, Size: b.art.Size},
				ShippedPath:    a.art.Path, RebuiltPath: b.art.Path})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Verdict != equivalence.VerdictInconclusive {
				t.Errorf("over the limit: verdict %s, want inconclusive", rep.Verdict)
			}
		})
	}
}
