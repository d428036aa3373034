// Package verifiers will hold fwvet's signature and provenance verifiers
// (cosign signatures, Sigstore bundles, in-toto/SLSA provenance), each
// yielding a pipeline.Check. None is implemented yet; see the issue
// "Verify signatures and provenance".
package verifiers
