package report

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"

	"github.com/owenrumney/go-sarif/v3/pkg/report/v210/sarif"

	"github.com/fwvet/fwvet/pipeline"
)

// SARIF writes the report as SARIF 2.1.0, for code-scanning dashboards: one
// run per report, one rule per finding id, one result per finding, with
// what GitHub code scanning needs to track an alert from one run to the
// next (partialFingerprints, security-severity, one automation category per
// platform).
//
// The driver has no informationUri and the rules no helpUri: the module path
// (github.com/fwvet/fwvet) is no proof that a web page lives there, and a
// dashboard link to an address that may not exist is worse than none. The
// rules carry their documentation themselves (fullDescription, help).
type SARIF struct{}

var _ pipeline.Encoder = SARIF{}

const (
	// sarifImageRoot is the uriBaseId of every result location: the
	// directory `fwvet unpack REF DIR` extracts the image into.
	//
	// A finding's path is absolute inside the innermost file system
	// ("/etc/passwd"). Written as a URI as it is, it would be an
	// absolute-path reference, which a consumer resolves against its own
	// host, its checkout or its web origin, none of which holds the file.
	// SARIF resolves a relative reference against the base its uriBaseId
	// names, so the path goes in relative to a base that stands for the
	// extracted image, laid out as fwvet unpack lays it out (see sarifURI).
	// The base is declared in run.originalUriBaseIds with a description and
	// no uri, as SARIF allows when the producer does not know where the base
	// lies: where an image is unpacked is not the report's to say.
	sarifImageRoot = "IMAGEROOT"

	// sarifFingerprintKey names the result's partial fingerprint (see
	// sarifFingerprint). The version is part of the key: a change to what is
	// hashed gets a new key rather than new values under the old one, so
	// that a dashboard does not take every old alert for a new one.
	sarifFingerprintKey = "fwvetFinding/v1"

	// sarifCategoryPrefix begins the automationDetails id of a run that
	// vets one platform of a multi-platform image: "fwvet/linux/arm64/".
	sarifCategoryPrefix = "fwvet/"

	// sarifDisclosedJustification is the reason given for hiding a disclosed
	// finding from a dashboard's open alerts.
	sarifDisclosedJustification = "declared in the release manifest"
)

// ruleDescriptions are the short descriptions of the rules, one per finding
// id, as DESIGN.md states the ids' meaning.
var ruleDescriptions = map[string]string{
	pipeline.IDFileAdded:            "A file appeared.",
	pipeline.IDFileRemoved:          "A file vanished.",
	pipeline.IDFileModified:         "A file's content changed.",
	pipeline.IDMetadataChanged:      "A file's mode, owner or link target changed.",
	pipeline.IDAccountAdded:         "A new user or group, a uid turned 0, or an empty password.",
	pipeline.IDCredentialChanged:    "A password hash or secret changed.",
	pipeline.IDAuthorizedKeyAdded:   "A new SSH authorized key.",
	pipeline.IDSetuidAdded:          "A new setuid or setgid file.",
	pipeline.IDServiceAdded:         "A new daemon, init script, inittab or cron entry, or listener.",
	pipeline.IDELFImportAdded:       "An ELF binary newly imports exec, shell, socket or listen calls.",
	pipeline.IDEndpointAdded:        "A new URL, IP address or host name in a binary or config.",
	pipeline.IDPrivateKeyAdded:      "A private key appeared.",
	pipeline.IDCACertAdded:          "A new trusted CA certificate.",
	pipeline.IDKernelModuleAdded:    "A new or changed kernel module.",
	pipeline.IDHighEntropyBlobAdded: "A new opaque, encrypted or packed blob.",
	pipeline.IDDowngrade:            "The candidate's version is older than the baseline's.",
	pipeline.IDUnsafeEntry:          "An archive entry that escapes, collides or exceeds limits.",
	pipeline.IDHardeningRegressed:   "A binary lost stack protector, NX, RELRO, PIE or FORTIFY.",
	pipeline.IDPackedBinaryAdded:    "An ELF is packed (UPX or other) where the baseline's was not.",
	pipeline.IDCryptoConstant:       "A cryptographic constant (curve point or parameter, S-box, prime, embedded public key) changed while the code did not.",
	pipeline.IDConfigWeakened:       "A config change weakens authentication or opens exposure, declared or not.",
	pipeline.IDELFCallAdded:         "A function newly calls an exec, shell, socket, bind, listen, accept, recv or setuid family function, though the binary imported it before.",
	pipeline.IDMagicStringAdded:     "A function newly compares input against a new constant string that looks like a key or password.",
}

