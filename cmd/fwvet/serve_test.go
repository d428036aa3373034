package main_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fwvet/fwvet/pipeline/fixture"
)

// servedFirmware writes a tiny root file system.
func servedFirmware(t *testing.T, dir, passwd string) string {
	t.Helper()
	for name, body := range map[string]string{"etc/passwd": passwd, "etc/os-release": "VERSION_ID=1.0.0\n"} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestServe runs fwvet serve as a process: tokens added with the token
// command, a submission vetted and polled, then SIGTERM and exit 0.
func TestServe(t *testing.T) {
	e := newEnv(t)
	ids := map[string]string{}
	token := func(role string) string {
		r := e.run("serve", "token", "add", "--role", role, "--store", e.store)
		m := regexp.MustCompile(`token ([0-9a-f]{12}) added`).FindStringSubmatch(r.stderr)
		if r.code != 0 || !strings.HasPrefix(r.stdout, "fwvet_") || m == nil {
			t.Fatalf("token add = %d: %s %s", r.code, r.stdout, r.stderr)
		}
		ids[role] = m[1]
		return strings.TrimSpace(r.stdout)
	}
	submit, read := token("submit"), token("read")
	if r := e.run("serve", "token", "add", "--role", "admin", "--store", e.store); r.code != 1 {
		t.Errorf("token add --role admin = %d, want 1", r.code)
	}

	srv := startServe(t, e, nil, "--allow-local", "--workers", "1")
	call, stderr := srv.call, srv.stderr
	baseline := servedFirmware(t, filepath.Join(e.dir, "base"), "root:x:0:0:root:/root:/bin/sh\n")
	cand := servedFirmware(t, filepath.Join(e.dir, "cand"), "root:x:0:0:root:/root:/bin/sh\nbackdoor:x:0:0::/:/bin/sh\n")
	req := map[string]any{"candidate": cand, "baseline": baseline, "idempotency_key": "k1"}
	if code := call("POST", "/v1/vet", "", req, nil); code != http.StatusUnauthorized {
		t.Errorf("POST without a token = %d, want 401", code)
	}
	if code := call("POST", "/v1/vet", read, req, nil); code != http.StatusForbidden {
		t.Errorf("POST with a read token = %d, want 403", code)
	}
	var sub struct{ Job int64 }
	if code := call("POST", "/v1/vet", submit, req, &sub); code != http.StatusAccepted || sub.Job <= 0 {
		t.Fatalf("POST = %d %+v", code, sub)
	}
	var job struct {
		State    string
		Error    string
		Verdicts []struct {
			ReportID int64 `json:"report_id"`
			Verdict  string
			Digest   string
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if code := call("GET", fmt.Sprintf("/v1/jobs/%d", sub.Job), read, nil, &job); code != http.StatusOK {
			t.Fatalf("GET job = %d", code)
		}
		if job.State == "done" || job.State == "error" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("job still %s\nstderr: %s", job.State, stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if job.State != "done" || len(job.Verdicts) != 1 || job.Verdicts[0].Verdict != "fail" {
		t.Fatalf("job = %+v\nstderr: %s", job, stderr.String())
	}
	var v struct {
		State    string
		Verdict  string
		ReportID int64 `json:"report_id"`
	}
	if code := call("GET", "/v1/verdicts/"+job.Verdicts[0].Digest, read, nil, &v); code != http.StatusOK ||
		v.State != "done" || v.Verdict != "fail" || v.ReportID != job.Verdicts[0].ReportID {
		t.Errorf("verdict = %d %+v", code, v)
	}

	// A token revoked while the service runs is refused from then on.
	if r := e.run("serve", "token", "revoke", ids["read"], "--store", e.store); r.code != 0 {
		t.Errorf("token revoke = %d: %s", r.code, r.stderr)
	}
	if code := call("GET", "/v1/verdicts/"+job.Verdicts[0].Digest, read, nil, nil); code != http.StatusUnauthorized {
		t.Errorf("revoked token = %d, want 401", code)
	}
	srv.stop()
	if !strings.Contains(stderr.String(), "refused: wrong role") {
		t.Errorf("the refusal is not logged:\n%s", stderr)
	}
	// The verdict was recorded in the store the CLI reads.
	if r := e.run("verdicts", "list", "--store", e.store); r.code != 0 || !strings.Contains(r.stdout, "fail") {
		t.Errorf("verdicts list = %d: %s %s", r.code, r.stdout, r.stderr)
	}
}

// served is a fwvet serve process.
type served struct {
	t      *testing.T
	cmd    *exec.Cmd
	base   string
	client *http.Client
	stderr *bytes.Buffer
	exited chan error
}

// startServe starts fwvet serve on a free port and waits for /healthz; a
// client with a TLS configuration serves HTTPS.
func startServe(t *testing.T, e *env, client *http.Client, args ...string) *served {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", fixture.FreePort(t))
	scheme := "http"
	if client == nil {
		client = http.DefaultClient
	} else {
		scheme = "https"
	}
	cmd := exec.Command(fwvetBin, append([]string{"--cache-dir", filepath.Join(e.dir, "cache"), "--log-level", "info",
		"serve", "--addr", addr, "--store", e.store}, args...)...)
	cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+filepath.Join(e.dir, "data"), "XDG_CACHE_HOME="+filepath.Join(e.dir, "xdgcache"))
	s := &served{t: t, cmd: cmd, base: scheme + "://" + addr, client: client, stderr: &bytes.Buffer{}, exited: make(chan error, 1)}
	cmd.Stderr = s.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-s.exited
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := client.Get(s.base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		select {
		case err := <-s.exited:
			t.Fatalf("fwvet serve ended: %v\nstderr: %s", err, s.stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the service did not come up: %v\nstderr: %s", err, s.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// call sends a request and decodes the JSON answer into out when not nil.
func (s *served) call(method, path, tok string, body any, out any) int {
	t := s.t
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, _ := http.NewRequest(method, s.base+path, rd)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v\nstderr: %s", method, path, err, s.stderr)
	}
	defer resp.Body.Close()
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("%s %s: %d, not JSON: %v", method, path, resp.StatusCode, err)
		}
	}
	return resp.StatusCode
}

// stop sends SIGTERM and wants exit 0.
func (s *served) stop() {
	t := s.t
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-s.exited:
		if err != nil {
			t.Errorf("fwvet serve ended with %v after SIGTERM, want exit 0\nstderr: %s", err, s.stderr)
		}
	case <-time.After(40 * time.Second):
		t.Fatalf("fwvet serve did not stop after SIGTERM\nstderr: %s", s.stderr)
	}
}

// TestServeTLS: with a certificate the service answers HTTPS only.
func TestServeTLS(t *testing.T) {
	e := newEnv(t)
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fwvet gate test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(e.dir, "cert.pem"), filepath.Join(e.dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}

	r := e.run("serve", "token", "add", "--role", "read", "--store", e.store)
	if r.code != 0 {
		t.Fatalf("token add = %d: %s", r.code, r.stderr)
	}
	read := strings.TrimSpace(r.stdout)
	if r := e.run("serve", "--store", e.store, "--tls-cert", certFile); r.code != 1 || !strings.Contains(r.stderr, "--tls-key") {
		t.Errorf("--tls-cert alone = %d: %s", r.code, r.stderr)
	}
	srv := startServe(t, e, client, "--tls-cert", certFile, "--tls-key", keyFile, "--allow-registry", "registry.example")
	var v struct{ State string }
	if code := srv.call("GET", "/v1/verdicts/sha256:"+strings.Repeat("12", 32), read, nil, &v); code != http.StatusOK || v.State != "unknown" {
		t.Errorf("verdict over HTTPS = %d %+v, want unknown", code, v)
	}
	if resp, err := http.Get(strings.Replace(srv.base, "https:", "http:", 1) + "/healthz"); err == nil {
		if resp.StatusCode == http.StatusOK {
			t.Errorf("plain HTTP answered 200 on the TLS port")
		}
		resp.Body.Close()
	}
	srv.stop()
}

// TestServeVetProcess: fwvet serve vets each job in a process of its own
// (fwvet vet-job) at a lower CPU priority. The process killed midway (as
// the kernel kills one that ran out of memory) ends its job as an error,
// never a pass, and the service goes on answering and vetting; the
// service killed midway takes its vet process with it, and its next start
// vets the job again.
func TestServeVetProcess(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the vet process's priority and death signal are Linux's")
	}
	e := newEnv(t)
	submit, read := e.token("submit"), e.token("read")
	baseline := servedFirmware(t, filepath.Join(e.dir, "base"), "root:x:0:0:root:/root:/bin/sh\n")
	quick := servedFirmware(t, filepath.Join(e.dir, "quick"), "root:x:0:0:root:/root:/bin/sh\nop:x:0:0::/:/bin/sh\n")
	// A slow vet: 12 GiB of sparse files to hash, seconds of work that the
	// test cuts short after a fraction of one.
	slow := servedFirmware(t, filepath.Join(e.dir, "slow"), "root:x:0:0:root:/root:/bin/sh\n")
	for i := range 4 {
		f, err := os.Create(filepath.Join(slow, fmt.Sprintf("blob%d.bin", i)))
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Truncate(3 << 30); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	args := []string{"--allow-local", "--workers", "1", "--shutdown-grace", "1s", "--vet-nice", "12"}
	srv := startServe(t, e, nil, args...)
	post := func(cand string) int64 {
		var sub struct{ Job int64 }
		if code := srv.call("POST", "/v1/vet", submit, map[string]any{"candidate": cand, "baseline": baseline}, &sub); code != http.StatusAccepted {
			t.Fatalf("POST = %d", code)
		}
		return sub.Job
	}
	type jobAnswer struct {
		State, Error string
		Verdicts     []struct{ Verdict string }
	}
	wait := func(s *served, id int64) jobAnswer {
		t.Helper()
		var j jobAnswer
		for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if code := s.call("GET", fmt.Sprintf("/v1/jobs/%d", id), read, nil, &j); code != http.StatusOK {
				t.Fatalf("GET job = %d", code)
			}
			if j.State == "done" || j.State == "error" {
				return j
			}
			if time.Now().After(deadline) {
				t.Fatalf("job %d still %s\nstderr: %s", id, j.State, s.stderr)
			}
		}
	}

	id := post(slow)
	child := vetProcess(t, srv.cmd.Process.Pid)
	// The priority is lowered just after the process starts, of the
	// process and of its session's autogroup where the kernel has them.
	autogroup := func() string {
		ag, err := os.ReadFile(fmt.Sprintf("/proc/%d/autogroup", child))
		if err != nil {
			return "" // a kernel without autogroups
		}
		return strings.TrimSpace(string(ag))
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		n, ag := niceness(t, child), autogroup()
		if n == 12 && (ag == "" || strings.HasSuffix(ag, " nice 12")) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the vet process's niceness is %d and its autogroup %q, want 12 for both", n, ag)
		}
	}
	if r := e.run("serve", "--vet-nice", "20", "--store", e.store); r.code != 1 || !strings.Contains(r.stderr, "--vet-nice 20: want 0 to 19") {
		t.Errorf("serve --vet-nice 20 = %d: %s", r.code, r.stderr)
	}
	if err := syscall.Kill(child, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if j := wait(srv, id); j.State != "error" || !strings.Contains(j.Error, "signal: killed") {
		t.Errorf("job of the killed vet process = %+v, want error (signal: killed)", j)
	}
	if j := wait(srv, post(quick)); j.State != "done" || len(j.Verdicts) != 1 || j.Verdicts[0].Verdict != "fail" {
		t.Errorf("job after the kill = %+v, want done with fail\nstderr: %s", j, srv.stderr)
	}

	id = post(slow)
	child = vetProcess(t, srv.cmd.Process.Pid)
	if err := srv.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-srv.exited
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", child)); os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			syscall.Kill(child, syscall.SIGKILL)
			t.Fatal("the vet process outlived the service killed with SIGKILL")
		}
	}
	srv = startServe(t, e, nil, args...)
	vetProcess(t, srv.cmd.Process.Pid) // the job, vetted again
	var j jobAnswer
	if code := srv.call("GET", fmt.Sprintf("/v1/jobs/%d", id), read, nil, &j); code != http.StatusOK || j.State != "running" {
		t.Errorf("job after the restart = %d %+v, want running", code, j)
	}
	srv.stop()
}

