package sparse_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"slices"
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
	if !slices.Equal(tree.Formats, []string{"android-sparse", "squashfs"}) {
		t.Errorf("formats %v, want android-sparse then squashfs", tree.Formats)
	}
	sum := sha256.Sum256([]byte("tiny sparse seed\n"))
	if motd := tree.Find("/etc/motd"); len(motd) != 1 || motd[0].SHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("/etc/motd: %+v", motd)
	}
	if hello := tree.Find("/bin/hello"); len(hello) != 1 || hello[0].Mode != 04755 {
		t.Errorf("/bin/hello: %+v", hello)
	}
}
