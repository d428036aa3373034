package jffs2

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"path"
	"slices"
	"strings"
	"sync"

	"github.com/fwvet/fwvet/pipeline"
)

// tree turns the index into paths: the newest dirent of each (parent, name)
// wins, and one that names inode 0 records a deletion.
type tree struct {
	ix  *index
	lim pipeline.Limits
	// lossy is set when the scan skipped nodes no file owns, so a file's
	// uncovered bytes are likely lost data rather than a hole.
	lossy bool
	// linked holds, sorted, the inodes that more than one entry names.
	linked []uint32
	// listed holds, for each directory listed, the dirent it was listed
	// under (rootListed for the root), so that one listed again is not
	// entered again and its first place can be named.
	listed  map[uint32]int
	entries int64
	openAt  pipeline.OpenAt
	// multi holds the files of more than one node given to the unpacker:
	// what its OpenAt needs of the index once the walk is done. A file of
	// one node is located by that node alone.
	multi []uint32
	// heads holds, for a file inode of several names, what its first
	// name's header found: 20,000 names of one inode lay it out once.
	heads map[uint32]fileHead
	// mu guards ix.nodes, which release replaces while files are opened.
	mu sync.RWMutex
}

// Locators: a file of one node is located by its node's offset over 4,
// with its data CRC's result; another file by its inode number.
const (
	locOneNode = 1 << 63
	locBadData = 1 << 62
)

const rootListed = -1

func newTree(ix *index, lim pipeline.Limits) *tree {
	t := &tree{ix: ix, lim: lim, lossy: ix.problems.count > 0 || ix.truncated != nil, heads: map[uint32]fileHead{}}
	inos := make([]uint32, len(ix.dirents))
	for i, d := range ix.dirents {
		inos[i] = d.ino
	}
	slices.Sort(inos)
	for i := 1; i < len(inos); i++ {
		if inos[i] == inos[i-1] && (len(t.linked) == 0 || t.linked[len(t.linked)-1] != inos[i]) {
			t.linked = append(t.linked, inos[i])
		}
	}
	t.openAt = t.open
	return t
}

// newest returns the newest node of inode ino, if it has any.
func (t *tree) newest(ino uint32) (dnode, bool, error) {
	refs := t.ix.refs(ino)
	if len(refs) == 0 {
		return dnode{}, false, nil
	}
	n, err := t.ix.dnode(refs[len(refs)-1])
	return n, err == nil, err
}

// maxInodeNodes bounds the nodes of one file that are laid out together:
// a 1 GiB file written a page at a time.
const maxInodeNodes = 1 << 18

// nodes reads the nodes of inode ino that refs locates, sorted by version.
func (t *tree) nodes(ino uint32, refs []nodeRef) ([]dnode, error) {
	if len(refs) > maxInodeNodes {
		return nil, fmt.Errorf("%w: inode %d has %d nodes, more than the %d this reader lays out", ErrCorrupt, ino, len(refs), maxInodeNodes)
	}
	ns := make([]dnode, len(refs))
	for i, ref := range refs {
		n, err := t.ix.dnode(ref)
		if err != nil {
			return nil, err
		}
		ns[i] = n
	}
	return ns, nil
}

func (t *tree) walk(ctx context.Context, visit func(*pipeline.Header, pipeline.OpenFunc) error) error {
	root := &pipeline.Header{Name: ".", Type: pipeline.TypeDir, Mode: 0o755}
	m, ok, err := t.newest(rootIno)
	if err != nil {
		return err
	}
	if ok {
		root.Mode, root.UID, root.GID = m.mode&pipeline.ModePerm, uint32(m.uid), uint32(m.gid)
	}
	var dmg []string
	if t.ix.problems.count > 0 {
		dmg = append(dmg, "skipped as the kernel would: "+t.ix.problems.String())
	}
	if t.lossy {
		o, err := t.orphans(ctx)
		if err != nil {
			return err
		}
		if o != "" {
			dmg = append(dmg, o)
		}
	}
	root.Damage = strings.Join(dmg, "; ")
	if err := visit(root, nil); err != nil {
		return err
	}
	t.listed = map[uint32]int{rootIno: rootListed}
	return t.dir(ctx, rootIno, "", visit)
}

