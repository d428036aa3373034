package compression

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/adler32"
	"hash/crc32"
	"io"

	"github.com/anchore/go-lzo"

	"github.com/fwvet/fwvet/pipeline"
)

// Lzop reads files made by lzop (and payloads of mkimage -C lzo): a header
// naming the method and flags, then blocks of LZO1X data, each with its
// sizes and optional Adler-32 or CRC-32 checksums, until a zero length.
type Lzop struct{}

var (
	_ pipeline.Decompressor = Lzop{}
	_ pipeline.Carvable     = Lzop{}
)

var lzopMagic = []byte{0x89, 'L', 'Z', 'O', 0x00, 0x0d, 0x0a, 0x1a, 0x0a}

// MaxLzopBlock is lzop's own bound on a block (MAX_BLOCK_SIZE); lzop writes
// 256 KiB blocks.
const MaxLzopBlock = 64 << 20

const (
	lzopAdler32D  = 0x0001
	lzopAdler32C  = 0x0002
	lzopExtra     = 0x0040
	lzopCRC32D    = 0x0100
	lzopCRC32C    = 0x0200
	lzopMultipart = 0x0400
	lzopFilter    = 0x0800
	lzopHCRC32    = 0x1000
)

// Name implements pipeline.Format.
func (Lzop) Name() string { return "lzop" }

// Match implements pipeline.Format: the magic, then a version lzop 0.90 or
// later writes and an LZO1X method.
func (Lzop) Match(head []byte) bool {
	if len(head) < len(lzopMagic)+5 || !bytes.HasPrefix(head, lzopMagic) {
		return false
	}
	v := binary.BigEndian.Uint16(head[9:])
	if v < 0x0900 {
		return false
	}
	m := head[13]
	if v >= 0x0940 {
		if len(head) < 16 {
			return false
		}
		m = head[15]
	}
	return m >= 1 && m <= 3
}

// Signatures implements pipeline.Carvable: the 9-byte magic is distinctive.
func (Lzop) Signatures() []pipeline.Signature {
	return []pipeline.Signature{{Magic: lzopMagic}}
}

// NewReader implements pipeline.Decompressor. Only the first member of a
// multi-file lzop archive is read.
func (Lzop) NewReader(r io.Reader) (io.ReadCloser, error) {
	r = bufio.NewReader(r) // headers are read a field at a time
	flags, err := readLzopHeader(r)
	if err != nil {
		return nil, err
	}
	return &lzopReader{r: r, flags: flags}, nil
}

// lzopHeaderReader keeps the header bytes for its checksum.
type lzopHeaderReader struct {
	r   io.Reader
	buf []byte
	err error
}

