package ubi

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

const (
	// maxPEBSize bounds the eraseblock size searched for: NAND blocks reach
	// a few MiB.
	maxPEBSize = 16 << 20
	// pebAlign is the granularity of eraseblock sizes: whole NAND pages or
	// NOR sectors, never finer than 512 bytes.
	pebAlign = 512
	// maxPEBs bounds the eraseblocks read: 8 GiB of 8 KiB blocks.
	maxPEBs = 1 << 20
	// minLEBSize bounds the data area of a PEB from below, so that reading
	// a volume never costs a call per byte; real ones are 15 KiB and more.
	minLEBSize = 1024
)

// geometry is what the first EC header and the spacing of the next ones
// tell about the flash the image was made for.
type geometry struct {
	pebSize  int64
	vidOff   int64
	dataOff  int64
	imageSeq uint32
	pebs     int64 // whole PEBs in the image
}

// lebSize is the room a PEB leaves for data.
func (g *geometry) lebSize() int64 { return g.pebSize - g.dataOff }

// sameImage reports whether an EC header belongs to this image: UBI stamps
// every PEB with one image sequence number (0 in images from old tools).
func (g *geometry) sameImage(h ecHdr) bool {
	return int64(h.vidOff) == g.vidOff && int64(h.dataOff) == g.dataOff &&
		(h.imageSeq == g.imageSeq || h.imageSeq == 0 || g.imageSeq == 0)
}

// readEC reads and checks the EC header at off.
func readEC(r io.ReaderAt, size, off int64) (ecHdr, error) {
	var b [hdrSize]byte
	if off < 0 || off+hdrSize > size {
		return ecHdr{}, io.ErrUnexpectedEOF
	}
	if err := readAt(r, b[:], off); err != nil {
		return ecHdr{}, err
	}
	return parseEC(b[:])
}

// probe reads the first EC header and finds the PEB size. UBI does not
// record it: the EC header of the second PEB is found instead, the first
// valid one of this image at a multiple of 512 past the first PEB's data
// offset. A header there that is really inside the data of PEB 0 (a UBI
// image stored in a volume) is told apart by asking for a third one at twice
// or three times the distance, unless the image ends before; and a PEB 1
// that lost its header is caught by looking for headers at a half, a third
// and a quarter of the distance past it.
func probe(r io.ReaderAt, size int64) (*geometry, error) {
	h, err := readEC(r, size, 0)
	if err != nil {
		return nil, fmt.Errorf("ubi: PEB 0: %w", err)
	}
	g := &geometry{vidOff: int64(h.vidOff), dataOff: int64(h.dataOff), imageSeq: h.imageSeq}
	if g.dataOff >= size {
		return nil, corrupt("data offset %d past the end of the %d-byte image", g.dataOff, size)
	}
	valid := func(off int64) bool {
		e, err := readEC(r, size, off)
		return err == nil && g.sameImage(e)
	}
	start := (max(g.dataOff+minLEBSize, pebAlign) + pebAlign - 1) / pebAlign * pebAlign
	end := min(size-hdrSize, maxPEBSize)
	const chunk = 1 << 20
	buf := make([]byte, min(chunk, max(end-start+hdrSize, 0)))
	for base := start; base <= end; base += chunk {
		n := min(int64(len(buf)), end-base+hdrSize)
		if _, err := r.ReadAt(buf[:n], base); err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("ubi: looking for the second PEB at %d: %w", base, err)
		}
		for i := int64(0); i+4 <= n; i += pebAlign {
			s := base + i
			if !bytes.Equal(buf[i:i+4], ecMagic) || !valid(s) {
				continue
			}
			if 2*s+hdrSize <= size && !valid(2*s) && (3*s+hdrSize > size || !valid(3*s)) {
				continue
			}
			g.pebSize = s
			for d := int64(4); d >= 2; d-- {
				if q := s / d; s%d == 0 && q%pebAlign == 0 && q >= g.dataOff+minLEBSize && valid(s+q) {
					g.pebSize = q
					break
				}
			}
			g.pebs = size / g.pebSize
			if g.pebs > maxPEBs {
				return nil, corrupt("%d PEBs of %d bytes, more than the %d read", g.pebs, g.pebSize, maxPEBs)
			}
			return g, nil
		}
	}
	return nil, corrupt("no second erase-counter header within %d bytes: cannot tell the PEB size", maxPEBSize)
}

// span counts the PEBs of the image from the start: every one with an EC
// header of this image or a sound VID header, and erased ones (a UBI
// partition may hold PEBs not yet formatted) when more of the image follows
// them.
func span(r io.ReaderAt, size int64, g *geometry) int64 {
	last := int64(0)
	var b [hdrSize]byte
	for i := int64(1); i < g.pebs; i++ {
		off := i * g.pebSize
		if readAt(r, b[:], off) != nil {
			break
		}
		if h, err := parseEC(b[:]); err == nil {
			if !g.sameImage(h) {
				break
			}
			last = i
			continue
		}
		if erased(b[:]) {
			continue
		}
		// A damaged EC header over a sound VID header is a worn PEB of the
		// image, which the kernel keeps.
		if readAt(r, b[:], off+g.vidOff) != nil {
			break
		}
		if _, err := parseVID(b[:]); err != nil {
			break
		}
		last = i
	}
	return last + 1
}

func erased(b []byte) bool {
	for _, c := range b {
		if c != 0xFF {
			return false
		}
	}
	return true
}
