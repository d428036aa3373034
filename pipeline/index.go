package pipeline

import (
	"cmp"
	"context"
	"encoding/binary"
	"encoding/hex"
	"io"
	"math"
	"slices"
	"strings"
	"sync"
	"unsafe"
)

// Index packs entries into records in large byte chunks, as they are
// made, for a Tree to hold. A large image holds hundreds of thousands of
// entries: as *Entry values with their own strings and hex digests they
// cost about 400 bytes each, and the collector scans every one; a record
// costs the key's last name, a raw digest and a few bytes of numbers, in
// chunks that hold no pointers. Entries are decoded when asked for.
//
// A key is held as its directory, up to its last '/', stored once for all
// the entries in it, and the name after it: keys of the entries nested in
// a /usr image's jars and wheels are 112 bytes on average, their names 20.
// Only keys stay in memory once the index spills (SpillTo): the rest of
// each record, its digest among it, goes to a file, so that an image at
// the entry limit costs about 30 bytes an entry.
//
// Its methods may be called from several goroutines.
type Index struct {
	mu sync.Mutex
	packed
	refs     []uint64 // chunk<<32 | offset, one per record; dropped marks a record Drop took out
	spillDir string
	chainIDs map[string]uint32
	last     []string // the chain of the last Add, to skip the map for the next
	lastID   uint32
	dirIDs   map[string]uint32
	lastDir  uint32 // the directory of the last Add, likely the next's
	scratch  []byte
	attrs    []byte
}

// chunkSize is the size of a record chunk. A record larger than a chunk
// (a path and link target near the path limit) gets a chunk of its own.
const chunkSize = 256 << 10

// Record layout, all integers as varints. In memory, in the key chunks:
//
//	directory id, length of the name, name: the key is the directory
//	(up to the key's last '/') and the name
//	where the rest lies in the cold store (chunk<<32 | offset)
//
// In the cold store (see coldStore), which may be on disk:
//
//	path: 1 + offset of the path in the key, or 0, then length and bytes
//	chain id
//	opener: a kind byte, then for openFunc the index in opens, for
//	openAt the index in openAts and the locator
//	length of the attributes, then the attributes: type (a byte, or
//	typeOther and a string), flags, mode, uid, gid, size, link target,
//	device numbers, label, region, and last the digest (32 raw bytes, or a
//	string that is not lowercase hex SHA-256)
//
// Two entries whose attribute bytes are equal differ in nothing that
// diff compares but their names (Tree.SameAttrs). A file added before it
// is hashed (AddFile) has 32 bytes kept at the end of its attributes and
// flagPending; Hashed writes its digest there and clears the flag, so
// that an image's entries are packed as they are walked, not held as
// Entry values until their files are read. Such a file opens only once
// hashed.
const (
	flagHardLink = 1 << iota
	flagDigest   // 32 raw bytes
	flagDigestString
	flagLink
	flagDevice
	flagLabel
	flagRegion
	flagPending // 32 bytes kept for the digest, not yet written
)

// dropped marks a record that Drop took out: it is not in the tree.
const dropped = 1 << 63

const typeOther = 0xff

var entryTypes = [...]EntryType{TypeFile, TypeDir, TypeSymlink, TypeChar, TypeBlock, TypeFIFO, TypeSocket}

// Add packs e and returns its record's id, for Entry and Drop. Its digest
// and opener must be set already: later changes to e do not reach the
// index.
func (x *Index) Add(e *Entry) uint32 {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.add(e, funcOpener(e.open), false)
}

// AddFile packs the regular file e, which is not hashed yet, with the
// opener that will read it. Until Hashed is called for its id the entry
// has no digest and cannot be opened.
func (x *Index) AddFile(e *Entry, open OpenFunc) uint32 {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.add(e, funcOpener(open), true)
}

// AddOpenAt registers the OpenAt of one walk, for AddFileAt.
func (x *Index) AddOpenAt(at OpenAt) int {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.openAts = append(x.openAts, at)
	return len(x.openAts) - 1
}

