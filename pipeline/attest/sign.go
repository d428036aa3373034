package attest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/kms"
)

// PasswordEnv holds the password of an encrypted cosign key, as for cosign.
const PasswordEnv = "COSIGN_PASSWORD"

// maxKeyFile bounds a private key file.
const maxKeyFile = 1 << 20

// kmsScheme matches a KMS URI (awskms://, gcpkms://, hashivault://,
// azurekms://, or any plugin scheme sigstore knows).
var kmsScheme = regexp.MustCompile(`^[a-z][a-z0-9+.-]*://`)

// ErrNoKMSProvider is returned for a KMS URI this build cannot use.
var ErrNoKMSProvider = errors.New("this build of fwvet has no provider for that KMS")

// LoadSigner loads the signer named by ref: a KMS URI (through sigstore's
// kms package; this build registers no cloud provider, so only a sigstore
// KMS plugin on the PATH can serve one), or a PEM private key file (PKCS#8,
// SEC 1 EC, PKCS#1 RSA, Ed25519, or cosign's encrypted key, whose password
// is read from COSIGN_PASSWORD).
func LoadSigner(ctx context.Context, ref string) (signature.Signer, error) {
	if kmsScheme.MatchString(ref) {
		sv, err := kms.Get(ctx, ref, crypto.SHA256)
		if err != nil {
			var nf *kms.ProviderNotFoundError
			if errors.As(err, &nf) {
				return nil, fmt.Errorf("signing key %s: %w (no KMS provider is compiled in and no sigstore-kms plugin for it is on the PATH): %v", ref, ErrNoKMSProvider, err)
			}
			return nil, fmt.Errorf("signing key %s: %w", ref, err)
		}
		return sv, nil
	}
	f, err := os.Open(ref)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	defer f.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(io.LimitReader(f, maxKeyFile+1)); err != nil {
		return nil, fmt.Errorf("signing key %s: %w", ref, err)
	}
	if buf.Len() > maxKeyFile {
		return nil, fmt.Errorf("signing key %s: larger than %d bytes, not a PEM private key", ref, maxKeyFile)
	}
	s, err := signerFromPEM(buf.Bytes())
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", ref, err)
	}
	return s, nil
}

// signerFromPEM parses a PEM private key.
func signerFromPEM(b []byte) (signature.Signer, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New("no PEM block: want a PEM private key (PKCS#8, EC, RSA or cosign's encrypted key)")
	}
	var pf cryptoutils.PassFunc
	switch block.Type {
	case "ENCRYPTED SIGSTORE PRIVATE KEY", "ENCRYPTED COSIGN PRIVATE KEY", "ENCRYPTED PRIVATE KEY":
		pw, ok := os.LookupEnv(PasswordEnv)
		if !ok {
			return nil, fmt.Errorf("the key is encrypted (%s): set %s to its password", block.Type, PasswordEnv)
		}
		pf = cryptoutils.StaticPasswordFunc([]byte(pw))
	case "PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY":
	default:
		return nil, fmt.Errorf("PEM block %q is not a private key", block.Type)
	}
	priv, err := cryptoutils.UnmarshalPEMToPrivateKey(b, pf)
	if err != nil {
		if pf != nil {
			return nil, fmt.Errorf("decrypting the %s (is %s right?): %w", block.Type, PasswordEnv, err)
		}
		return nil, fmt.Errorf("parsing the %s: %w", block.Type, err)
	}
	s, err := signature.LoadDefaultSigner(priv)
	if err != nil {
		return nil, fmt.Errorf("unsupported key: %w", err)
	}
	return s, nil
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
