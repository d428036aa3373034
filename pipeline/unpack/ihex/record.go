package ihex

import (
	"errors"
	"fmt"
)

// Record types.
const (
	recData         = 0x00
	recEOF          = 0x01
	recSegmentBase  = 0x02
	recSegmentStart = 0x03
	recLinearBase   = 0x04
	recLinearStart  = 0x05
)

// recordMax is the largest decoded record: length, address, type, 255
// data bytes and the checksum.
const recordMax = 1 + 2 + 1 + 255 + 1

type record struct {
	typ  byte
	addr uint16
	data []byte
}

// parseRecord decodes one ":LLAAAATT<data>CC" line, without its line end
// or surrounding blanks, into buf (recordMax bytes), checking its length,
// checksum, type and the data size its type needs.
func parseRecord(line, buf []byte) (record, error) {
	if len(line) == 0 || line[0] != ':' {
		return record{}, errors.New("not a record: does not start with ':'")
	}
	digits := line[1:]
	if len(digits)%2 != 0 {
		return record{}, fmt.Errorf("odd number of hex digits (%d)", len(digits))
	}
	n := len(digits) / 2
	if n < 5 || n > recordMax {
		return record{}, fmt.Errorf("%d bytes, a record has 5 to %d", n, recordMax)
	}
	b := buf[:n]
	var sum byte
	for i := range b {
		hi, ok1 := unhex(digits[2*i])
		lo, ok2 := unhex(digits[2*i+1])
		if !ok1 || !ok2 {
			return record{}, fmt.Errorf("%q is not a hex byte", digits[2*i:2*i+2])
		}
		b[i] = hi<<4 | lo
		sum += b[i]
	}
	if int(b[0]) != n-5 {
		return record{}, fmt.Errorf("length byte says %d data bytes, the record holds %d", b[0], n-5)
	}
	if sum != 0 {
		return record{}, fmt.Errorf("checksum %#02x, want %#02x", b[n-1], b[n-1]-sum)
	}
	rec := record{typ: b[3], addr: uint16(b[1])<<8 | uint16(b[2]), data: b[4 : n-1]}
	want := -1
	switch rec.typ {
	case recData:
	case recEOF:
		want = 0
	case recSegmentBase, recLinearBase:
		want = 2
	case recSegmentStart, recLinearStart:
		want = 4
	default:
		return rec, fmt.Errorf("unknown record type %#02x", rec.typ)
	}
	if want >= 0 && len(rec.data) != want {
		return rec, fmt.Errorf("type %#02x record with %d data bytes, want %d", rec.typ, len(rec.data), want)
	}
	return rec, nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
