package ihex

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// maxLine bounds a line: a record takes at most 521 characters, the rest
// leaves room for blanks.
const maxLine = 4096

// lines yields the records of a file, one line at a time, and keeps the
// line number for errors.
type lines struct {
	sc   *bufio.Scanner
	n    int
	buf  [recordMax]byte
	base uint32 // from the last type 02 or 04 record
	seg  bool   // base came from a type 02 record
}

func newLines(r io.Reader) *lines {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, maxLine), maxLine)
	sc.Split(splitLines)
	return &lines{sc: sc}
}

// splitLines ends a line at LF, CRLF or a lone CR.
func splitLines(data []byte, atEOF bool) (int, []byte, error) {
	i := bytes.IndexAny(data, "\r\n")
	switch {
	case i < 0 && atEOF && len(data) > 0:
		return len(data), data, nil
	case i < 0:
		return 0, nil, nil
	case data[i] == '\n':
		return i + 1, data[:i], nil
	case i+1 < len(data) && data[i+1] == '\n':
		return i + 2, data[:i], nil
	case i+1 < len(data) || atEOF:
		return i + 1, data[:i], nil
	}
	return 0, nil, nil // a CR at the end of the buffer: is an LF next?
}

// errEOF is the EOF record.
var errEOF = errors.New("EOF record")

// next returns the next data record's absolute address and bytes (valid
// until the following call), or errEOF at the EOF record.
func (l *lines) next() (uint64, []byte, error) {
	for l.sc.Scan() {
		l.n++
		line := l.sc.Bytes()
		if l.n == 1 {
			line = bytes.TrimPrefix(line, bom)
		}
		line = bytes.Trim(line, " \t")
		if len(line) == 0 {
			continue
		}
		rec, err := parseRecord(line, l.buf[:])
		if err != nil {
			return 0, nil, fmt.Errorf("ihex: line %d: %w", l.n, err)
		}
		switch rec.typ {
		case recEOF:
			return 0, nil, errEOF
		case recSegmentBase:
			l.base, l.seg = (uint32(rec.data[0])<<8|uint32(rec.data[1]))<<4, true
		case recLinearBase:
			l.base, l.seg = (uint32(rec.data[0])<<8|uint32(rec.data[1]))<<16, false
		case recData:
			end := uint64(rec.addr) + uint64(len(rec.data))
			if l.seg && end > 1<<16 {
				return 0, nil, fmt.Errorf("ihex: line %d: data at offset %#04x runs %d bytes past its 64 KiB segment", l.n, rec.addr, end-1<<16)
			}
			addr := uint64(l.base) + uint64(rec.addr)
			if addr+uint64(len(rec.data)) > 1<<32 {
				return 0, nil, fmt.Errorf("ihex: line %d: data at %#x runs past 4 GiB", l.n, addr)
			}
			return addr, rec.data, nil
		}
	}
	if err := l.sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return 0, nil, fmt.Errorf("ihex: line %d: longer than %d bytes", l.n+1, maxLine)
		}
		return 0, nil, fmt.Errorf("ihex: after line %d: %w", l.n, err)
	}
	return 0, nil, fmt.Errorf("ihex: no EOF record (type 01) after line %d: the image is incomplete", l.n)
}
