package unpack

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"

	"github.com/fwvet/fwvet/pipeline"
)

// A raw flash dump or vendor blob starts with no known format: a vendor
// header, then a kernel, a root file system, a configuration partition, at
// offsets only the vendor knows. The carver finds containers by their
// signatures at any offset, cuts each out, and names every byte range no
// format claimed, so that an added unexplained region shows in the diff as
// a file of its own.

// rawFormat is the container name of a carved image in chains and in the
// tree's formats.
const rawFormat = "raw"

const (
	// carveMinSize is the smallest file inside an image that is searched
	// for embedded containers; smaller ones are configuration and text.
	carveMinSize = 64 << 10
	// carveChunk is how much of an image is searched at once.
	carveChunk = 1 << 20
	// fillRunMin is the shortest run of one fill byte split off as padding:
	// shorter runs occur inside compressed data and headers.
	fillRunMin = 16
	// streamFillRun is the run of one fill byte that ends a compressed
	// stream of unknown length.
	streamFillRun = 256
	// maxCandidates bounds the signature hits kept for one image.
	maxCandidates = 1 << 16
	// attemptCost is what checking a candidate costs against the scan's
	// budget at least, and decodeCost what starting a decompressor costs
	// (it may allocate its window).
	attemptCost = 4 << 10
	decodeCost  = 1 << 20
)

// scanBudget bounds the bytes the format checks of one scan may read: four
// times the image, plus 64 MiB. A hostile image packed with signatures, or
// with cpio headers that each lead to the end, makes the scan stop with a
// limit instead of reading it over and over.
func scanBudget(size int64) int64 { return 4*size + 64<<20 }

// budgetReader counts the bytes read through it against a scan's budget.
type budgetReader struct {
	r    io.ReaderAt
	left int64
}

var errBudget = errors.New("carving budget spent")

func (b *budgetReader) ReadAt(p []byte, off int64) (int, error) {
	if b.left <= 0 {
		return 0, errBudget
	}
	n, err := b.r.ReadAt(p, off)
	b.left -= int64(n)
	return n, err
}

// signature is one Carvable format's magic, ready for the scan.
type signature struct {
	pipeline.Signature
	f pipeline.Format
}

// signatures lists the magics of the carvable formats, in format order.
func signatures(formats []pipeline.Format) (sigs []signature, reach int) {
	for _, f := range formats {
		c, ok := f.(pipeline.Carvable)
		if !ok {
			continue
		}
		for _, s := range c.Signatures() {
			if len(s.Magic) == 0 || s.Offset < 0 {
				continue
			}
			if s.Align < 1 {
				s.Align = 1
			}
			sigs = append(sigs, signature{s, f})
			reach = max(reach, s.Offset+len(s.Magic))
		}
	}
	return sigs, reach
}

// eachSignature calls fn for each magic of sigs that starts in buf before
// limit and puts its container at an aligned offset of the input, buf
// being the input's bytes from base, until fn returns false.
func eachSignature(sigs []signature, buf []byte, base int64, limit int, fn func(start int64, s signature) bool) {
	for _, s := range sigs {
		for i := 0; ; {
			j := bytes.Index(buf[i:], s.Magic)
			if j < 0 {
				break
			}
			pos := i + j
			i = pos + 1
			if pos >= limit {
				break
			}
			start := base + int64(pos) - int64(s.Offset)
			if start < 0 || start%int64(s.Align) != 0 {
				continue
			}
			if !fn(start, s) {
				return
			}
		}
	}
}

// sigWatch looks for the magics of sigs in a file as it is hashed, so that
// a file that holds none is not read again to be carved (files of text and
// data in a root file system, mostly).
type sigWatch struct {
	sigs  []signature
	reach int
	// seam holds the last reach-1 bytes, from offset seamAt, for a magic
	// split between two writes.
	seam   []byte
	seamAt int64
	found  bool
}

func newSigWatch(sigs []signature, reach int) *sigWatch {
	return &sigWatch{sigs: sigs, reach: reach, seam: make([]byte, 0, 2*reach)}
}

