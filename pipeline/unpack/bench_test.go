package unpack_test

import (
	"os"
	"testing"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/fixture"
)

// BenchmarkUnpack measures unpacking and hashing a whole image. The large
// image of scripts/bench is used when FWVET_BENCH_IMAGE names it.
func BenchmarkUnpack(b *testing.B) {
	images := []string{"fw/rootfs-1.0.0.sqfs", "fw/rootfs-1.0.0-xz.sqfs", "fw/rootfs-1.0.0-zstd.sqfs", "fw/rootfs-1.0.0.tar.gz", "fw/rootfs-1.0.0.cpio"}
	for _, img := range images {
		path := fixture.Path(b, img)
		b.Run(img, func(b *testing.B) { benchUnpack(b, path) })
	}
	if p := os.Getenv("FWVET_BENCH_IMAGE"); p != "" {
		b.Run("large", func(b *testing.B) { benchUnpack(b, p) })
	}
}

func benchUnpack(b *testing.B, path string) {
	st, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	var bytes int64
	for b.Loop() {
		tree, _, err := unpackFile(b, path, pipeline.DefaultLimits())
		if err != nil {
			b.Fatal(err)
		}
		bytes = tree.Bytes
		tree.Close()
	}
	b.SetBytes(bytes)
	b.ReportMetric(float64(st.Size())/float64(1<<20), "MiB-in")
}
