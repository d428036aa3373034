// Package diff compares a baseline tree with a candidate tree entry by entry.
package diff

import (
	"slices"
	"strings"
	"sync"

	"github.com/fwvet/fwvet/pipeline"
)

// Trees returns every change from base to cand, in key order: additions,
// removals, content changes and metadata changes (type, mode, owner, link
// target, device numbers, header label). A file whose bytes could not be
// read on either side counts as modified, since it cannot be shown to be
// the same. Moves are found by content hash: the removal and the addition
// each name the other path. Containers are paired first (see Pair).
func Trees(base, cand *pipeline.Tree) []*pipeline.Change { return Pair(base, cand).Changes() }

// Pairing says which container of the candidate is which of the baseline.
//
// A release renames the containers that carry its version (a vendor tar's
// "rootfs-v1.2.3.squashfs"), so containers are paired by what they are, in
// this order, among the nested containers of two paired parents: the same
// path; then equal bytes; then the same format, in path order. Entries are
// then compared by their key in the baseline's names. A change keeps the
// candidate's real path and container chain.
type Pairing struct {
	base, cand *pipeline.Tree
	// toBase maps every candidate container key to its key in the
	// baseline's names: the key of the baseline container it pairs with,
	// or its own name under its parent's.
	toBase map[string]string
	// same holds the baseline keys of paired containers whose bytes are
	// equal: nothing in them changed, so they are not compared, and what
	// they hold (an unsafe entry, a file a limit kept from being read) is
	// the baseline's already.
	same  map[string]bool
	bCont map[string]*container
	cCont map[string]*container

	baseProblemsOnce sync.Once
	baseProblems     map[problemKey]bool
	sameProblemsOnce sync.Once
	sameProblems     map[problemKey]bool // the candidate's Unchanged problems, in the baseline's names
}

// container is one nested container of a tree: a file the unpacker opened.
type container struct {
	key, parent string
	// name is the container file's path in its parent.
	name string
	// format is the formats it was opened as ("gzip tar").
	format string
	entry  *pipeline.Entry
}

// containers finds a tree's nested containers from its entries' keys.
func containers(t *pipeline.Tree) map[string]*container {
	out := map[string]*container{}
	// An entry's directory holds its container's key, so each directory
	// is looked at once.
	done := make([]bool, t.Dirs())
	for n := range t.Len() {
		d, _ := t.KeyParts(n)
		if done[d] {
			continue
		}
		done[d] = true
		dir := t.Dir(d)
		i := strings.LastIndexByte(dir, 0)
		if i < 0 {
			continue
		}
		key := dir[:i]
		if _, ok := out[key]; ok {
			continue
		}
		c := &container{key: key, name: key, format: formatOf(t.Entry(n).Container), entry: t.Lookup(key)}
		if j := strings.LastIndexByte(key, 0); j >= 0 {
			c.parent, c.name = key[:j], key[j+1:]
		}
		out[key] = c
	}
	return out
}

// formatOf is the formats at the end of a chain, after its last path.
func formatOf(chain []string) string {
	i := len(chain)
	for i > 1 && !strings.HasPrefix(chain[i-1], "/") {
		i--
	}
	return strings.Join(chain[i:], " ")
}

// splitKey splits a key after its last '/', as Tree.KeyParts does.
func splitKey(key string) (dir, name string) {
	i := strings.LastIndexByte(key, '/') + 1
	return key[:i], key[i:]
}

func join(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "\x00" + name
}

// Pair pairs the containers of base and cand.
func Pair(base, cand *pipeline.Tree) *Pairing {
	p := &Pairing{base: base, cand: cand, toBase: map[string]string{"": ""}, same: map[string]bool{},
		bCont: containers(base), cCont: containers(cand)}
	kids := func(m map[string]*container) map[string][]*container {
		out := map[string][]*container{}
		for _, c := range m {
			out[c.parent] = append(out[c.parent], c)
		}
		for _, cs := range out {
			slices.SortFunc(cs, func(a, b *container) int { return strings.Compare(a.key, b.key) })
		}
		return out
	}
	bKids, cKids := kids(p.bCont), kids(p.cCont)
	// Parents before children: a key sorts after its prefix.
	cKeys := make([]string, 0, len(p.cCont)+1)
	cKeys = append(cKeys, "")
	for k := range p.cCont {
		cKeys = append(cKeys, k)
	}
	slices.SortFunc(cKeys, func(a, b string) int { return strings.Compare(a, b) })
	for _, ck := range cKeys {
		bk := p.toBase[ck]
		p.pairChildren(ck, bk, cKids[ck], bKids[bk])
	}
	return p
}

