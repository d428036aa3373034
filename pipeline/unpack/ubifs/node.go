package ubifs

import (
	"bytes"
	"fmt"
	"hash/crc32"
	"io"
)

// Node types of the common header.
const (
	nodeIno  = 0
	nodeData = 1
	nodeDent = 2
	nodeXent = 3
	nodeSB   = 6
	nodeMst  = 7
	nodeIdx  = 9
)

var nodeNames = map[uint8]string{nodeIno: "inode", nodeData: "data", nodeDent: "dentry", nodeXent: "xattr entry", nodeSB: "superblock", nodeMst: "master", nodeIdx: "index"}

func nodeName(t uint8) string {
	if n, ok := nodeNames[t]; ok {
		return n
	}
	return fmt.Sprintf("type-%d", t)
}

// Fixed node sizes: the smallest node of each type, header included.
const (
	chSize      = 24
	sbNodeSize  = 4096
	mstNodeSize = 512
	idxHdrSize  = 28
	inoHdrSize  = 160
	dataHdrSize = 48
	dentHdrSize = 56
	blockSize   = 4096
	maxNameLen  = 255
	// maxNodeSize is the largest node UBIFS writes: an inode with a block
	// of inline data. Index nodes may be larger, up to a LEB.
	maxNodeSize = inoHdrSize + blockSize
)

var minSize = map[uint8]int{nodeIno: inoHdrSize, nodeData: dataHdrSize, nodeDent: dentHdrSize, nodeXent: dentHdrSize, nodeSB: sbNodeSize, nodeMst: mstNodeSize, nodeIdx: idxHdrSize}

// nodeCRC is the kernel's crc32(0xFFFFFFFF, ...): IEEE without the final
// inversion.
func nodeCRC(b []byte) uint32 { return ^crc32.ChecksumIEEE(b) }

// parseHeader checks the common header of node, which must be exactly the
// node's bytes, against its type and CRC, and returns its sequence number.
func parseHeader(node []byte, typ uint8) (uint64, error) {
	if len(node) < chSize || !bytes.HasPrefix(node, magic) {
		return 0, corrupt("no %s node magic", nodeName(typ))
	}
	if t := node[20]; t != typ {
		return 0, corrupt("%s node found where a %s node belongs", nodeName(t), nodeName(typ))
	}
	if n := le.Uint32(node[16:]); int64(n) != int64(len(node)) {
		return 0, corrupt("%s node is %d bytes long, its reference says %d", nodeName(typ), n, len(node))
	}
	if len(node) < minSize[typ] {
		return 0, corrupt("%s node of %d bytes is shorter than its header", nodeName(typ), len(node))
	}
	if got, want := nodeCRC(node[8:]), le.Uint32(node[4:]); got != want {
		return 0, corrupt("%s node CRC %#08x does not match the stored %#08x", nodeName(typ), got, want)
	}
	return le.Uint64(node[8:]), nil
}

// pos locates a node: LEB number, offset in the LEB and length.
type pos struct{ lnum, offs, len uint32 }

func (p pos) String() string { return fmt.Sprintf("LEB %d offset %d", p.lnum, p.offs) }

// readNode reads the node of type typ at p into a buffer of its own and
// checks it, refusing positions outside the file system or the image.
func (v *volume) readNode(p pos, typ uint8) ([]byte, error) {
	if err := v.checkPos(p, typ); err != nil {
		return nil, err
	}
	buf := make([]byte, p.len)
	if err := v.readAt(buf, p); err != nil {
		return nil, err
	}
	if _, err := parseHeader(buf, typ); err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return buf, nil
}

// checkPos refuses a node position that cannot hold a node of type typ.
func (v *volume) checkPos(p pos, typ uint8) error {
	if p.lnum >= v.sb.lebCnt {
		return corrupt("%s node at LEB %d, past the %d LEBs of the file system", nodeName(typ), p.lnum, v.sb.lebCnt)
	}
	if p.offs%8 != 0 || uint64(p.offs)+uint64(p.len) > uint64(v.sb.lebSize) {
		return corrupt("%s node of %d bytes at %s lies outside its LEB of %d bytes", nodeName(typ), p.len, p, v.sb.lebSize)
	}
	if int(p.len) < minSize[typ] || (typ != nodeIdx && int(p.len) > maxNodeSize) {
		return corrupt("%s node at %s has bad length %d", nodeName(typ), p, p.len)
	}
	return nil
}

// readAt reads len(buf) bytes at p, reporting a truncated image as such.
func (v *volume) readAt(buf []byte, p pos) error {
	off := int64(p.lnum)*int64(v.sb.lebSize) + int64(p.offs)
	if off+int64(len(buf)) > v.size {
		return corrupt("node at %s (image offset %d) lies past the end of the %d-byte image: truncated", p, off, v.size)
	}
	if n, err := v.r.ReadAt(buf, off); n < len(buf) {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("reading node at %s: %w", p, err)
	}
	return nil
}
