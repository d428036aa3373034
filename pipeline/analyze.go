package pipeline

import "context"

// Version is a firmware version and where it was read.
type Version struct {
	Value string `json:"value"`
	// Source says where: a path inside the image, or "manifest".
	Source    string   `json:"source"`
	Container []string `json:"container,omitempty"`
	Key       string   `json:"-"`
}

// AnalysisInput is what every analyzer sees: both trees, the changes between
// them, and the versions read from each side.
type AnalysisInput struct {
	Baseline  *Tree
	Candidate *Tree
	Changes   []*Change
	// BaselineVersion and CandidateVersion are nil when unknown.
	BaselineVersion  *Version
	CandidateVersion *Version
	// Scans holds, by change key, the shared pass over the bytes of every
	// added, removed and modified regular file.
	Scans map[string]*Scan
	// WorkDir takes temporary copies of entries that must be read at random
	// offsets and cannot be in place.
	WorkDir string
	// Jobs bounds the files analyzers read at once; zero means GOMAXPROCS.
	Jobs int
}

// Analyzer turns changes into findings. Each finding id has one analyzer;
// analyzers are registered in one list (pipeline/analyze).
type Analyzer interface {
	Name() string
	Analyze(ctx context.Context, in *AnalysisInput) ([]Finding, error)
}