// pairChildren pairs the nested containers of the candidate container ck
// with those of the baseline container bk; every one of them gets a key in
// the baseline's names.
func (p *Pairing) pairChildren(ck, bk string, cs, bs []*container) {
	taken := map[string]bool{}
	pair := func(c, b *container) {
		p.toBase[c.key], taken[b.key] = b.key, true
		if c.entry != nil && b.entry != nil && c.entry.Readable() && b.entry.Readable() &&
			c.entry.SHA256 != "" && c.entry.SHA256 == b.entry.SHA256 {
			p.same[b.key] = true
		}
	}
	var rest []*container
	for _, c := range cs {
		if b := p.bCont[join(bk, c.name)]; b != nil {
			pair(c, b)
		} else {
			rest = append(rest, c)
		}
	}
	// A baseline container can stand for a renamed one only where its
	// name is free in the candidate, or two entries would share a key.
	// The others wait in queues by format, and by format and bytes, in
	// path order, so pairing costs a lookup per container.
	bySum, byFormat := map[[2]string][]*container{}, map[string][]*container{}
	for _, b := range bs {
		if taken[b.key] || p.cand.Lookup(join(ck, b.name)) != nil {
			continue
		}
		if b.entry != nil && b.entry.SHA256 != "" {
			k := [2]string{b.format, b.entry.SHA256}
			bySum[k] = append(bySum[k], b)
		}
		byFormat[b.format] = append(byFormat[b.format], b)
	}
	next := func(q []*container) (*container, []*container) {
		for len(q) > 0 && taken[q[0].key] {
			q = q[1:]
		}
		if len(q) == 0 {
			return nil, q
		}
		return q[0], q[1:]
	}
	left := rest[:0]
	for _, c := range rest {
		if c.entry == nil || c.entry.SHA256 == "" {
			left = append(left, c)
			continue
		}
		k := [2]string{c.format, c.entry.SHA256}
		var b *container
		if b, bySum[k] = next(bySum[k]); b != nil {
			pair(c, b)
		} else {
			left = append(left, c)
		}
	}
	rest = left[:0]
	for _, c := range left {
		var b *container
		if b, byFormat[c.format] = next(byFormat[c.format]); b != nil {
			pair(c, b)
		} else {
			rest = append(rest, c)
		}
	}
	for _, c := range rest {
		p.toBase[c.key] = join(bk, c.name)
	}
}

// baseKey is the key of a candidate entry in the baseline's names.
func (p *Pairing) baseKey(key string) string {
	if k, ok := p.toBase[key]; ok {
		return k // a container file paired with the baseline's
	}
	i := strings.LastIndexByte(key, 0)
	if i < 0 {
		return key
	}
	parent := key[:i]
	if k := p.toBase[parent]; k != parent {
		return join(k, key[i+1:])
	}
	return key
}

// inSame reports whether a key in the baseline's names lies inside a
// container whose bytes are equal on both sides.
func (p *Pairing) inSame(key string) bool {
	if len(p.same) == 0 {
		return false
	}
	for i := strings.LastIndexByte(key, 0); i >= 0; i = strings.LastIndexByte(key[:i], 0) {
		if p.same[key[:i]] {
			return true
		}
	}
	return false
}

