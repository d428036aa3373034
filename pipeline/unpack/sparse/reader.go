package sparse

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// reader expands a sparse image one chunk at a time into the caller's
// buffer.
type reader struct {
	in  *bufio.Reader
	h   header
	hdr []byte // chunk header buffer, chunk_hdr_sz bytes

	chunks uint32 // chunk headers read
	blocks uint64 // output blocks produced by the chunks read
	out    uint64 // output bytes produced
	crc    uint32 // CRC32 of the output so far

	// The chunk being expanded.
	cur     chunk
	left    uint64 // output bytes it still has to produce
	pattern [4]byte
	phase   int // offset in pattern of the next FILL byte

	err error
}

func newReader(r io.Reader) (*reader, error) {
	in := bufio.NewReaderSize(r, 64<<10)
	b := make([]byte, fileHdrSize)
	if _, err := io.ReadFull(in, b); err != nil {
		return nil, fmt.Errorf("android-sparse: reading header: %w", noEOF(err))
	}
	h, err := parseHeader(b)
	if err != nil {
		return nil, err
	}
	if _, err := in.Discard(int(h.fileHdrSz) - fileHdrSize); err != nil {
		return nil, fmt.Errorf("android-sparse: reading the %d-byte header: %w", h.fileHdrSz, noEOF(err))
	}
	return &reader{in: in, h: h, hdr: make([]byte, h.chunkHdrSz)}, nil
}

// noEOF turns a clean EOF inside a structure into the truncation it is.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

func (r *reader) Close() error { return nil }

func (r *reader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	for r.left == 0 {
		if err := r.next(); err != nil {
			r.err = err
			return 0, err
		}
	}
	n := len(p)
	if uint64(n) > r.left {
		n = int(r.left)
	}
	p = p[:n]
	switch r.cur.typ {
	case chunkRaw:
		var err error
		n, err = r.in.Read(p)
		if err != nil && n == 0 {
			r.err = fmt.Errorf("android-sparse: chunk %d (raw): %d bytes short: %w", r.chunks-1, r.left, noEOF(err))
			return 0, r.err
		}
		p = p[:n]
	case chunkFill:
		// Seed one period, then double it: a multiple of 4 keeps the phase.
		for i := 0; i < len(p) && i < 4; i++ {
			p[i] = r.pattern[(r.phase+i)&3]
		}
		for i := 4; i < len(p); i *= 2 {
			copy(p[i:], p[:i])
		}
		r.phase = (r.phase + len(p)) & 3
	default:
		clear(p)
	}
	r.left -= uint64(n)
	r.out += uint64(n)
	r.crc = crc32.Update(r.crc, crc32.IEEETable, p)
	return n, nil
}

// next reads the next chunk header and sets up its expansion; at the end
// of the chunks it checks the output size and returns io.EOF.
func (r *reader) next() error {
	h := r.h
	if r.chunks == h.totalChunks {
		if r.blocks != uint64(h.totalBlks) {
			return fmt.Errorf("android-sparse: %d chunks expand to %d blocks, the header declares %d", r.chunks, r.blocks, h.totalBlks)
		}
		return io.EOF
	}
	i := r.chunks
	if _, err := io.ReadFull(r.in, r.hdr); err != nil {
		return fmt.Errorf("android-sparse: chunk %d of %d header: %w", i, h.totalChunks, noEOF(err))
	}
	c, err := parseChunk(r.hdr, h, i)
	if err != nil {
		return err
	}
	r.chunks++
	if c.typ == chunkCRC32 {
		return r.checkCRC(i)
	}
	if r.blocks+uint64(c.blocks) > uint64(h.totalBlks) {
		return fmt.Errorf("android-sparse: chunk %d (%s) ends at block %d, past the %d the header declares", i, c.kind(), r.blocks+uint64(c.blocks), h.totalBlks)
	}
	if c.typ == chunkFill {
		if _, err := io.ReadFull(r.in, r.pattern[:]); err != nil {
			return fmt.Errorf("android-sparse: chunk %d (fill) pattern: %w", i, noEOF(err))
		}
		r.phase = 0
	}
	r.cur = c
	r.blocks += uint64(c.blocks)
	r.left = uint64(c.blocks) * uint64(h.blkSz)
	return nil
}

func (r *reader) checkCRC(i uint32) error {
	var b [4]byte
	if _, err := io.ReadFull(r.in, b[:]); err != nil {
		return fmt.Errorf("android-sparse: chunk %d (crc32) value: %w", i, noEOF(err))
	}
	if want := binary.LittleEndian.Uint32(b[:]); want != r.crc {
		return fmt.Errorf("android-sparse: chunk %d (crc32): the %d bytes before it have CRC32 %#08x, the image says %#08x", i, r.out, r.crc, want)
	}
	return nil
}