// sarifSecuritySeverity is the rules' properties.security-severity, which
// GitHub code scanning reads to rank security alerts: above 9.0 is critical,
// 7.0 to 8.9 high, 4.0 to 6.9 medium, 0.1 to 3.9 low. Each severity sits
// inside its band, so that critical and high, both level "error", still
// show apart. Info has no value: it is not a security rating.
var sarifSecuritySeverity = map[pipeline.Severity]string{
	pipeline.SeverityCritical: "9.5",
	pipeline.SeverityHigh:     "8.0",
	pipeline.SeverityMedium:   "5.5",
	pipeline.SeverityLow:      "3.0",
}

// sarifRuleTags are every rule's properties.tags; GitHub code scanning
// treats a rule as a security rule, and reads its security-severity, only
// when its tags hold "security".
var sarifRuleTags = []string{"security", "firmware"}

// sarifFingerprintEvidence names, for the ids whose findings can be more
// than one at the same path and container, the evidence that tells them
// apart and stays the same from one release to the next: the account (and
// why it is reported: a new account and its empty password are two
// findings), the key's or certificate's fingerprint, the kind of problem
// and the limit hit. Offsets, line numbers, sizes, hashes of contents and
// versions are left out: they change while the finding does not.
var sarifFingerprintEvidence = map[string][]string{
	pipeline.IDAccountAdded:       {"user", "group", "reason"},
	pipeline.IDCredentialChanged:  {"user", "group"},
	pipeline.IDAuthorizedKeyAdded: {"fingerprint"},
	pipeline.IDPrivateKeyAdded:    {"key_type", "form", "public_key_fingerprint"},
	pipeline.IDCACertAdded:        {"sha256_fingerprint"},
	pipeline.IDUnsafeEntry:        {"kind", "limit"},
}