// Changes compares the paired trees. Entries are decoded only where they
// differ: equal records are equal entries. Keys are compared in their two
// parts (see Tree.KeyParts), so that no key is built for an entry that
// did not change: the two trees of a /usr image hold 780,000.
func (p *Pairing) Changes() []*pipeline.Change {
	base, cand := p.base, p.cand
	bSame := make([]bool, base.Dirs())
	for d := range bSame {
		bSame[d] = p.inSame(base.Dir(d))
	}
	b := make([]int32, 0, base.Len())
	for i := range base.Len() {
		if d, _ := base.KeyParts(i); !bSame[d] {
			b = append(b, int32(i))
		}
	}
	bKey := func(i int32) (string, string) {
		d, name := base.KeyParts(int(i))
		return base.Dir(d), name
	}
	// The candidate's directories in the baseline's names, each mapped
	// once; a container file paired with one of another name is mapped
	// whole.
	cDir := make([]string, cand.Dirs())
	renamed := false
	for d := range cDir {
		cDir[d] = p.baseKey(cand.Dir(d))
		renamed = renamed || cDir[d] != cand.Dir(d)
	}
	renamedNames := map[string]bool{}
	for ck := range p.toBase {
		if ck != "" {
			if dir, name := splitKey(ck); p.toBase[ck] != p.baseKey(dir)+name {
				renamedNames[name] = true
			}
		}
	}
	whole := map[int32]string{}
	c := make([]int32, 0, cand.Len())
	for j := range cand.Len() {
		d, name := cand.KeyParts(j)
		k := cDir[d]
		if renamedNames[name] {
			if bk, ok := p.toBase[cand.Dir(d)+name]; ok && bk != k+name {
				whole[int32(j)], k, renamed = bk, bk, true
			}
		}
		if !p.inSame(k) {
			c = append(c, int32(j))
		}
	}
	cKey := func(j int32) (string, string) {
		if len(whole) > 0 {
			if k, ok := whole[j]; ok {
				return k, ""
			}
		}
		d, name := cand.KeyParts(int(j))
		return cDir[d], name
	}
	if renamed {
		slices.SortFunc(c, func(x, y int32) int {
			xd, xn := cKey(x)
			yd, yn := cKey(y)
			return pipeline.CompareSplit(xd, xn, yd, yn)
		})
	}
	order := func(i, j int32) int {
		bd, bn := bKey(i)
		cd, cn := cKey(j)
		return pipeline.CompareSplit(bd, bn, cd, cn)
	}
	var changes []*pipeline.Change
	i, j := 0, 0
	for i < len(b) || j < len(c) {
		var ch *pipeline.Change
		switch {
		case j == len(c) || (i < len(b) && order(b[i], c[j]) < 0):
			o := base.Entry(int(b[i]))
			ch = &pipeline.Change{Kind: pipeline.ChangeRemoved, Path: o.Path, Container: o.Container, Key: o.Key, Old: o,
				Nested: p.bCont[o.Key] != nil}
			i++
		case i == len(b) || order(b[i], c[j]) > 0:
			n := cand.Entry(int(c[j]))
			d, name := cKey(c[j])
			ch = &pipeline.Change{Kind: pipeline.ChangeAdded, Path: n.Path, Container: n.Container, Key: d + name, New: n,
				Nested: p.cCont[n.Key] != nil}
			j++
		default:
			if !base.SameAttrs(int(b[i]), cand, int(c[j])) {
				o, n := base.Entry(int(b[i])), cand.Entry(int(c[j]))
				if ch = compare(o, n); ch != nil {
					d, name := cKey(c[j])
					ch.Key = d + name
					ch.Nested = p.bCont[o.Key] != nil && p.cCont[n.Key] != nil
				}
			}
			i++
			j++
		}
		if ch != nil {
			changes = append(changes, ch)
		}
	}
	findMoves(changes)
	return changes
}

// SameProblem reports whether a problem of the candidate is one the
// baseline has too: the same kind and limit at the same path of the paired
// container, or any problem inside a container whose bytes are equal on
// both sides. It is not a change the update brings. Reasons are not
// compared: they name the artifact and what was read before a limit hit.
func (p *Pairing) SameProblem(pr pipeline.Problem) bool {
	if p.Unchanged(pr) {
		return true
	}
	p.baseProblemsOnce.Do(func() {
		p.baseProblems = make(map[problemKey]bool, len(p.base.Problems))
		for _, b := range p.base.Problems {
			p.baseProblems[problemKey{b.Kind, b.Limit, b.Path, pipeline.ChainKey(b.Container)}] = true
		}
	})
	return p.baseProblems[problemKey{pr.Kind, pr.Limit, pr.Path, p.mapKey(pipeline.ChainKey(pr.Container))}]
}

// problemKey is a problem where it lies, in the baseline's names.
type problemKey struct {
	kind              pipeline.ProblemKind
	limit, path, cont string
}

