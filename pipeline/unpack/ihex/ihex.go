// Package ihex reads Intel HEX files as a decompression layer: the output is
// the binary image the records describe, from the lowest address written to
// the highest, with the gaps filled with 0xFF as erased flash reads (the
// bytes `srec_cat IN -intel -fill 0xFF -over IN -intel` gives, moved to
// start at offset 0).
//
// Records may come in any address order. The reader first gathers up to
// MaxBuffered bytes of data in memory, sorted by address; a file whose data
// fits is expanded whatever its order. Past that bound it streams, which
// needs the rest of the records in ascending address order: a record below
// what was already written is then an error, as is any out-of-order file
// larger than the bound. Overlapping records must agree on their bytes.
//
// Every record's checksum is verified; errors name the line. A file must
// end with its EOF record (type 01): a flash image without one is
// incomplete, so its absence is an error, not a silent short image. What
// follows the EOF record is ignored. Records whose data would wrap around a
// 64 KiB segment (type 02 addressing) or past 4 GiB (type 04) are rejected:
// no tool writes them and their meaning differs between readers.
package ihex

import (
	"bytes"
	"io"

	"github.com/fwvet/fwvet/pipeline"
)

// Format is the Intel HEX format.
type Format struct{}

var _ pipeline.Decompressor = Format{}

// MaxGap bounds the 0xFF fill between two records, so a few bytes of text
// cannot make us write gigabytes.
const MaxGap = 256 << 20

// MaxBuffered bounds the data held in memory to sort records that are not
// in ascending address order.
const MaxBuffered = 64 << 20

// maxBuffered is MaxBuffered, lowered by tests.
var maxBuffered = MaxBuffered

var bom = []byte{0xEF, 0xBB, 0xBF}

// Name implements pipeline.Format.
func (Format) Name() string { return "ihex" }

// Match implements pipeline.Format: the first non-blank line, after an
// optional UTF-8 byte order mark, is a record with a valid checksum.
func (Format) Match(head []byte) bool {
	head = bytes.TrimLeft(bytes.TrimPrefix(head, bom), " \t\r\n")
	if len(head) == 0 || head[0] != ':' {
		return false
	}
	if i := bytes.IndexAny(head, "\r\n"); i >= 0 {
		head = head[:i]
	}
	var buf [recordMax]byte
	_, err := parseRecord(bytes.TrimRight(head, " \t"), buf[:])
	return err == nil
}

// NewReader implements pipeline.Decompressor. The records are read on the
// first Read.
func (Format) NewReader(r io.Reader) (io.ReadCloser, error) {
	return newReader(r), nil
}