// child is an entry of the directory being listed: its name in the
// directory's arena of names, and its dirent.
type child struct {
	off, dirent uint32
	n           uint8
}

// dir visits the entries under directory ino, depth first, in name order.
// A directory listed a second time (a cycle, or a rename cut short by a
// power loss) is not entered again.
func (t *tree) dir(ctx context.Context, ino uint32, dir string, visit func(*pipeline.Header, pipeline.OpenFunc) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	base, end := t.ix.children(ino)
	ds := t.ix.dirents[base:end]
	// The names are read into one buffer, not a string each, so that a
	// directory of a million entries costs its names and 12 bytes each.
	var arena []byte
	kids := make([]child, 0, len(ds))
	for i, d := range ds {
		kids = append(kids, child{off: uint32(len(arena)), n: d.nlen, dirent: uint32(base + i)})
		var err error
		if arena, err = t.ix.appendName(arena, d); err != nil {
			return err
		}
	}
	nameOf := func(c child) []byte { return arena[c.off : c.off+uint32(c.n)] }
	slices.SortFunc(kids, func(a, b child) int { return bytes.Compare(nameOf(a), nameOf(b)) })
	for _, c := range kids {
		if t.entries >= t.lim.MaxEntries {
			return &pipeline.LimitError{Limit: "max-entries", Value: t.lim.MaxEntries, Msg: "the image lists more entries than an artifact may hold"}
		}
		t.entries++
		d := t.ix.dirents[c.dirent]
		p := path.Join(dir, string(nameOf(c)))
		h, err := t.header(p, d)
		if err != nil {
			return fmt.Errorf("/%s: %w", p, err)
		}
		if h.Type != pipeline.TypeDir {
			if err := visit(h, nil); err != nil {
				return err
			}
			continue
		}
		if prev, ok := t.listed[d.ino]; ok {
			where, err := t.listedAt(prev)
			if err != nil {
				return err
			}
			h.Damage = pipeline.JoinDamage(fmt.Sprintf("directory inode %d is also listed at %s (a cycle or an unfinished rename); its entries are listed there only", d.ino, where), h.Damage)
			if err := visit(h, nil); err != nil {
				return err
			}
			continue
		}
		t.listed[d.ino] = int(c.dirent)
		if err := visit(h, nil); err != nil {
			return err
		}
		// A path the unpacker refuses makes all beneath it refused too;
		// stopping here also bounds the recursion.
		if len(p) <= t.lim.MaxPathLen {
			if err := t.dir(ctx, d.ino, p, visit); err != nil {
				return err
			}
		}
	}
	return nil
}

// listedAt names the place of the dirent at i, from the names of the
// directories it lies in.
func (t *tree) listedAt(i int) (string, error) {
	var names []string
	for i != rootListed && len(names) <= len(t.listed) {
		d := t.ix.dirents[i]
		name, err := t.ix.name(d)
		if err != nil {
			return "", err
		}
		names = append(names, name)
		next, ok := t.listed[d.pino]
		if !ok {
			return "", fmt.Errorf("directory inode %d was entered but never listed", d.pino)
		}
		i = next
	}
	slices.Reverse(names)
	return "/" + strings.Join(names, "/"), nil
}

