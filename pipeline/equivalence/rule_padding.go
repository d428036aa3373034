package equivalence

import (
	"context"
	"fmt"

	"github.com/fwvet/fwvet/pipeline"
)

// paddingRegion explains the padding regions the carver found between the
// containers of a raw image (a flash dump, a vendor blob): runs of one fill
// byte, 0x00 or 0xFF, that no format claims. Their fill and length may
// differ; no other byte can, since a run of one byte holds nothing else.
type paddingRegion struct{}

func (paddingRegion) ID() string      { return "padding" }
func (paddingRegion) Version() string { return "1" }
func (paddingRegion) Description() string {
	return "padding regions of a raw image (runs of 0x00 or 0xFF outside every parsed region)"
}

func (paddingRegion) Explain(_ context.Context, s, r *Input) (Result, error) {
	if s.Region == nil || r.Region == nil || s.Region.Format != pipeline.RegionPadding || r.Region.Format != pipeline.RegionPadding {
		return Result{}, nil
	}
	fs, oka := fill(s.Data)
	fr, okb := fill(r.Data)
	if !oka || !okb {
		return Result{Reason: "padding: a padding region holds more than one fill byte"}, nil
	}
	ap := Applied{ID: "padding", Ranges: [][2]int64{{0, s.Size}},
		Before: []string{fmt.Sprintf("%d bytes of 0x%02x at %#x", s.Size, fs, s.Region.Offset)},
		After:  []string{fmt.Sprintf("%d bytes of 0x%02x at %#x", r.Size, fr, r.Region.Offset)}}
	if s.Size != r.Size {
		ap.RebuiltRanges = [][2]int64{{0, r.Size}}
	}
	norm := digest([]byte("padding"))
	return Result{Explained: true, Applied: []Applied{ap}, NormalizedShipped: norm, NormalizedRebuilt: norm}, nil
}

// fill reports the one byte b is made of (0x00 or 0xFF).
func fill(b []byte) (byte, bool) {
	if len(b) == 0 {
		return 0, true
	}
	c := b[0]
	if c != 0 && c != 0xff {
		return 0, false
	}
	for _, x := range b {
		if x != c {
			return 0, false
		}
	}
	return c, true
}
