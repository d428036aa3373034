package verifiers_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/cache"
	"github.com/fwvet/fwvet/pipeline/fixture"
	"github.com/fwvet/fwvet/pipeline/source"
	"github.com/fwvet/fwvet/verifiers"
)

// cosignVersions are the cosign releases fwvet must verify the output of;
// scripts/setup installs each under $(go env GOPATH)/bin/cosign-VERSION/.
var cosignVersions = []string{"v2.6.5", "v3.1.3"}

// cosign runs one cosign release offline: no transparency log upload, no
// TUF fetch, keys with an empty password.
type cosign struct {
	t        *testing.T
	bin      string
	major    string
	dir      string
	key      string
	pub      string
	otherPub string
}

func newCosign(t *testing.T, version string) *cosign {
	t.Helper()
	bin := fixture.Tool(t, filepath.Join("cosign-"+version, "cosign"))
	c := &cosign{t: t, bin: bin, major: version[:2], dir: t.TempDir()}
	for _, name := range []string{"cosign", "other"} {
		c.run(c.dir, "generate-key-pair", "--output-key-prefix", name)
	}
	c.key, c.pub, c.otherPub = filepath.Join(c.dir, "cosign.key"), filepath.Join(c.dir, "cosign.pub"), filepath.Join(c.dir, "other.pub")
	// cosign 3 signs through a signing config and a trusted root, which it
	// would otherwise fetch with TUF: empty ones keep it off every network
	// service.
	if c.major == "v3" {
		os.WriteFile(filepath.Join(c.dir, "signing_config.json"), []byte(`{"mediaType":"application/vnd.dev.sigstore.signingconfig.v0.2+json","caUrls":[],"oidcUrls":[],"rekorTlogUrls":[],"tsaUrls":[],"rekorTlogConfig":{"selector":"ANY"},"tsaConfig":{"selector":"ANY"}}`), 0o644)
		os.WriteFile(filepath.Join(c.dir, "trusted_root.json"), []byte(`{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}`), 0o644)
	}
	return c
}

