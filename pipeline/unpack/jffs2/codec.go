package jffs2

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	lzo "github.com/anchore/go-lzo"
	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/zlib"
)

// errUnsupported marks compressions this reader does not decode.
var errUnsupported = errors.New("unsupported compression")

// decompress expands one node's data into exactly dsize bytes.
func decompress(compr uint8, src []byte, dsize int) ([]byte, error) {
	switch compr {
	case comprNone:
		if len(src) != dsize {
			return nil, fmt.Errorf("uncompressed data of %d bytes for %d", len(src), dsize)
		}
		return src, nil
	case comprZero:
		return make([]byte, dsize), nil
	case comprZlib:
		return inflate(src, dsize)
	case comprRtime:
		return rtime(src, dsize)
	case comprLZO:
		dst := make([]byte, dsize)
		n, err := lzo.Decompress(src, dst)
		if err != nil {
			return nil, fmt.Errorf("lzo: %w", err)
		}
		if n != dsize {
			return nil, fmt.Errorf("lzo: %d bytes decompressed, %d expected", n, dsize)
		}
		return dst, nil
	}
	return nil, fmt.Errorf("%w %s (%d)", errUnsupported, comprName(compr), compr)
}

// inflate follows the kernel, which writes zlib streams but also accepts
// raw deflate when the first two bytes are not a zlib header.
func inflate(src []byte, dsize int) ([]byte, error) {
	var zr io.ReadCloser
	if len(src) >= 2 && src[0]&0x0f == 8 && (uint16(src[0])<<8|uint16(src[1]))%31 == 0 {
		var err error
		if zr, err = zlib.NewReader(bytes.NewReader(src)); err != nil {
			return nil, fmt.Errorf("zlib: %w", err)
		}
	} else {
		zr = flate.NewReader(bytes.NewReader(src))
	}
	defer zr.Close()
	dst := make([]byte, dsize)
	if _, err := io.ReadFull(zr, dst); err != nil {
		return nil, fmt.Errorf("zlib: %d bytes expected: %w", dsize, err)
	}
	return dst, nil
}

// rtime is the kernel's jffs2_rtime_decompress: pairs of a literal byte and
// a count of bytes to repeat from where that byte value last occurred.
func rtime(src []byte, dsize int) ([]byte, error) {
	var positions [256]int
	dst := make([]byte, dsize)
	out, pos := 0, 0
	for out < dsize {
		if pos+2 > len(src) {
			return nil, fmt.Errorf("rtime: input ends after %d of %d bytes", out, dsize)
		}
		value, repeat := src[pos], int(src[pos+1])
		pos += 2
		dst[out] = value
		out++
		back := positions[value]
		positions[value] = out
		if repeat == 0 {
			continue
		}
		if out+repeat > dsize {
			return nil, fmt.Errorf("rtime: a repeat of %d bytes runs past the %d-byte output", repeat, dsize)
		}
		// Byte by byte: the source may overlap the bytes being written.
		for ; repeat > 0; repeat-- {
			dst[out] = dst[back]
			out++
			back++
		}
	}
	return dst, nil
}
