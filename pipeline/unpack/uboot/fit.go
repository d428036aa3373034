package uboot

import (
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"strings"

	"github.com/fwvet/fwvet/pipeline"
)

// FIT reads U-Boot Flattened Image Tree images (.itb): a device tree whose
// /images node holds one node per image with its data embedded ("data"),
// after the tree ("data-offset" from the tree's end aligned to 4, as mkimage
// -E writes), or at a fixed place ("data-position", mkimage -E -p).
//
// Each image node becomes the file images/NODE, its contents decompressed
// as its "compression" property says. Every hash node (hash-1...) is checked
// against the data as stored; a mismatch, or an algorithm that cannot be
// checked, is damage of that entry. Configurations, signatures and the other
// properties describe how to boot and are not files: they are not emitted.
type FIT struct{}

var (
	_ pipeline.Container = FIT{}
	_ pipeline.Carvable  = FIT{}
	_ pipeline.Spanner   = FIT{}
)

// Name implements pipeline.Format.
func (FIT) Name() string { return "fit" }

// Match implements pipeline.Format: a device tree header whose blocks fit
// its size, and an /images node in the part of the structure block that
// head holds.
func (FIT) Match(head []byte) bool {
	h, err := parseFDTHeader(head)
	return err == nil && hasImages(head, h)
}

// Signatures implements pipeline.Carvable.
func (FIT) Signatures() []pipeline.Signature {
	return []pipeline.Signature{{Magic: fdtMagic, Align: 4}}
}

// Span implements pipeline.Spanner: the tree and the external data after it.
func (FIT) Span(r io.ReaderAt, size int64) (int64, error) {
	h, images, err := readFIT(context.Background(), r, size)
	if err != nil {
		return 0, err
	}
	end := int64(h.totalSize)
	for _, n := range images.children {
		p, _, err := fitData(n, h, r, size)
		if err != nil {
			return 0, err
		}
		end = max(end, p.off+p.n)
	}
	// mkimage pads external data to 4 bytes, unless the input ends first.
	return min((end+3)&^3, max(end, size)), nil
}

func readFIT(ctx context.Context, r io.ReaderAt, size int64) (*fdtHeader, *fdtNode, error) {
	b := make([]byte, fdtHeaderLen)
	if size < fdtHeaderLen {
		return nil, nil, fmt.Errorf("FIT of %d bytes is shorter than a device tree header", size)
	}
	if _, err := r.ReadAt(b, 0); err != nil {
		return nil, nil, fmt.Errorf("FIT header: %w", err)
	}
	h, err := parseFDTHeader(b)
	if err != nil {
		return nil, nil, fmt.Errorf("FIT: %w", err)
	}
	root, err := parseFDT(ctx, r, size, h)
	if err != nil {
		return nil, nil, fmt.Errorf("FIT: %w", err)
	}
	images := root.child("images")
	if images == nil {
		return nil, nil, fmt.Errorf("FIT has no /images node")
	}
	return h, images, nil
}

// fitData locates an image's data. A node without data gives an empty
// payload and ok false.
func fitData(n *fdtNode, h *fdtHeader, r io.ReaderAt, size int64) (p payload, ok bool, err error) {
	p = payload{r: r}
	where := func(err error) error { return fmt.Errorf("FIT image %q: %w", n.name, err) }
	if d, ok := n.props["data"]; ok {
		p.off, p.n = d.off, d.n
		return p, true, nil
	}
	dsize, hasSize, err := n.u32("data-size")
	if err != nil {
		return p, false, where(err)
	}
	doff, hasOff, err := n.u32("data-offset")
	if err != nil {
		return p, false, where(err)
	}
	dpos, hasPos, err := n.u32("data-position")
	if err != nil {
		return p, false, where(err)
	}
	switch {
	case !hasSize:
		return p, false, nil
	case hasPos:
		p.off = int64(dpos)
	case hasOff:
		p.off = (int64(h.totalSize)+3)&^3 + int64(doff)
	default:
		return p, false, nil
	}
	p.n = int64(dsize)
	if p.off+p.n > size {
		return p, false, where(fmt.Errorf("external data of %d bytes at %d runs past the end of the %d byte image", p.n, p.off, size))
	}
	return p, true, nil
}

// fitTypeNames shortens the FIT image types whose names are long in paths.
var fitTypeNames = map[string]string{"flat_dt": "fdt"}

