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

	// Resolved is the reference pinned to the digest fetched
	// ("host/repo@sha256:…"), for registry images.
	Resolved string
	// Platform is the platform chosen from a multi-platform index.
	Platform string
	// Files lists the firmware files an OCI artifact carries, by the name
	// its title annotation gives.
	Files []File
	// Annotations are the image manifest's annotations.
	Annotations map[string]string
}

// OCI annotations fwvet reads.
const (
	// AnnotationTitle names the firmware file a layer of an OCI artifact holds.
	AnnotationTitle = "org.opencontainers.image.title"
	// AnnotationVersion is the version an image claims.
	AnnotationVersion = "org.opencontainers.image.version"
)

// File is one firmware file an artifact carries.
type File struct {
	Name   string `json:"name"`
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
}

// Fetcher turns a reference into an Artifact.
type Fetcher interface {
	Fetch(ctx context.Context, ref string) (*Artifact, error)
}
