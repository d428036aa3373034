package report

import (
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
// run, one rule per finding id, one result per finding.
type SARIF struct{}

var _ pipeline.Encoder = SARIF{}

const (
	sarifInformationURI = "https://github.com/fwvet/fwvet"

	// sarifImageRoot is the uriBaseId of every result location: the root of
	// the file system, inside the image, that holds the finding's path.
	//
	// A finding's path is absolute inside the image ("/etc/passwd"). Written
	// as a URI as it is, it would be an absolute-path reference, which a
	// consumer resolves against its own host, its checkout or its web origin,
	// none of which holds the file. SARIF resolves a relative reference
	// against the base its uriBaseId names, so the path goes in without its
	// leading "/" under a base that stands for the image's root. The base is
	// declared in run.originalUriBaseIds with a description and no uri, as
	// SARIF allows when the producer does not know where the base lies:
	// where an image is unpacked is not the report's to say.
	sarifImageRoot = "IMAGEROOT"

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

// sarifURI is a finding's path as a URI reference relative to IMAGEROOT:
// without its leading "/", and percent-encoded so that a file name holding
// "#", "?", "%" or a space stays one path rather than a fragment or query.
func sarifURI(p string) string {
	u := url.URL{Path: strings.TrimLeft(p, "/")}
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

func sarifRun(r *pipeline.Report) *sarif.Run {
	run := sarif.NewRunWithInformationURI("fwvet", sarifInformationURI)
	if r.Tool.Version != "" {
		run.Tool.Driver.WithVersion(r.Tool.Version)
	}
	// WithOriginalUriBaseIds, not AddOriginalUriBaseId: the latter writes
	// to a map that NewRun leaves nil.
	run.WithOriginalUriBaseIds(map[string]sarif.ArtifactLocation{
		sarifImageRoot: *sarif.NewArtifactLocation().WithDescription(sarif.NewTextMessage(
			"The root of the file system inside the image that holds the path; the result's container property names the chain of containers that holds that file system.")),
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
		desc, ok := ruleDescriptions[id]
		if !ok {
			desc = id
		}
		run.AddRule(id).
			WithShortDescription(sarif.NewMultiformatMessageString().WithText(desc)).
			WithDefaultConfiguration(sarif.NewReportingConfiguration().WithLevel(sarifLevel(pipeline.DefaultSeverity[id])))
	}

	for _, f := range r.Findings {
		res := run.CreateResultForRule(f.ID).
			WithLevel(sarifLevel(f.Severity)).
			WithMessage(sarif.NewTextMessage(f.Message))
		if f.Path != "" {
			loc := sarif.NewArtifactLocation().WithURI(sarifURI(f.Path)).WithURIBaseID(sarifImageRoot)
			res.AddLocation(sarif.NewLocationWithPhysicalLocation(sarif.NewPhysicalLocation().WithArtifactLocation(loc)))
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
