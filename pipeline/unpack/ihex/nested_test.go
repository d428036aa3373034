package ihex_test

import (
	"context"
	"testing"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/fixture"
	"github.com/fwvet/fwvet/pipeline/unpack"
	"github.com/fwvet/fwvet/pipeline/unpack/ihex"
	"github.com/fwvet/fwvet/pipeline/unpack/squashfs"
)

// TestNested: the unpacker peels the hex layer and finds the squashfs
// inside, as it will once ihex is registered.
func TestNested(t *testing.T) {
	u, err := unpack.New(unpack.Options{
		Formats: []pipeline.Format{squashfs.Format{}, ihex.Format{}},
		Limits:  pipeline.DefaultLimits(),
		WorkDir: t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	tree, err := u.Unpack(context.Background(), &pipeline.Artifact{Name: "ihex-tiny.hex", Path: fixture.Path(t, "fw/ihex-tiny.hex")})
	if err != nil {
		t.Fatal(err)
	}
	defer tree.Close()
	fixture.CheckWrappedTiny(t, tree, "ihex", "tiny ihex seed\n")
}
