// Package equivalence compares a shipped firmware image with an
// independent rebuild of it and ends in a verdict: every file of both
// sides, through every container, is identical, explained by a named rule
// (with the evidence that the difference is only that), or not.
//
// Code and data (.text, .rodata, .data), permission bits and setuid are
// never masked by a rule, and a rule must explain every differing byte of
// a file or the file is unexplained.
package equivalence

import (
	"bytes"
	"encoding/json"

	"github.com/fwvet/fwvet/pipeline"
)

// Schema names the JSON report format. Fields are only ever added.
const Schema = "fwvet/equivalence/v1"

// Verdict is the outcome of a comparison.
type Verdict string

// Verdicts.
const (
	// VerdictBitIdentical: both sides hold the same bytes.
	VerdictBitIdentical Verdict = "bit-identical"
	// VerdictEquivalent: every difference is explained by a rule.
	VerdictEquivalent Verdict = "equivalent"
	// VerdictNotEquivalent: a difference no rule explains, or a file on one side only.
	VerdictNotEquivalent Verdict = "not-equivalent"
	// VerdictInconclusive: a limit was hit or a part could not be read. Never a pass.
	VerdictInconclusive Verdict = "inconclusive"
)

// Class is what the comparison found for one file.
type Class string

// Classes, in the order reports list them.
const (
	ClassUnexplained Class = "unexplained"
	ClassOnlyShipped Class = "only-in-shipped"
	ClassOnlyRebuilt Class = "only-in-rebuilt"
	ClassOpaque      Class = "opaque"
	ClassLimitHit    Class = "limit-hit"
	ClassExplained   Class = "explained"
	ClassIdentical   Class = "identical"
)

// Classes lists every class in report order: unexplained first.
var Classes = []Class{ClassUnexplained, ClassOnlyShipped, ClassOnlyRebuilt, ClassOpaque, ClassLimitHit, ClassExplained, ClassIdentical}

func classRank(c Class) int {
	for i, k := range Classes {
		if k == c {
			return i
		}
	}
	return len(Classes)
}

// Report is the outcome of one comparison.
type Report struct {
	Schema string        `json:"schema"`
	Tool   pipeline.Tool `json:"tool"`
	// Shipped and Rebuilt name both sides: the references and digests.
	Shipped Side `json:"shipped"`
	Rebuilt Side `json:"rebuilt"`
	// Provenance is the rebuild's provenance document, when one was given.
	Provenance *Provenance `json:"provenance"`
	// RulesDigest identifies the rule set: "sha256:" of the sorted
	// "id@version" lines of every registered rule.
	RulesDigest string     `json:"rules_digest"`
	Rules       []RuleInfo `json:"rules"`
	Verdict     Verdict    `json:"verdict"`
	// Reasons say why the verdict is what it is, worst first.
	Reasons []string `json:"reasons"`
	// Summary counts the files of each class.
	Summary map[Class]int `json:"summary"`
	// Files lists every file of both sides, unexplained first, then by
	// container chain and path.
	Files []*File `json:"files"`
}

// Side is one of the two images compared.
type Side struct {
	pipeline.Subject
	Entries    int  `json:"entries"`
	Problems   int  `json:"problems"`
	Incomplete bool `json:"incomplete,omitempty"`
}

// Provenance is the rebuild's provenance file as given.
type Provenance struct {
	Path   string `json:"path"`
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
}

// RuleInfo names a registered rule.
type RuleInfo struct {
	ID          string `json:"id"`
	Version     string `json:"version"`
	Description string `json:"description"`
}

