package attest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	"google.golang.org/protobuf/encoding/protojson"
)

// Media types and annotations of the two layouts Attach writes.
const (
	// BundleMediaType is a Sigstore bundle v0.3: the artifactType of the
	// OCI 1.1 referrer and the media type of its one layer, as cosign v3
	// writes and reads them.
	BundleMediaType = "application/vnd.dev.sigstore.bundle.v0.3+json"
	// DSSEMediaType is a layer of cosign's legacy attestation image.
	DSSEMediaType = "application/vnd.dsse.envelope.v1+json"
	// emptyConfigMediaType is the OCI 1.1 empty config of an artifact.
	emptyConfigMediaType = "application/vnd.oci.empty.v1+json"

	// cosignSignatureAnnotation marks a layer of cosign's legacy image; an
	// attestation's is empty (the signature is inside the envelope).
	cosignSignatureAnnotation = "dev.cosignproject.cosign/signature"
	// predicateTypeAnnotation is cosign's annotation of an attestation's
	// predicate type, on the legacy layer and on the referrer manifest.
	predicateTypeAnnotation = "predicateType"
	// bundleContentAnnotation is what cosign v3 puts on a bundle referrer.
	bundleContentAnnotation = "dev.sigstore.bundle.content"
	createdAnnotation       = "org.opencontainers.image.created"
)

// emptyConfig is the OCI empty descriptor's content.
var emptyConfig = []byte("{}")

// LegacyTag is the tag of cosign's legacy attestation image of a subject:
// sha256-HEX.att.
func LegacyTag(subject name.Digest) (name.Tag, error) {
	h, err := SHA256Hex(subject.DigestStr())
	if err != nil {
		return name.Tag{}, err
	}
	return subject.Context().Tag("sha256-" + h + ".att"), nil
}

// AttachOptions choose the layouts AttachWith writes.
type AttachOptions struct {
	// Bundle also pushes a Sigstore bundle v0.3 referrer (artifactType
	// BundleMediaType), the layout cosign v3 writes by default. cosign v3
	// then verifies the bundle instead of the .att image; but cosign v2
	// (2.6.5) also notices it, and then wants a Sigstore trusted root
	// (fetched with TUF, or --trusted-root) even to check with --key, so
	// that it fails offline. Off by default.
	Bundle bool
}

// Attach pushes a signed summary to the subject's repository in the
// layouts below, so that both cosign v2 and v3 `verify-attestation --key`
// accept it and referrers-aware tools find it:
//
//   - cosign's attestation image, tag sha256-HEX.att: one layer
//     DSSEMediaType (annotated dev.cosignproject.cosign/signature: "" and
//     predicateType) per attestation, appended to what is there. This is
//     what cosign v2 and v3 verify-attestation read when the subject has
//     no Sigstore bundle referrer.
//   - an OCI 1.1 referrer of the subject: a manifest with subject,
//     artifactType application/vnd.in-toto+json, the empty config and one
//     DSSEMediaType layer, as cosign writes attestations in its OCI 1.1
//     mode. go-containerregistry adds it to the referrers fallback tag
//     (sha256-HEX, an OCI index) when the registry has no referrers API.
func Attach(ctx context.Context, subject name.Digest, envelope []byte, opts ...remote.Option) error {
	return AttachWith(ctx, subject, envelope, AttachOptions{}, opts...)
}

