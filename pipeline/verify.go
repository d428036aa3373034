package pipeline

import "context"

// Verifier checks one thing about an artifact before anything is unpacked:
// a signature, a provenance attestation. Each yields a Check; a
// verification that cannot complete is CheckError, never CheckPass.
type Verifier interface {
	Name() string
	Verify(ctx context.Context, art *Artifact) Check
}