// Walk implements pipeline.Container.
func (FIT) Walk(ctx context.Context, r io.ReaderAt, size int64, lim pipeline.Limits, visit func(*pipeline.Header, pipeline.OpenFunc) error) error {
	h, images, err := readFIT(ctx, r, size)
	if err != nil {
		return err
	}
	if int64(len(images.children)) > lim.MaxEntries {
		return fmt.Errorf("FIT has %d images, more than %d", len(images.children), lim.MaxEntries)
	}
	seen := map[string]int{}
	for _, n := range images.children {
		p, ok, err := fitData(n, h, r, size)
		if err != nil {
			return err
		}
		p.codec = "none"
		if c, ok := n.str("compression"); ok {
			p.codec = c
		}
		checks := fitHashes(n)
		var ws []io.Writer
		for _, c := range checks {
			if c.h != nil {
				ws = append(ws, c.h)
			}
		}
		// Vendors put the release in node names ("kernel-v1.2.3") and
		// descriptions: the path names the image by its type and place
		// among the images of that type, the header's names go in the label.
		typ, _ := n.str("type")
		typ = cleanName(fitTypeNames[typ], cleanName(typ, "image"))
		seen[typ]++
		name := fmt.Sprintf("images/%s-%d", typ, seen[typ])
		e, open, err := p.entry(ctx, name, lim, ws...)
		if err != nil {
			return fmt.Errorf("FIT image %q: %w", n.name, err)
		}
		e.Label = n.name
		if d, ok := n.str("description"); ok && d != "" {
			e.Label += ": " + d
		}
		var damage []string
		if !ok {
			damage = append(damage, fmt.Sprintf("FIT image %q has no data", n.name))
		}
		for _, c := range checks {
			if d := c.verify(n.name); d != "" {
				damage = append(damage, d)
			}
		}
		e.Damage = pipeline.JoinDamage(strings.Join(damage, "; "), e.Damage)
		if err := visit(e, open); err != nil {
			return err
		}
	}
	return nil
}

// fitHash is one hash node: its hash function (nil when the algorithm is
// not known) and the value it stores.
type fitHash struct {
	node, algo string
	want       []byte
	h          hash.Hash
	problem    string
}

var fitAlgos = map[string]func() hash.Hash{
	"crc32":  func() hash.Hash { return crc32.NewIEEE() },
	"md5":    md5.New,
	"sha1":   sha1.New,
	"sha256": sha256.New,
	"sha384": sha512.New384,
	"sha512": sha512.New,
}

// fitHashes reads the hash nodes of an image: the subnodes whose names
// start with "hash", as U-Boot's fit_image_verify picks them.
func fitHashes(n *fdtNode) []*fitHash {
	var out []*fitHash
	for _, c := range n.children {
		if !strings.HasPrefix(c.name, "hash") {
			continue
		}
		f := &fitHash{node: c.name}
		out = append(out, f)
		algo, ok := c.str("algo")
		f.algo = algo
		v, hasValue := c.props["value"]
		newHash := fitAlgos[algo]
		switch {
		case !ok:
			f.problem = "has no algo; not verified"
		case newHash == nil:
			f.problem = fmt.Sprintf("has algorithm %q; not verified", algo)
		case !hasValue || v.val == nil:
			f.problem = fmt.Sprintf("has no %s value; not verified", algo)
		default:
			f.h, f.want = newHash(), v.val
			if len(f.want) != f.h.Size() {
				f.problem = fmt.Sprintf("holds a %d byte %s value, not %d; not verified", len(f.want), algo, f.h.Size())
				f.h = nil
			}
		}
	}
	return out
}

// verify returns the damage a hash node finds, or "".
func (f *fitHash) verify(image string) string {
	where := fmt.Sprintf("FIT image %q hash node %q", image, f.node)
	if f.problem != "" {
		return where + " " + f.problem
	}
	got := f.h.Sum(nil)
	if string(got) == string(f.want) {
		return ""
	}
	return fmt.Sprintf("%s: %s %s of the data does not match the stored %s", where, f.algo, hex.EncodeToString(got), hex.EncodeToString(f.want))
}

// DTB cuts plain device tree blobs (a board's .dtb, not a FIT) out of flash
// dumps. A device tree holds no files, so Walk only checks its structure.
type DTB struct{}

var (
	_ pipeline.Container = DTB{}
	_ pipeline.Carvable  = DTB{}
	_ pipeline.Spanner   = DTB{}
)

// Name implements pipeline.Format.
func (DTB) Name() string { return "dtb" }

// Match implements pipeline.Format: a device tree that FIT does not match.
func (DTB) Match(head []byte) bool {
	h, err := parseFDTHeader(head)
	return err == nil && !hasImages(head, h)
}

// Signatures implements pipeline.Carvable.
func (DTB) Signatures() []pipeline.Signature {
	return []pipeline.Signature{{Magic: fdtMagic, Align: 4}}
}

// Span implements pipeline.Spanner: the tree's total size.
func (DTB) Span(r io.ReaderAt, size int64) (int64, error) {
	b := make([]byte, fdtHeaderLen)
	if size < fdtHeaderLen {
		return 0, fmt.Errorf("device tree of %d bytes is shorter than its header", size)
	}
	if _, err := r.ReadAt(b, 0); err != nil {
		return 0, fmt.Errorf("device tree header: %w", err)
	}
	h, err := parseFDTHeader(b)
	if err != nil {
		return 0, err
	}
	if int64(h.totalSize) > size {
		return 0, fmt.Errorf("device tree of %d bytes is cut short at %d", h.totalSize, size)
	}
	return int64(h.totalSize), nil
}

// Walk implements pipeline.Container.
func (DTB) Walk(ctx context.Context, r io.ReaderAt, size int64, lim pipeline.Limits, visit func(*pipeline.Header, pipeline.OpenFunc) error) error {
	n, err := DTB{}.Span(r, size)
	if err != nil {
		return err
	}
	b := make([]byte, fdtHeaderLen)
	if _, err := r.ReadAt(b, 0); err != nil {
		return err
	}
	h, _ := parseFDTHeader(b)
	_, err = parseFDT(ctx, r, n, h)
	return err
}