func (c *cosign) run(dir string, args ...string) string {
	c.t.Helper()
	cmd := exec.Command(c.bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "COSIGN_PASSWORD=", "COSIGN_YES=true", "SIGSTORE_NO_CACHE=true", "TUF_ROOT="+filepath.Join(c.dir, "tuf"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		c.t.Fatalf("cosign %s %s: %v\n%s", c.major, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// offline are the flags that keep a signing command from the network.
func (c *cosign) offline(extra ...string) []string {
	args := []string{"--tlog-upload=false"}
	if c.major == "v3" {
		args = []string{"--signing-config", filepath.Join(c.dir, "signing_config.json"), "--trusted-root", filepath.Join(c.dir, "trusted_root.json")}
	}
	return append(args, extra...)
}

func (c *cosign) signBlob(file string, bundle bool) string {
	c.t.Helper()
	out := filepath.Join(c.dir, filepath.Base(file))
	args := append([]string{"sign-blob", "--key", c.key}, c.offline()...)
	if bundle {
		out += ".bundle"
		if c.major == "v2" {
			args = append(args, "--new-bundle-format")
		}
		args = append(args, "--bundle", out)
	} else {
		out += ".sig"
		args = append(args, "--output-signature", out)
		if c.major == "v3" {
			// A bare signature is cosign 3's legacy output.
			args = append(removeArg(args, "--signing-config", 1), "--new-bundle-format=false", "--use-signing-config=false", "--tlog-upload=false")
		}
	}
	c.run(c.dir, append(args, file)...)
	return out
}

func removeArg(args []string, name string, values int) []string {
	for i, a := range args {
		if a == name {
			return append(args[:i:i], args[i+1+values:]...)
		}
	}
	return args
}

// provenance writes an SLSA v0.2 predicate.
func provenance(t *testing.T, dir, builder, source string) string {
	t.Helper()
	b, _ := json.Marshal(map[string]any{
		"builder":    map[string]any{"id": builder},
		"buildType":  "https://acme.example/build/v1",
		"invocation": map[string]any{"configSource": map[string]any{"uri": source, "entryPoint": "build.sh"}},
	})
	p := filepath.Join(dir, "provenance-"+strings.NewReplacer("/", "_", ":", "_").Replace(builder)+".json")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const (
	builderID = "https://ci.acme.example/builders/firmware"
	sourceURI = "git+https://git.acme.example/rt3200/firmware@refs/heads/main"
)

func (c *cosign) attestBlob(file, predicate string) string {
	c.t.Helper()
	out := filepath.Join(c.dir, filepath.Base(file)+"."+filepath.Base(predicate)+".att.bundle")
	args := append([]string{"attest-blob", "--key", c.key, "--predicate", predicate, "--type", "slsaprovenance", "--bundle", out}, c.offline()...)
	if c.major == "v2" {
		args = append(args, "--new-bundle-format")
	}
	c.run(c.dir, append(args, file)...)
	return out
}

func fileArtifact(t *testing.T, p string) *pipeline.Artifact {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return &pipeline.Artifact{Name: filepath.Base(p), Path: p, Digest: "sha256:" + hexString(sum[:]), Size: int64(len(b))}
}

// TestCosignBlobs: what cosign 2 and 3 make for a firmware file — a
// detached signature, a Sigstore bundle, a provenance attestation — passes,
// and fails when the file changed, the key is another, the provenance names
// another builder or another subject.
func TestCosignBlobs(t *testing.T) {
	for _, version := range cosignVersions {
		t.Run(version, func(t *testing.T) {
			c := newCosign(t, version)
			fw := filepath.Join(c.dir, "rootfs.sqfs")
			src, err := os.ReadFile(fixture.Path(t, "fw/tiny-gzip.sqfs"))
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(fw, src, 0o644)
			tampered := filepath.Join(c.dir, "tampered.sqfs")
			os.WriteFile(tampered, append(append([]byte{}, src...), 0), 0o644)
			otherFile := filepath.Join(c.dir, "other.bin")
			os.WriteFile(otherFile, []byte("another firmware"), 0o644)

			sig := c.signBlob(fw, false)
			bundle := c.signBlob(fw, true)
			good := c.attestBlob(fw, provenance(t, c.dir, builderID, sourceURI))
			badBuilder := c.attestBlob(fw, provenance(t, c.dir, "https://ci.evil.example/builder", sourceURI))
			otherSubject := c.attestBlob(otherFile, provenance(t, c.dir, builderID, sourceURI))

			type blobCase struct {
				name   string
				o      verifiers.Options
				file   string
				want   map[string]pipeline.CheckStatus
				detail string
			}
			cases := []blobCase{
				{"detached signature", verifiers.Options{Keys: []string{c.pub}, Signature: sig}, fw, map[string]pipeline.CheckStatus{"signature": pipeline.CheckPass}, ""},
				{"detached signature, file changed", verifiers.Options{Keys: []string{c.pub}, Signature: sig}, tampered, map[string]pipeline.CheckStatus{"signature": pipeline.CheckFail}, ""},
				{"detached signature, wrong key", verifiers.Options{Keys: []string{c.otherPub}, Signature: sig}, fw, map[string]pipeline.CheckStatus{"signature": pipeline.CheckFail}, ""},
				{"bundle", verifiers.Options{Keys: []string{c.pub}, Bundle: bundle}, fw, map[string]pipeline.CheckStatus{"signature": pipeline.CheckPass}, ""},
				{"bundle, file changed", verifiers.Options{Keys: []string{c.pub}, Bundle: bundle}, tampered, map[string]pipeline.CheckStatus{"signature": pipeline.CheckFail}, ""},
				{"bundle, wrong key", verifiers.Options{Keys: []string{c.otherPub}, Bundle: bundle}, fw, map[string]pipeline.CheckStatus{"signature": pipeline.CheckFail}, ""},
				{"two keys, one of two", verifiers.Options{Keys: []string{c.pub, c.otherPub}, Bundle: bundle}, fw, map[string]pipeline.CheckStatus{"signature": pipeline.CheckPass}, "1 of 2"},
				{"two keys, two needed", verifiers.Options{Keys: []string{c.pub, c.otherPub}, Bundle: bundle, Threshold: 2}, fw, map[string]pipeline.CheckStatus{"signature": pipeline.CheckFail}, "2 needed"},
				{"provenance", verifiers.Options{Keys: []string{c.pub}, Bundle: good, BuilderID: builderID, SourceURI: "git.acme.example/rt3200/firmware", SourceBranch: "main"}, fw,
					map[string]pipeline.CheckStatus{"signature": pipeline.CheckPass, "provenance": pipeline.CheckPass}, ""},
				{"provenance, builder claimed by the key holder", verifiers.Options{Keys: []string{c.pub}, Bundle: good, BuilderID: builderID}, fw,
					map[string]pipeline.CheckStatus{"provenance": pipeline.CheckPass}, "only claimed by the key holder: a key binds no builder"},
				{"provenance by another builder", verifiers.Options{Keys: []string{c.pub}, Bundle: badBuilder, BuilderID: builderID}, fw,
					map[string]pipeline.CheckStatus{"provenance": pipeline.CheckFail}, "predicate.builder.id"},
				{"provenance for another subject", verifiers.Options{Keys: []string{c.pub}, Bundle: otherSubject, BuilderID: builderID}, fw,
					map[string]pipeline.CheckStatus{"signature": pipeline.CheckFail, "provenance": pipeline.CheckFail}, ""},
			}
			if c.major == "v2" {
				// cosign 2's own bundle format, its default for sign-blob --bundle.
				own := filepath.Join(c.dir, "rootfs.sqfs.cosign-bundle")
				c.run(c.dir, append(append([]string{"sign-blob", "--key", c.key, "--bundle", own}, c.offline()...), fw)...)
				pass, fail := map[string]pipeline.CheckStatus{"signature": pipeline.CheckPass}, map[string]pipeline.CheckStatus{"signature": pipeline.CheckFail}
				cases = append(cases,
					blobCase{"cosign 2 bundle", verifiers.Options{Keys: []string{c.pub}, Bundle: own}, fw, pass, ""},
					blobCase{"cosign 2 bundle, file changed", verifiers.Options{Keys: []string{c.pub}, Bundle: own}, tampered, fail, ""},
				)
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					got := map[string]pipeline.Check{}
					for _, ch := range check(t, tc.o, fileArtifact(t, tc.file)) {
						got[ch.Name] = ch
					}
					for name, status := range tc.want {
						if got[name].Status != status {
							t.Errorf("%s: %+v, want %s", name, got[name], status)
						}
						if tc.detail != "" && !strings.Contains(got[name].Detail, tc.detail) {
							t.Errorf("%s detail %q lacks %q", name, got[name].Detail, tc.detail)
						}
					}
				})
			}
		})
	}
}

// TestCosignImages: images in a registry signed and attested with cosign 2
// (the legacy .sig and .att layout) and cosign 3 (Sigstore bundles as
// referrers, on the fallback tag for a registry without the referrers API).
func TestCosignImages(t *testing.T) {
	reg := fixture.StartRegistry(t)
	crane := fixture.Tool(t, "crane")
	for _, version := range cosignVersions {
		t.Run(version, func(t *testing.T) {
			c := newCosign(t, version)
			push := func(tag, content string) string {
				p := fixture.Tar(t, map[string]string{"etc/os-release": content})
				out := fixture.Run(t, crane, "append", "--insecure", "-f", p, "-t", reg.Host+"/acme/"+version+":"+tag)
				return strings.TrimSpace(out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:])
			}
			signed, unsigned, other := push("signed", "VERSION_ID=1\n"), push("unsigned", "VERSION_ID=2\n"), push("other", "VERSION_ID=3\n")
			sign := append([]string{"sign", "--key", c.key, "--allow-http-registry"}, c.offline()...)
			c.run(c.dir, append(sign, signed)...)
			attest := append([]string{"attest", "--key", c.key, "--allow-http-registry", "--type", "slsaprovenance",
				"--predicate", provenance(t, c.dir, builderID, sourceURI)}, c.offline()...)
			c.run(c.dir, append(attest, signed)...)
			// A signature copied from another image: valid, but of another digest.
			if version == "v2.6.5" {
				d := other[strings.Index(other, "@")+1:]
				s := signed[strings.Index(signed, "@")+1:]
				fixture.Run(t, crane, "copy", "--insecure", reg.Host+"/acme/"+version+":"+strings.Replace(s, ":", "-", 1)+".sig",
					reg.Host+"/acme/"+version+":"+strings.Replace(d, ":", "-", 1)+".sig")
			}

			cch, _ := cache.Open(t.TempDir())
			res, err := source.NewResolver(source.Options{Cache: cch, Insecure: []string{reg.Host}})
			if err != nil {
				t.Fatal(err)
			}
			verify := func(ref string, o verifiers.Options) map[string]pipeline.Check {
				art, err := res.Fetch(context.Background(), ref)
				if err != nil {
					t.Fatal(err)
				}
				o.Registry = res
				got := map[string]pipeline.Check{}
				for _, ch := range check(t, o, art) {
					got[ch.Name] = ch
				}
				return got
			}
			key := verifiers.Options{Keys: []string{c.pub}}
			if got := verify(signed, key); got["signature"].Status != pipeline.CheckPass {
				t.Errorf("signed image: %+v", got)
			}
			if got := verify(signed, verifiers.Options{Keys: []string{c.otherPub}}); got["signature"].Status != pipeline.CheckFail {
				t.Errorf("signed image, wrong key: %+v", got)
			}
			if got := verify(unsigned, key); got["signature"].Status != pipeline.CheckFail || !strings.Contains(got["signature"].Detail, "no signature") {
				t.Errorf("unsigned image: %+v", got)
			}
			if version == "v2.6.5" {
				if got := verify(other, key); got["signature"].Status != pipeline.CheckFail || !strings.Contains(got["signature"].Detail, "not sha256") {
					t.Errorf("signature of another digest: %+v", got)
				}
			}
			prov := verifiers.Options{Keys: []string{c.pub}, BuilderID: builderID, SourceURI: "https://git.acme.example/rt3200/firmware.git", SourceBranch: "main"}
			if got := verify(signed, prov); got["provenance"].Status != pipeline.CheckPass {
				t.Errorf("attested image: %+v", got)
			}
			prov.BuilderID = "https://ci.evil.example/builder"
			if got := verify(signed, prov); got["provenance"].Status != pipeline.CheckFail || !strings.Contains(got["provenance"].Detail, "builder.id") {
				t.Errorf("attested image, another builder asked: %+v", got)
			}
		})
	}
}