// AttachWith is Attach with a choice of layouts.
func AttachWith(ctx context.Context, subject name.Digest, envelope []byte, ao AttachOptions, opts ...remote.Option) error {
	env, payload, err := ParseEnvelope(envelope)
	if err != nil {
		return fmt.Errorf("attest: attach to %s: %w", subject, err)
	}
	st, err := coversSubject(payload, subject)
	if err != nil {
		return fmt.Errorf("attest: attach to %s: %w", subject, err)
	}
	// The created annotation is the statement's time, so that attaching
	// the same summary twice writes the same manifests.
	created := st.Predicate.TimeVerified
	opts = append([]remote.Option{remote.WithContext(ctx)}, opts...)
	desc, err := remote.Head(subject, opts...)
	if err != nil {
		return fmt.Errorf("attest: attach to %s: the subject: %w", subject, err)
	}
	dsse := static.NewLayer(envelope, DSSEMediaType)
	if err := attachReferrer(subject, desc, PayloadType, dsse, map[string]string{createdAnnotation: created, predicateTypeAnnotation: PredicateType}, opts); err != nil {
		return fmt.Errorf("attest: attach to %s as an OCI referrer: %w", subject, err)
	}
	if ao.Bundle {
		bundle, err := bundleOf(env, payload)
		if err != nil {
			return fmt.Errorf("attest: attach to %s: %w", subject, err)
		}
		ann := map[string]string{createdAnnotation: created, bundleContentAnnotation: "dsse-envelope", predicateTypeAnnotation: PredicateType}
		if err := attachReferrer(subject, desc, BundleMediaType, static.NewLayer(bundle, BundleMediaType), ann, opts); err != nil {
			return fmt.Errorf("attest: attach to %s as a Sigstore bundle referrer: %w", subject, err)
		}
	}
	if err := attachLegacy(subject, envelope, opts); err != nil {
		return fmt.Errorf("attest: attach to %s as cosign's .att image: %w", subject, err)
	}
	return nil
}

// coversSubject checks that a statement names the subject's digest.
func coversSubject(payload []byte, subject name.Digest) (*InTotoStatement, error) {
	var st InTotoStatement
	if err := json.Unmarshal(payload, &st); err != nil {
		return nil, fmt.Errorf("%w: the payload is not an in-toto statement: %v", ErrMalformed, err)
	}
	want, err := SHA256Hex(subject.DigestStr())
	if err != nil {
		return nil, err
	}
	for _, s := range st.Subject {
		if strings.ToLower(s.Digest["sha256"]) == want {
			return &st, nil
		}
	}
	return nil, &MismatchError{Field: "subject.digest", Want: subject.DigestStr(), Got: fmt.Sprint(st.Subject)}
}

// bundleOf wraps an envelope in a Sigstore bundle v0.3 with a key hint.
func bundleOf(env *Envelope, payload []byte) ([]byte, error) {
	pe := &protodsse.Envelope{Payload: payload, PayloadType: env.PayloadType}
	hint := ""
	for _, s := range env.Signatures {
		sig, err := decodeB64(s.Sig)
		if err != nil {
			return nil, fmt.Errorf("%w: a signature is not base64", ErrMalformed)
		}
		pe.Signatures = append(pe.Signatures, &protodsse.Signature{Sig: sig, Keyid: s.KeyID})
		if hint == "" {
			hint = s.KeyID
		}
	}
	b := &protobundle.Bundle{
		MediaType: BundleMediaType,
		VerificationMaterial: &protobundle.VerificationMaterial{
			Content: &protobundle.VerificationMaterial_PublicKey{PublicKey: &protocommon.PublicKeyIdentifier{Hint: hint}},
		},
		Content: &protobundle.Bundle_DsseEnvelope{DsseEnvelope: pe},
	}
	return protojson.Marshal(b)
}

// rawManifest is a manifest to Put as it is.
type rawManifest struct {
	body []byte
	mt   types.MediaType
}

func (r rawManifest) RawManifest() ([]byte, error)        { return r.body, nil }
func (r rawManifest) MediaType() (types.MediaType, error) { return r.mt, nil }

// attachReferrer pushes an OCI 1.1 artifact of one layer that refers to
// the subject.
func attachReferrer(subject name.Digest, subj *v1.Descriptor, artifactType string, layer v1.Layer, ann map[string]string, opts []remote.Option) error {
	mt, err := layer.MediaType()
	if err != nil {
		return err
	}
	config := static.NewLayer(emptyConfig, emptyConfigMediaType)
	repo := subject.Context()
	for _, l := range []v1.Layer{config, layer} {
		if err := remote.WriteLayer(repo, l, opts...); err != nil {
			return err
		}
	}
	ld, err := partialDescriptor(layer, mt)
	if err != nil {
		return err
	}
	cd, err := partialDescriptor(config, emptyConfigMediaType)
	if err != nil {
		return err
	}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  artifactType,
		Config:        cd,
		Layers:        []v1.Descriptor{ld},
		Subject:       &v1.Descriptor{MediaType: subj.MediaType, Digest: subj.Digest, Size: subj.Size},
		Annotations:   ann,
	}
	body, err := json.Marshal(m)
	if err != nil {
		return err
	}
	h, _, err := v1.SHA256(bytes.NewReader(body))
	if err != nil {
		return err
	}
	return remote.Put(repo.Digest(h.String()), rawManifest{body: body, mt: types.OCIManifestSchema1}, opts...)
}

