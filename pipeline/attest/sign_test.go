package attest

import (
	"context"
	"crypto/elliptic"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/fixture"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
)

func TestLoadSignerKeyKinds(t *testing.T) {
	for _, kk := range keyKinds {
		t.Run(kk.name, func(t *testing.T) {
			k, b := kk.gen(t)
			priv, pubFile, pub := writeKey(t, t.TempDir(), k, b)
			s, err := LoadSigner(context.Background(), priv)
			if err != nil {
				t.Fatal(err)
			}
			env := signed(t, s, report(testDigest, pipeline.VerdictPass), Options{})
			vs, err := Verify(env, pub, Expect{Digest: testDigest, PolicyDigest: testPolicy})
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if vs.KeyID == "" || !vs.Passed() {
				t.Errorf("summary = %+v", vs)
			}
			if _, err := LoadPublicKey(pubFile); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestLoadSignerEncrypted(t *testing.T) {
	privPEM, _, err := cryptoutils.GeneratePEMEncodedECDSAKeyPair(elliptic.P256(), cryptoutils.StaticPasswordFunc([]byte("hunter2")))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "enc.key")
	if err := os.WriteFile(path, privPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(PasswordEnv, "hunter2")
	if _, err := LoadSigner(context.Background(), path); err != nil {
		t.Fatalf("right password: %v", err)
	}
	t.Setenv(PasswordEnv, "wrong")
	if _, err := LoadSigner(context.Background(), path); err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), PasswordEnv) {
		t.Errorf("wrong password: %v", err)
	}
	os.Unsetenv(PasswordEnv)
	if _, err := LoadSigner(context.Background(), path); err == nil || !strings.Contains(err.Error(), "set "+PasswordEnv) {
		t.Errorf("no password: %v", err)
	}
}

// TestLoadSignerCosignKey loads a key made by cosign generate-key-pair and
// checks the summary it signs with cosign's public key.
func TestLoadSignerCosignKey(t *testing.T) {
	cosign := fixture.Tool(t, filepath.Join("cosign-v2.6.5", "cosign"))
	dir := t.TempDir()
	t.Setenv(PasswordEnv, "s3cret")
	cmdOut := runIn(t, dir, cosign, "generate-key-pair")
	s, err := LoadSigner(context.Background(), filepath.Join(dir, "cosign.key"))
	if err != nil {
		t.Fatalf("LoadSigner(cosign.key): %v\n%s", err, cmdOut)
	}
	pub, err := LoadPublicKey(filepath.Join(dir, "cosign.pub"))
	if err != nil {
		t.Fatal(err)
	}
	env := signed(t, s, report(testDigest, pipeline.VerdictPass), Options{})
	if _, err := Verify(env, pub, Expect{Digest: testDigest, PolicyDigest: testPolicy}); err != nil {
		t.Fatal(err)
	}
}

func TestLoadSignerErrors(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pem")
	os.WriteFile(garbage, []byte("not a key at all\n"), 0o600)
	pubOnly := filepath.Join(dir, "pub.pem")
	os.WriteFile(pubOnly, []byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"), 0o600)
	badDER := filepath.Join(dir, "bad.pem")
	os.WriteFile(badDER, []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), 0o600)
	for _, tc := range []struct {
		name, ref string
		want      []string
		is        error
	}{
		{"garbage", garbage, []string{garbage, "no PEM block"}, nil},
		{"public key", pubOnly, []string{pubOnly, "not a private key"}, nil},
		{"bad DER", badDER, []string{badDER, "parsing"}, nil},
		{"missing", filepath.Join(dir, "nope.pem"), []string{"nope.pem", "no such file"}, os.ErrNotExist},
		{"awskms", "awskms:///arn:aws:kms:us-east-1:1:key/abc", []string{"awskms:///arn", "no provider"}, ErrNoKMSProvider},
		{"gcpkms", "gcpkms://projects/p/locations/l/keyRings/r/cryptoKeys/k", []string{"gcpkms://", "no provider"}, ErrNoKMSProvider},
		{"hashivault", "hashivault://fwvet", []string{"hashivault://fwvet"}, ErrNoKMSProvider},
		{"azurekms", "azurekms://vault.example/key", []string{"azurekms://"}, ErrNoKMSProvider},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadSigner(context.Background(), tc.ref)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v is not %v", err, tc.is)
			}
		})
	}
}

func TestSignEnvelope(t *testing.T) {
	s, _, _ := newECDSA(t)
	stmt := []byte(`{"_type":"x"}`)
	b, err := Sign(context.Background(), stmt, s)
	if err != nil {
		t.Fatal(err)
	}
	var env map[string]any
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatal(err)
	}
	if env["payloadType"] != PayloadType {
		t.Errorf("payloadType = %v", env["payloadType"])
	}
	if p, _ := base64.StdEncoding.DecodeString(env["payload"].(string)); string(p) != string(stmt) {
		t.Errorf("payload = %s", p)
	}
	sigs := env["signatures"].([]any)
	if len(sigs) != 1 || !strings.HasPrefix(sigs[0].(map[string]any)["keyid"].(string), "SHA256:") {
		t.Errorf("signatures = %v", sigs)
	}
	if got := string(PAE("http://example.com/HelloWorld", []byte("hello world"))); got != "DSSEv1 29 http://example.com/HelloWorld 11 hello world" {
		t.Errorf("PAE = %q (the DSSE specification's example)", got)
	}
}
