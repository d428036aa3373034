package squashfs_test

import (
	"bytes"
	"context"
	"io"
	"math/rand"
	"os"
	"testing"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/fixture"
	"github.com/fwvet/fwvet/pipeline/unpack/squashfs"
)

// TestReadAtMatchesStream: a file read at random offsets gives the same
// bytes as the file read front to back, for blocks, sparse blocks and
// fragment tails alike, in every compression.
func TestReadAtMatchesStream(t *testing.T) {
	for _, img := range []string{"fw/rootfs-1.0.0.sqfs", "fw/rootfs-1.0.0-zstd.sqfs", "fw/rootfs-1.0.0-nofrag.sqfs", "fw/rootfs-1.0.0-noncomp.sqfs", "fw/tiny-xz.sqfs"} {
		t.Run(img, func(t *testing.T) {
			f, err := os.Open(fixture.Path(t, img))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			st, _ := f.Stat()
			rng := rand.New(rand.NewSource(1))
			checked := 0
			err = squashfs.Format{}.Walk(context.Background(), f, st.Size(), pipeline.DefaultLimits(), func(h *pipeline.Header, open pipeline.OpenFunc) error {
				if open == nil || h.Size == 0 || checked > 200 {
					return nil
				}
				rc, err := open(context.Background())
				if err != nil {
					return err
				}
				defer rc.Close()
				want, err := io.ReadAll(rc)
				if err != nil {
					return err
				}
				ra, ok := rc.(interface {
					io.ReaderAt
					Size() int64
				})
				if !ok {
					t.Fatal("a squashfs file is not an io.ReaderAt with a Size")
				}
				if ra.Size() != int64(len(want)) {
					t.Errorf("%s: Size %d, read %d bytes", h.Name, ra.Size(), len(want))
				}
				for k := 0; k < 5; k++ {
					off := rng.Int63n(int64(len(want)))
					n := 1 + rng.Intn(300000)
					buf := make([]byte, n)
					got, err := ra.ReadAt(buf, off)
					end := min(off+int64(n), int64(len(want)))
					if int64(got) != end-off || !bytes.Equal(buf[:got], want[off:end]) {
						t.Errorf("%s: ReadAt(%d, %d) gave %d bytes (%v), not the streamed ones", h.Name, n, off, got, err)
					}
					if end < off+int64(n) && err != io.EOF {
						t.Errorf("%s: ReadAt past the end returned %v, want io.EOF", h.Name, err)
					}
				}
				checked++
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if checked < 5 {
				t.Errorf("only %d files checked", checked)
			}
		})
	}
}