func (w *sigWatch) Write(b []byte) {
	if w.found || len(b) == 0 {
		return
	}
	hit := func(int64, signature) bool { w.found = true; return false }
	at := w.seamAt + int64(len(w.seam))
	if len(w.seam) > 0 {
		joined := append(w.seam, b[:min(len(b), w.reach-1)]...)
		eachSignature(w.sigs, joined, w.seamAt, len(w.seam), hit)
	}
	if !w.found {
		eachSignature(w.sigs, b, at, len(b), hit)
	}
	// Keep the last reach-1 bytes of what has been seen.
	keep := w.reach - 1
	if len(b) >= keep {
		w.seam = append(w.seam[:0], b[len(b)-keep:]...)
	} else {
		w.seam = append(w.seam, b...)
		w.seam = w.seam[:copy(w.seam, w.seam[max(0, len(w.seam)-keep):])]
	}
	w.seamAt = at + int64(len(b)) - int64(len(w.seam))
}

// candidate is a container found at start that its format accepted.
type candidate struct {
	start int64
	f     pipeline.Format
	// span is its length, or -1 when the format cannot tell.
	span int64
}

// shouldCarve reports whether an input that no format claims whole may be
// a raw image: an artifact itself, or a large non-ELF file inside one (a
// firmware.bin in a vendor tar, a kernel from a uImage).
func (r *run) shouldCarve(in input, head []byte) bool {
	return !in.carved && (in.top || r.mayHoldImage(in.size, head))
}

var elfMagic = []byte("\x7fELF")

// mayHoldImage reports whether a file inside an image is worth searching
// for embedded containers.
func (r *run) mayHoldImage(size int64, head []byte) bool {
	return len(r.u.sigs) > 0 && size >= carveMinSize && !bytes.HasPrefix(head, elfMagic)
}

// shortSpan reports whether the container f found at the start of in ends
// before the input does, leaving bytes that are not padding: data appended
// after a file system must not go unseen.
func (r *run) shortSpan(f pipeline.Format, in input) bool {
	sp, ok := f.(pipeline.Spanner)
	if !ok {
		return false
	}
	n, err := sp.Span(in.ra, in.size)
	if err != nil || n <= 0 || n >= in.size {
		return false
	}
	_, fill, err := fillRun(in.ra, n, in.size)
	return err == nil && fill < in.size-n
}

// shortStream measures the compressed stream that d found at the start of
// in. When it ends before the input does, leaving bytes that are not
// padding, it returns the stream as the first candidate of a carve;
// otherwise nil, and the stream is the whole input as before. A stream that
// does not decode, or that passes the file size or ratio limits, is left to
// decompress, which reports it.
//
// Decoding a stream to its end costs a second decode when it turns out to
// be the whole input, so a stream is measured only when the input holds a
// signature past its start (a kernel followed by a root file system), or
// when the stream is a whole artifact that matched without a magic (lzma),
// as what follows it may be anything.
func (r *run) shortStream(ctx context.Context, d pipeline.Decompressor, in input) *candidate {
	if _, magic := d.(pipeline.Carvable); (magic || !in.top) && !r.signatureAfter(in, 1) {
		return nil
	}
	n, ok := r.streamLen(ctx, d, in)
	if !ok || n <= 0 || n >= in.size {
		return nil
	}
	if _, fill, err := fillRun(in.ra, n, in.size); err != nil || fill >= in.size-n {
		return nil
	}
	return &candidate{start: 0, f: d, span: n}
}

// streamLen decodes the stream at the start of in to its end, within the
// file size and ratio limits, and returns how many bytes it took. The
// decoders read through a bufio.Reader of their own size, which they use
// as it is (gzip and lzma then read no byte past the stream's end), so the
// bytes still buffered are subtracted; a decoder that buffers more ahead
// makes the stream look longer by what it read ahead.
func (r *run) streamLen(ctx context.Context, d pipeline.Decompressor, in input) (int64, bool) {
	src := &countingReader{r: io.NewSectionReader(in.ra, 0, in.size)}
	br := bufio.NewReaderSize(src, 64<<10)
	rc, err := d.NewReader(br)
	if err != nil {
		return 0, false
	}
	defer rc.Close()
	lim := r.u.opts.Limits
	buf := make([]byte, 256<<10)
	var out int64
	for {
		if ctx.Err() != nil {
			return 0, false
		}
		k, err := rc.Read(buf)
		out += int64(k)
		if out > lim.MaxFileSize || (out > lim.RatioMinBytes && float64(out) > lim.MaxRatio*float64(max(src.n, 1))) {
			return 0, false
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, false
		}
	}
	return src.n - int64(br.Buffered()), true
}

