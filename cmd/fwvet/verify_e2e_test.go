package main_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/fixture"
)

// TestVerifyCommand: fwvet verify and fwvet vet check what the real cosign
// signs, and fail closed.
func TestVerifyCommand(t *testing.T) {
	cosign := fixture.Tool(t, filepath.Join("cosign-v2.6.5", "cosign"))
	e := newEnv(t)
	run := func(args ...string) {
		cmd := exec.Command(cosign, args...)
		cmd.Dir = e.dir
		cmd.Env = append(os.Environ(), "COSIGN_PASSWORD=", "COSIGN_YES=true")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("cosign %v: %v\n%s", args, err, out)
		}
	}
	run("generate-key-pair", "--output-key-prefix", "vendor")
	run("generate-key-pair", "--output-key-prefix", "intruder")
	fw := fixture.Path(t, "fw/rootfs-1.0.1.sqfs")
	sig := filepath.Join(e.dir, "fw.sig")
	run("sign-blob", "--key", "vendor.key", "--tlog-upload=false", "--output-signature", sig, fw)
	vendor, intruder := filepath.Join(e.dir, "vendor.pub"), filepath.Join(e.dir, "intruder.pub")

	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"signed", []string{"verify", fw, "--key", vendor, "--signature", sig}, 0, "pass   signature"},
		{"wrong key", []string{"verify", fw, "--key", intruder, "--signature", sig}, 2, "fail   signature"},
		{"another file", []string{"verify", fixture.Path(t, "fw/rootfs-1.0.1-backdoor.sqfs"), "--key", vendor, "--signature", sig}, 2, "fail   signature"},
		{"nothing to verify with", []string{"verify", fw}, 1, ""},
		{"missing signature file", []string{"verify", fw, "--key", vendor, "--signature", filepath.Join(e.dir, "nope.sig")}, 1, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.run(tc.args...)
			if r.code != tc.code || !strings.Contains(r.stdout, tc.want) {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, tc.code, r.stdout, r.stderr)
			}
		})
	}

	// vet: a clean update whose signature does not verify fails.
	r, rep := e.vetJSON(fixture.Path(t, "fw/rootfs-1.0.1-backdoor.sqfs"), "--baseline", fixture.Path(t, "fw/rootfs-1.0.0.sqfs"), "--no-store",
		"--key", vendor, "--signature", sig, "--manifest", filepath.Join(fixture.Root(t), "testdata", "manifests", "rt3200-1.0.1.json"))
	if r.code != 2 || rep.Checks[0].Name != "signature" || rep.Checks[0].Status != pipeline.CheckFail {
		t.Errorf("vet with a signature of another file: exit %d, checks %+v", r.code, rep.Checks)
	}
	r, rep = e.vetJSON(fw, "--baseline", fixture.Path(t, "fw/rootfs-1.0.0.sqfs"), "--no-store",
		"--key", vendor, "--signature", sig, "--manifest", filepath.Join(fixture.Root(t), "testdata", "manifests", "rt3200-1.0.1.json"))
	if r.code != 0 || rep.Checks[0].Status != pipeline.CheckPass {
		t.Errorf("vet of a signed clean update: exit %d, checks %+v", r.code, rep.Checks)
	}
}
