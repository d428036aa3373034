// Package ext4 reads ext2, ext3 and ext4 file system images from an
// io.ReaderAt: the superblock, the group descriptors (32- and 64-bit), the
// inode tables, directories (linear and hash-indexed, in blocks or inline)
// and file data through extent trees or classic block maps.
//
// The image is read as it stands: the journal is not replayed and checksums
// are not verified, since a firmware image is vetted for what it holds, not
// repaired. Every block number, count and length taken from the image is
// checked against the image before it is used, and every walk over a tree or
// a chain of blocks is bounded, because the image is hostile input.
//
// Files are read through a map from logical to physical blocks built once
// per file, so random access (io.ReaderAt) costs no more than a stream.
package ext4