// Unchanged reports whether a problem of the candidate lies inside a
// container whose bytes are equal on both sides, or, for a limit or a
// corrupt stream met opening a file as a container, at a file whose bytes
// are: whatever it left unread is the baseline's too. A refused entry is
// not judged by the file it collides with, which may be the baseline's
// while the collision is new.
func (p *Pairing) Unchanged(pr pipeline.Problem) bool {
	ck := pipeline.ChainKey(pr.Container)
	if pr.Kind != pipeline.ProblemUnsafe && pr.Path != "" && p.sameFile(join(ck, pr.Path)) {
		return true
	}
	if ck == "" {
		return false
	}
	if p.inSame(p.mapKey(ck) + "\x00") {
		return true
	}
	// A container with nothing indexed in it is not paired; its file still
	// tells whether it is the baseline's.
	return p.sameFile(ck)
}

// BaseUnchanged reports whether a problem of the baseline is one the
// candidate meets at the same place where Unchanged holds: a limit hit
// inside a container equal on both sides leaves the same bytes unread in
// both, so it does not keep the baseline from being compared.
func (p *Pairing) BaseUnchanged(pr pipeline.Problem) bool {
	p.sameProblemsOnce.Do(func() {
		p.sameProblems = map[problemKey]bool{}
		for _, c := range p.cand.Problems {
			if p.Unchanged(c) {
				p.sameProblems[problemKey{c.Kind, c.Limit, c.Path, p.mapKey(pipeline.ChainKey(c.Container))}] = true
			}
		}
	})
	return p.sameProblems[problemKey{pr.Kind, pr.Limit, pr.Path, pipeline.ChainKey(pr.Container)}]
}

// sameFile reports whether the candidate's file under key ck was read and
// its bytes equal the baseline's file in the same place.
func (p *Pairing) sameFile(ck string) bool {
	ce, be := p.cand.Lookup(ck), p.base.Lookup(p.mapKey(ck))
	return ce != nil && be != nil && ce.Readable() && be.Readable() && ce.SHA256 != "" && ce.SHA256 == be.SHA256
}

// mapKey is a candidate container key in the baseline's names, for a
// container that may hold no entries (and so was not paired).
func (p *Pairing) mapKey(ck string) string {
	if k, ok := p.toBase[ck]; ok {
		return k
	}
	i := strings.LastIndexByte(ck, 0)
	if i < 0 {
		return ck
	}
	return join(p.mapKey(ck[:i]), ck[i+1:])
}

func compare(o, n *pipeline.Entry) *pipeline.Change {
	var fields []string
	content := false
	if o.Type != n.Type {
		fields = append(fields, "type")
		content = true
	} else if o.Type == pipeline.TypeFile && (o.SHA256 != n.SHA256 || o.SHA256 == "" || o.Size != n.Size) {
		fields = append(fields, "content")
		content = true
	}
	if o.Mode != n.Mode {
		fields = append(fields, "mode")
	}
	if o.UID != n.UID {
		fields = append(fields, "uid")
	}
	if o.GID != n.GID {
		fields = append(fields, "gid")
	}
	if o.Type == n.Type && o.Type == pipeline.TypeSymlink && o.LinkTarget != n.LinkTarget {
		fields = append(fields, "link_target")
	}
	if o.Type == n.Type && (o.Major != n.Major || o.Minor != n.Minor) {
		fields = append(fields, "device")
	}
	if o.Label != n.Label {
		fields = append(fields, "label")
	}
	if len(fields) == 0 {
		return nil
	}
	kind := pipeline.ChangeMetadata
	if content {
		kind = pipeline.ChangeModified
	}
	return &pipeline.Change{Kind: kind, Path: n.Path, Container: n.Container, Key: n.Key, Old: o, New: n, Fields: fields}
}

// findMoves pairs removed and added regular files with the same bytes.
func findMoves(changes []*pipeline.Change) {
	removed := map[string][]*pipeline.Change{}
	for _, ch := range changes {
		if ch.Kind == pipeline.ChangeRemoved && ch.Old.Type == pipeline.TypeFile && ch.Old.SHA256 != "" {
			removed[ch.Old.SHA256] = append(removed[ch.Old.SHA256], ch)
		}
	}
	if len(removed) == 0 {
		return
	}
	for _, ch := range changes {
		if ch.Kind != pipeline.ChangeAdded || ch.New.Type != pipeline.TypeFile || ch.New.SHA256 == "" {
			continue
		}
		if rs := removed[ch.New.SHA256]; len(rs) > 0 {
			r := rs[0]
			removed[ch.New.SHA256] = rs[1:]
			ch.MovedFrom, r.MovedTo = r.Path, ch.Path
		}
	}
}