// signatureAfter reports whether a carvable format's magic lies in in at
// or past offset from, with bytes there that the format's Match accepts:
// a two-byte magic alone (JFFS2's) turns up in any compressed stream.
func (r *run) signatureAfter(in input, from int64) bool {
	buf := carveBuf(in.size, r.u.sigReach)
	head := make([]byte, pipeline.MatchSize)
	for base := int64(0); base < in.size; base += carveChunk {
		n, err := in.ra.ReadAt(buf[:min(int64(len(buf)), in.size-base)], base)
		if err != nil && !errors.Is(err, io.EOF) {
			return false
		}
		chunk := buf[:n]
		found := false
		eachSignature(r.u.sigs, chunk, base, carveChunk, func(start int64, s signature) bool {
			if start < from {
				return true
			}
			var h []byte
			if rel := start - base; rel >= 0 {
				h = chunk[rel:min(int64(n), rel+pipeline.MatchSize)]
			} else {
				k, err := in.ra.ReadAt(head[:min(int64(len(head)), in.size-start)], start)
				if err != nil && !errors.Is(err, io.EOF) {
					return true
				}
				h = head[:k]
			}
			found = s.f.Match(h)
			return !found
		})
		if found {
			return true
		}
	}
	return false
}

// carve cuts in into regions, each a file of a "raw" container, and
// unpacks them like any archive. lead, when set, is a container of known
// length at the start that no signature finds (a compressed stream). It
// returns errNotContainer when no container was found.
func (r *run) carve(ctx context.Context, in input, lead *candidate) error {
	where := pipeline.Where(in.chain[:len(in.chain)-1], in.chain[len(in.chain)-1])
	cands, err := r.scan(ctx, in, lead)
	if err != nil {
		return fmt.Errorf("searching %s for embedded containers: %w", where, err)
	}
	if len(cands) == 0 {
		return errNotContainer
	}
	regions, err := layout(in.ra, in.size, cands)
	if err != nil {
		return fmt.Errorf("reading %s: %w", where, err)
	}
	r.sawFormat(rawFormat, in)
	chain := append(append([]string(nil), in.chain...), rawFormat)
	r.log.WithField("path", where).Debugf("carved %d regions (%d containers)", len(regions), len(cands))
	walk := func(visit func(*pipeline.Header, pipeline.OpenFunc) error) error {
		seq := map[string]int{}
		for _, rg := range regions {
			seq[rg.Format]++
			h := &pipeline.Header{
				Name: fmt.Sprintf("%s-%d", rg.Format, seq[rg.Format]),
				Type: pipeline.TypeFile, Mode: 0o644, Size: rg.Size, Region: rg,
			}
			if err := visit(h, pipeline.OpenSection(in.ra, rg.Offset, rg.Size)); err != nil {
				return err
			}
		}
		return nil
	}
	return r.archive(ctx, walk, in, chain)
}

// carveBuf is the buffer a search of an input of size bytes reads into: a
// chunk, and the farthest reach of a magic past it. It is no larger than
// the input needs: every compressed file of an image is searched, most of
// a few kilobytes, and a chunk-sized buffer for each was a megabyte of
// garbage per file.
func carveBuf(size int64, reach int) []byte {
	return make([]byte, min(size, carveChunk)+int64(max(reach, pipeline.MatchSize)))
}

