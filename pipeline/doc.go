// Package pipeline holds the types that flow between fwvet's stages (artifacts,
// trees, changes, findings, checks, reports) and the small interfaces each stage
// implements. It imports no stage: every stage package imports it, as
// go-containerregistry's pkg/v1 sits under remote, layout and tarball.
package pipeline
