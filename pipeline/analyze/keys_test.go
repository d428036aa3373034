package analyze

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/fwvet/fwvet/pipeline"
)

// testKeys are generated once: RSA generation is the slow part.
var testKeys = sync.OnceValues(func() (map[string]crypto.Signer, error) {
	r, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		return nil, err
	}
	r2, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		return nil, err
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	return map[string]crypto.Signer{"rsa": r, "rsa2": r2, "ec": ec, "ed25519": ed}, nil
})

func keys(t *testing.T) map[string]crypto.Signer {
	t.Helper()
	k, err := testKeys()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// sshFingerprint is what ssh-keygen -l prints for a key's public half.
func sshFingerprint(t *testing.T, k crypto.Signer) string {
	t.Helper()
	pub, err := ssh.NewPublicKey(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	return ssh.FingerprintSHA256(pub)
}

func pemOf(typ string, der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
}

func pkcs8(t *testing.T, k crypto.Signer) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestPrivateKeys(t *testing.T) {
	ks := keys(t)
	rsaKey, ecKey, edKey := ks["rsa"].(*rsa.PrivateKey), ks["ec"].(*ecdsa.PrivateKey), ks["ed25519"].(ed25519.PrivateKey)
	sec1, err := x509.MarshalECPrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	openssh, err := ssh.MarshalPrivateKey(edKey, "root@factory")
	if err != nil {
		t.Fatal(err)
	}
	opensshRSA, err := ssh.MarshalPrivateKey(rsaKey, "")
	if err != nil {
		t.Fatal(err)
	}
	encrypted, err := ssh.MarshalPrivateKeyWithPassphrase(edKey, "", []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	pkixPub, err := x509.MarshalPKIXPublicKey(edKey.Public())
	if err != nil {
		t.Fatal(err)
	}
	cert := selfSignedCA(t, "Some CA", ks["ec"])
	sshPub, err := ssh.NewPublicKey(edKey.Public())
	if err != nil {
		t.Fatal(err)
	}
	// A Dropbear ed25519 key, as dropbearkey writes it: string "ssh-ed25519",
	// then string (32-byte seed || 32-byte public key).
	dropbear := func(typ string, fields ...[]byte) string {
		var b []byte
		b = binary.BigEndian.AppendUint32(b, uint32(len(typ)))
		b = append(b, typ...)
		for _, f := range fields {
			b = binary.BigEndian.AppendUint32(b, uint32(len(f)))
			b = append(b, f...)
		}
		return string(b)
	}
	dropbearEd := dropbear("ssh-ed25519", append(edKey.Seed(), edKey.Public().(ed25519.PublicKey)...))

	const prefix = "# device identity\n"
	type want = wantKey
	tests := []struct {
		name string
		ch   *pipeline.Change
		want []want
	}{
		{
			name: "PKCS#1 RSA",
			ch:   added(fileEntry("/etc/ssl/private/server.key", prefix+pemOf("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey)), 0o600)),
			want: []want{{kind: "RSA", form: "PEM", fp: sshFingerprint(t, rsaKey), offset: int64(len(prefix))}},
		},
		{
			name: "PKCS#8 RSA",
			ch:   added(fileEntry("/etc/ssl/private/a.pem", pemOf("PRIVATE KEY", pkcs8(t, rsaKey)), 0o600)),
			want: []want{{kind: "PKCS#8", form: "PEM", fp: sshFingerprint(t, rsaKey)}},
		},
		{
			name: "PKCS#8 EC",
			ch:   added(fileEntry("/etc/ssl/private/b.pem", pemOf("PRIVATE KEY", pkcs8(t, ecKey)), 0o600)),
			want: []want{{kind: "PKCS#8", form: "PEM", fp: sshFingerprint(t, ecKey)}},
		},
		{
			name: "PKCS#8 Ed25519",
			ch:   added(fileEntry("/etc/ssl/private/c.pem", pemOf("PRIVATE KEY", pkcs8(t, edKey)), 0o600)),
			want: []want{{kind: "PKCS#8", form: "PEM", fp: sshFingerprint(t, edKey)}},
		},
		{
			name: "SEC 1 EC",
			ch:   added(fileEntry("/etc/ipsec.d/private/host.pem", prefix+pemOf("EC PRIVATE KEY", sec1), 0o600)),
			want: []want{{kind: "EC", form: "PEM", fp: sshFingerprint(t, ecKey), offset: int64(len(prefix))}},
		},
		{
			name: "OpenSSH Ed25519",
			ch:   added(fileEntry("/root/.ssh/id_ed25519", string(pem.EncodeToMemory(openssh)), 0o600)),
			want: []want{{kind: "OPENSSH", form: "PEM", fp: sshFingerprint(t, edKey)}},
		},
		{
			name: "OpenSSH RSA",
			ch:   added(fileEntry("/root/.ssh/id_rsa", string(pem.EncodeToMemory(opensshRSA)), 0o600)),
			want: []want{{kind: "OPENSSH", form: "PEM", fp: sshFingerprint(t, rsaKey)}},
		},
		{
			name: "encrypted OpenSSH key: found, no fingerprint",
			ch:   added(fileEntry("/root/.ssh/id_enc", string(pem.EncodeToMemory(encrypted)), 0o600)),
			want: []want{{kind: "OPENSSH", form: "PEM"}},
		},
		{
			name: "encrypted PKCS#8 key",
			ch:   added(fileEntry("/etc/ssl/private/enc.pem", pemOf("ENCRYPTED PRIVATE KEY", []byte("0123456789abcdef opaque")), 0o600)),
			want: []want{{kind: "ENCRYPTED", form: "PEM"}},
		},
		{
			name: "key inside a binary",
			ch:   added(fileEntry("/usr/bin/agent", "\x7fELF\x02\x01\x01\x00\x00\x00\x01\x02"+pemOf("EC PRIVATE KEY", sec1)+"\x00\x00", 0o755)),
			want: []want{{kind: "EC", form: "PEM", fp: sshFingerprint(t, ecKey), offset: 12}},
		},
		{
			name: "bare DER PKCS#8 RSA",
			ch:   added(fileEntry("/etc/keys/device.der", string(pkcs8(t, rsaKey)), 0o600)),
			want: []want{{kind: "PKCS#8 RSA", form: "DER", fp: sshFingerprint(t, rsaKey)}},
		},
		{
			name: "bare DER PKCS#8 Ed25519 (too short for the DER magic)",
			ch:   added(fileEntry("/etc/keys/ed.key", string(pkcs8(t, edKey)), 0o600)),
			want: []want{{kind: "PKCS#8 ED25519", form: "DER", fp: sshFingerprint(t, edKey)}},
		},
		{
			name: "bare DER PKCS#1 RSA",
			ch:   added(fileEntry("/etc/keys/rsa.der", string(x509.MarshalPKCS1PrivateKey(rsaKey)), 0o600)),
			want: []want{{kind: "RSA", form: "DER", fp: sshFingerprint(t, rsaKey)}},
		},
		{
			name: "bare DER SEC 1 EC",
			ch:   added(fileEntry("/etc/keys/ec.der", string(sec1), 0o600)),
			want: []want{{kind: "EC", form: "DER", fp: sshFingerprint(t, ecKey)}},
		},
		{
			name: "Dropbear Ed25519 key file",
			ch:   added(fileEntry("/etc/dropbear/dropbear_ed25519_host_key", dropbearEd, 0o600)),
			want: []want{{kind: "Dropbear ssh-ed25519", form: "Dropbear", fp: sshFingerprint(t, edKey)}},
		},
		{
			// dropbearkey's RSA layout: e, n, then d, p, q as mpints.
			name: "Dropbear RSA key file",
			ch: added(fileEntry("/etc/dropbear/dropbear_rsa_host_key",
				dropbear("ssh-rsa", big.NewInt(int64(rsaKey.PublicKey.E)).Bytes(), append([]byte{0}, rsaKey.PublicKey.N.Bytes()...),
					rsaKey.D.Bytes(), rsaKey.Primes[0].Bytes(), rsaKey.Primes[1].Bytes()), 0o600)),
			want: []want{{kind: "Dropbear ssh-rsa", form: "Dropbear", fp: sshFingerprint(t, rsaKey)}},
		},
		{
			name: "Dropbear file too short to derive the public key",
			ch:   added(fileEntry("/etc/dropbear/dropbear_rsa_host_key", dropbear("ssh-rsa", rsaKey.PublicKey.N.Bytes()), 0o600)),
			want: []want{{kind: "Dropbear ssh-rsa", form: "Dropbear"}},
		},
		// Not private keys.
		{name: "PEM public key", ch: added(fileEntry("/etc/keys/pub.pem", pemOf("PUBLIC KEY", pkixPub), 0o644))},
		{name: "PEM RSA public key", ch: added(fileEntry("/etc/keys/rsapub.pem", pemOf("RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&rsaKey.PublicKey)), 0o644))},
		{name: "DER public key", ch: added(fileEntry("/etc/keys/pub.der", string(pkixPub), 0o644))},
		{name: "PEM certificate", ch: added(fileEntry("/etc/ssl/certs/ca.pem", pemOf("CERTIFICATE", cert.Raw), 0o644))},
		{name: "DER certificate", ch: added(fileEntry("/etc/ssl/certs/ca.der", string(cert.Raw), 0o644))},
		{name: "OpenSSH public key", ch: added(fileEntry("/root/.ssh/id_ed25519.pub", string(ssh.MarshalAuthorizedKey(sshPub)), 0o644))},
		{name: "Dropbear-like type that is not a key type", ch: added(fileEntry("/etc/x.bin", dropbear("ssh-userauth", []byte("payload")), 0o644))},
		{name: "a PEM header without a block", ch: added(fileEntry("/usr/bin/openssl.txt", "-----BEGIN PRIVATE KEY-----\nnot closed\n", 0o644))},
		{name: "removed key", ch: removed(fileEntry("/etc/ssl/private/server.key", pemOf("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey)), 0o600))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := analyzeWith(t, PrivateKeys{}, scanned(t, tt.ch))
			checkKeys(t, got, tt.ch, tt.want)
		})
	}
}

// wantKey is one expected private-key-added finding.
type wantKey struct {
	kind, form string
	fp         string // public key fingerprint, "" for none
	offset     int64
}

// checkKeys compares private-key-added findings with what is wanted, and
// checks that no finding carries a key's bytes.
func checkKeys(t *testing.T, got []pipeline.Finding, ch *pipeline.Change, want []wantKey) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d findings, want %d: %s", len(got), len(want), marshal(t, got))
	}
	for i, w := range want {
		f := got[i]
		if f.ID != pipeline.IDPrivateKeyAdded || f.Severity != pipeline.SeverityHigh || f.Path != ch.Path || f.Key != ch.Key {
			t.Errorf("finding %d = %s/%s on %s, want private-key-added/high on %s", i, f.ID, f.Severity, f.Path, ch.Path)
		}
		if f.Evidence["key_type"] != w.kind || f.Evidence["form"] != w.form || f.Evidence["offset"] != w.offset {
			t.Errorf("finding %d = %v %v at %v, want %s %s at %d", i, f.Evidence["key_type"], f.Evidence["form"], f.Evidence["offset"], w.kind, w.form, w.offset)
		}
		fp, has := f.Evidence["public_key_fingerprint"]
		if w.fp == "" && has || w.fp != "" && fp != w.fp {
			t.Errorf("finding %d fingerprint = %v, want %q", i, fp, w.fp)
		}
		if w.fp != "" {
			contains(t, "message", f.Message, "public key "+w.fp)
		}
	}
	// The key itself never shows: no line of a PEM body, nor the file's
	// bytes in base64 or hex.
	js := marshal(t, got)
	body := readAll(t, ch.Entry())
	for _, l := range strings.Split(body, "\n") {
		if len(l) >= 16 && !strings.HasPrefix(l, "-----") && !strings.HasPrefix(l, "#") && strings.Contains(js, l) {
			t.Errorf("findings carry a line of the key file: %q", l)
		}
	}
	for _, enc := range []string{base64.StdEncoding.EncodeToString([]byte(body)), hex.EncodeToString([]byte(body))} {
		if strings.Contains(js, enc[:min(len(enc), 32)]) {
			t.Errorf("findings carry the key file's bytes: %s", js)
		}
	}
}

// TestPrivateKeysPreviousVersion: a key the file already held is not new,
// one it gains is, wherever it lands.
func TestPrivateKeysPreviousVersion(t *testing.T) {
	ks := keys(t)
	a := pemOf("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(ks["rsa"].(*rsa.PrivateKey)))
	b := pemOf("PRIVATE KEY", pkcs8(t, ks["rsa2"]))
	const p = "/etc/ssl/private/bundle.pem"
	tests := []struct {
		name     string
		old, new string
		want     bool
	}{
		{name: "same key, file grew a comment", old: a, new: "# host key\n" + a},
		{name: "key appended", old: a, new: a + b, want: true},
		{name: "key prepended", old: a, new: b + a, want: true},
		{name: "key replaced", old: a, new: b, want: true},
		{name: "key removed", old: a + b, new: a},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ch := changed(fileEntry(p, tt.old, 0o600), fileEntry(p, tt.new, 0o600), "content")
			got := analyzeWith(t, PrivateKeys{}, scanned(t, ch))
			if !tt.want {
				none(t, got)
				return
			}
			checkKeys(t, got, ch, []wantKey{{kind: "PKCS#8", form: "PEM", fp: sshFingerprint(t, ks["rsa2"]), offset: int64(strings.Index(tt.new, b))}})
		})
	}
	// A DER key file whose bytes did not change is not new either.
	der := string(pkcs8(t, ks["ec"]))
	ch := changed(fileEntry("/etc/keys/k.der", der, 0o600), fileEntry("/etc/keys/k.der", der, 0o600), "content")
	none(t, analyzeWith(t, PrivateKeys{}, scanned(t, ch)))
}