// orphans names the inodes with nodes that no directory reaches. On a
// healthy image those are files deleted while open, which the kernel drops
// at mount; they are reported only when nodes were lost. Every directory
// reached is looked into once, in no particular order, without names.
func (t *tree) orphans(ctx context.Context) (string, error) {
	reached := []uint32{rootIno}
	looked := map[uint32]bool{rootIno: true}
	for queue := []uint32{rootIno}; len(queue) > 0; {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		ino := queue[len(queue)-1]
		queue = queue[:len(queue)-1]
		i, j := t.ix.children(ino)
		for _, d := range t.ix.dirents[i:j] {
			reached = append(reached, d.ino)
			if looked[d.ino] {
				continue
			}
			ty, err := t.typeOf(d.ino, d.dtype)
			if err != nil {
				return "", err
			}
			if ty == pipeline.TypeDir {
				looked[d.ino] = true
				queue = append(queue, d.ino)
			}
		}
	}
	slices.Sort(reached)
	var inos []uint32
	for i := 0; i < len(t.ix.nodes); {
		ino := t.ix.nodes[i].ino
		if _, ok := slices.BinarySearch(reached, ino); !ok {
			inos = append(inos, ino)
		}
		for i < len(t.ix.nodes) && t.ix.nodes[i].ino == ino {
			i++
		}
	}
	if len(inos) == 0 {
		return "", nil
	}
	shown := inos[:min(len(inos), maxReported)]
	s := fmt.Sprintf("%d inodes with data are reachable from no directory, probably because their directory entry was lost (inodes %v", len(inos), shown)
	if len(inos) > len(shown) {
		s += " ..."
	}
	return s + "); they are not listed", nil
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
func (t *tree) typeOf(ino uint32, dtype uint8) (pipeline.EntryType, error) {
	m, ok, err := t.newest(ino)
	if err != nil {
		return "", err
	}
	if ok {
		return modeType(m.mode), nil
	}
	return modeType(uint32(dtype) << 12), nil
}

// fileDamage describes what is wrong with an inode's data.
func (t *tree) fileDamage(f *file) string {
	var r report
	if d := t.ix.damage[f.ino]; d != nil {
		r = report{count: d.count, msgs: slices.Clone(d.msgs)}
	}
	for _, n := range f.nodes {
		if n.badData {
			r.add("data node at %#x (bytes %d-%d, version %d) fails its data CRC; its data is skipped, so the range shows older data or zeros",
				n.off, n.offset, int64(n.offset)+int64(n.dsize), n.version)
		}
	}
	var dmg []string
	if r.count > 0 {
		dmg = append(dmg, r.String())
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

// header is the header of the entry at p that dirent d names.
func (t *tree) header(p string, d direntRef) (*pipeline.Header, error) {
	m, ok, err := t.newest(d.ino)
	if err != nil {
		return nil, err
	}
	if !ok {
		h := &pipeline.Header{Name: p, Type: modeType(uint32(d.dtype) << 12)}
		h.Damage = fmt.Sprintf("inode %d has no valid inode node; its type comes from the directory entry and it has no owner, mode or data", d.ino)
		if r := t.ix.damage[d.ino]; r != nil {
			h.Damage = pipeline.JoinDamage(r.String(), h.Damage)
		}
		return h, nil
	}
	h := &pipeline.Header{Name: p, Type: modeType(m.mode), Mode: m.mode & pipeline.ModePerm, UID: uint32(m.uid), GID: uint32(m.gid)}
	var dmg []string
	switch h.Type {
	case pipeline.TypeFile:
		_, linked := slices.BinarySearch(t.linked, d.ino)
		if fh, ok := t.heads[d.ino]; ok {
			h.Identity, h.Size, h.Damage = uint64(d.ino), fh.size, fh.damage
			if fh.loc != 0 {
				h.OpenAt, h.Locator = t.openAt, fh.loc
			}
			return h, nil
		}
		fh := t.fileHead(d.ino, m)
		h.Size, h.Damage = fh.size, fh.damage
		if fh.loc != 0 {
			h.OpenAt, h.Locator = t.openAt, fh.loc
		}
		if linked {
			h.Identity = uint64(d.ino)
			t.heads[d.ino] = fh
		}
		return h, nil
	case pipeline.TypeSymlink:
		b, err := t.metaData(d.ino, int64(t.lim.MaxPathLen))
		if err != nil {
			dmg = append(dmg, fmt.Sprintf("symlink target: %v", err))
		}
		h.LinkName = string(b)
	case pipeline.TypeChar, pipeline.TypeBlock:
		b, err := t.metaData(d.ino, 4)
		if err == nil {
			h.Major, h.Minor, err = device(b, t.ix.order)
		}
		if err != nil {
			dmg = append(dmg, fmt.Sprintf("device number: %v", err))
		}
	}
	if r := t.ix.damage[d.ino]; r != nil && h.Type != pipeline.TypeFile {
		dmg = append(dmg, r.String())
	}
	h.Damage = pipeline.JoinDamage(dmg...)
	return h, nil
}

// fileHead is what a regular file's header says of its data.
type fileHead struct {
	size   int64
	damage string
	// loc is the file's Locator, 0 when it is not to be read.
	loc uint64
}

// fileHead lays out the data of file inode ino, whose newest node is m.
func (t *tree) fileHead(ino uint32, m dnode) fileHead {
	refs := t.ix.refs(ino)
	f, err := t.file(ino, refs)
	if err != nil {
		// Nodes that cannot be laid out (too many, or unreadable): the
		// file is listed, unread, and says why.
		return fileHead{size: int64(m.isize), damage: err.Error()}
	}
	fh := fileHead{size: f.size, damage: t.fileDamage(f)}
	if f.size <= t.lim.MaxFileSize {
		fh.loc = uint64(ino)
		if len(refs) == 1 {
			fh.loc = locOneNode | uint64(refs[0].off4)
			if refs[0].badData {
				fh.loc |= locBadData
			}
		} else {
			t.multi = append(t.multi, ino)
		}
	}
	return fh
}

// file lays out inode ino's data, from the nodes that refs locates.
func (t *tree) file(ino uint32, refs []nodeRef) (*file, error) {
	ns, err := t.nodes(ino, refs)
	if err != nil {
		return nil, err
	}
	return newFile(t.ix.r, ino, ns), nil
}

func newFile(r io.ReaderAt, ino uint32, nodes []dnode) *file {
	f := &file{r: r, ino: ino, nodes: nodes}
	f.size, f.frags = layout(nodes)
	return f
}

// open is the walk's OpenAt.
func (t *tree) open(_ context.Context, loc uint64, size int64) (io.ReadCloser, error) {
	var f *file
	if loc&locOneNode != 0 {
		ino, n, err := t.ix.readInode(uint32(loc))
		if err != nil {
			return nil, fmt.Errorf("jffs2: %w", err)
		}
		n.badData = loc&locBadData != 0
		f = newFile(t.ix.r, ino, []dnode{n})
	} else {
		if loc == 0 || loc > math.MaxUint32 {
			return nil, fmt.Errorf("jffs2: no inode %d", loc)
		}
		t.mu.RLock()
		nodes := t.ix.nodes
		t.mu.RUnlock()
		var err error
		if f, err = t.file(uint32(loc), refsIn(nodes, uint32(loc))); err != nil {
			return nil, fmt.Errorf("jffs2: %w", err)
		}
	}
	if len(f.nodes) == 0 || modeType(f.nodes[len(f.nodes)-1].mode) != pipeline.TypeFile {
		return nil, fmt.Errorf("jffs2: %w: inode %d is not a regular file", ErrCorrupt, f.ino)
	}
	if f.size != size {
		return nil, fmt.Errorf("jffs2: %w: inode %d holds %d bytes, not the %d its entry gave", ErrCorrupt, f.ino, f.size, size)
	}
	return &fileReader{f: f, cached: -1}, nil
}

// release drops what only the walk needed: of the index, the OpenAt keeps
// the nodes of the files that one node does not hold.
func (t *tree) release() {
	slices.Sort(t.multi)
	var kept []nodeRef
	for _, n := range t.ix.nodes {
		if _, ok := slices.BinarySearch(t.multi, n.ino); ok {
			kept = append(kept, n)
		}
	}
	t.mu.Lock()
	t.ix.nodes = kept
	t.mu.Unlock()
	t.ix.dirents, t.ix.damage, t.listed, t.linked, t.multi, t.heads = nil, nil, nil, nil, nil, nil
}

// metaData reads the data of a symlink or device inode. The kernel keeps it
// in one node, the newest holding data, rather than as file contents: a
// device node's isize is 0.
func (t *tree) metaData(ino uint32, max int64) ([]byte, error) {
	f, err := t.file(ino, t.ix.refs(ino))
	if err != nil {
		return nil, err
	}
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
