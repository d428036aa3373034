// Package block decompresses whole compressed blocks of known maximum size
// into a caller's buffer: squashfs's zlib and xz blocks, UBIFS's deflate nodes.
//
// A build with cgo calls libdeflate and liblzma, which unsquashfs links
// too: they take under half the CPU time of the Go decoders on zlib blocks
// and about two thirds on xz blocks. A build without cgo, or with the
// purego tag, uses the Go decoders. The two are fuzzed against each other.
package block

import "errors"

// ErrTooLong is returned when a block decompresses to more bytes than the
// caller's buffer holds: for a block format, a corrupt or hostile block.
var ErrTooLong = errors.New("block decompresses past its maximum size")

// XZDictMax is the largest LZMA2 dictionary XZ accepts. squashfs, the one
// user, sets the dictionary to at most its block size, which is at most
// 1 MiB; a block declaring more is refused rather than allocated.
const XZDictMax = 1 << 20

// Zlib decompresses the zlib stream src (header, deflate data, Adler-32)
// into dst, all of which it may use, and returns the length written.
func Zlib(dst, src []byte) (int, error) { return zlibImpl(dst, src) }

// Deflate decompresses the raw deflate stream src into dst, all of which it
// may use, and returns the length written.
func Deflate(dst, src []byte) (int, error) { return deflateImpl(dst, src) }

// XZ decompresses the single xz stream src, with any BCJ filters and its
// integrity check verified, into dst, all of which it may use, and returns
// the length written.
func XZ(dst, src []byte) (int, error) { return xzImpl(dst, src) }
