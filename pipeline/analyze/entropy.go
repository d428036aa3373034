package analyze

import (
	"context"
	"encoding/hex"
	"fmt"

	"github.com/fwvet/fwvet/pipeline"
)

// Blobs reports new or grown opaque data (high-entropy-blob-added): a file
// whose bytes look random, above 7.5 bits per byte, and whose first bytes
// name no known format, is encrypted or packed and cannot be reviewed.
type Blobs struct{}

var _ pipeline.Analyzer = Blobs{}

// Thresholds for opaque data.
const (
	highEntropy = 7.5
	// minBlob: below this, even random data cannot show its entropy.
	minBlob = 4096
)

// Name implements pipeline.Analyzer.
func (Blobs) Name() string { return "blobs" }

// Analyze implements pipeline.Analyzer.
func (Blobs) Analyze(ctx context.Context, in *pipeline.AnalysisInput) ([]pipeline.Finding, error) {
	var out []pipeline.Finding
	for _, ch := range in.Changes {
		s := in.Scans[ch.Key]
		if s == nil || s.New == nil || s.New.Size < minBlob || s.New.Entropy <= highEntropy || s.New.Magic != "" {
			continue
		}
		grown := ch.Kind == pipeline.ChangeModified && s.Old != nil && s.New.Size > s.Old.Size
		if ch.Kind != pipeline.ChangeAdded && !grown {
			continue
		}
		head := make([]byte, 0, 16)
		if rc, err := ch.New.Open(ctx); err == nil {
			b := make([]byte, 16)
			n, _ := rc.Read(b)
			head = b[:n]
			rc.Close()
		}
		ev := map[string]any{"entropy": fmt.Sprintf("%.3f", s.New.Entropy), "size": s.New.Size, "sha256": ch.New.SHA256,
			"first_bytes": hex.EncodeToString(head),
			"inspect":     fmt.Sprintf("fwvet unpack REF DIR && ent DIR%s; binwalk -E DIR%s", ch.Path, ch.Path)}
		msg := fmt.Sprintf("opaque data: %d bytes at %.2f bits per byte, no known format", s.New.Size, s.New.Entropy)
		if grown {
			ev["old_size"] = s.Old.Size
			msg = fmt.Sprintf("grew from %d to %d bytes of opaque data (%.2f bits per byte)", s.Old.Size, s.New.Size, s.New.Entropy)
		}
		if rg := ch.New.Region; rg != nil {
			// A region of a raw image: where it lies is what a reviewer
			// needs to find it with a hex editor.
			ev["offset"] = rg.Offset
			msg += fmt.Sprintf(", at offset 0x%x of the raw image", rg.Offset)
		}
		out = append(out, finding(pipeline.IDHighEntropyBlobAdded, ch, msg, ev))
	}
	return out, nil
}