func partialDescriptor(l v1.Layer, mt types.MediaType) (v1.Descriptor, error) {
	d, err := l.Digest()
	if err != nil {
		return v1.Descriptor{}, err
	}
	n, err := l.Size()
	if err != nil {
		return v1.Descriptor{}, err
	}
	return v1.Descriptor{MediaType: mt, Digest: d, Size: n}, nil
}

func attachLegacy(subject name.Digest, envelope []byte, opts []remote.Option) error {
	tag, err := LegacyTag(subject)
	if err != nil {
		return err
	}
	base, err := remote.Image(tag, opts...)
	if isNotFound(err) {
		base = mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	} else if err != nil {
		return err
	}
	layer := static.NewLayer(envelope, DSSEMediaType)
	d, err := layer.Digest()
	if err != nil {
		return err
	}
	layers, err := base.Layers()
	if err != nil {
		return err
	}
	for _, l := range layers {
		if ld, err := l.Digest(); err == nil && ld == d {
			return nil // already attached
		}
	}
	img, err := mutate.Append(base, mutate.Addendum{
		Layer:     layer,
		MediaType: DSSEMediaType,
		Annotations: map[string]string{
			cosignSignatureAnnotation: "",
			predicateTypeAnnotation:   PredicateType,
		},
	})
	if err != nil {
		return err
	}
	return remote.Write(tag, img, opts...)
}

func isNotFound(err error) bool {
	var te *transport.Error
	return errors.As(err, &te) && te.StatusCode == http.StatusNotFound
}

// Find returns the verification summaries attached to subject, from both
// layouts, each as a DSSE envelope (JSON), each once. None is
// ErrNoAttestation. Nothing is verified: give each to Verify.
func Find(ctx context.Context, subject name.Digest, opts ...remote.Option) ([][]byte, error) {
	opts = append([]remote.Option{remote.WithContext(ctx)}, opts...)
	var out [][]byte
	seen := map[string]bool{}
	add := func(env []byte) {
		n, err := normalize(env)
		if err != nil {
			n = env // kept, so that Verify says what is wrong with it
		}
		if !seen[string(n)] && len(out) < MaxAttestations {
			seen[string(n)] = true
			out = append(out, n)
		}
	}
	var errs []error

	idx, err := remote.Referrers(subject, opts...)
	if err != nil && !isNotFound(err) {
		errs = append(errs, fmt.Errorf("listing referrers: %w", err))
	}
	if err == nil {
		im, err := idx.IndexManifest()
		if err != nil {
			errs = append(errs, fmt.Errorf("listing referrers: %w", err))
		} else {
			read := 0
			for _, d := range im.Manifests {
				if d.ArtifactType != BundleMediaType && d.ArtifactType != PayloadType {
					continue
				}
				if read++; read > MaxAttestations {
					errs = append(errs, fmt.Errorf("more than %d attestation referrers; read the first %d", MaxAttestations, MaxAttestations))
					break
				}
				envs, err := referrerEnvelopes(subject.Context().Digest(d.Digest.String()), opts)
				if err != nil {
					errs = append(errs, fmt.Errorf("referrer %s: %w", d.Digest, err))
					continue
				}
				for _, e := range envs {
					add(e)
				}
			}
		}
	}

	tag, err := LegacyTag(subject)
	if err != nil {
		return nil, fmt.Errorf("attest: find: %w", err)
	}
	img, err := remote.Image(tag, opts...)
	switch {
	case isNotFound(err):
	case err != nil:
		errs = append(errs, fmt.Errorf("%s: %w", tag, err))
	default:
		envs, err := imageEnvelopes(img, DSSEMediaType)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", tag, err))
		}
		for _, e := range envs {
			add(e)
		}
	}
	if len(out) == 0 {
		if len(errs) > 0 {
			return nil, fmt.Errorf("attest: find for %s: %w", subject, errors.Join(errs...))
		}
		return nil, fmt.Errorf("attest: %s: %w", subject, ErrNoAttestation)
	}
	return out, nil
}

