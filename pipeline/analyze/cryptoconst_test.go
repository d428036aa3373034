package analyze

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/binary"
	"math/big"
	"strings"
	"testing"

	"github.com/fwvet/fwvet/pipeline"
)

// TestKnownConstantValues: the computed tables are the published ones.
func TestKnownConstantValues(t *testing.T) {
	k, iv := sha256Constants()
	for _, c := range []struct{ got, want uint32 }{{k[0], 0x428a2f98}, {k[1], 0x71374491}, {k[63], 0xc67178f2}, {iv[0], 0x6a09e667}, {iv[7], 0x5be0cd19}} {
		if c.got != c.want {
			t.Errorf("SHA-256 constant 0x%08x, want 0x%08x", c.got, c.want)
		}
	}
	sbox, inv := aesSBoxes()
	if sbox[0] != 0x63 || sbox[0x53] != 0xed || sbox[0xff] != 0x16 || inv[0] != 0x52 || inv[0x63] != 0 {
		t.Errorf("AES S-box starts % x, inverse % x", sbox[:4], inv[:4])
	}
	for _, h := range []string{modp1024, modp2048} {
		p, _ := new(big.Int).SetString(h, 16)
		q := new(big.Int).Rsh(p, 1)
		if !p.ProbablyPrime(10) || !q.ProbablyPrime(10) {
			t.Errorf("MODP %d-bit prime is not a safe prime", p.BitLen())
		}
	}
	names := map[string]bool{}
	for _, c := range knownConstants() {
		names[c.name] = true
	}
	for _, n := range []string{"P-256 Gx", "P-384 n (little-endian)", "secp256k1 Gy", "Curve25519 p", "RFC 3526 MODP 2048 prime", "AES inverse S-box", "SHA-256 K (little-endian)"} {
		if !names[n] {
			t.Errorf("no known constant %q", n)
		}
	}
}

// TestCryptoConstantChanged: a signer holding the P-256 generator as a
// static const point, built by the real compilers for x86-64, MIPS (little
// endian) and 32-bit ARM (scripts/fixtures/binaries.sh), then with the
// point replaced and the code as it was: crypto-constant-changed. A
// rebuild from another path with a new build id, and a code change that
// keeps the constants, are not; a code change that also replaces the
// point in place is (the one exception to "the code changed"). Without
// section headers the comparison falls back to the segments.
func TestCryptoConstantChanged(t *testing.T) {
	for _, arch := range []string{"x86_64", "i686", "mipsel", "mips", "armhf"} {
		for _, tt := range []struct {
			old, cur string
			want     string // the constant's name, "" for no finding
		}{
			{"ec", "ec-alt", "P-256 Gx + P-256 Gy"},
			{"ec-alt", "ec", "P-256 Gx + P-256 Gy"},
			{"ec-sstrip", "ec-alt-sstrip", "P-256 Gx + P-256 Gy"},
			{"ec", "ec-rebuilt", ""},
			{"ec", "ec-feature", ""},
			{"ec", "ec-alt-feature", "P-256 Gx + P-256 Gy"},
			{"ec-alt", "ec-feature", ""},
			{"plain", "plain-rebuilt", ""},
			{"packed", "packed2", ""},
		} {
			t.Run(arch+"/"+tt.old+"→"+tt.cur, func(t *testing.T) {
				old := fileEntry("/usr/sbin/ecsign", string(binFixture(t, arch+"-"+tt.old)), 0o755)
				cur := fileEntry("/usr/sbin/ecsign", string(binFixture(t, arch+"-"+tt.cur)), 0o755)
				ch := changed(old, cur, "content")
				fs := analyzeWith(t, CryptoConstants{}, scanned(t, ch))
				if tt.want == "" {
					none(t, fs)
					return
				}
				f := only(t, fs, pipeline.IDCryptoConstant, pipeline.SeverityCritical, ch)
				if !f.AllowOnly {
					t.Error("not AllowOnly: a declared path would hide it")
				}
				cs, _ := f.Evidence["constants"].([]changedConst)
				if len(cs) != 1 {
					t.Fatalf("constants %+v, want one", cs)
				}
				c := cs[0]
				if c.Name != tt.want || c.End-c.Start != 64 {
					t.Errorf("constant %q at 0x%x-0x%x, want %q over 64 bytes", c.Name, c.Start, c.End, tt.want)
				}
				p256 := "6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296"
				if (tt.old == "ec" || tt.old == "ec-sstrip") && !strings.HasPrefix(c.Before, p256) || tt.old == "ec-alt" && !strings.HasPrefix(c.After, p256) {
					t.Errorf("before %s after %s: the generator is not on the side it was", c.Before, c.After)
				}
				if m, _ := f.Evidence["machine"].(string); m == "" {
					t.Error("no machine in the evidence")
				}
				if c.Region == "" {
					t.Error("no section in the evidence")
				}
				code, _ := f.Evidence["code"].(string)
				// Without sections, MIPS and ARM keep .rodata in the
				// executable segment, so the code reads as changed; x86
				// linkers put it in a segment of its own.
				want := tt.cur == "ec-alt-feature" || strings.HasSuffix(tt.cur, "-sstrip") && arch != "x86_64" && arch != "i686"
				if strings.HasPrefix(code, "changed") != want {
					t.Errorf("code %q, want changed %v", code, want)
				}
			})
		}
	}
}

