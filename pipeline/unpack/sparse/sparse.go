// Package sparse reads Android sparse images (the .simg files that fastboot
// flashes and img2simg writes) as a decompression layer: the output is the
// raw partition image the sparse file describes.
//
// The reader streams: RAW chunks are copied through, FILL and DONT_CARE
// chunks are generated into the caller's buffer, so a chunk that stands for
// gigabytes costs no memory. Every chunk's sizes are checked against its
// type and the header, CRC32 chunks are verified against the output so far,
// and the output must be exactly total_blks*blk_sz bytes. The header's
// image_checksum is not verified: libsparse ignores it too, and vendors
// leave junk in it.
package sparse

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/fwvet/fwvet/pipeline"
)

// Format is the Android sparse image format.
type Format struct{}

var (
	_ pipeline.Decompressor = Format{}
	_ pipeline.Carvable     = Format{}
	_ pipeline.Spanner      = Format{}
)

const (
	magic       = 0xED26FF3A
	fileHdrSize = 28
	chunkHdrMin = 12

	chunkRaw      = 0xCAC1
	chunkFill     = 0xCAC2
	chunkDontCare = 0xCAC3
	chunkCRC32    = 0xCAC4
)

// header is the file header, with the fields the reader uses.
type header struct {
	fileHdrSz   uint16
	chunkHdrSz  uint16
	blkSz       uint32
	totalBlks   uint32
	totalChunks uint32
}

func parseHeader(b []byte) (header, error) {
	if len(b) < fileHdrSize {
		return header{}, errors.New("android-sparse: header shorter than 28 bytes")
	}
	le := binary.LittleEndian
	if le.Uint32(b) != magic {
		return header{}, errors.New("android-sparse: bad magic")
	}
	h := header{
		fileHdrSz:   le.Uint16(b[8:]),
		chunkHdrSz:  le.Uint16(b[10:]),
		blkSz:       le.Uint32(b[12:]),
		totalBlks:   le.Uint32(b[16:]),
		totalChunks: le.Uint32(b[20:]),
	}
	switch major := le.Uint16(b[4:]); {
	case major != 1:
		return h, fmt.Errorf("android-sparse: major version %d, want 1", major)
	case h.fileHdrSz < fileHdrSize:
		return h, fmt.Errorf("android-sparse: file header size %d is below 28", h.fileHdrSz)
	case h.chunkHdrSz < chunkHdrMin:
		return h, fmt.Errorf("android-sparse: chunk header size %d is below 12", h.chunkHdrSz)
	case h.blkSz == 0 || h.blkSz%4 != 0:
		return h, fmt.Errorf("android-sparse: block size %d is not a non-zero multiple of 4", h.blkSz)
	}
	return h, nil
}

// Name implements pipeline.Format.
func (Format) Name() string { return "android-sparse" }

// Match implements pipeline.Format: a sane header and, when the head holds
// it, a first chunk of a known type.
func (Format) Match(head []byte) bool {
	h, err := parseHeader(head)
	if err != nil {
		return false
	}
	off := int(h.fileHdrSz)
	if len(head) >= off+chunkHdrMin && h.totalChunks > 0 {
		if t := binary.LittleEndian.Uint16(head[off:]); t < chunkRaw || t > chunkCRC32 {
			return false
		}
	}
	return true
}

// Signatures implements pipeline.Carvable: the header starts every image,
// and flash layouts put partitions at least on 4-byte boundaries.
func (Format) Signatures() []pipeline.Signature {
	return []pipeline.Signature{{Offset: 0, Magic: []byte{0x3A, 0xFF, 0x26, 0xED}, Align: 4}}
}

// Span implements pipeline.Spanner by adding up the chunks' total_sz: the
// image ends after its last chunk.
func (Format) Span(r io.ReaderAt, size int64) (int64, error) {
	b := make([]byte, fileHdrSize)
	if _, err := r.ReadAt(b, 0); err != nil {
		return 0, fmt.Errorf("android-sparse: reading header: %w", err)
	}
	h, err := parseHeader(b)
	if err != nil {
		return 0, err
	}
	off := int64(h.fileHdrSz)
	ch := make([]byte, chunkHdrMin)
	for i := uint32(0); i < h.totalChunks; i++ {
		if off+int64(h.chunkHdrSz) > size {
			return 0, fmt.Errorf("android-sparse: chunk %d of %d: header at %d is past the end (%d bytes)", i, h.totalChunks, off, size)
		}
		if _, err := r.ReadAt(ch, off); err != nil {
			return 0, fmt.Errorf("android-sparse: chunk %d header at %d: %w", i, off, err)
		}
		c, err := parseChunk(ch, h, i)
		if err != nil {
			return 0, err
		}
		off += int64(c.totalSz)
	}
	if off > size {
		return 0, fmt.Errorf("android-sparse: the last chunk ends at %d, past the end (%d bytes)", off, size)
	}
	return off, nil
}

// NewReader implements pipeline.Decompressor.
func (Format) NewReader(r io.Reader) (io.ReadCloser, error) {
	return newReader(r)
}
