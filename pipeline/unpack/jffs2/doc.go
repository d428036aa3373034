// Package jffs2 reads JFFS2 images, the log-structured flash file system of
// NOR-flash routers, from an io.ReaderAt.
//
// A JFFS2 image has no index: it is a sequence of nodes (directory entries
// and inode versions carrying data ranges), each newer version of a name or
// a byte range overriding the older ones. The reader scans the image once,
// as the kernel does at mount, keeping an index of node offsets, versions and
// sizes but no data; a file's bytes are read and decompressed on demand from
// the nodes that own each range. Both byte orders are supported, detected
// from the first valid node.
//
// Damage follows the kernel: a node whose header, node or data CRC fails is
// skipped and older data shows through, but the skip is reported, on the
// file it touches (pipeline.Header.Damage) or, for image-wide damage, on the
// root directory. An image cut short ends the walk with an error after every
// entry that survived has been visited.
package jffs2
