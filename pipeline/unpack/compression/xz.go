package compression

import (
	"bytes"
	"fmt"
	"io"

	"github.com/ulikunitz/xz"

	"github.com/fwvet/fwvet/pipeline"
)

// Xz reads xz streams.
type Xz struct{}

var (
	_ pipeline.Decompressor = Xz{}
	_ pipeline.Carvable     = Xz{}
)

// MaxXzDict bounds the LZMA2 dictionary a hostile header can make us
// allocate; xz -9 uses 64 MiB.
const MaxXzDict = 64 << 20

var xzMagic = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}

// Name implements pipeline.Format.
func (Xz) Name() string { return "xz" }

// Match implements pipeline.Format.
func (Xz) Match(head []byte) bool { return bytes.HasPrefix(head, xzMagic) }

// NewReader implements pipeline.Decompressor. The first block's dictionary
// size is checked before the decoder allocates it.
func (Xz) NewReader(r io.Reader) (io.ReadCloser, error) {
	head := make([]byte, 12+1024)
	n, err := io.ReadFull(r, head[:13])
	if err != nil {
		return nil, fmt.Errorf("xz header: %w", err)
	}
	bh := int(head[12])*4 + 4 // block header size, when head[12] != 0
	if head[12] != 0 {
		m, err := io.ReadFull(r, head[13:12+bh])
		n += m
		if err != nil {
			return nil, fmt.Errorf("xz block header: %w", err)
		}
		if d := xzDictSize(head[12 : 12+bh]); d > MaxXzDict {
			return nil, fmt.Errorf("xz dictionary of %d bytes exceeds the %d byte bound", d, MaxXzDict)
		}
	}
	xr, err := xz.ReaderConfig{DictCap: 1 << 20}.NewReader(io.MultiReader(bytes.NewReader(head[:n]), r))
	if err != nil {
		return nil, err
	}
	return io.NopCloser(xr), nil
}

// xzDictSize reads the LZMA2 dictionary size from a block header, or 0.
func xzDictSize(bh []byte) int64 {
	if len(bh) < 2 {
		return 0
	}
	flags := bh[1]
	p := 2
	if flags&0x40 != 0 {
		p += uvarintLen(bh[p:])
	}
	if flags&0x80 != 0 {
		p += uvarintLen(bh[p:])
	}
	filters := int(flags&0x03) + 1
	for i := 0; i < filters && p < len(bh); i++ {
		id, k := uvarint(bh[p:])
		p += k
		size, k := uvarint(bh[p:])
		p += k
		if id == 0x21 && size == 1 && p < len(bh) {
			bits := bh[p] & 0x3f
			if bits > 40 {
				return 1 << 62
			}
			if bits == 40 {
				return 0xFFFFFFFF
			}
			return int64(2|bits&1) << (bits/2 + 11)
		}
		p += int(size)
	}
	return 0
}

func uvarint(b []byte) (uint64, int) {
	var v uint64
	for i := 0; i < len(b) && i < 9; i++ {
		v |= uint64(b[i]&0x7f) << (7 * i)
		if b[i]&0x80 == 0 {
			return v, i + 1
		}
	}
	return v, len(b)
}

func uvarintLen(b []byte) int { _, n := uvarint(b); return n }

// Signatures implements pipeline.Carvable.
func (Xz) Signatures() []pipeline.Signature {
	return []pipeline.Signature{{Magic: xzMagic}}
}
