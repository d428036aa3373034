package ihex

import (
	"bytes"
	"fmt"
	"io"
	"sort"
)

// segment is a run of contiguous data gathered before output starts.
type segment struct {
	addr uint64
	data []byte
	line int
}

func (s segment) end() uint64 { return s.addr + uint64(len(s.data)) }

// segmentCost is what a segment costs against maxBuffered beyond its data,
// so a file of scattered one-byte records is bounded too.
const segmentCost = 64

// reader turns records into the image. Before the first byte of output it
// gathers data into segs; then it places each segment, or each record once
// streaming, after a fill from the previous one.
type reader struct {
	src       *lines
	loaded    bool
	segs      []segment
	streaming bool // records remain to be read after segs
	started   bool
	next      uint64 // address of the byte after the last placed one
	gap       uint64 // 0xFF bytes still to write before cur
	cur       []byte
	err       error
}

func newReader(r io.Reader) *reader { return &reader{src: newLines(r)} }

func (r *reader) Close() error { return nil }

func (r *reader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if !r.loaded {
		r.loaded = true
		if r.err = r.load(); r.err != nil {
			return 0, r.err
		}
	}
	n := 0
	for n < len(p) {
		switch {
		case r.gap > 0:
			k := min(uint64(len(p)-n), r.gap)
			fill(p[n:n+int(k)], 0xFF)
			n += int(k)
			r.gap -= k
		case len(r.cur) > 0:
			k := copy(p[n:], r.cur)
			n += k
			r.cur = r.cur[k:]
		default:
			if err := r.advance(); err != nil {
				r.err = err
				if n > 0 {
					return n, nil
				}
				return 0, err
			}
		}
	}
	return n, nil
}

// advance places the next segment or record, or returns io.EOF at the end.
func (r *reader) advance() error {
	if len(r.segs) > 0 {
		s := r.segs[0]
		r.segs[0] = segment{} // let the collector have it once written
		r.segs = r.segs[1:]
		return r.place(s.addr, s.data, s.line)
	}
	if !r.streaming {
		return io.EOF
	}
	addr, data, err := r.src.next()
	if err == errEOF {
		r.streaming = false
		return io.EOF
	}
	if err != nil || len(data) == 0 {
		return err
	}
	return r.place(addr, data, r.src.n)
}

// place queues data at addr after the fill from the last placed byte.
func (r *reader) place(addr uint64, data []byte, line int) error {
	if !r.started {
		r.started, r.next = true, addr
	}
	if addr < r.next {
		return fmt.Errorf("ihex: line %d: data at %#x is below %#x, already written: past the first %d bytes of data the records must be in ascending address order", line, addr, r.next, maxBuffered)
	}
	if gap := addr - r.next; gap > MaxGap {
		return fmt.Errorf("ihex: line %d: a gap of %d bytes from %#x to %#x exceeds the %d-byte bound", line, gap, r.next, addr, MaxGap)
	}
	r.gap, r.cur, r.next = addr-r.next, data, addr+uint64(len(data))
	return nil
}

// load gathers records until the EOF record or maxBuffered bytes, then
// sorts them by address if they came out of order.
func (r *reader) load() error {
	used, ascending := 0, true
	for {
		addr, data, err := r.src.next()
		if err == errEOF {
			break
		}
		if err != nil {
			return err
		}
		if len(data) == 0 {
			continue
		}
		last := len(r.segs) - 1
		switch {
		case last >= 0 && addr == r.segs[last].end():
			old := cap(r.segs[last].data)
			r.segs[last].data = append(r.segs[last].data, data...)
			used += cap(r.segs[last].data) - old
		default:
			if last >= 0 && addr < r.segs[last].end() {
				ascending = false
			}
			r.segs = append(r.segs, segment{addr: addr, data: append([]byte(nil), data...), line: r.src.n})
			used += len(data) + segmentCost
		}
		if used > maxBuffered {
			if !ascending {
				return fmt.Errorf("ihex: line %d: more than %d bytes of data in records out of address order", r.src.n, maxBuffered)
			}
			r.streaming = true
			return nil
		}
	}
	if !ascending {
		return r.merge()
	}
	return nil
}

// merge sorts the segments by address and joins overlapping ones, which
// must agree on the bytes they share.
func (r *reader) merge() error {
	sort.SliceStable(r.segs, func(i, j int) bool { return r.segs[i].addr < r.segs[j].addr })
	out := r.segs[:0]
	for _, s := range r.segs {
		if len(out) == 0 || s.addr >= out[len(out)-1].end() {
			out = append(out, s)
			continue
		}
		prev := &out[len(out)-1]
		shared := min(s.end(), prev.end()) - s.addr
		if !bytes.Equal(prev.data[s.addr-prev.addr:][:shared], s.data[:shared]) {
			return fmt.Errorf("ihex: line %d: data at %#x differs from line %d's for the same addresses", s.line, s.addr, prev.line)
		}
		if s.end() > prev.end() {
			prev.data = append(prev.data, s.data[shared:]...)
		}
	}
	r.segs = out
	return nil
}

func fill(b []byte, v byte) {
	if len(b) == 0 {
		return
	}
	b[0] = v
	for i := 1; i < len(b); i *= 2 {
		copy(b[i:], b[:i])
	}
}
