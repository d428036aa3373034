// Package disclose reads a vendor's release manifest and marks the changes
// and findings it declares as disclosed.
package disclose

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/bmatcuk/doublestar/v4"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/version"
)

// maxManifest bounds the size of a manifest file.
const maxManifest = 16 << 20

// Manifest is the vendor's declaration of what a release changes.
type Manifest struct {
	Vendor          string   `json:"vendor"`
	Product         string   `json:"product"`
	Image           string   `json:"image"`
	ImageSHA256     string   `json:"image_sha256"`
	PreviousVersion string   `json:"previous_version"`
	Version         string   `json:"version"`
	Changed         []string `json:"changed"`
	Added           []string `json:"added"`
	Removed         []string `json:"removed"`
	ReleaseNotes    string   `json:"release_notes"`
	// Allow declares findings themselves: a finding marked AllowOnly is
	// disclosed only this way, never by a path listed under Changed.
	Allow []Allow `json:"allow,omitempty"`
}

// Allow declares that the findings of the given ids at a path (a glob, as
// elsewhere in the manifest) are intended, and why.
type Allow struct {
	Path   string   `json:"path"`
	IDs    []string `json:"ids"`
	Reason string   `json:"reason"`
}

// Load reads and checks a manifest file.
func Load(file string) (*Manifest, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Parse(f)
}

// Parse reads and checks a manifest: every path must be absolute and every
// glob well formed.
func Parse(r io.Reader) (*Manifest, error) {
	dec := json.NewDecoder(io.LimitReader(r, maxManifest))
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("not a JSON release manifest: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("not a JSON release manifest: trailing data after the object")
	}
	// An SBOM is told apart before it is read as a manifest: it would read
	// as one that discloses nothing, or fail on a field of the same name
	// (CycloneDX's "version" is a number).
	var sbom struct {
		SPDXVersion *json.RawMessage `json:"spdxVersion"`
		BOMFormat   *json.RawMessage `json:"bomFormat"`
	}
	if json.Unmarshal(raw, &sbom) == nil && (sbom.SPDXVersion != nil || sbom.BOMFormat != nil) {
		return nil, errors.New("an SBOM, not a JSON release manifest: SBOMs come in pairs, give --manifest twice, the baseline's SBOM then the candidate's")
	}
	var m Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("not a JSON release manifest: %w", err)
	}
	if err := m.validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// validate checks that every path is absolute, every glob well formed and
// image_sha256, when present, a SHA-256 digest.
func (m *Manifest) validate() error {
	for _, list := range []struct {
		name     string
		patterns []string
	}{{"changed", m.Changed}, {"added", m.Added}, {"removed", m.Removed}} {
		for _, p := range list.patterns {
			if !strings.HasPrefix(p, "/") {
				return fmt.Errorf("%s: path %q is not absolute", list.name, p)
			}
			if !doublestar.ValidatePattern(p) {
				return fmt.Errorf("%s: %q is not a valid glob", list.name, p)
			}
		}
	}
	for i, a := range m.Allow {
		if !strings.HasPrefix(a.Path, "/") || !doublestar.ValidatePattern(a.Path) {
			return fmt.Errorf("allow[%d]: path %q is not an absolute path or valid glob", i, a.Path)
		}
		if len(a.IDs) == 0 {
			return fmt.Errorf("allow[%d] (%s): no finding ids", i, a.Path)
		}
		for _, id := range a.IDs {
			if _, ok := pipeline.DefaultSeverity[id]; !ok {
				return fmt.Errorf("allow[%d] (%s): unknown finding id %q", i, a.Path, id)
			}
		}
	}
	if m.ImageSHA256 != "" {
		h := strings.TrimPrefix(m.ImageSHA256, "sha256:")
		if len(h) != 64 || strings.Trim(strings.ToLower(h), "0123456789abcdef") != "" {
			return fmt.Errorf("image_sha256 %q is not a SHA-256 digest", m.ImageSHA256)
		}
	}
	return nil
}

