package disclose

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"

	cdx "github.com/CycloneDX/cyclonedx-go"
	spdxjson "github.com/spdx/tools-golang/json"
	spdxcommon "github.com/spdx/tools-golang/spdx/v2/common"
	"github.com/spdx/tools-golang/spdx/v2/v2_3"

	"github.com/fwvet/fwvet/pipeline"
)

// sbomLimits bound what one SBOM may make fwvet hold. The SBOM libraries
// decode a whole document at once, so the byte bound is what bounds their
// memory (a few times the file's size); the package and file bounds bound
// what the derived manifest holds.
type sbomLimits struct {
	bytes    int64
	packages int
	// files counts a package's files, so a file two packages own counts twice.
	files int
}

// defaultSBOMLimits hold an SBOM of a full distribution image with room to
// spare: Debian's largest images list some ten thousand packages and a few
// hundred thousand files.
var defaultSBOMLimits = sbomLimits{bytes: 64 << 20, packages: 100_000, files: 1_000_000}

// sbom is what a manifest is derived from: the packages an SBOM lists, by
// name, and the firmware it describes.
type sbom struct {
	lim       sbomLimits
	packages  map[string]*sbomPackage
	nPackages int
	nFiles    int

	// The described firmware: the SPDX package the document DESCRIBES, or
	// CycloneDX's metadata.component. It is never a package of the map: its
	// version changes with every release, and since it may own every file
	// of the image, treating it as a package would disclose them all.
	product, version, sha256 string
}

// sbomPackage is one package name's versions (more than one when an SBOM
// lists the name twice) and the files they own.
type sbomPackage struct {
	versions map[string]bool
	files    map[string]bool
}

// LoadSBOMPair derives a manifest from the baseline's SBOM and the
// candidate's, each SPDX 2.3 or CycloneDX 1.5 or later, in JSON:
//   - a package in both SBOMs at another version declares every file of
//     either version changed, the files only the candidate's version owns
//     added, and those only the baseline's owns removed;
//   - a package only in the candidate declares its files added and changed
//     (a file can move from one package to another);
//   - a package only in the baseline declares its files removed.
//
// Paths are literal, never globs. A file that no such package owns stays
// undeclared. Version and PreviousVersion are the versions of the firmware
// the SBOMs describe, and ImageSHA256 the SHA-256 the candidate's SBOM gives
// it; each is empty when the SBOM says nothing. An error is a
// *pipeline.InputError naming the file at fault.
func LoadSBOMPair(baseline, candidate string) (*Manifest, error) {
	return loadSBOMPair(baseline, candidate, defaultSBOMLimits)
}

func loadSBOMPair(baseline, candidate string, lim sbomLimits) (*Manifest, error) {
	base, err := loadSBOM(baseline, lim)
	if err != nil {
		return nil, &pipeline.InputError{Role: "manifest", Ref: baseline, Err: err}
	}
	cand, err := loadSBOM(candidate, lim)
	if err != nil {
		return nil, &pipeline.InputError{Role: "manifest", Ref: candidate, Err: err}
	}
	m := derive(base, cand)
	if err := m.validate(); err != nil {
		// Derived paths are absolute and escaped, and the digest was checked
		// when read: this is a bug, reported against the pair.
		return nil, &pipeline.InputError{Role: "manifest", Ref: candidate,
			Err: fmt.Errorf("deriving a manifest from %s and this SBOM: %w", baseline, err)}
	}
	return m, nil
}