// referrerEnvelopes reads the envelopes of one referrer: bundles, or DSSE
// layers (as cosign's referrer form of legacy attestations has).
func referrerEnvelopes(ref name.Digest, opts []remote.Option) ([][]byte, error) {
	img, err := remote.Image(ref, opts...)
	if err != nil {
		return nil, err
	}
	var out [][]byte
	bundles, err := imageEnvelopes(img, BundleMediaType)
	if err != nil {
		return nil, err
	}
	for _, b := range bundles {
		env, err := envelopeOfBundle(b)
		if err != nil {
			return nil, err
		}
		out = append(out, env)
	}
	dsse, err := imageEnvelopes(img, DSSEMediaType)
	if err != nil {
		return nil, err
	}
	return append(out, dsse...), nil
}

// imageEnvelopes reads an image's layers of one media type, each bounded.
func imageEnvelopes(img v1.Image, mt types.MediaType) ([][]byte, error) {
	m, err := img.Manifest()
	if err != nil {
		return nil, err
	}
	var out [][]byte
	for _, d := range m.Layers {
		if d.MediaType != mt {
			continue
		}
		if d.Size > MaxEnvelopeSize {
			return nil, fmt.Errorf("%w: layer %s of %d bytes is over the %d byte limit", ErrMalformed, d.Digest, d.Size, MaxEnvelopeSize)
		}
		if len(out) >= MaxAttestations {
			break
		}
		l, err := img.LayerByDigest(d.Digest)
		if err != nil {
			return nil, err
		}
		rc, err := l.Compressed()
		if err != nil {
			return nil, err
		}
		b, err := io.ReadAll(io.LimitReader(rc, MaxEnvelopeSize+1))
		rc.Close()
		if err != nil {
			return nil, err
		}
		if len(b) > MaxEnvelopeSize {
			return nil, fmt.Errorf("%w: layer %s is over the %d byte limit", ErrMalformed, d.Digest, MaxEnvelopeSize)
		}
		out = append(out, b)
	}
	return out, nil
}

// envelopeOfBundle takes the DSSE envelope out of a Sigstore bundle.
func envelopeOfBundle(b []byte) ([]byte, error) {
	if len(b) > MaxEnvelopeSize {
		return nil, fmt.Errorf("%w: bundle over the %d byte limit", ErrMalformed, MaxEnvelopeSize)
	}
	var pb protobundle.Bundle
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(b, &pb); err != nil {
		return nil, fmt.Errorf("%w: not a Sigstore bundle: %v", ErrMalformed, err)
	}
	if !strings.HasPrefix(pb.GetMediaType(), "application/vnd.dev.sigstore.bundle") {
		return nil, fmt.Errorf("%w: bundle media type %q", ErrMalformed, pb.GetMediaType())
	}
	de := pb.GetDsseEnvelope()
	if de == nil {
		return nil, fmt.Errorf("%w: the bundle holds no DSSE envelope", ErrMalformed)
	}
	env := Envelope{PayloadType: de.GetPayloadType(), Payload: base64.StdEncoding.EncodeToString(de.GetPayload())}
	for _, s := range de.GetSignatures() {
		env.Signatures = append(env.Signatures, Signature{KeyID: s.GetKeyid(), Sig: base64.StdEncoding.EncodeToString(s.GetSig())})
	}
	return json.Marshal(env)
}

// normalize re-encodes an envelope so that the same one read from both
// layouts compares equal.
func normalize(b []byte) ([]byte, error) {
	env, payload, err := ParseEnvelope(b)
	if err != nil {
		return nil, err
	}
	n := Envelope{PayloadType: env.PayloadType, Payload: base64.StdEncoding.EncodeToString(payload)}
	for _, s := range env.Signatures {
		sig, err := decodeB64(s.Sig)
		if err != nil {
			return nil, err
		}
		n.Signatures = append(n.Signatures, Signature{KeyID: s.KeyID, Sig: base64.StdEncoding.EncodeToString(sig)})
	}
	return json.Marshal(n)
}