// Subject is what the manifest is checked against.
type Subject struct {
	// Digests the manifest's image_sha256 may name: the candidate's, and
	// for an artifact that carries a firmware file, that file's.
	Digests          []string
	CandidateVersion *pipeline.Version
	BaselineVersion  *pipeline.Version
}

// Disclosure is what a manifest discloses: its check, and the changes and
// findings as disclosed. Changes it discloses are copies; the ones it
// leaves are the caller's, unchanged.
type Disclosure struct {
	Check    pipeline.Check
	Changes  []*pipeline.Change
	Findings []pipeline.Finding
}

// Disclose checks that the manifest belongs to the candidate and, if it
// does, returns every change and finding it declares as disclosed. A
// manifest for another image discloses nothing. The arguments are left as
// they were given.
func (m *Manifest) Disclose(s Subject, changes []*pipeline.Change, findings []pipeline.Finding) Disclosure {
	d := Disclosure{Check: pipeline.Check{Name: "manifest"}, Changes: changes, Findings: findings}
	if err := m.belongs(s); err != nil {
		d.Check.Status, d.Check.Detail = pipeline.CheckFail, err.Error()+"; the manifest discloses nothing"
		return d
	}
	d.Changes = make([]*pipeline.Change, len(changes))
	copy(d.Changes, changes)
	added, removed, changed := newPatternSet(m.Added), newPatternSet(m.Removed), newPatternSet(m.Changed)
	disclosed := map[string]bool{}
	n := 0
	for i, ch := range d.Changes {
		// Content and metadata changes are both declared under "changed".
		set := changed
		switch ch.Kind {
		case pipeline.ChangeAdded:
			set = added
		case pipeline.ChangeRemoved:
			set = removed
		}
		if set.covers(ch.Path) {
			d.Changes[i] = disclose(ch)
			disclosed[ch.Key] = true
			n++
		}
	}
	n += explainHeaders(d.Changes, disclosed)
	d.Findings = make([]pipeline.Finding, len(findings))
	copy(d.Findings, findings)
	for i := range d.Findings {
		f := &d.Findings[i]
		switch {
		case f.ID == pipeline.IDUnsafeEntry:
			// A hostile entry is never an intended change.
		case f.ID == pipeline.IDDowngrade:
			f.Disclosed = m.declaresRollback(s)
		case f.AllowOnly:
			f.Disclosed = m.allows(f.ID, f.Path)
		case f.Key != "":
			f.Disclosed = disclosed[f.Key]
		}
	}
	d.Check.Status = pipeline.CheckPass
	name := strings.TrimSpace(strings.TrimSpace(m.Product) + " " + m.Version)
	if name == "" {
		name = "the release manifest"
	} else {
		name = "release manifest for " + name
	}
	d.Check.Detail = fmt.Sprintf("%s discloses %d of %d changes", name, n, len(changes))
	if m.ImageSHA256 == "" {
		d.Check.Status = pipeline.CheckSkip
		d.Check.Detail += "; it names no image_sha256, so it is not bound to this image"
	}
	return d
}

// disclose is a disclosed copy of a change.
func disclose(ch *pipeline.Change) *pipeline.Change {
	c := *ch
	c.Disclosed = true
	return &c
}

// explainHeaders discloses each header-only change (a container's own
// bytes, a header's label; see pipeline.Change.HeaderOnly) whose
// container holds no undisclosed change: a new timestamp, name or CRC in a
// header around the same or declared contents is not a change of its own.
// Changes come in key order, so what a container holds follows it; inner
// containers are decided first. It replaces what it discloses in changes
// with disclosed copies.
func explainHeaders(changes []*pipeline.Change, disclosed map[string]bool) int {
	n := 0
	for i := len(changes) - 1; i >= 0; i-- {
		ch := changes[i]
		if ch.Disclosed || !ch.HeaderOnly() {
			continue
		}
		inside := ch.Key + "\x00"
		explained := true
		for _, in := range changes[i+1:] {
			if !strings.HasPrefix(in.Key, inside) {
				break
			}
			if !in.Disclosed {
				explained = false
				break
			}
		}
		if explained {
			changes[i] = disclose(ch)
			disclosed[ch.Key] = true
			n++
		}
	}
	return n
}