// TestBinaryAnalyzersQuietOnHardening: the hardening fixtures (a daemon
// rebuilt with other flags: code changed, no constant) give neither
// finding.
func TestBinaryAnalyzersQuietOnHardening(t *testing.T) {
	for _, arch := range []string{"x86_64", "i686", "mipsel", "mips", "armhf", "arm64"} {
		for _, v := range []string{"rebuilt", "no-ssp", "no-pie", "no-relro", "execstack"} {
			t.Run(arch+"/"+v, func(t *testing.T) {
				old := fileEntry("/usr/sbin/diagd", string(binFixture(t, "../hardening/"+arch+"-hardened")), 0o755)
				cur := fileEntry("/usr/sbin/diagd", string(binFixture(t, "../hardening/"+arch+"-"+v)), 0o755)
				in := scanned(t, changed(old, cur, "content"), added(fileEntry("/usr/sbin/diagd2", string(binFixture(t, "../hardening/"+arch+"-"+v)), 0o755)))
				none(t, analyzeWith(t, Packed{}, in))
				none(t, analyzeWith(t, CryptoConstants{}, in))
			})
		}
	}
}

// constTestImage is a constImage of one .rodata region.
func constTestImage(code string, rodata []byte) *constImage {
	return &constImage{code: code, data: []constRegion{{name: ".rodata", off: 0x1000, b: rodata}}, bySects: true}
}

// TestConstantShapes: which changed runs of read-only data are constants.
func TestConstantShapes(t *testing.T) {
	text := []byte(strings.Repeat("usage: signer [-v] [-c config] request...\n", 20))
	sbox, _ := aesSBoxes()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	key2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der2, _ := x509.MarshalPKIXPublicKey(&key2.PublicKey)
	with := func(parts ...[]byte) []byte { return bytes.Join(append([][]byte{text}, append(parts, text)...), nil) }
	rnd := func(n int) []byte { b := make([]byte, n); rand.Read(b); return b }
	k := rnd(48)
	bigTable := rnd(4096)
	sbox2 := sbox
	sbox2[17] ^= 1
	for _, tt := range []struct {
		name     string
		old, cur []byte
		want     string
	}{
		{"random key replaced", with(k), with(rnd(48)), "high-entropy constant"},
		{"text changed", with([]byte("version 1.0.0")), with([]byte("version 1.0.1")), ""},
		{"short random", with(rnd(16)), with(rnd(16)), ""},
		{"large table", with(bigTable), with(rnd(4096)), ""},
		{"S-box byte", with(sbox[:]), with(sbox2[:]), "AES S-box"},
		{"DER key", with(der), with(der2), "DER SubjectPublicKeyInfo (*ecdsa.PublicKey)"},
		{"little-endian SHA-256 K", with(le32(sha256K()), []byte("pad")), with(rnd(256), []byte("pad")), "SHA-256 K (little-endian)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := sameOffsetChanges(constTestImage("same", tt.old), constTestImage("same", tt.cur))
			if tt.want == "" {
				if len(got) != 0 {
					t.Errorf("found %+v", got)
				}
				return
			}
			if len(got) != 1 || got[0].Name != tt.want {
				t.Fatalf("found %+v, want one %q", got, tt.want)
			}
		})
	}
}

func sha256K() []uint32 { k, _ := sha256Constants(); return k[:] }

func le32(ws []uint32) []byte {
	b := make([]byte, 4*len(ws))
	for i, w := range ws {
		binary.LittleEndian.PutUint32(b[4*i:], w)
	}
	return b
}

// TestReplacedInPlace: when the code changed, only a known constant
// replaced between the same neighbours counts; one that moved or stayed
// does not.
func TestReplacedInPlace(t *testing.T) {
	var gx [32]byte
	elliptic.P256().Params().Gx.FillBytes(gx[:])
	pre, post := []byte("-- curve table: signer v3 --"), []byte("== end of the curve table ==")
	other := bytes.Repeat([]byte{0x5c, 0x17}, 16)
	old := constTestImage("a", bytes.Join([][]byte{pre, gx[:], post}, nil))
	for _, tt := range []struct {
		name string
		cur  []byte
		want bool
	}{
		{"replaced", bytes.Join([][]byte{[]byte("new strings first. "), pre, other, post}, nil), true},
		{"unchanged, moved", bytes.Join([][]byte{[]byte("new strings first. "), pre, gx[:], post}, nil), false},
		{"moved elsewhere", bytes.Join([][]byte{pre, other, post, gx[:]}, nil), false},
		{"neighbours gone", bytes.Join([][]byte{[]byte("a different program entirely, no anchors")}, nil), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := replacedKnown(old, constTestImage("b", tt.cur), true)
			if (len(got) == 1) != tt.want || len(got) > 1 {
				t.Errorf("found %+v, want %v", got, tt.want)
			}
		})
	}
}

// TestPEMKeyChanged: a PEM public key replaced in a binary whose code is
// the same.
func TestPEMKeyChanged(t *testing.T) {
	s := &pipeline.Scan{
		Old: &pipeline.Profile{PEM: []pipeline.PEMBlock{{Offset: 0x2000, Type: "PUBLIC KEY", Text: []byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")}}},
		New: &pipeline.Profile{PEM: []pipeline.PEMBlock{{Offset: 0x2000, Type: "PUBLIC KEY", Text: []byte("-----BEGIN PUBLIC KEY-----\nBBBB\n-----END PUBLIC KEY-----\n")}}},
	}
	if got := pemKeysChanged(s); len(got) != 1 || got[0].Name != "PEM PUBLIC KEY" {
		t.Errorf("found %+v", got)
	}
	s.New.PEM = append(s.New.PEM, s.Old.PEM...)
	if got := pemKeysChanged(s); len(got) != 0 {
		t.Errorf("a key added beside the old one reported: %+v", got)
	}
}