// sarifFingerprint is a finding's partialFingerprints value: the SHA-256,
// in hex, of its id, its container chain without the first element, its
// path and the evidence sarifFingerprintEvidence names for its id, each
// written with its length so that no two inputs run together.
//
// The first element of the chain is the artifact's own name
// ("rt3200-1.0.1.bin"), which carries the version more often than not; the
// rest (formats and the paths of nested container files) is where inside
// the image the file lies, and stays. The message is never hashed: it holds
// numbers (offsets, versions, counts) that change while the finding does
// not. So the same finding in the next release keeps its fingerprint, and
// the same path in another container, another path, or another id does not
// share one.
func sarifFingerprint(f pipeline.Finding) string {
	h := sha256.New()
	field := func(s string) { fmt.Fprintf(h, "%d:%s;", len(s), s) }
	field(f.ID)
	chain := f.Container
	if len(chain) > 0 {
		chain = chain[1:]
	}
	fmt.Fprintf(h, "%d;", len(chain))
	for _, c := range chain {
		field(c)
	}
	field(f.Path)
	for _, k := range sarifFingerprintEvidence[f.ID] {
		if v, ok := f.Evidence[k]; ok && v != nil {
			field(k)
			field(fmt.Sprint(v))
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// sarifLevel maps a severity to a SARIF level: what fails a default policy
// is an error, what needs a look a warning, the rest a note.
func sarifLevel(s pipeline.Severity) string {
	switch {
	case s >= pipeline.SeverityHigh:
		return sarif.LevelError
	case s == pipeline.SeverityMedium:
		return sarif.LevelWarning
	default:
		return sarif.LevelNote
	}
}

// sarifURI is a finding's path as a URI reference relative to IMAGEROOT,
// where `fwvet unpack REF DIR` writes the file under DIR: a path of the
// outermost file system as it is, without its leading "/" ("etc/passwd"); a
// path inside a nested container file under that file's path with ".d"
// appended ("squashfs-1.d/etc/banner" for /etc/banner in the /squashfs-1
// that a raw flash image holds), so that one path in two containers is two
// locations, and a container file and what it holds are never the same one.
// The container files are the chain's paths (pipeline.ChainKey); format
// names add nothing to where a file lies. It is percent-encoded so that a
// file name holding "#", "?", "%" or a space stays one path rather than a
// fragment or query.
func sarifURI(container []string, p string) string {
	var parts []string
	if key := pipeline.ChainKey(container); key != "" {
		for _, c := range strings.Split(key, "\x00") {
			parts = append(parts, strings.TrimLeft(c, "/")+".d")
		}
	}
	parts = append(parts, strings.TrimLeft(p, "/"))
	u := url.URL{Path: strings.Join(parts, "/")}
	// url.URL.String also guards a first segment holding ":" with "./", so
	// that it cannot be read as a scheme.
	return u.String()
}

// Encode implements pipeline.Encoder.
func (s SARIF) Encode(w io.Writer, r *pipeline.Report) error {
	return s.EncodeAll(w, []*pipeline.Report{r})
}

// EncodeAll writes one log with a run per report (one per platform of a
// multi-platform image).
func (SARIF) EncodeAll(w io.Writer, reps []*pipeline.Report) error {
	log := sarif.NewReport()
	for _, r := range reps {
		log.AddRun(sarifRun(r))
	}
	// Encoded here rather than with log.PrettyWrite to end with a newline
	// and to leave &, < and > in messages as written, as the JSON report does.
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(log); err != nil {
		return fmt.Errorf("encoding the SARIF report: %w", err)
	}
	return nil
}

// sarifLogicalName is the fully qualified name of a finding's logical
// location: its container chain without the artifact's name, then its path,
// joined as the text report joins them ("raw › /squashfs-1 › squashfs ›
// /etc/banner"). Like the fingerprint, it leaves out the one element that
// changes from release to release.
func sarifLogicalName(f pipeline.Finding) string {
	var parts []string
	if len(f.Container) > 1 {
		parts = append(parts, f.Container[1:]...)
	}
	return strings.Join(append(parts, f.Path), " › ")
}

// sarifRule describes one finding id: its meaning (ruleDescriptions), its
// default severity as level and security-severity, and how to check a
// result by hand.
func sarifRule(run *sarif.Run, id string) {
	desc, ok := ruleDescriptions[id]
	if !ok {
		desc = id
	}
	sev := pipeline.DefaultSeverity[id]
	level := sarifLevel(sev)
	rating, ratingMD := "", ""
	if v, ok := sarifSecuritySeverity[sev]; ok {
		rating, ratingMD = ", security-severity "+v, ", security-severity `"+v+"`"
	}
	full := fmt.Sprintf("%s Default severity: %s.", desc, sev)
	const (
		where = "The result's location is the file as `fwvet unpack REF DIR` writes it under DIR; " +
			"its logical location and its container property name the chain of containers that holds it, " +
			"and its evidence property what to check by hand."
		whereMD = "The result's location is the file as `fwvet unpack REF DIR` writes it under `DIR`; " +
			"its logical location and its `container` property name the chain of containers that holds it, " +
			"and its `evidence` property what to check by hand."
		disclosed = "A finding about a change that the vendor's release manifest declares is disclosed, " +
			"and carries an external suppression."
	)
	help := fmt.Sprintf("%s\n\nDefault severity: %s (SARIF level %s%s); a policy can rate one finding higher or lower.\n\n%s\n\n%s",
		desc, sev, level, rating, where, disclosed)
	markdown := fmt.Sprintf("**%s**: %s\n\nDefault severity: **%s** (SARIF level `%s`%s); a policy can rate one finding higher or lower.\n\n%s\n\n%s",
		id, desc, sev, level, ratingMD, whereMD, disclosed)
	props := sarif.NewPropertyBag().WithTags(append([]string(nil), sarifRuleTags...))
	if s, ok := sarifSecuritySeverity[sev]; ok {
		props.Add("security-severity", s)
	}
	run.AddRule(id).
		WithShortDescription(sarif.NewMultiformatMessageString().WithText(desc)).
		WithFullDescription(sarif.NewMultiformatMessageString().WithText(full)).
		WithHelp(sarif.NewMultiformatMessageString().WithText(help).WithMarkdown(markdown)).
		WithDefaultConfiguration(sarif.NewReportingConfiguration().WithLevel(level)).
		WithProperties(props)
}

func sarifRun(r *pipeline.Report) *sarif.Run {
	driver := sarif.NewToolComponent().WithName("fwvet")
	if r.Tool.Version != "" {
		driver.WithVersion(r.Tool.Version)
	}
	run := sarif.NewRun().WithTool(sarif.NewTool().WithDriver(driver))
	// A run per platform of a multi-platform image: GitHub code scanning
	// keeps the alerts of each automation category apart, and refuses a
	// log with two runs of one tool in the same category.
	if p := r.Candidate.Platform; p != "" {
		run.WithAutomationDetails(sarif.NewRunAutomationDetails().WithID(sarifCategoryPrefix + p + "/"))
	}
	// WithOriginalUriBaseIds, not AddOriginalUriBaseId: the latter writes
	// to a map that NewRun leaves nil.
	run.WithOriginalUriBaseIds(map[string]sarif.ArtifactLocation{
		sarifImageRoot: *sarif.NewArtifactLocation().WithDescription(sarif.NewTextMessage(
			"The directory that `fwvet unpack REF DIR` extracts the image into (DIR): a path of the outermost file system is under it as it is, a path inside a nested container file under that file's path with \".d\" appended. The result's logical location and container property name the chain of containers that holds the file.")),
	})

	// Every id gets a rule, whether or not it has findings, so that a
	// dashboard knows the whole rule set; an id outside DefaultSeverity (one
	// added later) still gets one, so that every result's rule exists.
	ids := make([]string, 0, len(pipeline.DefaultSeverity))
	seen := map[string]bool{}
	for id := range pipeline.DefaultSeverity {
		ids, seen[id] = append(ids, id), true
	}
	for _, f := range r.Findings {
		if !seen[f.ID] {
			ids, seen[f.ID] = append(ids, f.ID), true
		}
	}
	sort.Strings(ids)
	for _, id := range ids {
		sarifRule(run, id)
	}

	for _, f := range r.Findings {
		res := run.CreateResultForRule(f.ID).
			WithLevel(sarifLevel(f.Severity)).
			WithMessage(sarif.NewTextMessage(f.Message)).
			// WithPartialFingerprints, not AddPartialFingerprint: the latter
			// writes to a map that NewResult leaves nil.
			WithPartialFingerprints(map[string]string{sarifFingerprintKey: sarifFingerprint(f)})
		if f.Path != "" {
			loc := sarif.NewArtifactLocation().WithURI(sarifURI(f.Container, f.Path)).WithURIBaseID(sarifImageRoot)
			res.AddLocation(sarif.NewLocationWithPhysicalLocation(sarif.NewPhysicalLocation().WithArtifactLocation(loc)).
				AddLogicalLocation(sarif.NewLogicalLocation().WithName(f.Path).WithFullyQualifiedName(sarifLogicalName(f))))
		}
		container, evidence := f.Container, f.Evidence
		if container == nil {
			container = []string{}
		}
		if evidence == nil {
			evidence = map[string]any{}
		}
		res.WithProperties(sarif.NewPropertyBag().
			Add("container", container).
			Add("disclosed", f.Disclosed).
			Add("severity", f.Severity.String()).
			Add("evidence", evidence))
		if f.Disclosed {
			res.AddSuppression(sarif.NewSuppression().WithKind("external").WithJustification(sarifDisclosedJustification))
		}
	}

	checks, reasons := r.Checks, r.Reasons
	if checks == nil {
		checks = []pipeline.Check{}
	}
	if reasons == nil {
		reasons = []string{}
	}
	run.WithProperties(sarif.NewPropertyBag().
		Add("verdict", r.Verdict).
		Add("reasons", reasons).
		Add("candidate", r.Candidate).
		Add("baseline", r.Baseline).
		Add("checks", checks))

	return run
}