func (m *Manifest) belongs(s Subject) error {
	if m.ImageSHA256 != "" {
		want := "sha256:" + strings.ToLower(strings.TrimPrefix(m.ImageSHA256, "sha256:"))
		ok := false
		for _, d := range s.Digests {
			ok = ok || d == want
		}
		if !ok {
			return fmt.Errorf("manifest is for image %s, not this candidate (%s)", want, strings.Join(s.Digests, ", "))
		}
	}
	if m.Version != "" && s.CandidateVersion != nil && s.CandidateVersion.Source != "manifest" {
		if c, err := version.Compare(m.Version, s.CandidateVersion.Value); err != nil || c != 0 {
			return fmt.Errorf("manifest is for version %s, the candidate says %s (%s)", m.Version, s.CandidateVersion.Value, s.CandidateVersion.Source)
		}
	}
	return nil
}

// allows reports whether an Allow of the manifest names the id for path.
func (m *Manifest) allows(id, p string) bool {
	for _, a := range m.Allow {
		if !slices.Contains(a.IDs, id) {
			continue
		}
		if ok, _ := doublestar.Match(a.Path, p); ok {
			return true
		}
	}
	return false
}

// declaresRollback reports whether the manifest itself says this release
// goes back from the baseline's version to an older one.
func (m *Manifest) declaresRollback(s Subject) bool {
	if m.Version == "" || m.PreviousVersion == "" || s.BaselineVersion == nil {
		return false
	}
	older, err := version.Compare(m.Version, m.PreviousVersion)
	if err != nil || older >= 0 {
		return false
	}
	same, err := version.Compare(m.PreviousVersion, s.BaselineVersion.Value)
	return err == nil && same == 0
}

// patternSet holds the patterns of one action. Literal paths go in a set, so
// that a manifest listing every file of a large image (as one derived from
// SBOMs does) costs a lookup per path and parent rather than a glob match
// per pattern; only the real globs are matched one by one.
type patternSet struct {
	literal map[string]bool
	globs   []string
}

func newPatternSet(patterns []string) patternSet {
	s := patternSet{literal: map[string]bool{}}
	for _, p := range patterns {
		if lit, ok := literal(p); ok {
			s.literal[lit] = true
		} else {
			s.globs = append(s.globs, p)
		}
	}
	return s
}

// covers reports whether the path, or a directory above it, matches a
// pattern of the set.
func (s patternSet) covers(p string) bool {
	for ; ; p = path.Dir(p) {
		if s.literal[p] {
			return true
		}
		for _, pat := range s.globs {
			if ok, _ := doublestar.Match(pat, p); ok {
				return true
			}
		}
		if p == "/" {
			return false
		}
	}
}

// globMeta are the characters with a meaning in a doublestar pattern, and
// the ones escapeGlob escapes. "]", "}" and "," only mean something next to
// the others, but a pattern holding one unescaped is left to doublestar.
const globMeta = `*?[]{},`

// literal returns the path a pattern matches when it matches only one:
// when every meta character in it is escaped with a backslash.
func literal(pattern string) (string, bool) {
	if !strings.ContainsAny(pattern, globMeta+`\`) {
		return pattern, true
	}
	var b strings.Builder
	for i := 0; i < len(pattern); i++ {
		c := pattern[i]
		switch {
		case c == '\\' && i+1 < len(pattern):
			i++
			b.WriteByte(pattern[i])
		case c == '\\' || strings.IndexByte(globMeta, c) >= 0:
			return "", false
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), true
}

// escapeGlob makes a path a pattern that matches that path only.
func escapeGlob(p string) string {
	if !strings.ContainsAny(p, globMeta+`\`) {
		return p
	}
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if strings.IndexByte(globMeta+`\`, p[i]) >= 0 {
			b.WriteByte('\\')
		}
		b.WriteByte(p[i])
	}
	return b.String()
}