// AddFileAt is AddFile for a file that the OpenAt registered as at opens
// at loc (Header.Locator): the record holds the two numbers, not a
// closure.
func (x *Index) AddFileAt(e *Entry, at int, loc uint64) uint32 {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.add(e, opener{kind: openAt, i: at, loc: loc}, true)
}

// AddLink packs the regular file e, another name of the file added as
// target, with target's opener: it reads what target reads. It reports
// false when target has no opener, and e then never opens.
func (x *Index) AddLink(e *Entry, target uint32) (uint32, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	r := x.coldAt(x.refs[target] &^ dropped)
	r.skipPath()
	o := r.opener()
	return x.add(e, o, true), o.kind != openNone
}

// opener is how a record's file opens: not at all, by opens[i] (or fn,
// added to opens when it is given), or by openAts[i] at loc.
type opener struct {
	kind byte
	fn   OpenFunc
	i    int
	loc  uint64
}

func funcOpener(f OpenFunc) opener {
	if f == nil {
		return opener{}
	}
	return opener{kind: openFunc, fn: f}
}

// Record opener kinds.
const (
	openNone = iota
	openFunc // then the index in opens
	openAt   // then the index in openAts and the locator
)

func (x *Index) add(e *Entry, open opener, pending bool) uint32 {
	if x.cold == nil {
		x.cold = &coldStore{dir: x.spillDir}
	}
	b := x.scratch[:0]
	if strings.HasSuffix(e.Key, e.Path) {
		b = binary.AppendUvarint(b, uint64(len(e.Key)-len(e.Path))+1)
	} else {
		b = binary.AppendUvarint(b, 0)
		b = appendString(b, e.Path)
	}
	b = binary.AppendUvarint(b, uint64(x.chainID(e.Container)))
	b = append(b, open.kind)
	switch open.kind {
	case openFunc:
		if open.fn != nil {
			open.i = len(x.opens)
			x.opens = append(x.opens, open.fn)
		}
		b = binary.AppendUvarint(b, uint64(open.i))
	case openAt:
		b = binary.AppendUvarint(b, uint64(open.i))
		b = binary.AppendUvarint(b, open.loc)
	}
	x.attrs = appendAttrs(x.attrs[:0], e, pending)
	b = binary.AppendUvarint(b, uint64(len(x.attrs)))
	b = append(b, x.attrs...)
	cold := x.cold.add(b)

	dir, name := splitKey(e.Key)
	b = binary.AppendUvarint(b[:0], uint64(x.dirID(dir)))
	b = appendString(b, name)
	b = binary.AppendUvarint(b, cold)
	x.scratch = b

	n := len(x.chunks)
	if n == 0 || len(x.chunks[n-1])+len(b) > cap(x.chunks[n-1]) {
		x.chunks = append(x.chunks, make([]byte, 0, max(chunkSize, len(b))))
		n++
	}
	c := x.chunks[n-1]
	id := uint32(len(x.refs))
	x.refs = append(x.refs, uint64(n-1)<<32|uint64(len(c)))
	x.chunks[n-1] = append(c, b...)
	return id
}

// SpillTo has the index write the cold half of its older records (path,
// chain, opener, attributes) to a file in dir, which must exist, once they
// pass a few MiB. It must be called
// before the first Add.
func (x *Index) SpillTo(dir string) { x.spillDir = dir }

// Hashed records that the file added as id was read in full, with its
// SHA-256 digest unless sum is nil (Options.NoHash): from now on the entry
// has the digest and opens with the opener given to AddFile.
func (x *Index) Hashed(id uint32, sum []byte) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.hashed(id, sum)
}

func (x *Index) hashed(id uint32, sum []byte) {
	a, chunk, off := x.pendingAt(id)
	if a[1]&flagPending == 0 {
		panic("pipeline: a file hashed twice")
	}
	a[1] &^= flagPending
	if sum != nil {
		a[1] |= flagDigest
		copy(a[len(a)-32:], sum)
	}
	x.cold.write(chunk, off, a)
}

