// Package ubi reads UBI images (Unsorted Block Images, the Linux volume layer
// for raw NAND and NOR flash), as ubinize writes them or as a flash dump
// holds them.
//
// An image is a run of physical eraseblocks (PEBs), each starting with an
// erase-counter (EC) header and, when it carries data, a volume-identifier
// (VID) header naming the volume and logical eraseblock (LEB) it holds. The
// layout volume keeps the volume table. Each volume becomes one regular file
// whose bytes are its LEBs in order, read in place from the image: a nested
// UBIFS or SquashFS reader gets an io.ReaderAt over it with no copy.
//
// UBI keeps no list of which PEB holds which LEB (fastmap aside, which this
// reader does not need); like the kernel's full scan, the reader looks at
// every PEB and lets the highest sequence number win.
package ubi
