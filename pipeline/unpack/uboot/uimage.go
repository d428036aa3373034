package uboot

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strconv"

	"github.com/fwvet/fwvet/pipeline"
)

// UImage reads U-Boot legacy images: a 64-byte big-endian header with its
// own CRC, then the data, itself a list of parts for multi-file and script
// images.
//
// Each part becomes one file named after the image name, with the
// characters unsafe in a path replaced by '_', or after the image type when
// the name is empty ("kernel", "ramdisk", "firmware", "script",
// "filesystem"...). The parts of a multi-file image are NAME/0, NAME/1...; a
// script's single part is NAME. The contents are decompressed as the header's
// compression field says, which for a multi-file image describes the first
// part only (the kernel, as U-Boot's bootm reads it): the others are as
// stored. The decompressed size is not in the header, so Walk decompresses
// each payload once to count it, up to lim.MaxFileSize.
type UImage struct{}

var (
	_ pipeline.Container = UImage{}
	_ pipeline.Carvable  = UImage{}
	_ pipeline.Spanner   = UImage{}
)

var uimageMagic = []byte{0x27, 0x05, 0x19, 0x56}

const uimageHeaderLen = 64

// uImage image types (ih_type) whose data is a list of parts.
const (
	typeMulti  = 4
	typeScript = 6
)

var uimageTypes = map[byte]string{
	1: "standalone", 2: "kernel", 3: "ramdisk", 4: "multi", 5: "firmware", 6: "script",
	7: "filesystem", 8: "fdt", 14: "kernel",
}

var uimageComps = []string{"none", "gzip", "bzip2", "lzma", "lzo", "lz4", "zstd"}

type uimageHeader struct {
	hcrc, size, dcrc uint32
	typ, comp        byte
	name             string
}

// Name implements pipeline.Format.
func (UImage) Name() string { return "uimage" }

// Match implements pipeline.Format: the magic and the header CRC.
func (UImage) Match(head []byte) bool {
	_, err := parseUImageHeader(head)
	return err == nil
}

// Signatures implements pipeline.Carvable.
func (UImage) Signatures() []pipeline.Signature {
	return []pipeline.Signature{{Magic: uimageMagic, Align: 4}}
}

// Span implements pipeline.Spanner: the header and the data it declares.
func (UImage) Span(r io.ReaderAt, size int64) (int64, error) {
	h, err := readUImageHeader(r, size)
	if err != nil {
		return 0, err
	}
	return uimageHeaderLen + int64(h.size), nil
}

func parseUImageHeader(b []byte) (*uimageHeader, error) {
	if len(b) < uimageHeaderLen {
		return nil, fmt.Errorf("uImage header: %d bytes, want %d", len(b), uimageHeaderLen)
	}
	if !bytes.Equal(b[:4], uimageMagic) {
		return nil, fmt.Errorf("uImage header: bad magic % x", b[:4])
	}
	h := &uimageHeader{
		hcrc: binary.BigEndian.Uint32(b[4:]),
		size: binary.BigEndian.Uint32(b[12:]),
		dcrc: binary.BigEndian.Uint32(b[24:]),
		typ:  b[30],
		comp: b[31],
	}
	name := b[32:64]
	if i := bytes.IndexByte(name, 0); i >= 0 {
		name = name[:i]
	}
	h.name = string(name)
	var hdr [uimageHeaderLen]byte
	copy(hdr[:], b)
	clear(hdr[4:8])
	if got := crc32.ChecksumIEEE(hdr[:]); got != h.hcrc {
		return nil, fmt.Errorf("uImage header CRC %#08x does not match the stored %#08x", got, h.hcrc)
	}
	return h, nil
}

