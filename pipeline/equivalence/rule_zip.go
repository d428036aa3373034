package equivalence

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// zipTimestamps explains zip files (jars, APKs, vendor update bundles)
// that differ only in their members' timestamps: the DOS time and date of
// each local header and central directory record, and the times of the
// extended-timestamp ("UT", 0x5455), Info-ZIP Unix ("UX", 0x5855) and NTFS
// (0x000a) extra fields. Every other byte (names, sizes, CRCs, the
// compressed data, what lies between and around the records) must be
// equal, so a member's bytes, order and compression are the same; a zip
// rebuilt in another order or at another level is not explained by it.
type zipTimestamps struct{}

func (zipTimestamps) ID() string      { return "zip-timestamps" }
func (zipTimestamps) Version() string { return "1" }
func (zipTimestamps) Description() string {
	return "zip files whose members differ only in their timestamps (DOS time and date, UT, UX and NTFS extra fields)"
}

// maxZipMembers bounds the members a zip's timestamps are decoded for.
const maxZipMembers = 1 << 16

// stampField is one time field of a container (or a checksum over one),
// where it lies and how to show its value.
type stampField struct {
	member string // what holds it: a zip member's name, "inode 12"
	field  string // "local DOS time and date", "i_mtime", …
	at     [2]int64
	decode func(b []byte) string
}

func (zipTimestamps) Explain(_ context.Context, s, r *Input) (Result, error) {
	if !isZip(s.Head) || !isZip(r.Head) {
		return Result{}, nil
	}
	if s.Data == nil || r.Data == nil {
		// Its records are read in place, so a zip over the per-file limit
		// is not judged: limit-hit, never unexplained nor explained.
		return Result{}, ErrLimit
	}
	if len(s.Data) != len(r.Data) {
		return Result{Reason: fmt.Sprintf("zip-timestamps: %d bytes and %d: more than timestamps differ", len(s.Data), len(r.Data))}, nil
	}
	times, err := zipTimes(s.Data)
	if err != nil {
		return Result{Reason: "zip-timestamps: " + err.Error()}, nil
	}
	allowed := make([][2]int64, len(times))
	for i, t := range times {
		allowed[i] = t.at
	}
	diffs, truncated, _ := diffRanges(s.Data, r.Data, 1<<20)
	if truncated || !within(diffs, allowed) {
		return Result{Reason: "zip-timestamps: bytes other than the members' timestamps differ"}, nil
	}
	if n := len(times); n > 0 && times[0].field == "padding" {
		// zipTimes puts the padding after the end record first.
		if _, ok := fill(r.Data[times[0].at[0]:times[0].at[1]]); !ok {
			return Result{Reason: "zip-timestamps: rebuilt: what follows the end record is not padding"}, nil
		}
	}
	return stampResult("zip-timestamps", times, s.Data, r.Data, diffs), nil
}

// maxEvidence bounds the decoded values a rule lists.
const maxEvidence = 64

// stampResult explains a file whose differing bytes (diffs) all lie in
// fields: the evidence is each field that differs, decoded on both sides.
func stampResult(id string, fields []stampField, a, b []byte, diffs [][2]int64) Result {
	ap := Applied{ID: id, Ranges: diffs}
	for _, f := range fields {
		x, y := a[f.at[0]:f.at[1]], b[f.at[0]:f.at[1]]
		if string(x) == string(y) {
			continue
		}
		if len(ap.Before) == maxEvidence {
			ap.Before, ap.After = append(ap.Before, "…"), append(ap.After, "…")
			break
		}
		ap.Before = append(ap.Before, fmt.Sprintf("%s: %s %s", f.member, f.field, f.decode(x)))
		ap.After = append(ap.After, fmt.Sprintf("%s: %s %s", f.member, f.field, f.decode(y)))
	}
	return Result{Explained: true, Applied: []Applied{ap},
		NormalizedShipped: digest(masked(a, diffs)), NormalizedRebuilt: digest(masked(b, diffs))}
}

// paddingField is a field of one fill byte from..to, past what member ends.
func paddingField(member string, from, to int64) stampField {
	return stampField{member: member, field: "padding", at: [2]int64{from, to}, decode: func(p []byte) string {
		c, _ := fill(p)
		return fmt.Sprintf("%d bytes of %#02x", len(p), c)
	}}
}

func isZip(head []byte) bool {
	return len(head) >= 4 && (string(head[:4]) == "PK\x03\x04" || string(head[:4]) == "PK\x05\x06")
}

var errZip64 = errors.New("a zip64 archive, whose records are not decoded")

