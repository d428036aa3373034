package source_test

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fwvet/fwvet/pipeline/fixture"
)

// TestPrivateAddressPlainHTTP: a registry on a private (RFC 1918) address
// that speaks only HTTP, which go-containerregistry would reach over HTTP
// on its own, is refused without --insecure-registry and read with it. The
// registry runs in a network namespace of the test's own, reached over a
// veth pair on 10.200.N.0/30, never on a real private network.
func TestPrivateAddressPlainHTTP(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("not root: a network namespace and a veth pair need root")
	}
	ipCmd, err := exec.LookPath("ip")
	if err != nil {
		t.Skip("ip (iproute2) is not installed: no network namespace")
	}
	registry := fixture.Tool(t, "docker-registry")
	crane := fixture.Tool(t, "crane")
	ns, hostIP, nsIP := netns(t, ipCmd)

	dir := t.TempDir()
	host := nsIP + ":5000"
	cfg := fmt.Sprintf("version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n", filepath.Join(dir, "data"), host)
	if err := os.WriteFile(filepath.Join(dir, "config.yml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "registry.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	// ip netns exec execs the registry, so this is the registry's process.
	cmd := exec.Command(ipCmd, "netns", "exec", ns, registry, "serve", filepath.Join(dir, "config.yml"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{}} // no proxy
	for deadline := time.Now().Add(20 * time.Second); ; {
		resp, err := client.Get("http://" + host + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("the registry in %s did not come up on %s (from %s): %v\n%s", ns, host, hostIP, err, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
	ref := host + "/acme/private:1"
	fixture.Run(t, crane, "append", "--insecure", "-f", fixture.Tar(t, map[string]string{"etc/os-release": "VERSION_ID=1\n"}), "-t", ref)
	checkPlainHTTP(t, host, ref, nsIP)
}

// netns makes a network namespace joined to this one by a veth pair, on a
// 10.200.N.0/30 no route here uses yet, and removes both when the test
// ends. It returns the namespace and the addresses of both ends.
func netns(t *testing.T, ipCmd string) (ns, hostIP, nsIP string) {
	t.Helper()
	ip := func(args ...string) error {
		out, err := exec.Command(ipCmd, args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	routes, err := exec.Command(ipCmd, "-4", "route", "show", "table", "all").Output()
	if err != nil {
		t.Fatalf("ip route: %v", err)
	}
	id := make([]byte, 3)
	rand.Read(id)
	n := -1
	for i := range 250 {
		c := (int(id[0]) + i) % 250
		if !strings.Contains(string(routes), fmt.Sprintf("10.200.%d.", c)) {
			n = c
			break
		}
	}
	if n < 0 {
		t.Fatal("every 10.200.N.0/30 is routed already")
	}
	tag := hex.EncodeToString(id)
	ns, hostIf, nsIf := "fwvet-"+tag, "fwv"+tag+"h", "fwv"+tag+"n"
	hostIP, nsIP = fmt.Sprintf("10.200.%d.1", n), fmt.Sprintf("10.200.%d.2", n)
	if err := ip("netns", "add", ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ip("link", "del", hostIf) // gone with the namespace already, as a rule
		if err := ip("netns", "del", ns); err != nil {
			t.Errorf("cleaning up: %v", err)
		}
	})
	for _, args := range [][]string{
		{"link", "add", hostIf, "type", "veth", "peer", "name", nsIf},
		{"link", "set", nsIf, "netns", ns},
		{"addr", "add", hostIP + "/30", "dev", hostIf},
		{"link", "set", hostIf, "up"},
		{"-n", ns, "addr", "add", nsIP + "/30", "dev", nsIf},
		{"-n", ns, "link", "set", nsIf, "up"},
		{"-n", ns, "link", "set", "lo", "up"},
	} {
		if err := ip(args...); err != nil {
			t.Fatal(err)
		}
	}
	return ns, hostIP, nsIP
}
