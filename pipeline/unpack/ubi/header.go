package ubi

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// On-flash constants from the kernel's include/uapi/mtd/ubi-media.h.
const (
	hdrSize     = 64
	ubiVersion  = 1
	maxVolumes  = 128
	layoutVolID = 0x7FFFEFFF // UBI_LAYOUT_VOLUME_ID
	layoutLEBs  = 2          // the volume table is kept twice
	vtblRecSize = 172
	vtblNameMax = 127
	maxEraseCnt = 0x7FFFFFFF
	volDynamic  = 1
	volStatic   = 2
)

var (
	ecMagic  = []byte("UBI#")
	vidMagic = []byte("UBI!")
)

// ErrCorrupt is wrapped by every error about malformed image contents.
var ErrCorrupt = errors.New("corrupt ubi image")

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

// crc is UBI's CRC-32: the kernel's crc32_le seeded with all ones and not
// inverted at the end, which is the inverse of the IEEE checksum.
func crc(b []byte) uint32 { return ^crc32.ChecksumIEEE(b) }

var be = binary.BigEndian

// ecHdr is the erase-counter header at the start of every PEB.
type ecHdr struct {
	ec       uint64
	vidOff   uint32
	dataOff  uint32
	imageSeq uint32
}

// parseEC checks an EC header's magic, version, CRC and offsets.
func parseEC(b []byte) (ecHdr, error) {
	if len(b) < hdrSize || !bytes.Equal(b[:4], ecMagic) {
		return ecHdr{}, errors.New("no UBI# erase-counter header")
	}
	if got, want := crc(b[:60]), be.Uint32(b[60:]); got != want {
		return ecHdr{}, fmt.Errorf("erase-counter header CRC %#08x, computed %#08x", want, got)
	}
	if b[4] != ubiVersion {
		return ecHdr{}, fmt.Errorf("UBI version %d, want %d", b[4], ubiVersion)
	}
	h := ecHdr{ec: be.Uint64(b[8:]), vidOff: be.Uint32(b[16:]), dataOff: be.Uint32(b[20:]), imageSeq: be.Uint32(b[24:])}
	switch {
	case h.ec > maxEraseCnt:
		return h, fmt.Errorf("erase counter %d out of range", h.ec)
	case h.vidOff < hdrSize || h.vidOff > maxPEBSize:
		return h, fmt.Errorf("VID header offset %d out of range", h.vidOff)
	case uint64(h.dataOff) < uint64(h.vidOff)+hdrSize || h.dataOff >= maxPEBSize:
		return h, fmt.Errorf("data offset %d out of range (VID header at %d)", h.dataOff, h.vidOff)
	}
	return h, nil
}

// vidHdr is the volume-identifier header of a PEB that holds an LEB.
type vidHdr struct {
	volType  uint8
	copyFlag bool
	volID    uint32
	lnum     uint32
	dataSize uint32
	usedEBs  uint32
	dataPad  uint32
	dataCRC  uint32
	sqnum    uint64
}

// errNoVID marks a PEB that holds no LEB: erased past its EC header.
var errNoVID = errors.New("no VID header")

// parseVID decodes a VID header. A header whose CRC fails is still decoded,
// with the error, so that the damage can be told about the volume it claims.
func parseVID(b []byte) (vidHdr, error) {
	if len(b) < hdrSize || !bytes.Equal(b[:4], vidMagic) {
		return vidHdr{}, errNoVID
	}
	h := vidHdr{volType: b[5], copyFlag: b[6] != 0, volID: be.Uint32(b[8:]), lnum: be.Uint32(b[12:]),
		dataSize: be.Uint32(b[20:]), usedEBs: be.Uint32(b[24:]), dataPad: be.Uint32(b[28:]),
		dataCRC: be.Uint32(b[32:]), sqnum: be.Uint64(b[40:])}
	if got, want := crc(b[:60]), be.Uint32(b[60:]); got != want {
		return h, fmt.Errorf("VID header CRC %#08x, computed %#08x", want, got)
	}
	if b[4] != ubiVersion {
		return h, fmt.Errorf("VID header version %d, want %d", b[4], ubiVersion)
	}
	return h, nil
}

// check validates a VID header against the geometry, as the kernel's
// validate_vid_hdr does. The data pad is what an alignment leaves of the
// LEB, less than the alignment and so never more than half the LEB: a
// larger one would make the LEBs of a volume absurdly small.
func (h *vidHdr) check(lebSize int64) error {
	switch {
	case h.volID >= maxVolumes && h.volID != layoutVolID:
		return fmt.Errorf("volume id %#x is neither a user volume nor the layout volume", h.volID)
	case h.volID == layoutVolID && h.lnum >= layoutLEBs:
		return fmt.Errorf("layout volume LEB %d", h.lnum)
	case h.volType != volDynamic && h.volType != volStatic:
		return fmt.Errorf("volume type %d", h.volType)
	case int64(h.dataPad) > lebSize/2:
		return fmt.Errorf("data pad %d is more than half the LEB size %d", h.dataPad, lebSize)
	case int64(h.dataSize) > lebSize-int64(h.dataPad):
		return fmt.Errorf("data size %d exceeds the LEB", h.dataSize)
	case h.volType == volStatic && (h.usedEBs == 0 || h.lnum >= h.usedEBs):
		return fmt.Errorf("static volume LEB %d of %d used", h.lnum, h.usedEBs)
	}
	return nil
}

// vtblRec is one volume table record.
type vtblRec struct {
	reservedPEBs uint32
	alignment    uint32
	dataPad      uint32
	volType      uint8
	updMarker    bool
	name         []byte
	autoresize   bool
}

// parseVtblRec decodes and checks a volume table record. An empty slot
// returns a zero record.
func parseVtblRec(b []byte, lebSize int64) (vtblRec, error) {
	if got, want := crc(b[:168]), be.Uint32(b[168:]); got != want {
		return vtblRec{}, fmt.Errorf("CRC %#08x, computed %#08x", want, got)
	}
	r := vtblRec{reservedPEBs: be.Uint32(b[0:]), alignment: be.Uint32(b[4:]), dataPad: be.Uint32(b[8:]),
		volType: b[12], updMarker: b[13] != 0, autoresize: b[144]&1 != 0}
	if r.reservedPEBs == 0 {
		return vtblRec{}, nil
	}
	nameLen := int(be.Uint16(b[14:]))
	switch {
	case r.volType != volDynamic && r.volType != volStatic:
		return r, fmt.Errorf("volume type %d", r.volType)
	case int64(r.dataPad) > lebSize/2:
		return r, fmt.Errorf("data pad %d is more than half the LEB size %d", r.dataPad, lebSize)
	case nameLen > vtblNameMax:
		return r, fmt.Errorf("name length %d", nameLen)
	}
	r.name = append([]byte(nil), b[16:16+nameLen]...)
	return r, nil
}
