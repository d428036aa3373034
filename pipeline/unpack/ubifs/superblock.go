package ubifs

import (
	"context"
	"fmt"
	"io"
)

// Superblock flags that change how the image is read.
const (
	flagEncryption     = 0x10
	flagAuthentication = 0x20
)

// Compressor ids of the superblock, inodes and data nodes.
const (
	comprNone = 0
	comprLZO  = 1
	comprZlib = 2
	comprZstd = 3
)

var comprNames = map[uint16]string{comprNone: "none", comprLZO: "lzo", comprZlib: "zlib", comprZstd: "zstd"}

// Limits UBIFS itself sets on the geometry; anything outside them is not an
// image the kernel would mount.
const (
	minLEBSize = 15 * 1024
	maxLEBSize = 16 << 20
	maxLevels  = 32
)

// hashLens are the digest sizes of the kernel's hash_algo ids, which an
// authenticated image stores after every index branch key.
var hashLens = map[uint16]int{0: 16, 1: 16, 2: 20, 3: 20, 4: 32, 5: 48, 6: 64, 7: 28}

type superblock struct {
	flags      uint32
	minIO      uint32
	lebSize    uint32
	lebCnt     uint32
	fmtVersion uint32
	compr      uint16
	keyHash    uint8
	hashLen    int // of an authenticated image's index branches; 0 otherwise
}

// volume is an open UBIFS image: its geometry and the leaves of its index.
type volume struct {
	r          io.ReaderAt
	size       int64
	sb         superblock
	branchSize int
	idx        *index
}

func readSuperblock(r io.ReaderAt, size int64) (*superblock, error) {
	if size < sbNodeSize {
		return nil, corrupt("image of %d bytes is shorter than a superblock node", size)
	}
	buf := make([]byte, sbNodeSize)
	if _, err := r.ReadAt(buf, 0); err != nil && err != io.EOF {
		return nil, fmt.Errorf("reading superblock: %w", err)
	}
	if _, err := parseHeader(buf, nodeSB); err != nil {
		return nil, fmt.Errorf("superblock: %w", err)
	}
	sb := &superblock{
		keyHash: buf[26], flags: le.Uint32(buf[28:]), minIO: le.Uint32(buf[32:]),
		lebSize: le.Uint32(buf[36:]), lebCnt: le.Uint32(buf[40:]),
		fmtVersion: le.Uint32(buf[80:]), compr: le.Uint16(buf[84:]),
	}
	if keyFmt := buf[27]; keyFmt != 0 {
		return nil, corrupt("superblock: key format %d is not the simple format", keyFmt)
	}
	if sb.fmtVersion < 4 || sb.fmtVersion > 5 {
		return nil, fmt.Errorf("ubifs: on-flash format version %d is not supported (only 4 and 5)", sb.fmtVersion)
	}
	if sb.lebSize < minLEBSize || sb.lebSize > maxLEBSize || sb.lebSize%8 != 0 {
		return nil, corrupt("superblock: LEB size %d is out of range", sb.lebSize)
	}
	if sb.minIO == 0 || sb.minIO&(sb.minIO-1) != 0 || sb.minIO > sb.lebSize {
		return nil, corrupt("superblock: minimum I/O size %d is not a power of two within a LEB", sb.minIO)
	}
	// The superblock, two master LEBs and at least the log, LPT and main
	// area follow: fewer than 5 LEBs cannot hold a file system.
	if sb.lebCnt < 5 {
		return nil, corrupt("superblock: %d LEBs cannot hold a file system", sb.lebCnt)
	}
	if _, ok := comprNames[sb.compr]; !ok {
		return nil, corrupt("superblock: unknown default compressor %d", sb.compr)
	}
	if sb.flags&flagAuthentication != 0 {
		algo := le.Uint16(buf[256:])
		n, ok := hashLens[algo]
		if !ok {
			return nil, fmt.Errorf("ubifs: authenticated image with unknown hash algorithm %d", algo)
		}
		sb.hashLen = n
	}
	return sb, nil
}

// master is what the reader needs of a master node: the root of the index.
type master struct {
	sqnum uint64
	root  pos
}

// open reads the superblock, the newest master node and the index.
func open(ctx context.Context, r io.ReaderAt, size int64) (*volume, error) {
	sb, err := readSuperblock(r, size)
	if err != nil {
		return nil, err
	}
	v := &volume{r: r, size: size, sb: *sb, branchSize: 12 + 8 + sb.hashLen}
	m, err := v.readMaster()
	if err != nil {
		return nil, err
	}
	v.idx, err = v.readIndex(ctx, m.root)
	if err != nil {
		return nil, fmt.Errorf("reading the index: %w", err)
	}
	return v, nil
}

// readMaster scans both master LEBs and returns the valid master node with
// the highest sequence number. The kernel appends a new master node to each
// LEB at every commit, so a LEB holds a run of them, the newest last.
func (v *volume) readMaster() (*master, error) {
	step := uint32(mstNodeSize)
	if a := max(v.sb.minIO, 8); a > step {
		step = a
	}
	var best *master
	var firstErr error
	buf := make([]byte, mstNodeSize)
	for lnum := uint32(1); lnum <= 2; lnum++ {
		for offs := uint32(0); offs+mstNodeSize <= v.sb.lebSize; offs += step {
			p := pos{lnum, offs, mstNodeSize}
			if err := v.readAt(buf, p); err != nil {
				if firstErr == nil {
					firstErr = err
				}
				break
			}
			if buf[0] == 0xff && buf[1] == 0xff && buf[2] == 0xff && buf[3] == 0xff {
				break // erased space: no newer master node in this LEB
			}
			sqnum, err := parseHeader(buf, nodeMst)
			if err != nil {
				if firstErr == nil {
					firstErr = fmt.Errorf("master node at %s: %w", p, err)
				}
				break
			}
			if best == nil || sqnum > best.sqnum {
				best = &master{sqnum: sqnum, root: pos{le.Uint32(buf[48:]), le.Uint32(buf[52:]), le.Uint32(buf[56:])}}
			}
		}
	}
	if best == nil {
		if firstErr == nil {
			firstErr = corrupt("master LEBs 1 and 2 are empty")
		}
		return nil, fmt.Errorf("no valid master node: %w", firstErr)
	}
	return best, nil
}