// token adds a token of a role to the env's store and returns it.
func (e *env) token(role string) string {
	e.t.Helper()
	r := e.run("serve", "token", "add", "--role", role, "--store", e.store)
	if r.code != 0 {
		e.t.Fatalf("token add --role %s = %d: %s", role, r.code, r.stderr)
	}
	return strings.TrimSpace(r.stdout)
}

// vetProcess waits for a vet-job process of the process parent and
// returns its pid.
func vetProcess(t *testing.T, parent int) int {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		ents, err := os.ReadDir("/proc")
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range ents {
			pid, err := strconv.Atoi(d.Name())
			if err != nil {
				continue
			}
			cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			if bytes.Contains(cmdline, []byte("\x00vet-job\x00")) && procStat(pid, 1) == strconv.Itoa(parent) {
				return pid
			}
		}
	}
	t.Fatalf("no vet process of %d appeared", parent)
	return 0
}

// niceness is a process's nice value.
func niceness(t *testing.T, pid int) int {
	t.Helper()
	n, err := strconv.Atoi(procStat(pid, 16))
	if err != nil {
		t.Fatalf("niceness of %d: %v", pid, err)
	}
	return n
}

// procStat is field i of /proc/PID/stat after the command name (0: the
// state, 1: the parent's pid, 16: the niceness), or "".
func procStat(pid, i int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	at := bytes.LastIndexByte(b, ')')
	if at < 0 {
		return ""
	}
	f := strings.Fields(string(b[at+1:]))
	if i >= len(f) {
		return ""
	}
	return f[i]
}