// pendingAt returns a copy of the attributes of a record that AddFile
// packed and where they lie among the cold chunks, for coldStore.write.
func (x *Index) pendingAt(id uint32) (attrs []byte, chunk, off int) {
	ref := x.coldRef(x.refs[id] &^ dropped)
	whole := x.cold.get(int(ref >> 32))
	r := record{whole[uint32(ref):]}
	r.skipPath()
	r.opener()
	a := r.bytes(int(r.uvarint()))
	if a[0] == typeOther || len(a) < 2+32 {
		panic("pipeline: Hashed on a record that AddFile did not pack")
	}
	return append([]byte(nil), a...), int(ref >> 32), len(whole) - len(r.b) - len(a)
}

// CopyHashed gives the file added as id the digest of the file added as
// src, a hard link's target, once that is hashed; it reports whether src
// was read in full. The opener is the one AddFile was given for id.
func (x *Index) CopyHashed(id, src uint32) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	s, _, _ := x.pendingAt(src)
	if s[1]&flagPending != 0 {
		return false
	}
	var sum []byte
	if s[1]&flagDigest != 0 {
		sum = s[len(s)-32:]
	}
	x.hashed(id, sum)
	return true
}

// Drop takes the record id out: it will not be in the tree. A container
// that names one path twice keeps the later entry, as an extractor would.
func (x *Index) Drop(id uint32) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.refs[id] |= dropped
}

// Entry decodes the entry added as id, as it is now.
func (x *Index) Entry(id uint32) *Entry {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.entryAt(x.refs[id] &^ dropped)
}

// ToHash decodes the file added as id, as Entry does, with the opener
// given for it whether or not it was hashed: the one that hashes it.
func (x *Index) ToHash(id uint32) (*Entry, OpenFunc) {
	x.mu.Lock()
	defer x.mu.Unlock()
	e, open, _ := x.decode(x.refs[id] &^ dropped)
	return e, open
}

// HasKey reports whether the key of the record id is prefix+p, without
// building either.
func (x *Index) HasKey(id uint32, prefix, p string) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	d, name := x.keyAt(x.refs[id] &^ dropped)
	dir := x.dirs[d]
	return len(dir)+len(name) == len(prefix)+len(p) && CompareSplit(dir, name, prefix, p) == 0
}

func (x *Index) chainID(chain []string) uint32 {
	if len(chain) == len(x.last) && (len(chain) == 0 || &chain[0] == &x.last[0]) && x.chainIDs != nil {
		return x.lastID
	}
	if x.chainIDs == nil {
		x.chainIDs = map[string]uint32{}
	}
	k := strings.Join(chain, "\x00")
	id, ok := x.chainIDs[k]
	if !ok {
		id = uint32(len(x.chains))
		x.chains = append(x.chains, chain)
		x.chainIDs[k] = id
	}
	x.last, x.lastID = chain, id
	return id
}

// splitKey splits a key after its last '/'. Every key of a nested entry
// has one after its last NUL (its path is rooted), so the directory holds
// the key of the entry's container.
func splitKey(key string) (dir, name string) {
	i := strings.LastIndexByte(key, '/') + 1
	return key[:i], key[i:]
}

func (x *Index) dirID(dir string) uint32 {
	if int(x.lastDir) < len(x.dirs) && x.dirs[x.lastDir] == dir {
		return x.lastDir
	}
	if x.dirIDs == nil {
		x.dirIDs = map[string]uint32{}
	}
	id, ok := x.dirIDs[dir]
	if !ok {
		id = uint32(len(x.dirs))
		dir = strings.Clone(dir) // not to keep the entry's key alive
		x.dirs = append(x.dirs, dir)
		x.dirIDs[dir] = id
	}
	x.lastDir = id
	return id
}

