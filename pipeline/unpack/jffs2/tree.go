package jffs2

import (
	"context"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"

	"github.com/fwvet/fwvet/pipeline"
)

// tree turns the index into paths: the newest dirent of each (parent, name)
// wins, and one that names inode 0 records a deletion.
type tree struct {
	ix       *index
	r        io.ReaderAt
	lim      pipeline.Limits
	children map[uint32][]child
	files    map[uint32]*file
	sorted   map[uint32]bool
	// lossy is set when the scan skipped nodes no file owns, so a file's
	// uncovered bytes are likely lost data rather than a hole.
	lossy bool
}

type child struct {
	name  string
	ino   uint32
	dtype uint8
}

type entry struct {
	path   string
	ino    uint32
	dtype  uint8
	damage string
}

func newTree(ix *index, r io.ReaderAt, lim pipeline.Limits) *tree {
	t := &tree{ix: ix, r: r, lim: lim, children: map[uint32][]child{}, files: map[uint32]*file{}, sorted: map[uint32]bool{},
		lossy: ix.problems.count > 0 || ix.truncated != nil}
	for k, d := range ix.dirents {
		if d.ino != 0 {
			t.children[k.pino] = append(t.children[k.pino], child{name: k.name, ino: d.ino, dtype: d.dtype})
		}
	}
	for _, c := range t.children {
		slices.SortFunc(c, func(a, b child) int { return strings.Compare(a.name, b.name) })
	}
	return t
}

// nodes returns an inode's nodes sorted by version.
func (t *tree) nodes(ino uint32) []dnode {
	in := t.ix.inodes[ino]
	if in == nil {
		return nil
	}
	if !t.sorted[ino] {
		sortNodes(in.nodes)
		t.sorted[ino] = true
	}
	return in.nodes
}

func (t *tree) walk(ctx context.Context, visit func(*pipeline.Header, pipeline.OpenFunc) error) error {
	var ents []entry
	reached := map[uint32]bool{rootIno: true}
	dirs := map[uint32]string{rootIno: "/"}
	if err := t.collect(ctx, rootIno, "", reached, dirs, &ents); err != nil {
		return err
	}

	root := &pipeline.Header{Name: ".", Type: pipeline.TypeDir, Mode: 0o755}
	if ns := t.nodes(rootIno); len(ns) > 0 {
		m := ns[len(ns)-1]
		root.Mode, root.UID, root.GID = m.mode&pipeline.ModePerm, uint32(m.uid), uint32(m.gid)
	}
	var dmg []string
	if t.ix.problems.count > 0 {
		dmg = append(dmg, "skipped as the kernel would: "+t.ix.problems.String())
	}
	if t.lossy {
		if o := t.orphans(reached); o != "" {
			dmg = append(dmg, o)
		}
	}
	root.Damage = strings.Join(dmg, "; ")
	if err := visit(root, nil); err != nil {
		return err
	}
	for i := range ents {
		if err := ctx.Err(); err != nil {
			return err
		}
		h, open := t.header(&ents[i])
		if err := visit(h, open); err != nil {
			return err
		}
	}
	return nil
}

// collect lists the entries under directory ino, depth first. A directory
// listed a second time (a cycle, or a rename cut short by a power loss) is
// not entered again.
func (t *tree) collect(ctx context.Context, ino uint32, dir string, reached map[uint32]bool, dirs map[uint32]string, ents *[]entry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, c := range t.children[ino] {
		if int64(len(*ents)) >= t.lim.MaxEntries {
			return &pipeline.LimitError{Limit: "max-entries", Value: t.lim.MaxEntries, Msg: "the image lists more entries than an artifact may hold"}
		}
		p := path.Join(dir, c.name)
		e := entry{path: p, ino: c.ino, dtype: c.dtype}
		reached[c.ino] = true
		if t.typeOf(c.ino, c.dtype) != pipeline.TypeDir {
			*ents = append(*ents, e)
			continue
		}
		if prev, ok := dirs[c.ino]; ok {
			e.damage = fmt.Sprintf("directory inode %d is also listed at %s (a cycle or an unfinished rename); its entries are listed there only", c.ino, prev)
			*ents = append(*ents, e)
			continue
		}
		dirs[c.ino] = "/" + p
		*ents = append(*ents, e)
		// A path the unpacker refuses makes all beneath it refused too;
		// stopping here also bounds the recursion.
		if len(p) <= t.lim.MaxPathLen {
			if err := t.collect(ctx, c.ino, p, reached, dirs, ents); err != nil {
				return err
			}
		}
	}
	return nil
}

// orphans names the inodes with nodes that no directory reaches. On a
// healthy image those are files deleted while open, which the kernel drops
// at mount; they are reported only when nodes were lost.
func (t *tree) orphans(reached map[uint32]bool) string {
	var inos []uint32
	for ino, in := range t.ix.inodes {
		if len(in.nodes) > 0 && !reached[ino] {
			inos = append(inos, ino)
		}
	}
	if len(inos) == 0 {
		return ""
	}
	slices.Sort(inos)
	shown := inos[:min(len(inos), maxReported)]
	s := fmt.Sprintf("%d inodes with data are reachable from no directory, probably because their directory entry was lost (inodes %v", len(inos), shown)
	if len(inos) > len(shown) {
		s += " ..."
	}
	return s + "); they are not listed"
}

