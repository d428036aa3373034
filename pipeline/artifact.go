package pipeline

import "context"

// Artifact is a fetched reference: a local file or a directory holding an
// unpacked tree, with its digest computed once.
type Artifact struct {
	// Ref is the reference as the user gave it.
	Ref string
	// Name is a short name for reports (the file or directory base name).
	Name string
	// Digest is "sha256:<hex>" of the file, or of the canonical listing of a directory.
	Digest string
	// Size is the file size in bytes, or the sum of the regular files of a directory.
	Size int64
	// MediaType describes what was fetched ("application/octet-stream" or
	// "inode/directory").
	MediaType string
	// Path is the local file or directory that holds the bytes.
	Path string
	// IsDir reports whether Path is a directory tree rather than an image file.
	IsDir bool
}

// Fetcher turns a reference into an Artifact.
type Fetcher interface {
	Fetch(ctx context.Context, ref string) (*Artifact, error)
}
