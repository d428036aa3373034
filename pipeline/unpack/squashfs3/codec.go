package squashfs3

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync/atomic"

	"github.com/ulikunitz/xz/lzma"

	"github.com/fwvet/fwvet/pipeline/unpack/block"
)

// squashfs 3.x has no compression id: standard images hold zlib streams,
// and vendor builds replaced them with LZMA, sqlzma choosing per block (a
// block that LZMA did not shrink stays zlib). So each block is told by its
// first bytes:
//
//   - a zlib stream;
//   - DD-WRT's LZMA (Oleg Vdovikin's lzma zlib wrapper, sasquatch's
//     "lzma-ddwrt"): four bytes pb, lc, lp and fast bytes, chosen per block
//     by trying several, then a raw LZMA stream with an end marker, whose
//     first byte a range coder always writes as 0;
//   - an "LZMA alone" stream with its standard 13-byte header (properties,
//     dictionary size, uncompressed size), as sqlzma writes it.
//
// Not read: LZMA with the properties fixed at build time and no header at
// all (sasquatch's "lzma-alt", some Broadcom and Realtek SDKs), the
// standard header without its size field, properties hidden at other
// offsets ("lzma-adaptive" guesses them), and LZO or XZ blocks in a 3.x
// image. Such a block matches none of the three and the walk fails as
// unsupported, naming the image and the block's first bytes.

const (
	compNone = iota
	compZlib
	compLZMA
	compLZMAWRT
)

var compNames = [...]string{compNone: "", compZlib: "gzip", compLZMA: "lzma", compLZMAWRT: "lzma (dd-wrt)"}

// codec decompresses blocks, noting the first kind it met for messages.
type codec struct {
	seen atomic.Int32
}

func (c *codec) name() string { return compNames[c.seen.Load()] }

var errTooLong = errors.New("block decompresses past its maximum size")

func isZlib(b []byte) bool {
	return len(b) >= 2 && b[0]&0x0f == 8 && b[0]>>4 <= 7 && (uint16(b[0])<<8|uint16(b[1]))%31 == 0
}

const lzmaHeaderLen = 13

func isLZMA(b []byte) bool { return len(b) > lzmaHeaderLen && b[0] < 9*5*5 }

// decompress appends the bytes of block src to dst, at most max of them.
func (c *codec) decompress(dst, src []byte, max int) ([]byte, error) {
	var zerr error
	if isZlib(src) {
		start := len(dst)
		dst = slices.Grow(dst, max)
		n, err := block.Zlib(dst[start:start+max], src)
		if err == nil {
			c.seen.CompareAndSwap(compNone, compZlib)
			return dst[:start+n], nil
		}
		zerr = err
		dst = dst[:start]
	}
	if isLZMAWRT(src) {
		out, err := decodeLZMAWRT(dst, src, max)
		if err == nil {
			c.seen.CompareAndSwap(compNone, compLZMAWRT)
			return out, nil
		}
		if !isLZMA(src) {
			return nil, err
		}
	}
	if isLZMA(src) {
		out, err := decodeLZMA(dst, src, max)
		if err == nil {
			c.seen.CompareAndSwap(compNone, compLZMA)
		}
		return out, err
	}
	if zerr != nil {
		return nil, zerr
	}
	return nil, fmt.Errorf("%w: block starts % x: neither zlib, DD-WRT's LZMA nor LZMA with a 13-byte header (headerless vendor LZMA is not supported)", ErrUnsupported, src[:min(len(src), 8)])
}

// lzmaWRTHeaderLen is DD-WRT's block header: pb, lc, lp, fast bytes.
const lzmaWRTHeaderLen = 4

func isLZMAWRT(b []byte) bool {
	return len(b) > lzmaWRTHeaderLen && b[0] <= 4 && b[1] <= 8 && b[2] <= 4 && b[4] == 0
}

// decodeLZMAWRT decodes a DD-WRT LZMA block: its properties, written as an
// LZMA-alone header with the size unknown (the stream has an end marker)
// and a dictionary of max, then the raw stream.
func decodeLZMAWRT(dst, src []byte, max int) ([]byte, error) {
	pb, lc, lp := src[0], src[1], src[2]
	var hdr [lzmaHeaderLen]byte
	hdr[0] = (pb*5+lp)*9 + lc
	binary.LittleEndian.PutUint32(hdr[1:], uint32(max))
	binary.LittleEndian.PutUint64(hdr[5:], ^uint64(0))
	r, err := lzma.NewReader(io.MultiReader(bytes.NewReader(hdr[:]), bytes.NewReader(src[lzmaWRTHeaderLen:])))
	if err != nil {
		return nil, fmt.Errorf("dd-wrt lzma: %w", err)
	}
	out, err := readBounded(dst, r, max)
	if err != nil {
		return nil, fmt.Errorf("dd-wrt lzma: %w", err)
	}
	return out, nil
}

// decodeLZMA decodes an LZMA-alone block. The dictionary in its header is
// replaced by max: a dictionary as large as the whole output decodes the
// same, and a hostile header then cannot make the decoder allocate more.
func decodeLZMA(dst, src []byte, max int) ([]byte, error) {
	var hdr [lzmaHeaderLen]byte
	copy(hdr[:], src)
	if size := binary.LittleEndian.Uint64(hdr[5:]); size != ^uint64(0) && size > uint64(max) {
		return nil, fmt.Errorf("lzma block declares %d bytes: %w", size, errTooLong)
	}
	binary.LittleEndian.PutUint32(hdr[1:], uint32(max))
	r, err := lzma.NewReader(io.MultiReader(bytes.NewReader(hdr[:]), bytes.NewReader(src[lzmaHeaderLen:])))
	if err != nil {
		return nil, fmt.Errorf("lzma: %w", err)
	}
	out, err := readBounded(dst, r, max)
	if err != nil {
		return nil, fmt.Errorf("lzma: %w", err)
	}
	return out, nil
}

// readBounded appends what r yields to dst, failing past max bytes.
func readBounded(dst []byte, r io.Reader, max int) ([]byte, error) {
	start := len(dst)
	dst = slices.Grow(dst, max+1)
	for idle := 0; ; {
		n, err := r.Read(dst[len(dst) : start+max+1])
		dst = dst[:len(dst)+n]
		if len(dst)-start > max {
			return nil, errTooLong
		}
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return nil, err
		}
		if n > 0 {
			idle = 0
		} else if idle++; idle > 100 {
			return nil, io.ErrNoProgress
		}
	}
}