func (h *lzopHeaderReader) next(n int) []byte {
	if h.err != nil {
		return make([]byte, n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(h.r, b); err != nil {
		h.err = noEOF(err)
	}
	h.buf = append(h.buf, b...)
	return b
}

func (h *lzopHeaderReader) u8() uint32  { return uint32(h.next(1)[0]) }
func (h *lzopHeaderReader) u16() uint32 { return uint32(binary.BigEndian.Uint16(h.next(2))) }
func (h *lzopHeaderReader) u32() uint32 { return binary.BigEndian.Uint32(h.next(4)) }

func readLzopHeader(r io.Reader) (uint32, error) {
	magic := make([]byte, len(lzopMagic))
	if _, err := io.ReadFull(r, magic); err != nil {
		return 0, fmt.Errorf("lzop header: %w", noEOF(err))
	}
	if !bytes.Equal(magic, lzopMagic) {
		return 0, fmt.Errorf("lzop: bad magic % x", magic)
	}
	h := &lzopHeaderReader{r: r}
	version := h.u16()
	h.u16() // library version
	if version >= 0x0940 {
		h.u16() // version needed to extract
	}
	method := h.u8()
	if version >= 0x0940 {
		h.u8() // level
	}
	flags := h.u32()
	if flags&lzopFilter != 0 {
		h.u32()
	}
	h.u32() // mode
	h.u32() // mtime
	if version >= 0x0940 {
		h.u32() // mtime, high bits
	}
	h.next(int(h.u8())) // file name
	sum := lzopSum(flags&lzopHCRC32 != 0, h.buf)
	stored := h.u32()
	if h.err != nil {
		return 0, fmt.Errorf("lzop header: %w", h.err)
	}
	switch {
	case version < 0x0900:
		return 0, fmt.Errorf("lzop: version %#x predates the supported format", version)
	case method < 1 || method > 3:
		return 0, fmt.Errorf("lzop: method %d is not LZO1X", method)
	case flags&lzopMultipart != 0:
		return 0, errors.New("lzop: multipart archives are not supported")
	case flags&lzopFilter != 0:
		return 0, errors.New("lzop: filtered data is not supported")
	case sum != stored:
		return 0, fmt.Errorf("lzop: header checksum %#08x does not match the stored %#08x", sum, stored)
	}
	if flags&lzopExtra != 0 {
		h.buf = h.buf[:0]
		n := h.u32()
		if n > 1<<16 {
			return 0, fmt.Errorf("lzop: extra field of %d bytes", n)
		}
		h.next(int(n))
		sum := lzopSum(flags&lzopHCRC32 != 0, h.buf)
		if stored := h.u32(); h.err == nil && sum != stored {
			return 0, fmt.Errorf("lzop: extra field checksum %#08x does not match the stored %#08x", sum, stored)
		}
		if h.err != nil {
			return 0, fmt.Errorf("lzop extra field: %w", h.err)
		}
	}
	return flags, nil
}

func lzopSum(crc bool, b []byte) uint32 {
	if crc {
		return crc32.ChecksumIEEE(b)
	}
	return adler32.Checksum(b)
}

type lzopReader struct {
	r        io.Reader
	flags    uint32
	src, dst []byte
	out      []byte // undelivered bytes of the current block
	block    int
	err      error
}

func (z *lzopReader) Read(p []byte) (int, error) {
	for len(z.out) == 0 {
		if z.err != nil {
			return 0, z.err
		}
		z.err = z.nextBlock()
		if z.err != nil && z.err != io.EOF {
			z.err = fmt.Errorf("lzop block %d: %w", z.block, z.err)
		}
		z.block++
	}
	n := copy(p, z.out)
	z.out = z.out[n:]
	return n, nil
}

func (z *lzopReader) Close() error { return nil }

func (z *lzopReader) u32() (uint32, error) {
	var b [4]byte
	if _, err := io.ReadFull(z.r, b[:]); err != nil {
		return 0, noEOF(err)
	}
	return binary.BigEndian.Uint32(b[:]), nil
}

// nextBlock decodes one block into z.out, or returns io.EOF at the end mark.
func (z *lzopReader) nextBlock() error {
	dlen, err := z.u32()
	if err != nil {
		return err
	}
	if dlen == 0 {
		return io.EOF
	}
	if dlen > MaxLzopBlock {
		return fmt.Errorf("%d bytes exceed lzop's %d byte bound", dlen, MaxLzopBlock)
	}
	clen, err := z.u32()
	if err != nil {
		return err
	}
	if clen == 0 || clen > dlen {
		return fmt.Errorf("compressed size %d does not fit uncompressed size %d", clen, dlen)
	}
	var sums [4]uint32 // adler32 and crc32 of the data, then of the compressed bytes
	for i, f := range []uint32{lzopAdler32D, lzopCRC32D, lzopAdler32C, lzopCRC32C} {
		if z.flags&f == 0 || (i >= 2 && clen == dlen) {
			continue
		}
		if sums[i], err = z.u32(); err != nil {
			return err
		}
	}
	// The compressed bytes are read through a growing buffer, so a block that
	// claims more than the input holds fails before the full size is allocated.
	src := bytes.NewBuffer(z.src[:0])
	if _, err := io.CopyN(src, z.r, int64(clen)); err != nil {
		return noEOF(err)
	}
	z.src = src.Bytes()
	if clen < dlen {
		if err := checkLzopSums(z.flags&lzopAdler32C, z.flags&lzopCRC32C, sums[2], sums[3], z.src, "compressed"); err != nil {
			return err
		}
		if cap(z.dst) < int(dlen) {
			z.dst = make([]byte, dlen)
		}
		z.dst = z.dst[:dlen]
		n, err := lzoDecompress(z.src, z.dst)
		if err != nil {
			return fmt.Errorf("LZO1X data: %w", err)
		}
		if n != int(dlen) {
			return fmt.Errorf("LZO1X data gives %d bytes, not %d", n, dlen)
		}
		z.out = z.dst
	} else {
		z.out = z.src
	}
	return checkLzopSums(z.flags&lzopAdler32D, z.flags&lzopCRC32D, sums[0], sums[1], z.out, "uncompressed")
}

func checkLzopSums(adler, crc, wantAdler, wantCRC uint32, b []byte, what string) error {
	if adler != 0 {
		if got := adler32.Checksum(b); got != wantAdler {
			return fmt.Errorf("Adler-32 %#08x of the %s data does not match the stored %#08x", got, what, wantAdler)
		}
	}
	if crc != 0 {
		if got := crc32.ChecksumIEEE(b); got != wantCRC {
			return fmt.Errorf("CRC-32 %#08x of the %s data does not match the stored %#08x", got, what, wantCRC)
		}
	}
	return nil
}

// lzoDecompress turns a panic of the decoder on hostile data into an error.
func lzoDecompress(src, dst []byte) (n int, err error) {
	defer func() {
		if p := recover(); p != nil {
			n, err = 0, fmt.Errorf("lzo: decoder failed: %v", p)
		}
	}()
	return lzo.Decompress(src, dst)
}