// zipTimes finds every timestamp field of the zip in b, walking the
// central directory and the local header each record points at.
func zipTimes(b []byte) ([]stampField, error) {
	le := binary.LittleEndian
	// The record and its comment end the file, or only padding (one fill
	// byte, as an aligner or a flash writer leaves) follows: pad is where
	// the run of the last byte that ends the file starts, if it is a fill.
	pad := len(b)
	if n := len(b); n > 0 && (b[n-1] == 0 || b[n-1] == 0xff) {
		for pad > 0 && b[pad-1] == b[n-1] {
			pad--
		}
	}
	eocd, end := -1, 0
	for i := len(b) - 22; i >= 0 && i >= len(b)-22-0xffff; i-- {
		if string(b[i:i+4]) != "PK\x05\x06" {
			continue
		}
		if e := i + 22 + int(le.Uint16(b[i+20:])); e == len(b) || e < len(b) && e >= pad {
			eocd, end = i, e
			break
		}
	}
	if eocd < 0 {
		return nil, errors.New("no end of central directory record")
	}
	var out []stampField
	if end < len(b) {
		out = append(out, paddingField("after the end record", int64(end), int64(len(b))))
	}
	count, size, off := int(le.Uint16(b[eocd+10:])), int64(le.Uint32(b[eocd+12:])), int64(le.Uint32(b[eocd+16:]))
	if count == 0xffff || size == 0xffffffff || off == 0xffffffff {
		return nil, errZip64
	}
	if count > maxZipMembers {
		return nil, fmt.Errorf("%d members, more than the %d decoded", count, maxZipMembers)
	}
	if off+size > int64(eocd) {
		return nil, errors.New("the central directory runs past its end record")
	}
	p := off
	for n := range count {
		if p+46 > off+size || string(b[p:p+4]) != "PK\x01\x02" {
			return nil, fmt.Errorf("central directory record %d is malformed", n)
		}
		nameLen, extraLen, commentLen := int64(le.Uint16(b[p+28:])), int64(le.Uint16(b[p+30:])), int64(le.Uint16(b[p+32:]))
		end := p + 46 + nameLen + extraLen + commentLen
		if end > off+size {
			return nil, fmt.Errorf("central directory record %d runs past the directory", n)
		}
		name := string(b[p+46 : p+46+nameLen])
		local := int64(le.Uint32(b[p+42:]))
		if le.Uint32(b[p+20:]) == 0xffffffff || le.Uint32(b[p+24:]) == 0xffffffff || local == 0xffffffff {
			return nil, errZip64
		}
		out = append(out, dosTimes(name, "central", p+12)...)
		out = append(out, extraTimes(b, name, "central", p+46+nameLen, extraLen)...)
		if local+30 > off || string(b[local:local+4]) != "PK\x03\x04" {
			return nil, fmt.Errorf("member %q: no local header at %#x", name, local)
		}
		lName, lExtra := int64(le.Uint16(b[local+26:])), int64(le.Uint16(b[local+28:]))
		if local+30+lName+lExtra > off {
			return nil, fmt.Errorf("member %q: local header runs into the central directory", name)
		}
		out = append(out, dosTimes(name, "local", local+10)...)
		out = append(out, extraTimes(b, name, "local", local+30+lName, lExtra)...)
		p = end
	}
	return out, nil
}

// dosTimes are the DOS time and date at at (time first, as both headers
// store them).
func dosTimes(member, where string, at int64) []stampField {
	return []stampField{{member: member, field: where + " DOS time and date", at: [2]int64{at, at + 4}, decode: func(b []byte) string {
		t, d := binary.LittleEndian.Uint16(b), binary.LittleEndian.Uint16(b[2:])
		return fmt.Sprintf("%04d-%02d-%02d %02d:%02d:%02d", 1980+int(d>>9), d>>5&0xf, d&0x1f, t>>11, t>>5&0x3f, 2*(t&0x1f))
	}}}
}

// extraTimes are the times in the extra fields at [at, at+n). Fields that
// do not parse add nothing, so their bytes must be equal.
func extraTimes(b []byte, member, where string, at, n int64) []stampField {
	le := binary.LittleEndian
	unix := func(b []byte) string {
		return time.Unix(int64(int32(le.Uint32(b))), 0).UTC().Format(time.RFC3339)
	}
	ntfs := func(b []byte) string {
		// 100 ns ticks since 1601.
		t := int64(le.Uint64(b))
		return time.Unix(t/1e7-11644473600, t%1e7*100).UTC().Format(time.RFC3339Nano)
	}
	var out []stampField
	add := func(field string, from, to int64, dec func([]byte) string) {
		out = append(out, stampField{member: member, field: where + " " + field, at: [2]int64{from, to}, decode: dec})
	}
	for p, end := at, at+n; p+4 <= end; {
		id, size := le.Uint16(b[p:]), int64(le.Uint16(b[p+2:]))
		data := p + 4
		if data+size > end {
			break
		}
		switch id {
		case 0x5455: // UT: flags, then the times it flags, 4 bytes each
			names := []string{"UT mtime", "UT atime", "UT ctime"}
			for i, q := 0, data+1; i < 3 && q+4 <= data+size && size > 0; i++ {
				if b[data]&(1<<i) != 0 {
					add(names[i], q, q+4, unix)
					q += 4
				}
			}
		case 0x5855: // UX: atime, mtime (then uid and gid in a local header)
			if size >= 8 {
				add("UX atime", data, data+4, unix)
				add("UX mtime", data+4, data+8, unix)
			}
		case 0x000a: // NTFS: reserved, then tagged attributes
			for q := data + 4; q+4 <= data+size; {
				tag, tsize := le.Uint16(b[q:]), int64(le.Uint16(b[q+2:]))
				if q+4+tsize > data+size {
					break
				}
				if tag == 1 && tsize == 24 {
					add("NTFS mtime", q+4, q+12, ntfs)
					add("NTFS atime", q+12, q+20, ntfs)
					add("NTFS ctime", q+20, q+28, ntfs)
				}
				q += 4 + tsize
			}
		}
		p = data + size
	}
	return out
}
