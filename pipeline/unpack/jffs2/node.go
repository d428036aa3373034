package jffs2

import (
	"encoding/binary"
	"hash/crc32"
)

// On-disk constants of include/uapi/linux/jffs2.h.
const (
	magic        = 0x1985
	nodeAccurate = 0x2000
	compatMask   = 0xc000
	incompat     = 0xc000

	typeDirent      = 0xe001
	typeInode       = 0xe002
	typeCleanmarker = 0x2003
	typePadding     = 0x2004
	typeSummary     = 0x2006
	typeXattr       = 0xe008
	typeXref        = 0xe009

	headerSize = 12 // magic, nodetype, totlen, hdr_crc
	inodeSize  = 68 // struct jffs2_raw_inode before its data
	direntSize = 40 // struct jffs2_raw_dirent before its name

	rootIno = 1
)

// Compression types of a data node.
const (
	comprNone      = 0
	comprZero      = 1
	comprRtime     = 2
	comprRubinMips = 3
	comprCopy      = 4
	comprDynRubin  = 5
	comprZlib      = 6
	comprLZO       = 7
)

var comprNames = map[uint8]string{comprNone: "none", comprZero: "zero", comprRtime: "rtime", comprRubinMips: "rubinmips",
	comprCopy: "copy", comprDynRubin: "dynrubin", comprZlib: "zlib", comprLZO: "lzo"}

func comprName(c uint8) string {
	if n, ok := comprNames[c]; ok {
		return n
	}
	return "unknown"
}

// maxNodeData bounds the bytes one data node may hold or decompress to. The
// kernel writes at most a page (4 to 64 KiB) per node; mkfs.jffs2 -s allows
// more, but nothing near a megabyte.
const maxNodeData = 1 << 20

// crc is the kernel's crc32(0, b, len): the IEEE polynomial without the
// usual inversion before and after.
func crc(b []byte) uint32 { return crcUpdate(0, b) }

func crcUpdate(c uint32, b []byte) uint32 { return ^crc32.Update(^c, crc32.IEEETable, b) }

func pad4(n int64) int64 { return (n + 3) &^ 3 }

// nodeHeader is the common header every node starts with.
type nodeHeader struct {
	nodetype uint16
	totlen   uint32
}

// parseHeader decodes the 12-byte header at b in order, reporting whether
// its magic and header CRC hold. The CRC is computed with the accurate bit
// set because the kernel obsoletes a node by clearing that bit in place,
// without rewriting the CRC.
func parseHeader(b []byte, order binary.ByteOrder) (nodeHeader, bool) {
	if len(b) < headerSize || order.Uint16(b) != magic {
		return nodeHeader{}, false
	}
	h := nodeHeader{nodetype: order.Uint16(b[2:]), totlen: order.Uint32(b[4:])}
	var tmp [8]byte
	copy(tmp[:], b[:8])
	order.PutUint16(tmp[2:], h.nodetype|nodeAccurate)
	return h, crc(tmp[:]) == order.Uint32(b[8:]) && h.totlen >= headerSize
}

// detectOrder returns the byte order in which b starts with a valid node header.
func detectOrder(b []byte) (binary.ByteOrder, nodeHeader, bool) {
	for _, o := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
		if h, ok := parseHeader(b, o); ok {
			return o, h, true
		}
	}
	return nil, nodeHeader{}, false
}
