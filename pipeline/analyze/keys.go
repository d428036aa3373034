package analyze

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/fwvet/fwvet/pipeline"
)

// PrivateKeys reports private keys that appear in an added or modified
// file (private-key-added): PEM (PKCS#1, PKCS#8, SEC 1, OpenSSH, encrypted),
// DER and Dropbear key files. A key already in the file's previous version
// is not new. Evidence gives the key type and the fingerprint of its public
// half, never the key.
type PrivateKeys struct{}

var _ pipeline.Analyzer = PrivateKeys{}

// maxKeyFile bounds the size of a file tried as a bare DER or Dropbear key.
const maxKeyFile = 16 << 10

// Name implements pipeline.Analyzer.
func (PrivateKeys) Name() string { return "private-keys" }

type foundKey struct {
	kind        string // "RSA", "EC", "ED25519", "OpenSSH", "encrypted"…
	form        string // "PEM", "DER", "Dropbear"
	offset      int64
	fingerprint string // of the public key, when it can be derived
	id          string // identity of the key bytes, to compare versions
}

// Analyze implements pipeline.Analyzer.
func (PrivateKeys) Analyze(ctx context.Context, in *pipeline.AnalysisInput) ([]pipeline.Finding, error) {
	var out []pipeline.Finding
	for _, ch := range in.Changes {
		added, err := addedIn(ctx, ch, in.Scans[ch.Key], keysIn, func(k foundKey) string { return k.id })
		if err != nil {
			return nil, err
		}
		for _, k := range added {
			ev := map[string]any{"key_type": k.kind, "form": k.form, "offset": k.offset}
			msg := fmt.Sprintf("%s private key (%s) at offset %d", k.kind, k.form, k.offset)
			if k.fingerprint != "" {
				ev["public_key_fingerprint"] = k.fingerprint
				msg += ", public key " + k.fingerprint
			}
			out = append(out, finding(pipeline.IDPrivateKeyAdded, ch, msg, ev))
		}
	}
	return out, nil
}

// keysIn finds the private keys of one file.
func keysIn(ctx context.Context, e *pipeline.Entry, p *pipeline.Profile) ([]foundKey, error) {
	var keys []foundKey
	for _, b := range p.PEM {
		if !strings.Contains(b.Type, "PRIVATE KEY") {
			continue
		}
		k := foundKey{form: "PEM", offset: b.Offset, id: digest(b.Text)}
		k.kind = strings.TrimSpace(strings.TrimSuffix(b.Type, "PRIVATE KEY"))
		if blk, _ := pem.Decode(b.Text); blk != nil {
			if pub := publicOfPEM(blk); pub != nil {
				k.fingerprint = fingerprint(pub)
			}
		}
		if k.kind == "" {
			k.kind = "PKCS#8"
		}
		keys = append(keys, k)
	}
	if e.Size > maxKeyFile || (p.Magic != "der" && p.Magic != "") || len(keys) > 0 {
		return keys, nil
	}
	b, err := readText(ctx, e, maxKeyFile)
	if err != nil {
		return nil, err
	}
	if pub, kind := publicOfDER(b); pub != nil {
		keys = append(keys, foundKey{form: "DER", kind: kind, fingerprint: fingerprint(pub), id: digest(b)})
	} else if fp, kind := publicOfDropbear(b); kind != "" {
		keys = append(keys, foundKey{form: "Dropbear", kind: kind, fingerprint: fp, id: digest(b)})
	}
	return keys, nil
}

func digest(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func publicOfPEM(blk *pem.Block) crypto.PublicKey {
	if blk.Type == "OPENSSH PRIVATE KEY" {
		k, err := ssh.ParseRawPrivateKey(pem.EncodeToMemory(blk))
		if err != nil {
			return nil
		}
		return publicOf(k)
	}
	pub, _ := publicOfDER(blk.Bytes)
	return pub
}

// publicOfDER parses a DER private key (PKCS#8, PKCS#1, SEC 1) and
// returns its public half.
func publicOfDER(b []byte) (crypto.PublicKey, string) {
	if k, err := x509.ParsePKCS8PrivateKey(b); err == nil {
		return publicOf(k), "PKCS#8 " + keyKind(k)
	}
	if k, err := x509.ParsePKCS1PrivateKey(b); err == nil {
		return &k.PublicKey, "RSA"
	}
	if k, err := x509.ParseECPrivateKey(b); err == nil {
		return &k.PublicKey, "EC"
	}
	return nil, ""
}

func publicOf(k any) crypto.PublicKey {
	switch k := k.(type) {
	case *rsa.PrivateKey:
		return &k.PublicKey
	case *ecdsa.PrivateKey:
		return &k.PublicKey
	case ed25519.PrivateKey:
		return k.Public()
	case *ed25519.PrivateKey:
		return k.Public()
	}
	return nil
}

func keyKind(k any) string {
	switch k.(type) {
	case *rsa.PrivateKey:
		return "RSA"
	case *ecdsa.PrivateKey:
		return "EC"
	case ed25519.PrivateKey, *ed25519.PrivateKey:
		return "ED25519"
	}
	return "key"
}

// fingerprint is the OpenSSH SHA-256 fingerprint of a public key, the form
// ssh-keygen -l prints.
func fingerprint(pub crypto.PublicKey) string {
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			return ""
		}
		return "sha256:" + digest(der)
	}
	return ssh.FingerprintSHA256(k)
}

// publicOfDropbear recognises Dropbear's own key files (dropbearkey's
// output: SSH wire-format strings, the key type first) and returns the
// fingerprint of their public half: for RSA and ECDSA keys the public key's
// wire form is the start of the file; an Ed25519 key's public half is the
// last 32 bytes of its 64-byte key string.
func publicOfDropbear(b []byte) (string, string) {
	fields := wireStrings(b, 4)
	if len(fields) < 2 {
		return "", ""
	}
	typ := string(fields[0])
	var wire [][]byte
	switch {
	case typ == "ssh-rsa", strings.HasPrefix(typ, "ecdsa-sha2-"):
		if len(fields) < 3 {
			return "", "Dropbear " + typ
		}
		wire = fields[:3] // type, e, n; or type, curve, point
	case typ == "ssh-ed25519" && len(fields[1]) == 64:
		wire = [][]byte{fields[0], fields[1][32:]}
	case typ == "ssh-ed25519" && len(fields[1]) == 32 && len(fields) >= 3 && len(fields[2]) == 32:
		wire = [][]byte{fields[0], fields[2]}
	case typ == "ssh-dss":
		return "", "Dropbear " + typ
	default:
		return "", ""
	}
	var blob []byte
	for _, f := range wire {
		blob = binary.BigEndian.AppendUint32(blob, uint32(len(f)))
		blob = append(blob, f...)
	}
	pub, err := ssh.ParsePublicKey(blob)
	if err != nil {
		// A Dropbear key all the same, whose public half cannot be read.
		return "", "Dropbear " + typ
	}
	return ssh.FingerprintSHA256(pub), "Dropbear " + typ
}

// wireStrings reads up to n SSH wire-format strings (uint32 length, bytes).
func wireStrings(b []byte, n int) [][]byte {
	var out [][]byte
	for len(out) < n && len(b) >= 4 {
		l := binary.BigEndian.Uint32(b)
		if uint64(l) > uint64(len(b)-4) || l > 16<<10 {
			break
		}
		out = append(out, b[4:4+l])
		b = b[4+l:]
	}
	return out
}
