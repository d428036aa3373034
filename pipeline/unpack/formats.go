package unpack

import (
	"bytes"
	"io"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/unpack/archive"
	"github.com/fwvet/fwvet/pipeline/unpack/compression"
	"github.com/fwvet/fwvet/pipeline/unpack/squashfs"
)

// Formats lists every format the unpacker knows, in the order they are
// tried. This is the one place a new format is registered.
func Formats() []pipeline.Format {
	return []pipeline.Format{
		squashfs.Format{},
		compression.Gzip{},
		compression.Xz{},
		compression.Zstd{},
		compression.Bzip2{},
		archive.Zip{},
		archive.Cpio{},
		archive.Tar{},
	}
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
