package attest

import (
	"bytes"
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/options"
	"golang.org/x/crypto/ssh"
)

// Limits on what a summary's decoding accepts.
const (
	// MaxEnvelopeSize bounds an envelope (and a bundle holding one), read
	// from a registry or given to Verify.
	MaxEnvelopeSize = 16 << 20
	// MaxSignatures bounds the signatures of one envelope.
	MaxSignatures = 16
	// MaxAttestations bounds how many attestations Find reads for a subject.
	MaxAttestations = 256
)

// Envelope is a DSSE envelope.
type Envelope struct {
	PayloadType string `json:"payloadType"`
	// Payload is the base64 of the statement.
	Payload    string      `json:"payload"`
	Signatures []Signature `json:"signatures"`
}

// Signature is one signature of a DSSE envelope.
type Signature struct {
	KeyID string `json:"keyid"`
	// Sig is the base64 of the signature over PAE(payloadType, payload).
	Sig string `json:"sig"`
}

// PAE is DSSE's pre-authentication encoding of a payload and its type:
// "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body.
func PAE(payloadType string, body []byte) []byte {
	var b bytes.Buffer
	b.WriteString("DSSEv1 ")
	b.WriteString(strconv.Itoa(len(payloadType)))
	b.WriteByte(' ')
	b.WriteString(payloadType)
	b.WriteByte(' ')
	b.WriteString(strconv.Itoa(len(body)))
	b.WriteByte(' ')
	b.Write(body)
	return b.Bytes()
}

// KeyID is the DSSE key id fwvet gives a public key: its SSH SHA256
// fingerprint, which is also what DSSE verifiers (cosign's, sigstore-go's)
// compute for a key that names no id, so they accept the signature. It is
// empty for a key SSH cannot represent.
func KeyID(pub crypto.PublicKey) string {
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		return ""
	}
	return ssh.FingerprintSHA256(k)
}

// Sign wraps a statement in a DSSE envelope signed by s: one signature over
// PAE(PayloadType, stmt), with the key's id (see KeyID).
func Sign(ctx context.Context, stmt []byte, s signature.Signer) ([]byte, error) {
	if s == nil {
		return nil, errors.New("attest: sign: no signer")
	}
	sig, err := s.SignMessage(bytes.NewReader(PAE(PayloadType, stmt)), options.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("attest: signing the statement: %w", err)
	}
	keyID := ""
	if pub, err := s.PublicKey(options.WithContext(ctx)); err == nil {
		keyID = KeyID(pub)
	}
	return json.Marshal(Envelope{
		PayloadType: PayloadType,
		Payload:     base64.StdEncoding.EncodeToString(stmt),
		Signatures:  []Signature{{KeyID: keyID, Sig: base64.StdEncoding.EncodeToString(sig)}},
	})
}

// ParseEnvelope decodes a DSSE envelope, within the limits above.
func ParseEnvelope(b []byte) (*Envelope, []byte, error) {
	if len(b) > MaxEnvelopeSize {
		return nil, nil, fmt.Errorf("%w: envelope of %d bytes is over the %d byte limit", ErrMalformed, len(b), MaxEnvelopeSize)
	}
	var env Envelope
	if err := json.Unmarshal(b, &env); err != nil {
		return nil, nil, fmt.Errorf("%w: not a DSSE envelope: %v", ErrMalformed, err)
	}
	if len(env.Signatures) == 0 {
		return nil, nil, fmt.Errorf("%w: the envelope has no signature", ErrBadSignature)
	}
	if len(env.Signatures) > MaxSignatures {
		return nil, nil, fmt.Errorf("%w: the envelope has %d signatures, over the limit of %d", ErrMalformed, len(env.Signatures), MaxSignatures)
	}
	payload, err := decodeB64(env.Payload)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: the envelope's payload is not base64: %v", ErrMalformed, err)
	}
	return &env, payload, nil
}

// decodeB64 accepts standard and URL-safe base64, padded or not, as DSSE does.
func decodeB64(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("illegal base64 data")
}
