package compression

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/pierrec/lz4/v4"

	"github.com/fwvet/fwvet/pipeline"
)

// Lz4 reads LZ4 streams in the frame format (lz4's default, U-Boot's
// -C lz4) and in the legacy format (lz4 -l, the Linux kernel's).
type Lz4 struct{}

var (
	_ pipeline.Decompressor = Lz4{}
	_ pipeline.Carvable     = Lz4{}
)

var (
	lz4FrameMagic  = []byte{0x04, 0x22, 0x4d, 0x18}
	lz4LegacyMagic = []byte{0x02, 0x21, 0x4c, 0x18}
)

// lz4LegacyBlock is the uncompressed size of every legacy block but the last.
const lz4LegacyBlock = 8 << 20

// Name implements pipeline.Format.
func (Lz4) Name() string { return "lz4" }

// Match implements pipeline.Format: the legacy magic, or the frame magic
// with a frame descriptor of version 01 and a valid block size code.
func (Lz4) Match(head []byte) bool {
	if bytes.HasPrefix(head, lz4LegacyMagic) {
		return len(head) >= 8
	}
	return len(head) >= 7 && bytes.HasPrefix(head, lz4FrameMagic) && head[4]>>6 == 1 && head[5]>>4&7 >= 4
}

// Signatures implements pipeline.Carvable.
func (Lz4) Signatures() []pipeline.Signature {
	return []pipeline.Signature{{Magic: lz4FrameMagic}, {Magic: lz4LegacyMagic}}
}

// NewReader implements pipeline.Decompressor.
func (Lz4) NewReader(r io.Reader) (io.ReadCloser, error) {
	br := bufio.NewReader(r)
	magic, err := br.Peek(4)
	if err != nil {
		return nil, fmt.Errorf("lz4 magic: %w", noEOF(err))
	}
	if bytes.Equal(magic, lz4LegacyMagic) {
		return &lz4Legacy{r: br}, nil
	}
	zr := lz4.NewReader(br)
	if err := zr.Apply(lz4.ConcurrencyOption(1)); err != nil {
		return nil, fmt.Errorf("lz4: %w", err)
	}
	return io.NopCloser(namedErr{"lz4", zr}), nil
}

// lz4Legacy reads the legacy framing: the magic, then blocks of a 4-byte
// compressed size and an LZ4 block of up to 8 MiB, until the input ends or
// a word that cannot be a block size (the kernel appends its uncompressed
// size) is the last thing in it. A repeated magic starts another frame.
type lz4Legacy struct {
	r     *bufio.Reader
	src   []byte
	dst   []byte
	out   []byte
	block int
	err   error
}

func (z *lz4Legacy) Close() error { return nil }

func (z *lz4Legacy) Read(p []byte) (int, error) {
	for len(z.out) == 0 {
		if z.err != nil {
			return 0, z.err
		}
		z.err = z.next()
		if z.err != nil && z.err != io.EOF {
			z.err = fmt.Errorf("lz4 legacy block %d: %w", z.block, z.err)
		}
		z.block++
	}
	n := copy(p, z.out)
	z.out = z.out[n:]
	return n, nil
}

func (z *lz4Legacy) next() error {
	var w [4]byte
	for {
		n, err := io.ReadFull(z.r, w[:])
		if n == 0 && err == io.EOF {
			return io.EOF
		}
		if err != nil {
			return noEOF(err)
		}
		if !bytes.Equal(w[:], lz4LegacyMagic) {
			break
		}
	}
	size := binary.LittleEndian.Uint32(w[:])
	if size == 0 || size > uint32(lz4.CompressBlockBound(lz4LegacyBlock)) {
		if _, err := z.r.Peek(1); err == io.EOF {
			return io.EOF
		}
		return fmt.Errorf("compressed size %d is out of range", size)
	}
	src := bytes.NewBuffer(z.src[:0])
	n, err := io.CopyN(src, z.r, int64(size))
	if n == 0 && err == io.EOF {
		return io.EOF // a trailing size word
	}
	if err != nil {
		return noEOF(err)
	}
	z.src = src.Bytes()
	if z.dst == nil {
		z.dst = make([]byte, lz4LegacyBlock)
	}
	m, err := lz4.UncompressBlock(z.src, z.dst)
	if err != nil {
		return fmt.Errorf("LZ4 block: %w", err)
	}
	z.out = z.dst[:m]
	return nil
}