// loadSBOM reads one SBOM, telling SPDX from CycloneDX by content.
func loadSBOM(file string, lim sbomLimits) (*sbom, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, lim.bytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading the SBOM: %w", err)
	}
	if int64(len(data)) > lim.bytes {
		return nil, fmt.Errorf("SBOM larger than %d bytes, the most fwvet reads", lim.bytes)
	}
	var head struct {
		SPDXVersion *string `json:"spdxVersion"`
		BOMFormat   *string `json:"bomFormat"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, fmt.Errorf("not a JSON SBOM (SPDX 2.3 or CycloneDX 1.5 or later, in JSON): %w", err)
	}
	s := &sbom{lim: lim, packages: map[string]*sbomPackage{}}
	switch {
	case head.SPDXVersion != nil && head.BOMFormat != nil:
		return nil, errors.New("both spdxVersion and bomFormat are set: neither an SPDX nor a CycloneDX SBOM")
	case head.SPDXVersion != nil:
		err = s.readSPDX(data)
	case head.BOMFormat != nil:
		err = s.readCycloneDX(data)
	default:
		return nil, errors.New("neither an SPDX SBOM (no spdxVersion) nor a CycloneDX SBOM (no bomFormat)")
	}
	if err != nil {
		return nil, err
	}
	return s, nil
}

// readSPDX reads an SPDX 2.x JSON document into the v2.3 model. A file
// belongs to a package that CONTAINS it (the reader turns a package's
// hasFiles into CONTAINS too), that it is CONTAINED_BY, or that is evident
// by it: syft's OTHER relationship from a package to a file commented
// "evident-by: ...", which names the files a package was found by (the
// binary a classifier read its version from, a package database's entry).
func (s *sbom) readSPDX(data []byte) error {
	var doc v2_3.Document
	if err := spdxjson.ReadInto(bytes.NewReader(data), &doc); err != nil {
		return fmt.Errorf("reading SPDX JSON: %w", err)
	}
	byID := map[spdxcommon.ElementID]*v2_3.Package{}
	for _, p := range doc.Packages {
		if p != nil {
			byID[p.PackageSPDXIdentifier] = p
		}
	}
	fileName := map[spdxcommon.ElementID]string{}
	for _, f := range doc.Files {
		if f != nil {
			fileName[f.FileSPDXIdentifier] = f.FileName
		}
	}
	// Only references inside this document count: an element of another
	// document is not described here.
	local := func(id spdxcommon.DocElementID) (spdxcommon.ElementID, bool) {
		return id.ElementRefID, id.DocumentRefID == "" && id.SpecialID == "" && id.ElementRefID != ""
	}
	var described []spdxcommon.ElementID
	type containment struct{ pkg, file spdxcommon.ElementID }
	var contains []containment
	for _, r := range doc.Relationships {
		a, aok := local(r.RefA)
		b, bok := local(r.RefB)
		if !aok || !bok {
			continue
		}
		switch r.Relationship {
		case spdxcommon.TypeRelationshipDescribe:
			if a == doc.SPDXIdentifier {
				described = append(described, b)
			}
		case spdxcommon.TypeRelationshipDescribeBy:
			if b == doc.SPDXIdentifier {
				described = append(described, a)
			}
		case spdxcommon.TypeRelationshipContains:
			contains = append(contains, containment{a, b})
		case spdxcommon.TypeRelationshipContainedBy:
			contains = append(contains, containment{b, a})
		case spdxcommon.TypeRelationshipOther:
			if strings.HasPrefix(strings.TrimSpace(r.RelationshipComment), evidentBy) {
				contains = append(contains, containment{a, b})
			}
		}
	}
	// One described package is the firmware. A document that describes
	// several names no firmware: they are then ordinary packages.
	var firmware *v2_3.Package
	if len(described) == 1 {
		firmware = byID[described[0]]
	}
	if firmware != nil {
		var digest string
		for _, c := range firmware.PackageChecksums {
			if c.Algorithm == spdxcommon.SHA256 {
				h, err := sha256Digest(c.Value)
				if err != nil {
					return fmt.Errorf("described package %s: %w", firmware.PackageName, err)
				}
				digest = h
			}
		}
		s.describe(firmware.PackageName, firmware.PackageVersion, digest)
	}
	owned := map[spdxcommon.ElementID]*sbomPackage{}
	for _, p := range doc.Packages {
		if p == nil || p == firmware {
			continue
		}
		sp, err := s.addPackage(p.PackageName, p.PackageVersion)
		if err != nil {
			return fmt.Errorf("package %s: %w", spdxcommon.RenderElementID(p.PackageSPDXIdentifier), err)
		}
		owned[p.PackageSPDXIdentifier] = sp
	}
	for _, c := range contains {
		sp, isPkg := owned[c.pkg]
		name, isFile := fileName[c.file]
		if !isPkg || !isFile {
			// The firmware's own files, a package holding a package, or an
			// element this document does not define.
			continue
		}
		if err := s.addFile(sp, name); err != nil {
			return fmt.Errorf("file %s: %w", spdxcommon.RenderElementID(c.file), err)
		}
	}
	return nil
}

// readCycloneDX reads a CycloneDX 1.5 or later JSON BOM. A component that
// is not a file owns its nested components of type file and the locations
// of its evidence's occurrences; metadata.component is the firmware.
func (s *sbom) readCycloneDX(data []byte) error {
	var bom cdx.BOM
	if err := cdx.NewBOMDecoder(bytes.NewReader(data), cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
		return fmt.Errorf("reading CycloneDX JSON: %w", err)
	}
	if bom.BOMFormat != "CycloneDX" {
		return fmt.Errorf("bomFormat is %q, not CycloneDX", bom.BOMFormat)
	}
	if bom.SpecVersion == 0 {
		return errors.New("CycloneDX BOM without a specVersion")
	}
	if bom.SpecVersion < cdx.SpecVersion1_5 {
		// Evidence occurrences, where many tools list a component's
		// files, came with 1.5.
		return fmt.Errorf("CycloneDX specVersion %s: fwvet reads 1.5 and later", bom.SpecVersion)
	}
	if md := bom.Metadata; md != nil && md.Component != nil {
		fw := md.Component
		var digest string
		if fw.Hashes != nil {
			for _, h := range *fw.Hashes {
				if h.Algorithm == cdx.HashAlgoSHA256 {
					d, err := sha256Digest(h.Value)
					if err != nil {
						return fmt.Errorf("metadata.component %s: %w", fw.Name, err)
					}
					digest = d
				}
			}
		}
		s.describe(fw.Name, fw.Version, digest)
		// The firmware's own file components are the whole image, not a
		// package's: only the packages nested in it are read.
		if err := s.addComponents(fw.Components); err != nil {
			return err
		}
	}
	return s.addComponents(bom.Components)
}

// addComponents adds every component that is not a file, at any depth, as a
// package, owning its nested file components, its evidence's occurrences and
// the locations syft gives it (properties syft:location:N:path: the files
// it was found by). A file component outside any package belongs to none.
func (s *sbom) addComponents(list *[]cdx.Component) error {
	if list == nil {
		return nil
	}
	for i := range *list {
		c := &(*list)[i]
		if c.Type == cdx.ComponentTypeFile {
			continue
		}
		where := c.Name
		if c.BOMRef != "" {
			where = c.BOMRef
		}
		p, err := s.addPackage(c.Name, c.Version)
		if err != nil {
			return fmt.Errorf("component %s: %w", where, err)
		}
		if c.Components != nil {
			for _, f := range *c.Components {
				if f.Type != cdx.ComponentTypeFile {
					continue
				}
				if err := s.addFile(p, f.Name); err != nil {
					return fmt.Errorf("component %s: file component: %w", where, err)
				}
			}
		}
		if c.Evidence != nil && c.Evidence.Occurrences != nil {
			for _, o := range *c.Evidence.Occurrences {
				if err := s.addFile(p, o.Location); err != nil {
					return fmt.Errorf("component %s: evidence occurrence: %w", where, err)
				}
			}
		}
		if c.Properties != nil {
			for _, prop := range *c.Properties {
				if !syftLocation(prop.Name) {
					continue
				}
				if err := s.addFile(p, prop.Value); err != nil {
					return fmt.Errorf("component %s: property %s: %w", where, prop.Name, err)
				}
			}
		}
		if err := s.addComponents(c.Components); err != nil {
			return err
		}
	}
	return nil
}

// evidentBy starts the comment of syft's SPDX relationship from a package
// to a file it was found by ("evident-by: indicates the package's existence
// is evident by the given file"). SPDX 2.3 has no such type, so syft writes
// OTHER.
const evidentBy = "evident-by"

// syftLocation reports whether a CycloneDX property name is syft's
// syft:location:N:path, a file the component was found by.
func syftLocation(name string) bool {
	n, ok := strings.CutPrefix(name, "syft:location:")
	if !ok {
		return false
	}
	n, ok = strings.CutSuffix(n, ":path")
	return ok && n != "" && strings.Trim(n, "0123456789") == ""
}

// describe records the firmware the SBOM describes, unless the described
// element says nothing that identifies a firmware: the directory syft
// scanned (SPDX's DocumentRoot-Directory, CycloneDX's metadata.component of
// type file) is named after the directory, with no version and no digest,
// and is no release of anything. Given --source-name and --source-version,
// syft gives it the firmware's name and version.
func (s *sbom) describe(name, version, sha256 string) {
	if version == "" && sha256 == "" {
		return
	}
	s.product, s.version, s.sha256 = name, version, sha256
}

func (s *sbom) addPackage(name, version string) (*sbomPackage, error) {
	if name == "" {
		return nil, errors.New("a package without a name")
	}
	s.nPackages++
	if s.nPackages > s.lim.packages {
		return nil, fmt.Errorf("more than %d packages, the most fwvet reads from one SBOM", s.lim.packages)
	}
	p := s.packages[name]
	if p == nil {
		p = &sbomPackage{versions: map[string]bool{}, files: map[string]bool{}}
		s.packages[name] = p
	}
	p.versions[version] = true
	return p, nil
}

func (s *sbom) addFile(p *sbomPackage, name string) error {
	fp, err := imagePath(name)
	if err != nil {
		return err
	}
	if p.files[fp] {
		return nil
	}
	s.nFiles++
	if s.nFiles > s.lim.files {
		return fmt.Errorf("more than %d files, the most fwvet reads from one SBOM", s.lim.files)
	}
	p.files[fp] = true
	return nil
}

// imagePath makes an SBOM's file name ("./usr/bin/x", "usr/bin/x",
// "/usr/bin/x") the absolute path a change has ("/usr/bin/x").
func imagePath(name string) (string, error) {
	if name == "" {
		return "", errors.New("a file without a name")
	}
	p := path.Clean("/" + name)
	if p == "/" {
		// Declared, the root would disclose every change in the image.
		return "", fmt.Errorf("file name %q names the root directory", name)
	}
	return p, nil
}

// sha256Digest checks a hex SHA-256 and gives it as a manifest's image_sha256.
func sha256Digest(hex string) (string, error) {
	h := strings.ToLower(strings.TrimSpace(hex))
	if len(h) != 64 || strings.Trim(h, "0123456789abcdef") != "" {
		return "", fmt.Errorf("SHA-256 %q is not 64 hex digits", hex)
	}
	return h, nil
}

// derive computes the manifest of a release from the SBOMs on either side.
func derive(base, cand *sbom) *Manifest {
	added, removed, changed := map[string]bool{}, map[string]bool{}, map[string]bool{}
	add := func(to map[string]bool, files map[string]bool, unless map[string]bool) {
		for f := range files {
			if !unless[f] {
				to[f] = true
			}
		}
	}
	for name, cp := range cand.packages {
		bp, inBase := base.packages[name]
		switch {
		case !inBase:
			add(added, cp.files, nil)
			add(changed, cp.files, nil)
		case !sameVersions(bp, cp):
			add(changed, cp.files, nil)
			add(changed, bp.files, nil)
			add(added, cp.files, bp.files)
			add(removed, bp.files, cp.files)
		}
	}
	for name, bp := range base.packages {
		if _, inCand := cand.packages[name]; !inCand {
			add(removed, bp.files, nil)
		}
	}
	return &Manifest{
		Product:         cand.product,
		ImageSHA256:     cand.sha256,
		PreviousVersion: base.version,
		Version:         cand.version,
		Changed:         patterns(changed),
		Added:           patterns(added),
		Removed:         patterns(removed),
	}
}

func sameVersions(a, b *sbomPackage) bool {
	if len(a.versions) != len(b.versions) {
		return false
	}
	for v := range a.versions {
		if !b.versions[v] {
			return false
		}
	}
	return true
}

// patterns lists paths as patterns that match them literally, sorted so
// that the manifest is the same from run to run.
func patterns(paths map[string]bool) []string {
	out := make([]string, 0, len(paths))
	for p := range paths {
		out = append(out, escapeGlob(p))
	}
	sort.Strings(out)
	return out
}
