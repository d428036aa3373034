package unpack

import (
	"bytes"
	"io"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/unpack/archive"
	"github.com/fwvet/fwvet/pipeline/unpack/compression"
	"github.com/fwvet/fwvet/pipeline/unpack/ext4"
	"github.com/fwvet/fwvet/pipeline/unpack/ihex"
	"github.com/fwvet/fwvet/pipeline/unpack/jffs2"
	"github.com/fwvet/fwvet/pipeline/unpack/sparse"
	"github.com/fwvet/fwvet/pipeline/unpack/squashfs"
	"github.com/fwvet/fwvet/pipeline/unpack/squashfs3"
	"github.com/fwvet/fwvet/pipeline/unpack/ubi"
	"github.com/fwvet/fwvet/pipeline/unpack/ubifs"
	"github.com/fwvet/fwvet/pipeline/unpack/uboot"
)

// Formats lists every format the unpacker knows, in the order they are
// tried. This is the one place a new format is registered.
func Formats() []pipeline.Format {
	return []pipeline.Format{
		squashfs.Format{},
		squashfs3.Format{},
		uboot.UImage{},
		uboot.FIT{},
		uboot.DTB{},
		ext4.Format{},
		ubi.Format{},
		ubifs.Format{},
		jffs2.Format{},
		sparse.Format{},
		compression.Gzip{},
		compression.Xz{},
		compression.Zstd{},
		compression.Bzip2{},
		compression.Lzop{},
		compression.Lz4{},
		archive.Zip{},
		archive.Cpio{},
		archive.Tar{},
		// No magic number: tried after every format that has one.
		compression.Lzma{},
		ihex.Format{},
	}
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
