// Package waiver decides which recorded waivers cover which findings. It
// holds pure functions, with no I/O: the vet run reads the waivers from
// the store (pipeline.Store.Waivers) and records what applied.
//
// Scope is strict, and a waiver never widens past it:
//   - a digest waiver covers every finding of that exact candidate digest,
//     and nothing of any other candidate;
//   - a finding waiver covers only findings with its finding id whose path
//     matches its path (exactly, or as a doublestar glob, as in release
//     manifests), vetted for its product: a waiver naming a product covers
//     only vets under a manifest of that product, and a waiver without one
//     covers only vets without a product (never every product);
//   - no waiver applies after the end of its until day (UTC), nor does a
//     waiver that does not validate.
package waiver

import (
	"time"

	"github.com/bmatcuk/doublestar/v4"

	"github.com/fwvet/fwvet/pipeline"
)

// Applies reports whether w covers finding f of the candidate with the
// given digest, vetted for product ("" when the manifest names none), at
// now.
func Applies(w pipeline.Waiver, f pipeline.Finding, digest, product string, now time.Time) bool {
	if w.Validate() != nil || w.Expired(now) {
		return false
	}
	s := w.Scope
	if s.Digest != "" {
		return digest != "" && s.Digest == digest
	}
	if s.FindingID != f.ID || s.Product != product || f.Path == "" {
		return false
	}
	ok, err := doublestar.Match(s.Path, f.Path)
	return ok && err == nil
}

// Applied says that a waiver covered a finding.
type Applied struct {
	// Finding is the index of the finding in the findings given to Apply.
	Finding int `json:"finding"`
	// Waiver is the waiver that covered it (its RecordID names its record
	// when it was read from a store).
	Waiver pipeline.Waiver `json:"waiver"`
}

// Apply returns every (finding, waiver) pair where the waiver covers the
// finding, ordered by finding index and then by the order of waivers. A
// finding more than one waiver covers appears once for each. It never
// changes findings.
func Apply(waivers []pipeline.Waiver, findings []pipeline.Finding, digest, product string, now time.Time) []Applied {
	var out []Applied
	for i, f := range findings {
		for _, w := range waivers {
			if Applies(w, f, digest, product, now) {
				out = append(out, Applied{Finding: i, Waiver: w})
			}
		}
	}
	return out
}

// Covered returns the indexes of the findings some waiver in applied
// covers.
func Covered(applied []Applied) map[int]bool {
	out := make(map[int]bool, len(applied))
	for _, a := range applied {
		out[a.Finding] = true
	}
	return out
}