func modeType(mode uint32) pipeline.EntryType {
	if ty, ok := pipeline.ModeType(mode); ok {
		return ty
	}
	return pipeline.EntryType(fmt.Sprintf("jffs2-mode-%o", mode&0o170000))
}

// typeOf is the type the inode's newest node gives, or the dirent's when
// the inode has no valid node left. A dirent's d_type is the mode's type
// bits shifted right by 12.
func (t *tree) typeOf(ino uint32, dtype uint8) pipeline.EntryType {
	if ns := t.nodes(ino); len(ns) > 0 {
		return modeType(ns[len(ns)-1].mode)
	}
	return modeType(uint32(dtype) << 12)
}

func (t *tree) file(ino uint32) *file {
	if f := t.files[ino]; f != nil {
		return f
	}
	f := &file{r: t.r, ino: ino, nodes: t.nodes(ino)}
	f.size, f.frags = layout(f.nodes)
	t.files[ino] = f
	return f
}

// fileDamage describes what is wrong with an inode's data.
func (t *tree) fileDamage(f *file) string {
	var dmg []string
	if in := t.ix.inodes[f.ino]; in != nil && in.damage.count > 0 {
		dmg = append(dmg, in.damage.String())
	}
	var uncovered int64
	for _, fr := range f.frags {
		if fr.node < 0 {
			uncovered += fr.end - fr.start
			continue
		}
		if c := f.nodes[fr.node].compr; c != comprNone && c != comprZero && c != comprZlib && c != comprRtime && c != comprLZO {
			dmg = append(dmg, fmt.Sprintf("bytes %d-%d are stored with %s compression (%d), which this reader does not decode", fr.start, fr.end, comprName(c), c))
		}
	}
	if uncovered > 0 && t.lossy {
		dmg = append(dmg, fmt.Sprintf("%d of its %d bytes are held by no node, probably lost with the damaged part of the image; they read as zeros", uncovered, f.size))
	}
	return strings.Join(dmg, "; ")
}

func (t *tree) header(e *entry) (*pipeline.Header, pipeline.OpenFunc) {
	h := &pipeline.Header{Name: e.path, Type: t.typeOf(e.ino, e.dtype)}
	var dmg []string
	if e.damage != "" {
		dmg = append(dmg, e.damage)
	}
	ns := t.nodes(e.ino)
	if len(ns) == 0 {
		dmg = append(dmg, fmt.Sprintf("inode %d has no valid inode node; its type comes from the directory entry and it has no owner, mode or data", e.ino))
		h.Damage = strings.Join(dmg, "; ")
		return h, nil
	}
	m := ns[len(ns)-1]
	h.Mode, h.UID, h.GID = m.mode&pipeline.ModePerm, uint32(m.uid), uint32(m.gid)
	var open pipeline.OpenFunc
	switch h.Type {
	case pipeline.TypeFile:
		f := t.file(e.ino)
		h.Size, h.Identity = f.size, uint64(e.ino)
		if d := t.fileDamage(f); d != "" {
			dmg = append(dmg, d)
		}
		if f.size <= t.lim.MaxFileSize {
			open = f.opener()
		}
	case pipeline.TypeSymlink:
		b, err := t.metaData(e.ino, int64(t.lim.MaxPathLen))
		if err != nil {
			dmg = append(dmg, fmt.Sprintf("symlink target: %v", err))
		}
		h.LinkName = string(b)
	case pipeline.TypeChar, pipeline.TypeBlock:
		b, err := t.metaData(e.ino, 4)
		if err == nil {
			h.Major, h.Minor, err = device(b, t.ix.order)
		}
		if err != nil {
			dmg = append(dmg, fmt.Sprintf("device number: %v", err))
		}
	}
	h.Damage = strings.Join(dmg, "; ")
	return h, open
}

// metaData reads the data of a symlink or device inode. The kernel keeps it
// in one node, the newest holding data, rather than as file contents: a
// device node's isize is 0.
func (t *tree) metaData(ino uint32, max int64) ([]byte, error) {
	f := t.file(ino)
	for i := len(f.nodes) - 1; i >= 0; i-- {
		n := f.nodes[i]
		if n.dsize == 0 {
			continue
		}
		if n.badData {
			return nil, fmt.Errorf("data node at %#x fails its data CRC", n.off)
		}
		if n.offset != 0 || int64(n.dsize) > max {
			return nil, fmt.Errorf("data node at %#x holds bytes %d-%d, where at most %d bytes from 0 are expected", n.off, n.offset, int64(n.offset)+int64(n.dsize), max)
		}
		return f.nodeData(i)
	}
	return nil, nil
}
