package source

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"regexp"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/unpack/compression"
)

// ArchiveDigestError is a blob of a docker archive whose bytes do not match
// a digest the archive gives it: its layer's rootfs.diff_ids entry in the
// config, or the digest its file name carries ("blobs/sha256/HEX",
// "HEX.tar", "HEX.tar.gz", "HEX.json"). docker load refuses such an
// archive; so does fwvet.
type ArchiveDigestError struct {
	Archive string
	// Blob is the file in the archive: a layer, or the config.
	Blob string
	// By is what gives the digest: "rootfs.diff_ids[N] of the config" or
	// "its file name".
	By   string
	Want string
	Got  string
}

func (e *ArchiveDigestError) Error() string {
	return fmt.Sprintf("docker archive %s: %s does not match %s: it hashes to %s, %s says %s", e.Archive, e.Blob, e.By, e.Got, e.By, e.Want)
}

// digestName matches a file name that carries a blob's digest, as docker
// (blobs/sha256/HEX), skopeo (HEX.tar) and go-containerregistry (HEX.tar.gz)
// name layers and configs. docker save before 25 put layers in
// ID/layer.tar, an ID that is no content digest.
var digestName = regexp.MustCompile(`^(?:.*/)?(?:blobs/sha256/([0-9a-f]{64})|([0-9a-f]{64})\.(?:tar|tar\.gz|json))$`)

func nameDigest(p string) string {
	m := digestName.FindStringSubmatch(path.Clean(p))
	if m == nil {
		return ""
	}
	return "sha256:" + m[1] + m[2]
}

// checkDockerArchive checks every layer of the one image of a docker
// archive against its diff id and its file name's digest, and the config
// against its file name's digest, reading each file of the archive as
// go-containerregistry finds it (first entry of that name, links followed)
// and hashing as it streams. limit bounds the uncompressed bytes of one
// layer.
func checkDockerArchive(ctx context.Context, archive string, img v1.Image, limit int64) error {
	open := func() (io.ReadCloser, error) { return os.Open(archive) }
	m, err := tarball.LoadManifest(open)
	if err != nil {
		return fmt.Errorf("docker archive %s: %w", archive, err)
	}
	if len(m) != 1 {
		return fmt.Errorf("docker archive %s: holds %d images, not one", archive, len(m))
	}
	desc := m[0]
	cfg, err := img.ConfigFile()
	if err != nil {
		return fmt.Errorf("docker archive %s: config %s: %w", archive, desc.Config, err)
	}
	if len(cfg.RootFS.DiffIDs) != len(desc.Layers) {
		return fmt.Errorf("docker archive %s: manifest.json names %d layers, the config %d rootfs.diff_ids", archive, len(desc.Layers), len(cfg.RootFS.DiffIDs))
	}
	if want := nameDigest(desc.Config); want != "" {
		raw, err := img.RawConfigFile()
		if err != nil {
			return fmt.Errorf("docker archive %s: config %s: %w", archive, desc.Config, err)
		}
		sum := sha256.Sum256(raw)
		if got := "sha256:" + hex.EncodeToString(sum[:]); got != want {
			return &ArchiveDigestError{Archive: archive, Blob: "config " + desc.Config, By: "its file name", Want: want, Got: got}
		}
	}
	// Where each layer's bytes are: the first entry of its name, links
	// followed, as tarball.Image reads it.
	entries, err := archiveEntries(archive)
	if err != nil {
		return err
	}
	target := make([]string, len(desc.Layers))
	wanted := map[string]bool{}
	for i, l := range desc.Layers {
		p, err := resolveEntry(entries, path.Clean(l))
		if err != nil {
			return fmt.Errorf("docker archive %s: layer %s: %w", archive, l, err)
		}
		target[i], wanted[p] = p, true
	}
	sums, err := hashEntries(ctx, archive, wanted, limit)
	if err != nil {
		return err
	}
	for i, l := range desc.Layers {
		s := sums[target[i]]
		if want := cfg.RootFS.DiffIDs[i].String(); s.diffID != want {
			return &ArchiveDigestError{Archive: archive, Blob: "layer " + l, By: fmt.Sprintf("rootfs.diff_ids[%d] of the config", i), Want: want, Got: s.diffID}
		}
		if want := nameDigest(l); want != "" && s.stored != want {
			return &ArchiveDigestError{Archive: archive, Blob: "layer " + l, By: "its file name", Want: want, Got: s.stored}
		}
	}
	return nil
}