// scan finds every signature in the input whose format accepts the bytes
// from its start, in order of offset.
func (r *run) scan(ctx context.Context, in input, lead *candidate) ([]candidate, error) {
	sigs, reach := r.u.sigs, r.u.sigReach
	var (
		cands []candidate
		seen  = map[int64]bool{}
		// covered is the end of the last container of known length.
		covered int64
		buf     = carveBuf(in.size, reach)
		head    = make([]byte, pipeline.MatchSize)
		budget  = &budgetReader{r: in.ra, left: scanBudget(in.size)}
	)
	if lead != nil {
		cands = append(cands, *lead)
		seen[lead.start] = true
		covered = lead.start + lead.span
	}
	for base := int64(0); base < in.size; base += carveChunk {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		// Inside a container of known length there is nothing to find:
		// the search resumes where it ends, less what a magic found just
		// after it needs before it (ext4's lies 1080 bytes in).
		if covered-int64(reach) > base {
			base = covered - int64(reach)
		}
		n, err := in.ra.ReadAt(buf[:min(int64(len(buf)), in.size-base)], base)
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		chunk := buf[:n]
		var hits []candidate
		// A magic that starts past carveChunk is found by the next chunk.
		eachSignature(sigs, chunk, base, carveChunk, func(start int64, s signature) bool {
			hits = append(hits, candidate{start: start, f: s.f})
			return true
		})
		sort.SliceStable(hits, func(i, j int) bool { return hits[i].start < hits[j].start })
		for _, c := range hits {
			// A signature inside a container of known length is part of
			// it (the entries of a cpio, a gzip member in a file system).
			if seen[c.start] || c.start < covered {
				continue
			}
			// The head is in the chunk read already, unless the magic
			// lies past the container's start (ext4) in an earlier one.
			h := head
			if rel := c.start - base; rel >= 0 && rel+pipeline.MatchSize <= int64(n) {
				h = chunk[rel : rel+pipeline.MatchSize]
			} else if rel >= 0 {
				h = chunk[rel:]
			} else {
				k, err := in.ra.ReadAt(head[:min(int64(len(head)), in.size-c.start)], c.start)
				if err != nil && !errors.Is(err, io.EOF) {
					return nil, err
				}
				h = head[:k]
			}
			budget.left -= attemptCost
			ok, err := accept(&c, budget, in.size, h)
			if errors.Is(err, errBudget) || budget.left <= 0 {
				return nil, &pipeline.LimitError{Limit: "max-total-bytes", Value: scanBudget(in.size),
					Msg: fmt.Sprintf("searching %d bytes for embedded containers read more than %d: too many false signatures", in.size, scanBudget(in.size))}
			}
			if err != nil {
				return nil, err
			}
			if !ok {
				continue
			}
			seen[c.start] = true
			if c.span > 0 {
				covered = c.start + c.span
			}
			if len(cands) == maxCandidates {
				return nil, &pipeline.LimitError{Limit: "max-entries", Value: maxCandidates,
					Msg: fmt.Sprintf("more than %d embedded containers found", maxCandidates)}
			}
			cands = append(cands, c)
		}
	}
	sort.SliceStable(cands, func(i, j int) bool { return cands[i].start < cands[j].start })
	return cands, nil
}

// accept asks the candidate's format whether head, the bytes at its start,
// is really one of its containers, and how long it is. A compressed stream
// has no length to check, so its first bytes must decompress.
func accept(c *candidate, budget *budgetReader, size int64, head []byte) (bool, error) {
	if !c.f.Match(head) {
		return false, nil
	}
	rest := size - c.start
	c.span = -1
	if sp, ok := c.f.(pipeline.Spanner); ok {
		s, err := sp.Span(io.NewSectionReader(budget, c.start, rest), rest)
		if errors.Is(err, errBudget) {
			return false, err
		}
		if err != nil || s <= 0 {
			return false, nil
		}
		c.span = min(s, rest)
		return true, nil
	}
	if d, ok := c.f.(pipeline.Decompressor); ok {
		budget.left -= decodeCost
		rc, err := d.NewReader(io.NewSectionReader(budget, c.start, rest))
		if errors.Is(err, errBudget) {
			return false, err
		}
		if err != nil {
			return false, nil
		}
		defer rc.Close()
		got, err := io.ReadFull(rc, make([]byte, 512))
		if errors.Is(err, errBudget) {
			return false, err
		}
		return got > 0 && (err == nil || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)), nil
	}
	return true, nil
}

