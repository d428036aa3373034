// Package report writes reports in the output formats fwvet offers; each
// format is one Encoder.
package report

import (
	"fmt"
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
