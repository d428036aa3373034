// Package ubifs reads UBIFS file system images: what mkfs.ubifs writes, and
// what a UBI volume holds once its LEBs are laid end to end.
//
// It reads the superblock and the newest valid master node, walks the
// committed index B-tree from its root, and keeps only the positions of the
// leaf nodes it finds there; inode, directory entry and data nodes are read
// when they are needed, each with its CRC checked. Nodes still only in the
// journal (written after the last commit of a mounted file system) are not
// read: the tree shown is the one of the last commit.
package ubifs

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/fwvet/fwvet/pipeline"
)

// Format is the UBIFS image format.
type Format struct{}

var (
	_ pipeline.Container        = Format{}
	_ pipeline.Carvable         = Format{}
	_ pipeline.Spanner          = Format{}
	_ pipeline.Format           = Format{}
	_ io.ReaderAt               = (*fileReader)(nil)
	_ io.WriterTo               = (*fileReader)(nil)
	_ interface{ Size() int64 } = (*fileReader)(nil)
)

// ErrCorrupt is wrapped by every error about malformed image contents.
var ErrCorrupt = errors.New("corrupt ubifs")

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

var magic = []byte{0x31, 0x18, 0x10, 0x06}

// Name implements pipeline.Format.
func (Format) Name() string { return "ubifs" }

// Match implements pipeline.Format: a superblock node whose CRC holds. The
// superblock node is 4096 bytes, all of them under the CRC, so a shorter
// head cannot be checked and is refused.
func (Format) Match(head []byte) bool {
	if len(head) < sbNodeSize || !bytes.HasPrefix(head, magic) {
		return false
	}
	_, err := parseHeader(head[:sbNodeSize], nodeSB)
	return err == nil
}

// Signatures implements pipeline.Carvable. A UBIFS image starts a LEB, and
// LEBs start on a flash page, 2 KiB on the smallest NAND parts in use.
func (Format) Signatures() []pipeline.Signature {
	return []pipeline.Signature{{Offset: 0, Magic: magic, Align: 2048}}
}

// Span implements pipeline.Spanner: the superblock's LEB count times its
// LEB size, at most size.
func (Format) Span(r io.ReaderAt, size int64) (int64, error) {
	sb, err := readSuperblock(r, size)
	if err != nil {
		return 0, err
	}
	return min(int64(sb.lebCnt)*int64(sb.lebSize), size), nil
}

// Walk implements pipeline.Container: the root directory, then every entry
// depth first, each directory before its contents and in name order.
func (Format) Walk(ctx context.Context, r io.ReaderAt, size int64, lim pipeline.Limits, visit func(*pipeline.Header, pipeline.OpenFunc) error) error {
	v, err := open(ctx, r, size)
	if err != nil {
		return err
	}
	return v.walk(ctx, lim, visit)
}

// le is the byte order of every UBIFS field.
var le = binary.LittleEndian
