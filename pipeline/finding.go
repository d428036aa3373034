package pipeline

import (
	"fmt"
)

// Severity ranks a finding. The zero value is SeverityInfo.
type Severity int

// Severities in increasing order.
const (
	SeverityInfo Severity = iota
	SeverityLow
	SeverityMedium
	SeverityHigh
	SeverityCritical
)

var severityNames = [...]string{"info", "low", "medium", "high", "critical"}

func (s Severity) String() string {
	if s < 0 || int(s) >= len(severityNames) {
		return fmt.Sprintf("severity(%d)", int(s))
	}
	return severityNames[s]
}

// ParseSeverity reads a severity name.
func ParseSeverity(name string) (Severity, error) {
	for i, n := range severityNames {
		if n == name {
			return Severity(i), nil
		}
	}
	return 0, fmt.Errorf("unknown severity %q (want one of info, low, medium, high, critical)", name)
}

// MarshalText writes the severity name.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a severity name.
func (s *Severity) UnmarshalText(b []byte) error {
	v, err := ParseSeverity(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// Finding ids, as fixed by DESIGN.md. Ids are only ever added.
const (
	IDFileAdded            = "file-added"
	IDFileRemoved          = "file-removed"
	IDFileModified         = "file-modified"
	IDMetadataChanged      = "metadata-changed"
	IDAccountAdded         = "account-added"
	IDCredentialChanged    = "credential-changed"
	IDAuthorizedKeyAdded   = "authorized-key-added"
	IDSetuidAdded          = "setuid-added"
	IDServiceAdded         = "service-added"
	IDELFImportAdded       = "elf-import-added"
	IDEndpointAdded        = "endpoint-added"
	IDPrivateKeyAdded      = "private-key-added"
	IDCACertAdded          = "ca-cert-added"
	IDKernelModuleAdded    = "kernel-module-added"
	IDHighEntropyBlobAdded = "high-entropy-blob-added"
	IDDowngrade            = "downgrade"
	IDUnsafeEntry          = "unsafe-entry"
	IDHardeningRegressed   = "hardening-regressed"
	IDPackedBinaryAdded    = "packed-binary-added"
	IDCryptoConstant       = "crypto-constant-changed"
	IDConfigWeakened       = "config-weakened"
	IDELFCallAdded         = "elf-call-added"
	IDMagicStringAdded     = "magic-string-added"
)

// DefaultSeverity is the severity DESIGN.md gives each id.
var DefaultSeverity = map[string]Severity{
	IDFileAdded:            SeverityInfo,
	IDFileRemoved:          SeverityInfo,
	IDFileModified:         SeverityInfo,
	IDMetadataChanged:      SeverityLow,
	IDAccountAdded:         SeverityCritical,
	IDCredentialChanged:    SeverityHigh,
	IDAuthorizedKeyAdded:   SeverityCritical,
	IDSetuidAdded:          SeverityHigh,
	IDServiceAdded:         SeverityHigh,
	IDELFImportAdded:       SeverityMedium,
	IDEndpointAdded:        SeverityMedium,
	IDPrivateKeyAdded:      SeverityHigh,
	IDCACertAdded:          SeverityHigh,
	IDKernelModuleAdded:    SeverityHigh,
	IDHighEntropyBlobAdded: SeverityMedium,
	IDDowngrade:            SeverityCritical,
	IDUnsafeEntry:          SeverityHigh,
	IDHardeningRegressed:   SeverityMedium,
	IDPackedBinaryAdded:    SeverityHigh,
	IDCryptoConstant:       SeverityCritical,
	IDConfigWeakened:       SeverityHigh,
	IDELFCallAdded:         SeverityHigh,
	IDMagicStringAdded:     SeverityHigh,
}

// Finding is one thing a reviewer should look at.
type Finding struct {
	ID       string   `json:"id"`
	Severity Severity `json:"severity"`
	// Path is absolute inside the innermost file system.
	Path string `json:"path"`
	// Container is the chain of containers holding Path, outermost first.
	Container []string `json:"container"`
	Message   string   `json:"message"`
	Disclosed bool     `json:"disclosed"`
	// Waived: a recorded waiver covers the finding (the report's waivers
	// name it), so that the policy passes over it as over a disclosed one.
	Waived bool `json:"waived,omitempty"`
	// Evidence is what a reviewer can check by hand.
	Evidence map[string]any `json:"evidence"`

	// Key is the key of the change the finding is about; the finding is
	// disclosed when that change is. Empty for findings about no one change.
	Key string `json:"-"`
	// AllowOnly marks a finding that judges what a change does, not that
	// it happened (a binary that lost its hardening, an account unlocked):
	// declaring the path changed does not declare it; only a manifest's
	// allow entry naming its id does.
	AllowOnly bool `json:"-"`
}

// MarshalJSON keeps container and evidence as [] and {} rather than null.
func (f Finding) MarshalJSON() ([]byte, error) {
	type plain Finding
	p := plain(f)
	if p.Container == nil {
		p.Container = []string{}
	}
	if p.Evidence == nil {
		p.Evidence = map[string]any{}
	}
	return marshalNoEscape(p)
}

// NewFinding makes a finding with the default severity of its id.
func NewFinding(id, path string, container []string, msg string) Finding {
	return Finding{ID: id, Severity: DefaultSeverity[id], Path: path, Container: container, Message: msg, Evidence: map[string]any{}}
}