// File is one file (or directory, link, node, or a part that could not be
// read) of either side, and what the comparison found.
type File struct {
	Class Class `json:"class"`
	// Container is the chain of containers that holds the file, outermost
	// first, as the rebuilt side names it (the shipped side's when the
	// file is only there).
	Container []string `json:"container"`
	Path      string   `json:"path"`
	Type      string   `json:"type,omitempty"`
	Shipped   *Facts   `json:"shipped,omitempty"`
	Rebuilt   *Facts   `json:"rebuilt,omitempty"`
	// NormalizedShipped and NormalizedRebuilt are the digests of both
	// sides' bytes after the rules' normalization; equal for explained files.
	NormalizedShipped string `json:"normalized_shipped,omitempty"`
	NormalizedRebuilt string `json:"normalized_rebuilt,omitempty"`
	// Rules are the rules that explained the file's differences.
	Rules []Applied `json:"rules,omitempty"`
	// Differences describe what no rule explained.
	Differences *Differences `json:"differences,omitempty"`
	// Reason says, for unexplained, opaque and limit-hit files, why.
	Reason string `json:"reason,omitempty"`
	// MovedTo / MovedFrom name the other path of a file with the same
	// bytes on the other side.
	MovedTo   string `json:"moved_to,omitempty"`
	MovedFrom string `json:"moved_from,omitempty"`
	// HoldsDifferences reports, for a container (or the image itself),
	// that it is unexplained because entries in it are: it is no
	// difference of its own.
	HoldsDifferences bool `json:"holds_differences,omitempty"`

	// keys are the entry keys on each side ("" when absent).
	shippedKey, rebuiltKey string
	nested                 bool
}

// Facts are one side's view of a file.
type Facts struct {
	SHA256     string `json:"sha256,omitempty"`
	Size       int64  `json:"size"`
	Mode       string `json:"mode"`
	UID        uint32 `json:"uid"`
	GID        uint32 `json:"gid"`
	LinkTarget string `json:"link_target,omitempty"`
}

// Applied is a rule applied to a file: the byte ranges it explained, each
// decoded. Ranges are half-open [start, end) offsets in the shipped file;
// RebuiltRanges, when present, are the same ranges in the rebuilt file.
// Before[i] and After[i] decode Ranges[i].
type Applied struct {
	ID            string     `json:"id"`
	Ranges        [][2]int64 `json:"ranges"`
	RebuiltRanges [][2]int64 `json:"rebuilt_ranges,omitempty"`
	Before        []string   `json:"before"`
	After         []string   `json:"after"`
}

// Differences is what differs in an unexplained file.
type Differences struct {
	// Fields lists the metadata that differs: "mode", "type", "link_target", "device", "size".
	Fields []string `json:"fields,omitempty"`
	// Ranges are the differing byte ranges of the shipped file, at most
	// MaxRanges of them; Truncated says there were more.
	Ranges    [][2]int64 `json:"ranges,omitempty"`
	Truncated bool       `json:"truncated,omitempty"`
	// DifferingBytes counts the bytes that differ (over the common length).
	DifferingBytes int64 `json:"differing_bytes,omitempty"`
	// Sections and Functions name the ELF sections and the functions
	// (symbol ranges) the differing bytes fall in.
	Sections  []string `json:"sections,omitempty"`
	Functions []string `json:"functions,omitempty"`
	// NotExplained says, per rule that looked at the file, why it did not explain it.
	NotExplained []string `json:"not_explained,omitempty"`
}

// MarshalJSON keeps empty lists as [] so consumers need not check for null.
func (r Report) MarshalJSON() ([]byte, error) {
	type plain Report
	p := plain(r)
	if p.Reasons == nil {
		p.Reasons = []string{}
	}
	if p.Files == nil {
		p.Files = []*File{}
	}
	if p.Rules == nil {
		p.Rules = []RuleInfo{}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(p); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

// Where is the file's place for messages: "a.sqfs › squashfs › /etc/passwd".
func (f *File) Where() string { return pipeline.Where(f.Container, f.Path) }

// Count returns how many files have the class.
func (r *Report) Count(c Class) int { return r.Summary[c] }

// Unexplained returns the files that are not identical or explained.
func (r *Report) Unexplained() []*File {
	var out []*File
	for _, f := range r.Files {
		if f.Class != ClassIdentical && f.Class != ClassExplained {
			out = append(out, f)
		}
	}
	return out
}
