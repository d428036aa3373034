package jffs2_test

import (
	"path/filepath"
	"testing"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/fixture"
	"github.com/fwvet/fwvet/pipeline/unpack/jffs2"
)

var cleanImages = []string{
	"fw/jffs2-le-128k.img", "fw/jffs2-be-64k.img", "fw/jffs2-le-pad.img",
	"fw/jffs2-le-none.img", "fw/jffs2-le-lzo.img", "fw/jffs2-be-rtime.img",
}

// TestWalkMatchesSource: every image lists exactly the source tree, with
// types, modes (setuid and setgid too), owners, sizes, link targets, device
// numbers and contents, and hard links share an Identity.
func TestWalkMatchesSource(t *testing.T) {
	want := fixture.SourceTree(t, fixture.Path(t, "stage/formats"))
	delete(want, ".") // the image's root is checked apart, below
	for _, img := range cleanImages {
		t.Run(filepath.Base(img), func(t *testing.T) {
			got, err := fixture.WalkArchive(t, jffs2.Format{}, img, pipeline.DefaultLimits())
			if err != nil {
				t.Fatal(err)
			}
			root, ok := got["."]
			if !ok || root.Type != pipeline.TypeDir || root.Damage != "" {
				t.Errorf("root = %v", root)
			}
			delete(got, ".")
			fixture.CompareTrees(t, got, want)
			fixture.CompareLinks(t, got, want)
			if got["etc/issue"].Identity != got["etc/banner"].Identity {
				t.Error("the hard links /etc/issue and /etc/banner differ in Identity")
			}
		})
	}
}