func appendAttrs(b []byte, e *Entry, pending bool) []byte {
	if i := slices.Index(entryTypes[:], e.Type); i >= 0 {
		b = append(b, byte(i))
	} else {
		b = append(b, typeOther)
		b = appendString(b, string(e.Type))
	}
	var flags byte
	raw, err := hex.DecodeString(e.SHA256)
	switch {
	case pending:
		if b[0] == typeOther {
			panic("pipeline: AddFile of an entry that is not a regular file")
		}
		flags |= flagPending
		raw = nil
	case e.SHA256 == "":
	case err == nil && len(raw) == 32 && hex.EncodeToString(raw) == e.SHA256:
		flags |= flagDigest
	default:
		flags |= flagDigestString
	}
	if e.HardLink {
		flags |= flagHardLink
	}
	if e.LinkTarget != "" {
		flags |= flagLink
	}
	if e.Major != 0 || e.Minor != 0 {
		flags |= flagDevice
	}
	if e.Label != "" {
		flags |= flagLabel
	}
	if e.Region != nil {
		flags |= flagRegion
	}
	b = append(b, flags)
	b = binary.AppendUvarint(b, uint64(e.Mode))
	b = binary.AppendUvarint(b, uint64(e.UID))
	b = binary.AppendUvarint(b, uint64(e.GID))
	b = binary.AppendVarint(b, e.Size)
	if flags&flagLink != 0 {
		b = appendString(b, e.LinkTarget)
	}
	if flags&flagDevice != 0 {
		b = binary.AppendUvarint(b, uint64(e.Major))
		b = binary.AppendUvarint(b, uint64(e.Minor))
	}
	if flags&flagLabel != 0 {
		b = appendString(b, e.Label)
	}
	if r := e.Region; r != nil {
		b = binary.AppendVarint(b, r.Offset)
		b = binary.AppendVarint(b, r.Size)
		b = appendString(b, r.Format)
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(r.Entropy))
	}
	switch {
	case flags&(flagDigest|flagPending) != 0:
		b = append(b, raw...)
		b = append(b, make([]byte, 32-len(raw))...)
	case flags&flagDigestString != 0:
		b = appendString(b, e.SHA256)
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// Tree sorts the records by key and returns the tree that holds them. The
// index must not be added to afterwards.
func (x *Index) Tree(problems []Problem) *Tree {
	x.mu.Lock()
	defer x.mu.Unlock()
	live := x.refs[:0]
	for _, ref := range x.refs {
		if ref&dropped == 0 {
			live = append(live, ref)
		}
	}
	t := &Tree{Problems: problems, packed: x.packed, refs: live}
	slices.SortStableFunc(t.refs, func(a, b uint64) int {
		ad, an := t.keyAt(a)
		bd, bn := t.keyAt(b)
		if ad == bd {
			return strings.Compare(an, bn)
		}
		return CompareSplit(t.dirs[ad], an, t.dirs[bd], bn)
	})
	x.packed, x.refs, x.chainIDs, x.last, x.dirIDs = packed{}, nil, nil, nil, nil
	return t
}

// record decodes records. The strings it returns point into the chunk:
// no byte of a string is changed again (Hashed writes the attributes back
// with only their flags and digest changed), and a chunk read back from the spill file is never reused, so
// they stay valid and the tree's memory is not copied for every entry
// decoded. Entry copies those of the cold part, not to pin a chunk read
// back for as long as the entry lives.
type record struct {
	b []byte
}

func (r *record) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		panic("pipeline: corrupt index record")
	}
	r.b = r.b[n:]
	return v
}

func (r *record) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		panic("pipeline: corrupt index record")
	}
	r.b = r.b[n:]
	return v
}

// skipPath steps over the path and the chain id of a cold record, to its
// opener.
func (r *record) skipPath() {
	if r.uvarint() == 0 {
		r.string()
	}
	r.uvarint()
}

// opener decodes a record's opener field.
func (r *record) opener() opener {
	o := opener{kind: r.bytes(1)[0]}
	switch o.kind {
	case openFunc:
		o.i = int(r.uvarint())
	case openAt:
		o.i, o.loc = int(r.uvarint()), r.uvarint()
	}
	return o
}

