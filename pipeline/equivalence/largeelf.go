package equivalence

import (
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"sort"
)

// ELF files larger than the per-file limit are compared as they stream,
// never whole in memory: a first pass over both finds the differing ranges
// (keeping their bytes, within bounds) and the ELF headers and section
// table; a second over the shipped file reads the sections that name and
// hold build ids, debug links and symbols; a third hashes the shipped
// file with the build ids masked.
const (
	// maxStreamRanges bounds the differing ranges kept per large file.
	maxStreamRanges = 4096
	// maxStreamCapture bounds the bytes kept of a large file's differing
	// ranges, and of the sections read in the second pass.
	maxStreamCapture = 64 << 20
	streamChunk      = 1 << 20
)

// region is a piece of a file kept in memory.
type region struct {
	off int64
	b   []byte
}

// sparse is an io.ReaderAt over the kept regions of a file; other bytes read as zeros.
type sparse struct {
	size    int64
	regions []region
}

func (s *sparse) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off >= s.size {
		return 0, io.EOF
	}
	n := len(p)
	if off+int64(n) > s.size {
		n = int(s.size - off)
	}
	clear(p[:n])
	for _, r := range s.regions {
		lo, hi := max(off, r.off), min(off+int64(n), r.off+int64(len(r.b)))
		if lo < hi {
			copy(p[lo-off:hi-off], r.b[lo-r.off:hi-r.off])
		}
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// want is a region to keep as a stream goes by.
type want struct {
	off, n int64
	buf    []byte
}

func (w *want) take(chunk []byte, pos int64) {
	lo, hi := max(pos, w.off), min(pos+int64(len(chunk)), w.off+w.n)
	if lo >= hi {
		return
	}
	if w.buf == nil {
		w.buf = make([]byte, w.n)
	}
	copy(w.buf[lo-w.off:hi-w.off], chunk[lo-pos:hi-pos])
}

// streamPass reads a stream to its end, giving every chunk and its offset to each.
func streamPass(ctx context.Context, open func(context.Context) (io.ReadCloser, error), each func(chunk []byte, pos int64)) error {
	rc, err := open(ctx)
	if err != nil {
		return err
	}
	defer rc.Close()
	buf := make([]byte, streamChunk)
	var pos int64
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := io.ReadFull(rc, buf)
		if n > 0 {
			each(buf[:n], pos)
			pos += int64(n)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// streamDiff is the first pass: the differing ranges of two equally long
// streams, the rebuilt side's bytes in them, and the shipped side's bytes
// of the wanted regions.
type streamDiff struct {
	ranges   [][2]int64
	more     bool
	rebuilt  []region // the rebuilt side's bytes of ranges, while within bounds
	capped   bool
	differed int64
}

func diffStreams(ctx context.Context, a, b func(context.Context) (io.ReadCloser, error), wants []*want) (*streamDiff, error) {
	ra, err := a(ctx)
	if err != nil {
		return nil, err
	}
	defer ra.Close()
	rb, err := b(ctx)
	if err != nil {
		return nil, err
	}
	defer rb.Close()
	d := &streamDiff{}
	ba, bb := make([]byte, streamChunk), make([]byte, streamChunk)
	var pos int64
	start := int64(-1)
	var kept int64
	closeRange := func(end int64) {
		if len(d.ranges) < maxStreamRanges {
			d.ranges = append(d.ranges, [2]int64{start, end})
		} else {
			d.more = true
		}
		start = -1
	}
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		na, errA := io.ReadFull(ra, ba)
		nb, errB := io.ReadFull(rb, bb)
		if na != nb {
			return nil, fmt.Errorf("the files differ in length")
		}
		for _, w := range wants {
			w.take(ba[:na], pos)
		}
		if !bytes.Equal(ba[:na], bb[:nb]) {
			for i := 0; i < na; i++ {
				if ba[i] != bb[i] {
					d.differed++
					if start < 0 {
						start = pos + int64(i)
					}
				} else if start >= 0 {
					closeRange(pos + int64(i))
				}
			}
			// Keep the rebuilt bytes of this chunk's differences.
			if kept+int64(na) <= maxStreamCapture {
				d.rebuilt = append(d.rebuilt, region{pos, bytes.Clone(bb[:nb])})
				kept += int64(na)
			} else {
				d.capped = true
			}
		} else if start >= 0 {
			closeRange(pos)
		}
		pos += int64(na)
		done := errA == io.EOF || errA == io.ErrUnexpectedEOF
		if errA != nil && !done {
			return nil, errA
		}
		if errB != nil && errB != io.EOF && errB != io.ErrUnexpectedEOF {
			return nil, errB
		}
		if done {
			break
		}
	}
	if start >= 0 {
		closeRange(pos)
	}
	return d, nil
}

// elfTable reads where the section table lies from an ELF header.
func elfTable(h []byte) (off, n int64, ok bool) {
	if len(h) < 64 || !isELF(h) {
		return 0, 0, false
	}
	var bo binary.ByteOrder = binary.LittleEndian
	if h[elf.EI_DATA] == byte(elf.ELFDATA2MSB) {
		bo = binary.BigEndian
	}
	switch elf.Class(h[elf.EI_CLASS]) {
	case elf.ELFCLASS64:
		return int64(bo.Uint64(h[0x28:])), int64(bo.Uint16(h[0x3a:])) * int64(bo.Uint16(h[0x3c:])), true
	case elf.ELFCLASS32:
		return int64(bo.Uint32(h[0x20:])), int64(bo.Uint16(h[0x2e:])) * int64(bo.Uint16(h[0x30:])), true
	}
	return 0, 0, false
}

// largeELF compares two ELF files of one size as they stream. diffs, when
// not nil, describe an unexplained file.
func largeELF(ctx context.Context, s, r *Input) (Result, *Differences, error) {
	shoff, shlen, ok := elfTable(s.Head)
	if !ok || shlen <= 0 || shlen > 1<<20 || shoff < 0 || shoff+shlen > s.Size {
		return Result{Reason: "elf-build-id: no readable section table"}, nil, nil
	}
	head := &want{off: 0, n: min(int64(HeadSize), s.Size)}
	table := &want{off: shoff, n: shlen}
	tail := &want{off: max(0, s.Size-int64(len(moduleSigMagic))), n: min(s.Size, int64(len(moduleSigMagic)))}
	d, err := diffStreams(ctx, s.Open, r.Open, []*want{head, table, tail})
	if err != nil {
		return Result{Reason: "elf-build-id: " + err.Error()}, nil, nil
	}
	// Second pass: the sections that hold names, notes, debug links and symbols.
	sp := &sparse{size: s.Size, regions: []region{{0, head.buf}, {shoff, table.buf}}}
	f, err := elf.NewFile(sp)
	if err != nil {
		return Result{Reason: "elf-build-id: " + err.Error()}, nil, nil
	}
	var wants []*want
	var total int64
	for _, sec := range f.Sections {
		small := sec.FileSize <= 1<<20
		keep := false
		switch sec.Type {
		case elf.SHT_STRTAB, elf.SHT_SYMTAB, elf.SHT_DYNSYM:
			keep = true
		case elf.SHT_NOTE:
			keep = small
		case elf.SHT_PROGBITS:
			keep = small && sec.Flags&elf.SHF_ALLOC == 0 && sec.FileSize <= 4096
		}
		if keep && sec.FileSize > 0 && total+int64(sec.FileSize) <= maxStreamCapture && int64(sec.Offset+sec.FileSize) <= s.Size {
			wants = append(wants, &want{off: int64(sec.Offset), n: int64(sec.FileSize)})
			total += int64(sec.FileSize)
		}
	}
	if err := streamPass(ctx, s.Open, func(chunk []byte, pos int64) {
		for _, w := range wants {
			w.take(chunk, pos)
		}
	}); err != nil {
		return Result{}, nil, err
	}
	for _, w := range wants {
		if w.buf != nil {
			sp.regions = append(sp.regions, region{w.off, w.buf})
		}
	}
	masks, _, err := elfMasksAt(sp, s.Size)
	if err != nil {
		return Result{Reason: "elf-build-id: shipped: " + err.Error()}, nil, nil
	}
	allowed := make([][2]int64, len(masks))
	for i, m := range masks {
		allowed[i] = m.r
	}
	if d.more || !within(d.ranges, allowed) {
		if string(tail.buf) == moduleSigMagic {
			// A signed module: module-signature would have to read it whole.
			return Result{}, nil, ErrLimit
		}
		secs, fns := elfWhereAt(sp, s.Size, d.ranges)
		diffs := &Differences{Ranges: capRanges(d.ranges, DefaultMaxRanges), Truncated: d.more || len(d.ranges) > DefaultMaxRanges,
			DifferingBytes: d.differed, Sections: secs, Functions: fns}
		return Result{Reason: "elf-build-id: bytes differ outside the build ids and debug links"}, diffs, nil
	}
	if d.capped {
		return Result{}, nil, ErrLimit
	}
	after := &sparse{size: s.Size, regions: append(append([]region{}, sp.regions...), d.rebuilt...)}
	ap := Applied{ID: "elf-build-id"}
	for _, m := range masks {
		x, y := make([]byte, m.r[1]-m.r[0]), make([]byte, m.r[1]-m.r[0])
		sp.ReadAt(x, m.r[0])
		after.ReadAt(y, m.r[0])
		if bytes.Equal(x, y) {
			continue
		}
		ap.Ranges = append(ap.Ranges, m.r)
		ap.Before = append(ap.Before, m.section+" "+decodeELFMask(m.section, x))
		ap.After = append(ap.After, m.section+" "+decodeELFMask(m.section, y))
	}
	// Third pass: the shipped file with the masks zeroed. The first pass
	// showed the rebuilt file equal to it outside them.
	sort.Slice(allowed, func(i, j int) bool { return allowed[i][0] < allowed[j][0] })
	h := sha256.New()
	if err := streamPass(ctx, s.Open, func(chunk []byte, pos int64) {
		c := chunk
		for _, a := range allowed {
			lo, hi := max(pos, a[0]), min(pos+int64(len(chunk)), a[1])
			if lo < hi {
				if &c[0] == &chunk[0] {
					c = bytes.Clone(chunk)
				}
				clear(c[lo-pos : hi-pos])
			}
		}
		h.Write(c)
	}); err != nil {
		return Result{}, nil, err
	}
	norm := "sha256:" + hex.EncodeToString(h.Sum(nil))
	return Result{Explained: true, Applied: []Applied{ap}, NormalizedShipped: norm, NormalizedRebuilt: norm}, nil, nil
}
