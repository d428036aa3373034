package verifiers

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
)

// Annotations that a keyless signature or attestation carries in cosign's
// legacy layout, beside the signature itself.
const (
	annotationChain   = "dev.sigstore.cosign/chain"
	annotationRekor   = "dev.sigstore.cosign/bundle"
	annotationRFC3161 = "dev.sigstore.cosign/rfc3161timestamp"
)

// maxChain bounds the certificates read from one signature's annotations.
const maxChain = 10

// legacyKeyless is what makes a legacy-layout signature keyless: the
// signing certificate, its chain, the Rekor entry with its signed entry
// timestamp, and an RFC 3161 timestamp, each as cosign annotates them.
type legacyKeyless struct {
	cert, chain, rekor, rfc3161 string
}

func legacyKeylessFrom(annotations map[string]string) legacyKeyless {
	return legacyKeyless{
		cert:    annotations[annotationCertificate],
		chain:   annotations[annotationChain],
		rekor:   annotations[annotationRekor],
		rfc3161: annotations[annotationRFC3161],
	}
}

// rekorBundle is cosign's dev.sigstore.cosign/bundle annotation: a Rekor
// entry and the log's promise to include it.
type rekorBundle struct {
	SignedEntryTimestamp []byte `json:"SignedEntryTimestamp"`
	Payload              struct {
		Body           []byte `json:"body"`
		IntegratedTime int64  `json:"integratedTime"`
		LogIndex       int64  `json:"logIndex"`
		LogID          string `json:"logID"`
	} `json:"Payload"`
}

// bundle restates a legacy keyless signature as the Sigstore bundle v0.1 it
// is equivalent to (a certificate chain, a transparency-log entry with an
// inclusion promise), so that sigstore-go verifies both layouts the same
// way: the chain to the trusted Fulcio CA at the logged time, the log's
// signature on the entry, the entry against the signature and the
// certificate, and the identity.
func (k legacyKeyless) bundle(content func(*protobundle.Bundle)) (*bundle.Bundle, error) {
	if k.cert == "" {
		return nil, errors.New("no certificate (dev.sigstore.cosign/certificate): a key, not an identity, made it")
	}
	certs, err := cryptoutils.UnmarshalCertificatesFromPEMLimited([]byte(k.cert+"\n"+k.chain), maxChain)
	if err != nil || len(certs) == 0 {
		return nil, fmt.Errorf("certificate annotations: not PEM certificates (%v)", err)
	}
	chain := &protocommon.X509CertificateChain{}
	for _, c := range certs {
		chain.Certificates = append(chain.Certificates, &protocommon.X509Certificate{RawBytes: c.Raw})
	}
	pb := &protobundle.Bundle{
		MediaType: "application/vnd.dev.sigstore.bundle+json;version=0.1",
		VerificationMaterial: &protobundle.VerificationMaterial{
			Content: &protobundle.VerificationMaterial_X509CertificateChain{X509CertificateChain: chain},
		},
	}
	if k.rekor != "" {
		entry, err := k.tlogEntry()
		if err != nil {
			return nil, fmt.Errorf("log entry annotation (dev.sigstore.cosign/bundle, Rekor): %w", err)
		}
		pb.VerificationMaterial.TlogEntries = []*protorekor.TransparencyLogEntry{entry}
	}
	if k.rfc3161 != "" {
		var ts struct {
			SignedRFC3161Timestamp []byte `json:"SignedRFC3161Timestamp"`
		}
		if err := json.Unmarshal([]byte(k.rfc3161), &ts); err != nil || len(ts.SignedRFC3161Timestamp) == 0 {
			return nil, fmt.Errorf("timestamp annotation (dev.sigstore.cosign/rfc3161timestamp): not cosign's form (%v)", err)
		}
		pb.VerificationMaterial.TimestampVerificationData = &protobundle.TimestampVerificationData{
			Rfc3161Timestamps: []*protocommon.RFC3161SignedTimestamp{{SignedTimestamp: ts.SignedRFC3161Timestamp}},
		}
	}
	content(pb)
	b, err := bundle.NewBundle(pb)
	if err != nil {
		return nil, fmt.Errorf("legacy keyless signature: %w", err)
	}
	return b, nil
}

func (k legacyKeyless) tlogEntry() (*protorekor.TransparencyLogEntry, error) {
	var rb rekorBundle
	if err := json.Unmarshal([]byte(k.rekor), &rb); err != nil {
		return nil, err
	}
	var kv struct {
		Kind       string `json:"kind"`
		APIVersion string `json:"apiVersion"`
	}
	if err := json.Unmarshal(rb.Payload.Body, &kv); err != nil {
		return nil, fmt.Errorf("entry body: %w", err)
	}
	logID, err := hex.DecodeString(rb.Payload.LogID)
	if err != nil || len(logID) == 0 {
		return nil, fmt.Errorf("log id %q is not hex", rb.Payload.LogID)
	}
	if len(rb.SignedEntryTimestamp) == 0 {
		return nil, errors.New("no signed entry timestamp")
	}
	return &protorekor.TransparencyLogEntry{
		LogIndex:          rb.Payload.LogIndex,
		LogId:             &protocommon.LogId{KeyId: logID},
		KindVersion:       &protorekor.KindVersion{Kind: kv.Kind, Version: kv.APIVersion},
		IntegratedTime:    rb.Payload.IntegratedTime,
		InclusionPromise:  &protorekor.InclusionPromise{SignedEntryTimestamp: rb.SignedEntryTimestamp},
		CanonicalizedBody: rb.Payload.Body,
	}, nil
}

// messageSignature is the content of a signature over bytes whose SHA-256
// is digest: a simple-signing payload, or a file.
func messageSignature(digest, sig []byte) func(*protobundle.Bundle) {
	return func(pb *protobundle.Bundle) {
		pb.Content = &protobundle.Bundle_MessageSignature{MessageSignature: &protocommon.MessageSignature{
			MessageDigest: &protocommon.HashOutput{Algorithm: protocommon.HashAlgorithm_SHA2_256, Digest: digest},
			Signature:     sig,
		}}
	}
}

// dsseContent is the content of an attestation: its DSSE envelope.
func dsseContent(env *envelope, payload []byte) (func(*protobundle.Bundle), error) {
	pe := &protodsse.Envelope{Payload: payload, PayloadType: env.PayloadType}
	for _, s := range env.Signatures {
		sig, err := base64.StdEncoding.DecodeString(s.Sig)
		if err != nil {
			return nil, fmt.Errorf("DSSE signature: %w", err)
		}
		pe.Signatures = append(pe.Signatures, &protodsse.Signature{Sig: sig, Keyid: s.KeyID})
	}
	return func(pb *protobundle.Bundle) {
		pb.Content = &protobundle.Bundle_DsseEnvelope{DsseEnvelope: pe}
	}, nil
}
