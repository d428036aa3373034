package pipeline

import (
	"cmp"
	"encoding/binary"
	"encoding/hex"
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
//
// Add may be called from several goroutines.
type Index struct {
	mu     sync.Mutex
	chunks [][]byte
	refs   []uint64 // chunk<<32 | offset, one per record
	opens  []OpenFunc
	// chains are the container chains, each stored once: every entry of a
	// container shares its chain.
	chains   [][]string
	chainIDs map[string]uint32
	last     []string // the chain of the last Add, to skip the map for the next
	lastID   uint32
	dirs     []string
	dirIDs   map[string]uint32
	lastDir  uint32 // the directory of the last Add, likely the next's
	scratch  []byte
	attrs    []byte
}

// chunkSize is the size of a record chunk. A record larger than a chunk
// (a path and link target near the path limit) gets a chunk of its own.
const chunkSize = 256 << 10

// Record layout, all integers as varints:
//
//	directory id, length of the name, name: the key is the directory
//	(up to the key's last '/') and the name
//	path: 1 + offset of the path in the key, or 0, then length and bytes
//	chain id, 1 + opener index (0 for none)
//	length of the attributes, then the attributes: type (a byte, or
//	typeOther and a string), flags, mode, uid, gid, size, digest (32 raw
//	bytes, or a string that is not lowercase hex SHA-256), link target,
//	device numbers, label, region
//
// Two entries whose attribute bytes are equal differ in nothing that
// diff compares but their names (Tree.SameAttrs).
const (
	flagHardLink = 1 << iota
	flagDigest   // 32 raw bytes
	flagDigestString
	flagLink
	flagDevice
	flagLabel
	flagRegion
)

const typeOther = 0xff

var entryTypes = [...]EntryType{TypeFile, TypeDir, TypeSymlink, TypeChar, TypeBlock, TypeFIFO, TypeSocket}

// Add packs e. Its digest and opener must be set already: later changes to
// e do not reach the index.
func (x *Index) Add(e *Entry) {
	x.mu.Lock()
	defer x.mu.Unlock()
	b := x.scratch[:0]
	dir, name := splitKey(e.Key)
	b = binary.AppendUvarint(b, uint64(x.dirID(dir)))
	b = appendString(b, name)
	if strings.HasSuffix(e.Key, e.Path) {
		b = binary.AppendUvarint(b, uint64(len(e.Key)-len(e.Path))+1)
	} else {
		b = binary.AppendUvarint(b, 0)
		b = appendString(b, e.Path)
	}
	b = binary.AppendUvarint(b, uint64(x.chainID(e.Container)))
	if e.open != nil {
		x.opens = append(x.opens, e.open)
		b = binary.AppendUvarint(b, uint64(len(x.opens)))
	} else {
		b = binary.AppendUvarint(b, 0)
	}
	x.attrs = appendAttrs(x.attrs[:0], e)
	b = binary.AppendUvarint(b, uint64(len(x.attrs)))
	b = append(b, x.attrs...)
	x.scratch = b

	n := len(x.chunks)
	if n == 0 || len(x.chunks[n-1])+len(b) > cap(x.chunks[n-1]) {
		x.chunks = append(x.chunks, make([]byte, 0, max(chunkSize, len(b))))
		n++
	}
	c := x.chunks[n-1]
	x.refs = append(x.refs, uint64(n-1)<<32|uint64(len(c)))
	x.chunks[n-1] = append(c, b...)
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

func appendAttrs(b []byte, e *Entry) []byte {
	if i := slices.Index(entryTypes[:], e.Type); i >= 0 {
		b = append(b, byte(i))
	} else {
		b = append(b, typeOther)
		b = appendString(b, string(e.Type))
	}
	var flags byte
	raw, err := hex.DecodeString(e.SHA256)
	switch {
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
	switch {
	case flags&flagDigest != 0:
		b = append(b, raw...)
	case flags&flagDigestString != 0:
		b = appendString(b, e.SHA256)
	}
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
	t := &Tree{Problems: problems, chunks: x.chunks, refs: x.refs, opens: x.opens, chains: x.chains, dirs: x.dirs}
	slices.SortStableFunc(t.refs, func(a, b uint64) int {
		ad, an := t.keyAt(a)
		bd, bn := t.keyAt(b)
		if ad == bd {
			return strings.Compare(an, bn)
		}
		return CompareSplit(t.dirs[ad], an, t.dirs[bd], bn)
	})
	x.chunks, x.refs, x.opens, x.chains, x.chainIDs, x.last, x.dirs, x.dirIDs = nil, nil, nil, nil, nil, nil, nil, nil
	return t
}

// record decodes records. The strings it returns point into the chunk:
// a chunk is never written again where a record lies, so they stay valid
// and the tree's memory is not copied for every entry decoded.
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

func (t *Tree) recordAt(ref uint64) record {
	return record{t.chunks[ref>>32][uint32(ref):]}
}

func (t *Tree) keyAt(ref uint64) (dir int, name string) {
	r := t.recordAt(ref)
	return int(r.uvarint()), r.string()
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
	r := t.recordAt(t.refs[i])
	dir, name := t.dirs[r.uvarint()], r.string()
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
	r := t.recordAt(t.refs[i])
	r.uvarint()
	r.string()
	if r.uvarint() == 0 {
		r.string()
	}
	r.uvarint()
	r.uvarint()
	return r.bytes(int(r.uvarint()))
}

// Entry decodes the i-th entry in key order. Each call returns a new
// Entry, which the caller may keep and change.
func (t *Tree) Entry(i int) *Entry {
	r := t.recordAt(t.refs[i])
	dir := t.dirs[r.uvarint()]
	e := &Entry{Key: dir + r.string()}
	if off := r.uvarint(); off > 0 {
		e.Path = e.Key[off-1:]
	} else {
		e.Path = r.string()
	}
	e.Container = t.chains[r.uvarint()]
	if oi := r.uvarint(); oi > 0 {
		e.open = t.opens[oi-1]
	}
	a := record{r.bytes(int(r.uvarint()))}
	if c := a.bytes(1)[0]; c == typeOther {
		e.Type = EntryType(a.string())
	} else {
		e.Type = entryTypes[c]
	}
	flags := a.bytes(1)[0]
	e.Mode, e.UID, e.GID = uint32(a.uvarint()), uint32(a.uvarint()), uint32(a.uvarint())
	e.Size = a.varint()
	switch {
	case flags&flagDigest != 0:
		e.SHA256 = hex.EncodeToString(a.bytes(32))
	case flags&flagDigestString != 0:
		e.SHA256 = a.string()
	}
	e.HardLink = flags&flagHardLink != 0
	if flags&flagLink != 0 {
		e.LinkTarget = a.string()
	}
	if flags&flagDevice != 0 {
		e.Major, e.Minor = uint32(a.uvarint()), uint32(a.uvarint())
	}
	if flags&flagLabel != 0 {
		e.Label = a.string()
	}
	if flags&flagRegion != 0 {
		reg := &Region{Offset: a.varint(), Size: a.varint(), Format: a.string()}
		reg.Entropy = math.Float64frombits(binary.LittleEndian.Uint64(a.bytes(8)))
		e.Region = reg
	}
	return e
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
