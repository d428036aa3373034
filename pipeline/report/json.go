package report

import (
	"encoding/json"
	"io"

	"github.com/fwvet/fwvet/pipeline"
)

// JSON writes the report as DESIGN.md fixes it (schema fwvet/report/v1).
type JSON struct{}

var _ pipeline.Encoder = JSON{}

// Encode implements pipeline.Encoder.
func (JSON) Encode(w io.Writer, r *pipeline.Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(r)
}

// EncodeAll writes several reports as a JSON array.
func (JSON) EncodeAll(w io.Writer, reps []*pipeline.Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(reps)
}
