package sparse

import (
	"encoding/binary"
	"fmt"
)

// chunk is one chunk header, checked against its type.
type chunk struct {
	typ    uint16
	blocks uint32 // chunk_sz: output blocks
	// totalSz counts the chunk header and its data in the input.
	totalSz uint32
}

func (c chunk) kind() string {
	switch c.typ {
	case chunkRaw:
		return "raw"
	case chunkFill:
		return "fill"
	case chunkDontCare:
		return "dont-care"
	case chunkCRC32:
		return "crc32"
	}
	return fmt.Sprintf("type %#04x", c.typ)
}

// parseChunk reads a chunk header and checks that total_sz is exactly what
// its type and block count need, so no chunk can hide bytes or claim more
// than it holds.
func parseChunk(b []byte, h header, i uint32) (chunk, error) {
	le := binary.LittleEndian
	c := chunk{typ: le.Uint16(b), blocks: le.Uint32(b[4:]), totalSz: le.Uint32(b[8:])}
	hdr := uint64(h.chunkHdrSz)
	var want uint64
	switch c.typ {
	case chunkRaw:
		want = hdr + uint64(c.blocks)*uint64(h.blkSz)
	case chunkFill, chunkCRC32:
		want = hdr + 4
	case chunkDontCare:
		want = hdr
	default:
		return c, fmt.Errorf("android-sparse: chunk %d: unknown chunk type %#04x", i, c.typ)
	}
	if uint64(c.totalSz) != want {
		return c, fmt.Errorf("android-sparse: chunk %d (%s, %d blocks of %d bytes): total_sz %d, want %d", i, c.kind(), c.blocks, h.blkSz, c.totalSz, want)
	}
	return c, nil
}
