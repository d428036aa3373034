package equivalence

import (
	"context"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// containerMetadata explains a container fwvet unpacked (squashfs, tar,
// cpio, gzip, uImage, …) whose own bytes differ while every entry in it is
// identical or explained on both sides, with the same permission bits and
// setuid: what differs is then the container's metadata (timestamps,
// member and data order, owners, compression). Entries' owners (uid, gid)
// and header labels that differ are explained by it too.
type containerMetadata struct{}

func (containerMetadata) ID() string      { return "container-metadata" }
func (containerMetadata) Version() string { return "1" }
func (containerMetadata) Description() string {
	return "containers whose entries all match: timestamps, member order, owners, compression of the container itself"
}

func (containerMetadata) Explain(ctx context.Context, s, r *Input) (Result, error) {
	if s.Container == "" || r.Container == "" {
		return Result{}, nil
	}
	if s.Container != r.Container {
		return Result{Reason: fmt.Sprintf("container-metadata: opened as %s and as %s", s.Container, r.Container)}, nil
	}
	if !s.ChildrenMatch || !r.ChildrenMatch {
		reason := s.ChildrenReason
		if reason == "" {
			reason = r.ChildrenReason
		}
		return Result{Reason: "container-metadata: " + reason}, nil
	}
	for _, x := range []struct {
		side string
		in   *Input
	}{{"shipped", s}, {"rebuilt", r}} {
		if err := verifyExtent(ctx, x.in.Open, x.in.Container); err != nil {
			if ctx.Err() != nil {
				return Result{}, ctx.Err()
			}
			return Result{Reason: fmt.Sprintf("container-metadata: %s: %v", x.side, err)}, nil
		}
	}
	ap := Applied{ID: "container-metadata", Ranges: [][2]int64{{0, s.Size}},
		Before: []string{describeContainer(s)}, After: []string{describeContainer(r)}}
	if s.Size != r.Size {
		ap.RebuiltRanges = [][2]int64{{0, r.Size}}
	}
	return Result{Explained: true, Applied: []Applied{ap},
		NormalizedShipped: s.ChildrenDigest, NormalizedRebuilt: r.ChildrenDigest}, nil
}

// describeContainer decodes what a container's header says of when and
// how it was made.
func describeContainer(in *Input) string {
	h := in.Head
	desc := fmt.Sprintf("%s, %d bytes", in.Container, in.Size)
	unix := func(sec uint32) string { return time.Unix(int64(sec), 0).UTC().Format(time.RFC3339) }
	switch {
	case len(h) >= 96 && string(h[:4]) == "hsqs":
		desc += fmt.Sprintf(", mkfs_time %s, compression %d, block size %d",
			unix(binary.LittleEndian.Uint32(h[8:12])), binary.LittleEndian.Uint16(h[20:22]), binary.LittleEndian.Uint32(h[12:16]))
	case len(h) >= 64 && binary.BigEndian.Uint32(h[0:4]) == 0x27051956:
		name := strings.TrimRight(string(h[32:64]), "\x00")
		desc += fmt.Sprintf(", ih_time %s, name %q", unix(binary.BigEndian.Uint32(h[8:12])), name)
	case len(h) >= 10 && h[0] == 0x1f && h[1] == 0x8b:
		if gh, err := parseGzipHeader(h); err == nil {
			desc += ", " + gh.String()
		}
	case len(h) >= 265 && string(h[257:262]) == "ustar":
		desc += ", first member " + fmt.Sprintf("%q", strings.TrimRight(string(h[0:100]), "\x00"))
		if mt, err := strconv.ParseUint(strings.TrimSpace(strings.TrimRight(string(h[136:148]), "\x00 ")), 8, 32); err == nil {
			desc += ", mtime " + unix(uint32(mt))
		}
	}
	return desc
}
