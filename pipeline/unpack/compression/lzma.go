package compression

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/ulikunitz/xz/lzma"

	"github.com/fwvet/fwvet/pipeline"
)

// Lzma reads the legacy .lzma ("LZMA alone") format that lzma, xz
// --format=lzma and the payloads of mkimage -C lzma use: a 13-byte header of
// properties, dictionary size and uncompressed size, then one LZMA stream.
//
// The format has no magic, so Match is strict about the header and Lzma
// offers no Signatures: at an arbitrary offset of a flash dump the header is
// too weak to tell from noise.
type Lzma struct{}

var _ pipeline.Decompressor = Lzma{}

// MaxLzmaDict bounds the dictionary a hostile header can make us allocate;
// lzma -9 uses 64 MiB. A larger declared dictionary is fine when the
// uncompressed size is known and below it, as the decoder never needs more.
const MaxLzmaDict = 128 << 20

// maxLzmaSize is the largest uncompressed size Match believes.
const maxLzmaSize = 64 << 30

const lzmaHeaderLen = 13

// Name implements pipeline.Format.
func (Lzma) Name() string { return "lzma" }

// Match implements pipeline.Format: a properties byte below 9*5*5, a
// dictionary of 2^n or 2^n+2^(n-1) bytes between 4 KiB and 1.5 GiB, and an
// uncompressed size that is unknown (all ones) or below 64 GiB. Real encoders
// only write such headers, and they exclude most text and machine code.
func (Lzma) Match(head []byte) bool {
	if len(head) < lzmaHeaderLen {
		return false
	}
	dict, size, ok := lzmaHeader(head)
	if !ok || !lzmaDictOK(dict) {
		return false
	}
	return size == -1 || size < maxLzmaSize
}

// lzmaHeader decodes the properties byte check, the dictionary size and the
// uncompressed size (-1 when unknown).
func lzmaHeader(h []byte) (dict uint32, size int64, ok bool) {
	if h[0] >= 9*5*5 {
		return 0, 0, false
	}
	dict = binary.LittleEndian.Uint32(h[1:5])
	s := binary.LittleEndian.Uint64(h[5:13])
	if s == ^uint64(0) {
		return dict, -1, true
	}
	if s > 1<<62 {
		return dict, 0, false
	}
	return dict, int64(s), true
}

func lzmaDictOK(d uint32) bool {
	for n := 12; n <= 30; n++ {
		if d == 1<<n || d == 1<<n+1<<(n-1) {
			return true
		}
	}
	return false
}

// NewReader implements pipeline.Decompressor. The dictionary the decoder
// will allocate (the declared one, capped by the uncompressed size) is
// checked first.
func (Lzma) NewReader(r io.Reader) (io.ReadCloser, error) {
	// The decoder reads a byte at a time; unbuffered, that is a read call
	// (a system call on a file) per byte.
	r = bufio.NewReader(r)
	head := make([]byte, lzmaHeaderLen)
	if _, err := io.ReadFull(r, head); err != nil {
		return nil, fmt.Errorf("lzma header: %w", noEOF(err))
	}
	dict, size, ok := lzmaHeader(head)
	if !ok {
		return nil, fmt.Errorf("lzma header % x is not valid", head)
	}
	need := int64(dict)
	if size >= 0 && size < need {
		need = size
	}
	if need > MaxLzmaDict {
		return nil, fmt.Errorf("lzma dictionary of %d bytes exceeds the %d byte bound", dict, MaxLzmaDict)
	}
	lr, err := lzma.ReaderConfig{DictCap: int(max(dict, lzma.MinDictCap))}.NewReader(io.MultiReader(bytes.NewReader(head), r))
	if err != nil {
		return nil, fmt.Errorf("lzma: %w", err)
	}
	return io.NopCloser(namedErr{"lzma", lr}), nil
}

// noEOF reports a header cut short as truncation, not as an empty stream.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// namedErr prefixes a decoder's errors with the codec's name: a bare
// "unexpected EOF" deep in a container chain says too little.
type namedErr struct {
	name string
	r    io.Reader
}

func (e namedErr) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("%s: %w", e.name, err)
	}
	return n, err
}