// openFunc is the opener o of an entry of size bytes.
func (p *packed) openFunc(o opener, size int64) OpenFunc {
	switch o.kind {
	case openFunc:
		return p.opens[o.i]
	case openAt:
		at, loc := p.openAts[o.i], o.loc
		return func(ctx context.Context) (io.ReadCloser, error) { return at(ctx, loc, size) }
	}
	return nil
}

func (r *record) bytes(n int) []byte {
	out := r.b[:n:n]
	r.b = r.b[n:]
	return out
}

func (r *record) string() string {
	n := int(r.uvarint())
	if n == 0 {
		return ""
	}
	b := r.bytes(n)
	return unsafe.String(&b[0], n)
}

// packed holds the records and what they share, for Index and Tree to
// decode. A record is split: its key (directory id and name) and where
// the rest lies in cold, which sorting and searching do not read.
type packed struct {
	chunks [][]byte
	cold   *coldStore
	opens  []OpenFunc
	// openAts are the OpenAt of the walks that located their files.
	openAts []OpenAt
	// chains are the container chains, each stored once: every entry of a
	// container shares its chain.
	chains [][]string
	dirs   []string
}

func (p *packed) recordAt(ref uint64) record {
	return record{p.chunks[ref>>32][uint32(ref):]}
}

func (p *packed) keyAt(ref uint64) (dir int, name string) {
	r := p.recordAt(ref)
	return int(r.uvarint()), r.string()
}

// coldRef returns where the rest of the record at ref lies in cold.
func (p *packed) coldRef(ref uint64) uint64 {
	r := p.recordAt(ref)
	r.uvarint()
	r.string()
	return r.uvarint()
}

// coldAt returns the rest of the record at ref: path, chain, opener and
// attributes.
func (p *packed) coldAt(ref uint64) record {
	c := p.coldRef(ref)
	return record{p.cold.get(int(c >> 32))[uint32(c):]}
}

// CompareSplit compares a1+a2 with b1+b2 without building either.
func CompareSplit(a1, a2, b1, b2 string) int {
	for {
		if a1 == "" {
			a1, a2 = a2, ""
		}
		if b1 == "" {
			b1, b2 = b2, ""
		}
		if a1 == "" || b1 == "" {
			return cmp.Compare(len(a1), len(b1)) // one side has run out
		}
		n := min(len(a1), len(b1))
		if c := strings.Compare(a1[:n], b1[:n]); c != 0 {
			return c
		}
		a1, b1 = a1[n:], b1[n:]
	}
}

// Len is the number of entries.
func (t *Tree) Len() int { return len(t.refs) }

// Key is the key of the i-th entry in key order. It builds the string:
// KeyParts does not.
func (t *Tree) Key(i int) string {
	d, name := t.KeyParts(i)
	return t.dirs[d] + name
}

// KeyParts returns the i-th entry's key as its directory, Dir(d), and the
// name after it, without decoding the rest.
func (t *Tree) KeyParts(i int) (d int, name string) { return t.keyAt(t.refs[i]) }

// Dir is the directory of id d: the part of a key up to its last '/'.
func (t *Tree) Dir(d int) string { return t.dirs[d] }

// Dirs is the number of directories, the ids that KeyParts returns.
func (t *Tree) Dirs() int { return len(t.dirs) }

// hasPath reports whether the i-th entry's path is p, without building it.
func (t *Tree) hasPath(i int, p string) bool {
	d, name := t.keyAt(t.refs[i])
	dir := t.dirs[d]
	r := t.coldAt(t.refs[i])
	off := r.uvarint()
	if off == 0 {
		return r.string() == p
	}
	// The path is the key's tail from off-1.
	if o := int(off - 1); o < len(dir) {
		dir = dir[o:]
	} else {
		dir, name = "", name[o-len(dir):]
	}
	return len(dir)+len(name) == len(p) && p[:len(dir)] == dir && p[len(dir):] == name
}

