package squashfs_test

import (
	"testing"

	"github.com/fwvet/fwvet/pipeline/fixture"
	"github.com/fwvet/fwvet/pipeline/unpack/squashfs"
)

// TestReadAtMatchesStream: a file read at random offsets gives the same
// bytes as the file read front to back, for blocks, sparse blocks and
// fragment tails alike, in every compression.
func TestReadAtMatchesStream(t *testing.T) {
	for _, img := range []string{"fw/rootfs-1.0.0.sqfs", "fw/rootfs-1.0.0-zstd.sqfs", "fw/rootfs-1.0.0-nofrag.sqfs", "fw/rootfs-1.0.0-noncomp.sqfs", "fw/tiny-xz.sqfs"} {
		t.Run(img, func(t *testing.T) {
			fixture.CheckArchiveReadAt(t, squashfs.Format{}, img, fixture.ReadAtFiles{MaxFiles: 201, MinFiles: 5, MaxLen: 300000})
		})
	}
}