func readUImageHeader(r io.ReaderAt, size int64) (*uimageHeader, error) {
	if size < uimageHeaderLen {
		return nil, fmt.Errorf("uImage header: image of %d bytes is shorter than the %d byte header", size, uimageHeaderLen)
	}
	b := make([]byte, uimageHeaderLen)
	if _, err := r.ReadAt(b, 0); err != nil {
		return nil, fmt.Errorf("uImage header: %w", err)
	}
	h, err := parseUImageHeader(b)
	if err != nil {
		return nil, err
	}
	if int64(h.size) > size-uimageHeaderLen {
		return nil, fmt.Errorf("uImage declares %d data bytes, but only %d follow the header", h.size, size-uimageHeaderLen)
	}
	return h, nil
}

// Walk implements pipeline.Container.
func (UImage) Walk(ctx context.Context, r io.ReaderAt, size int64, lim pipeline.Limits, visit func(*pipeline.Header, pipeline.OpenFunc) error) error {
	h, err := readUImageHeader(r, size)
	if err != nil {
		return err
	}
	if int(h.comp) >= len(uimageComps) {
		return fmt.Errorf("uImage compression type %d is unknown", h.comp)
	}
	// Vendors put the release in the header's name ("RT-3200 fw 1.0.1"):
	// the path names the image by its type, the name goes in the label.
	base := cleanName(uimageTypes[h.typ], "image")
	crc := crc32.NewIEEE()
	if _, err := io.Copy(crc, pipeline.ContextReader(ctx, io.NewSectionReader(r, uimageHeaderLen, int64(h.size)))); err != nil {
		return fmt.Errorf("uImage data: %w", err)
	}
	var damage string
	if got := crc.Sum32(); got != h.dcrc {
		damage = fmt.Sprintf("uImage data CRC %#08x does not match the header's %#08x", got, h.dcrc)
	}
	parts := []payload{{r: r, off: uimageHeaderLen, n: int64(h.size)}}
	if h.typ == typeMulti || h.typ == typeScript {
		if parts, err = uimageParts(r, h, lim); err != nil {
			return err
		}
	}
	for i, p := range parts {
		p.codec = "none"
		if i == 0 {
			p.codec = uimageComps[h.comp]
		}
		name := base
		if h.typ == typeMulti || len(parts) > 1 {
			name += "/" + strconv.Itoa(i)
		}
		e, open, err := p.entry(ctx, name, lim)
		if err != nil {
			return fmt.Errorf("uImage part %d: %w", i, err)
		}
		e.Damage = pipeline.JoinDamage(damage, e.Damage)
		e.Label = h.name
		if err := visit(e, open); err != nil {
			return err
		}
	}
	return nil
}

// uimageParts reads the zero-terminated list of part sizes that starts the
// data of multi-file and script images; each part follows the list, the
// ones before the last padded to 4 bytes.
func uimageParts(r io.ReaderAt, h *uimageHeader, lim pipeline.Limits) ([]payload, error) {
	var (
		sizes []uint32
		w     [4]byte
		end   = uimageHeaderLen + int64(h.size)
	)
	for off := int64(uimageHeaderLen); ; off += 4 {
		if off+4 > end {
			return nil, errors.New("uImage multi-file size list runs past the data")
		}
		if _, err := r.ReadAt(w[:], off); err != nil {
			return nil, fmt.Errorf("uImage multi-file size list: %w", err)
		}
		n := binary.BigEndian.Uint32(w[:])
		if n == 0 {
			break
		}
		if int64(len(sizes)) >= lim.MaxEntries {
			return nil, fmt.Errorf("uImage multi-file image lists more than %d parts", lim.MaxEntries)
		}
		sizes = append(sizes, n)
	}
	parts := make([]payload, len(sizes))
	off := uimageHeaderLen + 4*int64(len(sizes)+1)
	for i, n := range sizes {
		if int64(n) > end-off {
			return nil, fmt.Errorf("uImage part %d of %d bytes at offset %d runs past the data's end at %d", i, n, off, end)
		}
		parts[i] = payload{r: r, off: off, n: int64(n)}
		off += (int64(n) + 3) &^ 3
	}
	return parts, nil
}
