package sparse_test

import (
	"context"
	"testing"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/fixture"
	"github.com/fwvet/fwvet/pipeline/unpack"
	"github.com/fwvet/fwvet/pipeline/unpack/sparse"
	"github.com/fwvet/fwvet/pipeline/unpack/squashfs"
)

// TestNested: the unpacker expands the sparse layer and finds the squashfs
// inside, as it will once android-sparse is registered.
func TestNested(t *testing.T) {
	u, err := unpack.New(unpack.Options{
		Formats: []pipeline.Format{squashfs.Format{}, sparse.Format{}},
		Limits:  pipeline.DefaultLimits(),
		WorkDir: t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	tree, err := u.Unpack(context.Background(), &pipeline.Artifact{Name: "sparse-tiny-sqfs.simg", Path: fixture.Path(t, "fw/sparse-tiny-sqfs.simg")})
	if err != nil {
		t.Fatal(err)
	}
	defer tree.Close()
	fixture.CheckWrappedTiny(t, tree, "android-sparse", "tiny sparse seed\n")
}
