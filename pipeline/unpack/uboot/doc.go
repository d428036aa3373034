// Package uboot reads the images U-Boot boots: legacy uImages (mkimage -T
// kernel, ramdisk, multi, script...) and FIT images (flattened device trees
// whose /images node holds the kernel, device trees and ramdisks), and cuts
// plain device tree blobs out of flash dumps.
//
// Each image becomes one file entry whose contents are its payload
// decompressed as the image header or the FIT's "compression" property says,
// so the unpacker can recurse into a ramdisk's cpio. The header CRCs and FIT
// hashes are checked against the bytes as stored; a mismatch is reported as
// damage of that entry, not as a failure of the image.
package uboot
