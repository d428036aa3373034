// Package report writes reports in the output formats fwvet offers; each
// format is one Encoder.
package report

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/fwvet/fwvet/pipeline"
)

// Encoders lists the output formats by the name --format takes.
func Encoders() map[string]pipeline.Encoder {
	return map[string]pipeline.Encoder{
		"text":  Text{},
		"json":  JSON{},
		"sarif": SARIF{},
	}
}

// ForFormat returns the encoder for a --format value.
func ForFormat(name string) (pipeline.Encoder, error) {
	if e, ok := Encoders()[name]; ok {
		return e, nil
	}
	names := make([]string, 0, len(Encoders()))
	for n := range Encoders() {
		names = append(names, n)
	}
	sort.Strings(names)
	return nil, fmt.Errorf("unknown format %q (want one of %s)", name, strings.Join(names, ", "))
}

// MultiEncoder writes several reports (one per platform of a
// multi-platform image) as one document.
type MultiEncoder interface {
	EncodeAll(w io.Writer, reps []*pipeline.Report) error
}

// EncodeAll writes one report as the encoder does, and several as one
// document where the format has a way (a JSON array, SARIF runs), or one
// after the other.
func EncodeAll(enc pipeline.Encoder, w io.Writer, reps []*pipeline.Report) error {
	if len(reps) == 1 {
		return enc.Encode(w, reps[0])
	}
	if m, ok := enc.(MultiEncoder); ok {
		return m.EncodeAll(w, reps)
	}
	for i, r := range reps {
		if i > 0 {
			if _, err := io.WriteString(w, "\n"); err != nil {
				return err
			}
		}
		if err := enc.Encode(w, r); err != nil {
			return err
		}
	}
	return nil
}