// SameAttrs reports whether the i-th entry of t and the j-th of u have
// the same type, mode, owner, size, digest, link target, device numbers,
// label and region, whatever their names. A regular file whose bytes were
// not read is the same as nothing: it cannot be shown to be.
func (t *Tree) SameAttrs(i int, u *Tree, j int) bool {
	a := t.attrs(i)
	if a[0] == 0 && a[1]&(flagDigest|flagDigestString) == 0 {
		return false
	}
	return string(a) == string(u.attrs(j))
}

func (t *Tree) attrs(i int) []byte {
	r := t.coldAt(t.refs[i])
	r.skipPath()
	r.opener()
	return r.bytes(int(r.uvarint()))
}

// Entry decodes the i-th entry in key order. Each call returns a new
// Entry, which the caller may keep and change.
func (t *Tree) Entry(i int) *Entry { return t.entryAt(t.refs[i]) }

func (p *packed) entryAt(ref uint64) *Entry {
	e, open, readable := p.decode(ref)
	if readable {
		e.open = open
	}
	return e
}

// decode decodes the record at ref and the opener it names, and reports
// whether that opener is the entry's: a file AddFile packed opens once
// hashed, and not at all when it could not be read.
func (p *packed) decode(ref uint64) (*Entry, OpenFunc, bool) {
	d, name := p.keyAt(ref)
	e := &Entry{Key: p.dirs[d] + name}
	// The strings of the rest are copied: they would keep a chunk read
	// back from the file alive for as long as the entry.
	r := p.coldAt(ref)
	if off := r.uvarint(); off > 0 {
		e.Path = e.Key[off-1:]
	} else {
		e.Path = strings.Clone(r.string())
	}
	e.Container = p.chains[r.uvarint()]
	open := r.opener()
	a := record{r.bytes(int(r.uvarint()))}
	readable := a.b[0] == typeOther || a.b[1]&flagPending == 0
	if c := a.bytes(1)[0]; c == typeOther {
		e.Type = EntryType(strings.Clone(a.string()))
	} else {
		e.Type = entryTypes[c]
	}
	flags := a.bytes(1)[0]
	e.Mode, e.UID, e.GID = uint32(a.uvarint()), uint32(a.uvarint()), uint32(a.uvarint())
	e.Size = a.varint()
	e.HardLink = flags&flagHardLink != 0
	if flags&flagLink != 0 {
		e.LinkTarget = strings.Clone(a.string())
	}
	if flags&flagDevice != 0 {
		e.Major, e.Minor = uint32(a.uvarint()), uint32(a.uvarint())
	}
	if flags&flagLabel != 0 {
		e.Label = strings.Clone(a.string())
	}
	if flags&flagRegion != 0 {
		reg := &Region{Offset: a.varint(), Size: a.varint(), Format: strings.Clone(a.string())}
		reg.Entropy = math.Float64frombits(binary.LittleEndian.Uint64(a.bytes(8)))
		e.Region = reg
	}
	switch {
	case flags&flagDigest != 0:
		e.SHA256 = hex.EncodeToString(a.bytes(32))
	case flags&flagDigestString != 0:
		e.SHA256 = strings.Clone(a.string())
	}
	return e, p.openFunc(open, e.Size), readable
}

// All yields the entries in key order, each decoded afresh.
func (t *Tree) All() func(yield func(*Entry) bool) {
	return func(yield func(*Entry) bool) {
		for i := range t.refs {
			if !yield(t.Entry(i)) {
				return
			}
		}
	}
}

// Search returns the position of the first entry whose key is at least
// key, and whether it is key.
func (t *Tree) Search(key string) (int, bool) {
	return slices.BinarySearchFunc(t.refs, key, func(ref uint64, k string) int {
		d, name := t.keyAt(ref)
		return CompareSplit(t.dirs[d], name, k, "")
	})
}