// layout turns the accepted candidates into regions that cover the input
// from its first byte to its last, without overlap. A container of unknown
// length ends where the next one starts; a container inside another is
// part of it. Runs of fill bytes at the edges of what no format claimed,
// and at the end of a container of unknown length, become padding.
func layout(ra io.ReaderAt, size int64, cands []candidate) ([]*pipeline.Region, error) {
	var out []*pipeline.Region
	var cursor int64
	gap := func(start, end int64) error {
		if start >= end {
			return nil
		}
		lead, err := fillLead(ra, start, end)
		if err != nil {
			return err
		}
		if lead >= fillRunMin || lead == end-start {
			out = append(out, &pipeline.Region{Offset: start, Size: lead, Format: pipeline.RegionPadding})
			start += lead
		}
		if start == end {
			return nil
		}
		dataEnd, fill, err := fillRun(ra, start, end)
		if err != nil {
			return err
		}
		if fill < fillRunMin {
			dataEnd = end
		}
		h, err := entropy(ra, start, dataEnd)
		if err != nil {
			return err
		}
		out = append(out, &pipeline.Region{Offset: start, Size: dataEnd - start, Format: pipeline.RegionBlob, Entropy: h})
		if dataEnd < end {
			out = append(out, &pipeline.Region{Offset: dataEnd, Size: end - dataEnd, Format: pipeline.RegionPadding})
		}
		return nil
	}
	for i, c := range cands {
		if c.start < cursor {
			continue
		}
		if err := gap(cursor, c.start); err != nil {
			return nil, err
		}
		end := c.start + c.span
		if c.span < 0 {
			end = size
			for _, next := range cands[i+1:] {
				if next.start > c.start {
					end = next.start
					break
				}
			}
			// A compressed stream never holds a long run of one byte, so
			// the first one ends it; what follows is padding, and then
			// perhaps bytes no format claims.
			runAt, err := findFillRun(ra, c.start, end, streamFillRun)
			if err != nil {
				return nil, err
			}
			end = runAt
		}
		out = append(out, &pipeline.Region{Offset: c.start, Size: end - c.start, Format: c.f.Name()})
		cursor = end
	}
	if err := gap(cursor, size); err != nil {
		return nil, err
	}
	return out, nil
}

func isFill(b byte) bool { return b == 0x00 || b == 0xff }

// fillRun measures the run of one fill byte that ends [start, end): it
// returns where the run starts and its length.
func fillRun(ra io.ReaderAt, start, end int64) (int64, int64, error) {
	buf := make([]byte, 64<<10)
	var fill byte
	pos := end
	for pos > start {
		n := min(int64(len(buf)), pos-start)
		b := buf[:n]
		if _, err := ra.ReadAt(b, pos-n); err != nil && !errors.Is(err, io.EOF) {
			return 0, 0, err
		}
		if pos == end {
			if !isFill(b[n-1]) {
				return end, 0, nil
			}
			fill = b[n-1]
		}
		for i := n - 1; i >= 0; i-- {
			if b[i] != fill {
				at := pos - n + i + 1
				return at, end - at, nil
			}
		}
		pos -= n
	}
	return start, end - start, nil
}

// findFillRun returns the start of the first run of at least n bytes of
// one fill byte in [start, end), or end.
func findFillRun(ra io.ReaderAt, start, end int64, n int) (int64, error) {
	buf := make([]byte, 64<<10)
	runStart, run := start, 0
	var fill byte
	for pos := start; pos < end; {
		k := min(int64(len(buf)), end-pos)
		b := buf[:k]
		if _, err := ra.ReadAt(b, pos); err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		for i, c := range b {
			switch {
			case run > 0 && c == fill:
				run++
			case isFill(c):
				fill, run, runStart = c, 1, pos+int64(i)
			default:
				run = 0
			}
			if run >= n {
				return runStart, nil
			}
		}
		pos += k
	}
	return end, nil
}

// fillLead measures the run of one fill byte that starts [start, end).
func fillLead(ra io.ReaderAt, start, end int64) (int64, error) {
	buf := make([]byte, 64<<10)
	var fill byte
	for pos := start; pos < end; {
		n := min(int64(len(buf)), end-pos)
		b := buf[:n]
		if _, err := ra.ReadAt(b, pos); err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		if pos == start {
			if !isFill(b[0]) {
				return 0, nil
			}
			fill = b[0]
		}
		for i := int64(0); i < n; i++ {
			if b[i] != fill {
				return pos + i - start, nil
			}
		}
		pos += n
	}
	return end - start, nil
}

// entropy is the Shannon entropy of [start, end) in bits per byte.
func entropy(ra io.ReaderAt, start, end int64) (float64, error) {
	var counts [256]uint64
	buf := make([]byte, 64<<10)
	for pos := start; pos < end; {
		n := min(int64(len(buf)), end-pos)
		if _, err := ra.ReadAt(buf[:n], pos); err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		for _, b := range buf[:n] {
			counts[b]++
		}
		pos += n
	}
	return math.Round(pipeline.Entropy(&counts)*1000) / 1000, nil
}