type archiveEntry struct {
	typ  byte
	link string
}

// archiveEntries lists the first entry of each name, reading headers only.
func archiveEntries(archive string) (map[string]archiveEntry, error) {
	f, err := os.Open(archive)
	if err != nil {
		return nil, fmt.Errorf("docker archive %s: %w", archive, err)
	}
	defer f.Close()
	out := map[string]archiveEntry{}
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("docker archive %s: %w", archive, err)
		}
		n := path.Clean(hdr.Name)
		if _, ok := out[n]; !ok {
			out[n] = archiveEntry{typ: hdr.Typeflag, link: hdr.Linkname}
		}
	}
}

// resolveEntry follows links, relative to the link's directory as
// tarball.Image does, to a regular file.
func resolveEntry(entries map[string]archiveEntry, p string) (string, error) {
	for range 16 {
		e, ok := entries[p]
		switch {
		case !ok:
			return "", fmt.Errorf("%s is not in the archive", p)
		case e.typ == tar.TypeSymlink || e.typ == tar.TypeLink:
			p = path.Join(path.Dir(p), path.Clean(e.link))
		case e.typ == tar.TypeReg:
			return p, nil
		default:
			return "", fmt.Errorf("%s is not a regular file", p)
		}
	}
	return "", fmt.Errorf("%s: too many links", p)
}

type blobSums struct{ stored, diffID string }

// hashEntries hashes the first entry of each wanted name as it streams:
// the bytes as stored, and, decompressed when they are gzip or zstd, the
// diff id.
func hashEntries(ctx context.Context, archive string, wanted map[string]bool, limit int64) (map[string]blobSums, error) {
	f, err := os.Open(archive)
	if err != nil {
		return nil, fmt.Errorf("docker archive %s: %w", archive, err)
	}
	defer f.Close()
	out := map[string]blobSums{}
	tr := tar.NewReader(f)
	for len(out) < len(wanted) {
		hdr, err := tr.Next()
		if err != nil {
			return nil, fmt.Errorf("docker archive %s: %w", archive, err)
		}
		n := path.Clean(hdr.Name)
		if _, done := out[n]; !wanted[n] || done {
			continue
		}
		s, err := hashLayer(pipeline.ContextReader(ctx, tr), limit)
		if err != nil {
			return nil, fmt.Errorf("docker archive %s: layer %s: %w", archive, n, err)
		}
		out[n] = s
	}
	return out, nil
}

func hashLayer(r io.Reader, limit int64) (blobSums, error) {
	stored := sha256.New()
	br := bufio.NewReader(io.TeeReader(r, stored))
	head, _ := br.Peek(pipeline.MatchSize)
	var plain io.Reader = br
	for _, d := range []pipeline.Decompressor{compression.Gzip{}, compression.Zstd{}} {
		if d.Match(head) {
			rc, err := d.NewReader(br)
			if err != nil {
				return blobSums{}, fmt.Errorf("%s: %w", d.Name(), err)
			}
			defer rc.Close()
			plain = rc
			break
		}
	}
	diff := sha256.New()
	n, err := io.Copy(diff, io.LimitReader(plain, limit+1))
	if err != nil {
		return blobSums{}, err
	}
	if n > limit {
		return blobSums{}, &pipeline.LimitError{Limit: "max-total-bytes", Value: limit,
			Msg: fmt.Sprintf("a layer of more than %d bytes", limit)}
	}
	// What follows a compressed stream is part of the stored bytes too.
	if _, err := io.Copy(io.Discard, br); err != nil {
		return blobSums{}, err
	}
	return blobSums{stored: sum(stored), diffID: sum(diff)}, nil
}

func sum(h hash.Hash) string { return "sha256:" + hex.EncodeToString(h.Sum(nil)) }
