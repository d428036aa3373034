package ubi

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/fwvet/fwvet/pipeline"
)

// Format is the UBI image format.
type Format struct{}

var (
	_ pipeline.Container = Format{}
	_ pipeline.Carvable  = Format{}
	_ pipeline.Spanner   = Format{}
)

// Name implements pipeline.Format.
func (Format) Name() string { return "ubi" }

// Match implements pipeline.Format: an erase-counter header whose CRC and
// offsets check.
func (Format) Match(head []byte) bool {
	if len(head) < hdrSize || !bytes.HasPrefix(head, ecMagic) {
		return false
	}
	_, err := parseEC(head)
	return err == nil
}

// Signatures implements pipeline.Carvable. UBI starts at an eraseblock, and
// even in vendor blobs that wrap it, at a multiple of 512 bytes.
func (Format) Signatures() []pipeline.Signature {
	return []pipeline.Signature{{Offset: 0, Magic: ecMagic, Align: pebAlign}}
}

// Span implements pipeline.Spanner: the PEB size found from the distance to
// the next erase-counter header of the same image (see probe), then the
// run of PEBs from the start that carry an EC header of this image, with
// erased PEBs in between counted in.
func (Format) Span(r io.ReaderAt, size int64) (int64, error) {
	g, err := probe(r, size)
	if err != nil {
		return 0, err
	}
	return span(r, size, g) * g.pebSize, nil
}

// Walk implements pipeline.Container: one regular file per volume, named by
// the volume, in volume id order.
func (Format) Walk(ctx context.Context, r io.ReaderAt, size int64, lim pipeline.Limits, visit func(*pipeline.Header, pipeline.OpenFunc) error) error {
	g, err := probe(r, size)
	if err != nil {
		return err
	}
	img, err := scan(ctx, r, size, g)
	if err != nil {
		return err
	}
	vols, err := img.volumes(ctx, lim.MaxFileSize)
	if err != nil {
		return err
	}
	if int64(len(vols)) > lim.MaxEntries {
		return fmt.Errorf("ubi: %d volumes exceed max-entries %d", len(vols), lim.MaxEntries)
	}
	for _, v := range vols {
		// Vendors put the release in volume names ("rootfs-1.2.3"): the
		// path names the volume by its id, the name goes in the label.
		h := &pipeline.Header{Name: fmt.Sprintf("volume-%d", v.id), Label: v.label, Type: pipeline.TypeFile, Mode: 0o644, Size: v.size,
			Identity: uint64(v.id) + 1, Damage: strings.Join(v.damage, "; ")}
		var open pipeline.OpenFunc
		if v.size <= lim.MaxFileSize {
			open = func(context.Context) (io.ReadCloser, error) { return &volReader{img: img, v: v}, nil }
		}
		if err := visit(h, open); err != nil {
			return err
		}
	}
	return nil
}
