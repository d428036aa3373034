package squashfs3_test

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"math/rand"
	"slices"
	"testing"

	"github.com/ulikunitz/xz/lzma"

	"github.com/fwvet/fwvet/pipeline"
)

// No tool that Debian ships writes squashfs 3.x, so the tests build their
// images here, laid out as mksquashfs 3.x lays them out (and as unsquashfs
// 4.5 checks): superblock, data blocks and fragments, inode table,
// directory table, fragment table and its index, uid table, gid table.

// node is one entry of a tree to pack.
type node struct {
	name         string
	typ          pipeline.EntryType
	mode         uint32 // permission bits with setuid, setgid, sticky
	uid, gid     uint32
	data         []byte // regular file
	target       string // symlink
	major, minor uint32
	children     []*node
	// link makes this entry a hard link to another regular file's inode.
	link *node
	// long writes a file or directory inode in its long form; nlink is
	// then a long file's link count.
	long  bool
	nlink uint32

	ref uint64 // inode reference, once written
}

// imageOpts chooses the image's shape.
type imageOpts struct {
	be    bool
	magic string // "" for the standard one of the byte order
	lzma  bool
	// ddwrt writes LZMA blocks as DD-WRT does (with lzma): pb, lc, lp
	// and fast bytes, then a raw stream with an end marker, the
	// properties changing from block to block.
	ddwrt     bool
	blockSize uint32
	minor     uint16
	check     bool // check data: a marker byte after each metadata header
}

type bitOrder struct{ be bool }

// byteOrder reads, writes and appends: binary.BigEndian or LittleEndian.
type byteOrder interface {
	binary.ByteOrder
	binary.AppendByteOrder
}

func (o bitOrder) bo() byteOrder {
	if o.be {
		return binary.BigEndian
	}
	return binary.LittleEndian
}

// putBits stores v in the width-bit field at bit pos of b, as GCC lays
// out bit fields on a machine of this byte order.
func (o bitOrder) putBits(b []byte, pos, width int, v uint64) {
	var w [8]byte
	i := pos / 8
	copy(w[:], b[i:])
	mask := uint64(1)<<width - 1
	if o.be {
		shift := 64 - width - pos%8
		x := binary.BigEndian.Uint64(w[:])
		x = x&^(mask<<shift) | (v&mask)<<shift
		binary.BigEndian.PutUint64(w[:], x)
	} else {
		shift := pos % 8
		x := binary.LittleEndian.Uint64(w[:])
		x = x&^(mask<<shift) | (v&mask)<<shift
		binary.LittleEndian.PutUint64(w[:], x)
	}
	copy(b[i:], w[:])
}

type writer struct {
	t     testing.TB
	o     bitOrder
	opts  imageOpts
	out   []byte
	inode *metaWriter
	dir   *metaWriter
	// fragment being filled, and the entries of those written
	frag      []byte
	fragTable []byte
	nfrags    uint32
	uids      []uint32
	guids     []uint32
	inodes    uint32
	nblocks   int
}

// ddwrtProps are some of the pb, lc, lp triples DD-WRT's compressor tries.
var ddwrtProps = [][3]int{{2, 0, 0}, {2, 3, 0}, {0, 2, 1}, {1, 3, 0}, {2, 1, 2}, {0, 0, 0}}

func (w *writer) compress(b []byte) []byte {
	var buf bytes.Buffer
	if w.opts.ddwrt {
		p := ddwrtProps[w.nblocks%len(ddwrtProps)]
		w.nblocks++
		lw, err := lzma.WriterConfig{Properties: &lzma.Properties{PB: p[0], LC: p[1], LP: p[2]}, DictCap: 1 << 20, EOSMarker: true}.NewWriter(&buf)
		if err != nil {
			w.t.Fatal(err)
		}
		lw.Write(b)
		if err := lw.Close(); err != nil {
			w.t.Fatal(err)
		}
		return append([]byte{byte(p[0]), byte(p[1]), byte(p[2]), 128}, buf.Bytes()[13:]...)
	}
	if w.opts.lzma {
		lw, err := lzma.WriterConfig{DictCap: 1 << 20, Size: int64(len(b))}.NewWriter(&buf)
		if err != nil {
			w.t.Fatal(err)
		}
		lw.Write(b)
		if err := lw.Close(); err != nil {
			w.t.Fatal(err)
		}
	} else {
		zw := zlib.NewWriter(&buf)
		zw.Write(b)
		zw.Close()
	}
	return buf.Bytes()
}

// metaWriter packs a table into metadata blocks of 8 KiB.
type metaWriter struct {
	w    *writer
	done []byte // blocks written
	cur  []byte
}

// pos is the reference of the next byte: block offset << 16 | offset.
func (m *metaWriter) pos() uint64 { return uint64(len(m.done))<<16 | uint64(len(m.cur)) }

func (m *metaWriter) write(b []byte) {
	m.cur = append(m.cur, b...)
	for len(m.cur) >= 8192 {
		m.flush(m.cur[:8192])
		m.cur = append([]byte(nil), m.cur[8192:]...)
	}
}

func (m *metaWriter) flush(b []byte) {
	if len(b) == 0 {
		return
	}
	c := m.w.compress(b)
	hdr := uint16(len(c))
	if len(c) >= len(b) {
		c, hdr = b, uint16(len(b))|1<<15
	}
	m.done = m.w.o.bo().AppendUint16(m.done, hdr)
	if m.w.opts.check {
		m.done = append(m.done, 0xff)
	}
	m.done = append(m.done, c...)
}

func (m *metaWriter) finish() []byte {
	m.flush(m.cur)
	m.cur = nil
	return m.done
}

func idIndex(ids *[]uint32, id uint32) uint64 {
	if i := slices.Index(*ids, id); i >= 0 {
		return uint64(i)
	}
	*ids = append(*ids, id)
	return uint64(len(*ids) - 1)
}

// base fills the common inode header: type, mode, owner, mtime, number.
func (w *writer) base(b []byte, typ uint64, n *node) {
	w.inodes++
	w.o.putBits(b, 0, 4, typ)
	w.o.putBits(b, 4, 12, uint64(n.mode&07777))
	w.o.putBits(b, 16, 8, idIndex(&w.uids, n.uid))
	if n.gid == n.uid {
		w.o.putBits(b, 24, 8, 255)
	} else {
		w.o.putBits(b, 24, 8, idIndex(&w.guids, n.gid))
	}
	w.o.bo().PutUint32(b[4:], 1262304000) // mtime: 2010
	w.o.bo().PutUint32(b[8:], w.inodes)
}

// file writes a regular file's blocks and tail, then its inode.
func (w *writer) file(n *node) {
	bs := int(w.opts.blockSize)
	start := uint64(len(w.out))
	var sizes []uint32
	data := n.data
	for len(data) >= bs {
		blk := data[:bs]
		data = data[bs:]
		if bytes.Count(blk, []byte{0}) == bs {
			sizes = append(sizes, 0) // a hole
			continue
		}
		c := w.compress(blk)
		if len(c) >= len(blk) {
			sizes = append(sizes, uint32(len(blk))|1<<24)
			w.out = append(w.out, blk...)
		} else {
			sizes = append(sizes, uint32(len(c)))
			w.out = append(w.out, c...)
		}
	}
	frag, fragOff := uint32(0xffffffff), uint32(0)
	if len(data) > 0 {
		if len(w.frag)+len(data) > bs {
			w.flushFragment()
		}
		frag, fragOff = w.nfrags, uint32(len(w.frag))
		w.frag = append(w.frag, data...)
	}
	ino := make([]byte, 40)
	var size int
	if n.long {
		w.base(ino, 9, n)
		w.o.bo().PutUint32(ino[12:], max(n.nlink, 1))
		w.o.bo().PutUint64(ino[16:], start)
		w.o.bo().PutUint32(ino[24:], frag)
		w.o.bo().PutUint32(ino[28:], fragOff)
		w.o.bo().PutUint64(ino[32:], uint64(len(n.data)))
		size = 40
	} else {
		w.base(ino, 2, n)
		w.o.bo().PutUint64(ino[12:], start)
		w.o.bo().PutUint32(ino[20:], frag)
		w.o.bo().PutUint32(ino[24:], fragOff)
		w.o.bo().PutUint32(ino[28:], uint32(len(n.data)))
		size = 32
	}
	n.ref = w.inode.pos()
	w.inode.write(ino[:size])
	for _, s := range sizes {
		w.inode.write(w.o.bo().AppendUint32(nil, s))
	}
}

func (w *writer) flushFragment() {
	if len(w.frag) == 0 {
		return
	}
	start := uint64(len(w.out))
	c := w.compress(w.frag)
	size := uint32(len(c))
	if len(c) >= len(w.frag) {
		c, size = w.frag, uint32(len(w.frag))|1<<24
	}
	w.out = append(w.out, c...)
	e := make([]byte, 16)
	w.o.bo().PutUint64(e[0:], start)
	w.o.bo().PutUint32(e[8:], size)
	w.fragTable = append(w.fragTable, e...)
	w.nfrags++
	w.frag = nil
}

// other writes the inode of a symlink, device, fifo or socket.
func (w *writer) other(n *node) {
	b := make([]byte, 18)
	var size int
	switch n.typ {
	case pipeline.TypeSymlink:
		w.base(b, 3, n)
		w.o.bo().PutUint32(b[12:], 1)
		w.o.bo().PutUint16(b[16:], uint16(len(n.target)))
		b = append(b, n.target...)
		size = len(b)
	case pipeline.TypeBlock, pipeline.TypeChar:
		typ := uint64(4)
		if n.typ == pipeline.TypeChar {
			typ = 5
		}
		w.base(b, typ, n)
		w.o.bo().PutUint32(b[12:], 1)
		w.o.bo().PutUint16(b[16:], uint16(n.major<<8|n.minor&0xff))
		size = 18
	case pipeline.TypeFIFO, pipeline.TypeSocket:
		typ := uint64(6)
		if n.typ == pipeline.TypeSocket {
			typ = 7
		}
		w.base(b, typ, n)
		w.o.bo().PutUint32(b[12:], 1)
		size = 16
	default:
		w.t.Fatalf("cannot write a %s", n.typ)
	}
	n.ref = w.inode.pos()
	w.inode.write(b[:size])
}

var dirEntryType = map[pipeline.EntryType]uint64{
	pipeline.TypeDir: 1, pipeline.TypeFile: 2, pipeline.TypeSymlink: 3, pipeline.TypeBlock: 4,
	pipeline.TypeChar: 5, pipeline.TypeFIFO: 6, pipeline.TypeSocket: 7,
}

// directory writes the inodes of d's children, depth first, then d's
// listing and inode.
func (w *writer) directory(d *node, parent uint32) {
	kids := slices.Clone(d.children)
	slices.SortFunc(kids, func(a, b *node) int { return bytes.Compare([]byte(a.name), []byte(b.name)) })
	for _, k := range kids {
		switch {
		case k.link != nil:
		case k.typ == pipeline.TypeDir:
			w.directory(k, 0)
		case k.typ == pipeline.TypeFile:
			w.file(k)
		default:
			w.other(k)
		}
	}
	listing := w.dir.pos()
	var list []byte
	for i := 0; i < len(kids); {
		// One header per run of entries whose inodes share a block.
		block := kids[i].inodeRef() >> 16
		j := i
		for j < len(kids) && kids[j].inodeRef()>>16 == block && j-i < 256 {
			j++
		}
		h := make([]byte, 9)
		w.o.putBits(h, 0, 8, uint64(j-i-1))
		w.o.bo().PutUint32(h[1:], uint32(block))
		w.o.bo().PutUint32(h[5:], 1)
		list = append(list, h...)
		for _, k := range kids[i:j] {
			e := make([]byte, 5)
			w.o.putBits(e, 0, 13, k.inodeRef()&0xffff)
			w.o.putBits(e, 13, 3, dirEntryType[k.entryType()])
			w.o.putBits(e, 16, 8, uint64(len(k.name)-1))
			list = append(list, e...)
			list = append(list, k.name...)
		}
		i = j
	}
	w.dir.write(list)
	b := make([]byte, 31)
	if d.long {
		w.base(b, 8, d)
		w.o.bo().PutUint32(b[12:], 2)
		w.o.putBits(b, 128, 27, uint64(len(list)+3))
		w.o.putBits(b, 155, 13, listing&0xffff)
		w.o.bo().PutUint32(b[21:], uint32(listing>>16))
		w.o.bo().PutUint16(b[25:], 0) // no index
		w.o.bo().PutUint32(b[27:], parent)
	} else {
		w.base(b, 1, d)
		w.o.bo().PutUint32(b[12:], 2)
		w.o.putBits(b, 128, 19, uint64(len(list)+3))
		w.o.putBits(b, 147, 13, listing&0xffff)
		w.o.bo().PutUint32(b[20:], uint32(listing>>16))
		w.o.bo().PutUint32(b[24:], parent)
		b = b[:28]
	}
	d.ref = w.inode.pos()
	w.inode.write(b)
}

func (n *node) inodeRef() uint64 {
	if n.link != nil {
		return n.link.ref
	}
	return n.ref
}

func (n *node) entryType() pipeline.EntryType {
	if n.link != nil {
		return n.link.typ
	}
	return n.typ
}

// buildImage packs the tree under root into a squashfs 3.x image, padded
// to 4 KiB as mksquashfs pads it.
func buildImage(t testing.TB, root *node, opts imageOpts) []byte {
	t.Helper()
	if opts.blockSize == 0 {
		opts.blockSize = 65536
	}
	w := &writer{t: t, o: bitOrder{opts.be}, opts: opts, out: make([]byte, 119)}
	w.inode = &metaWriter{w: w}
	w.dir = &metaWriter{w: w}
	// Data first, then the tables that point into it: every file's blocks
	// are written as its inode is, before any table.
	w.directory(root, w.inodes+1)
	w.flushFragment()
	o := w.o.bo()
	inodeStart := uint64(len(w.out))
	w.out = append(w.out, w.inode.finish()...)
	dirStart := uint64(len(w.out))
	w.out = append(w.out, w.dir.finish()...)
	var fragIndex []byte
	if w.nfrags > 0 {
		fm := &metaWriter{w: w}
		for i := 0; i < len(w.fragTable); i += 8192 {
			fragIndex = o.AppendUint64(fragIndex, uint64(len(w.out))+uint64(len(fm.done)))
			fm.write(w.fragTable[i:min(i+8192, len(w.fragTable))])
			fm.flush(fm.cur)
			fm.cur = nil
		}
		w.out = append(w.out, fm.done...)
	}
	fragStart := uint64(len(w.out))
	w.out = append(w.out, fragIndex...)
	uidStart := uint64(len(w.out))
	for _, id := range w.uids {
		w.out = o.AppendUint32(w.out, id)
	}
	guidStart := uint64(0)
	if len(w.guids) > 0 {
		guidStart = uint64(len(w.out))
		for _, id := range w.guids {
			w.out = o.AppendUint32(w.out, id)
		}
	}
	used := uint64(len(w.out))
	sb := w.out[:119]
	magic := opts.magic
	if magic == "" {
		magic = "hsqs"
		if opts.be {
			magic = "sqsh"
		}
	}
	copy(sb, magic)
	o.PutUint32(sb[4:], w.inodes)
	o.PutUint32(sb[8:], uint32(used))
	o.PutUint32(sb[12:], uint32(uidStart))
	o.PutUint32(sb[16:], uint32(guidStart))
	o.PutUint32(sb[20:], uint32(inodeStart))
	o.PutUint32(sb[24:], uint32(dirStart))
	o.PutUint16(sb[28:], 3)
	o.PutUint16(sb[30:], opts.minor)
	o.PutUint16(sb[32:], uint16(opts.blockSize))
	blog := uint16(0)
	for 1<<blog < opts.blockSize {
		blog++
	}
	o.PutUint16(sb[34:], blog)
	flags := byte(0)
	if opts.check {
		flags |= 1 << 2
	}
	sb[36] = flags
	sb[37] = byte(len(w.uids))
	sb[38] = byte(len(w.guids))
	o.PutUint32(sb[39:], 1262304000)
	o.PutUint64(sb[43:], root.ref)
	o.PutUint32(sb[51:], opts.blockSize)
	o.PutUint32(sb[55:], w.nfrags)
	o.PutUint32(sb[59:], uint32(fragStart))
	o.PutUint64(sb[63:], used)
	o.PutUint64(sb[71:], uidStart)
	o.PutUint64(sb[79:], guidStart)
	o.PutUint64(sb[87:], inodeStart)
	o.PutUint64(sb[95:], dirStart)
	o.PutUint64(sb[103:], fragStart)
	o.PutUint64(sb[111:], ^uint64(0)) // no export table
	for len(w.out)%4096 != 0 {
		w.out = append(w.out, 0)
	}
	return w.out
}

// pseudoText is n bytes that compress, but not to nothing: words drawn at
// random from a small vocabulary.
func pseudoText(seed int64, n int) []byte {
	rng := rand.New(rand.NewSource(seed))
	words := []string{"busybox ", "config ", "nvram ", "wl0_ssid=", "dd-wrt ", "\n", "0x", "httpd ", "/etc/", "root:"}
	var b []byte
	for len(b) < n {
		if rng.Intn(8) == 0 {
			b = append(b, byte(rng.Intn(256)))
			continue
		}
		b = append(b, words[rng.Intn(len(words))]...)
	}
	return b[:n]
}

// testTree is the tree the tests pack: a file of several blocks and a
// tail, a block-multiple file, an empty file, symlinks, nested
// directories, device nodes, a fifo, a socket, a setuid and a setgid file,
// a sparse file, a hard link and a long-form directory.
func testTree() *node {
	big := &node{name: "busybox", typ: pipeline.TypeFile, mode: 04755, data: pseudoText(1, 3*65536+1234), long: true, nlink: 2}
	sparse := append(append(pseudoText(2, 1000), make([]byte, 2*65536)...), pseudoText(3, 500)...)
	random := make([]byte, 70000)
	rand.New(rand.NewSource(4)).Read(random)
	return &node{typ: pipeline.TypeDir, mode: 0755, children: []*node{
		{name: "bin", typ: pipeline.TypeDir, mode: 0755, children: []*node{
			big,
			{name: "sh", typ: pipeline.TypeSymlink, mode: 0777, target: "busybox"},
			{name: "ls", typ: pipeline.TypeSymlink, mode: 0777, target: "/bin/busybox"},
			{name: "login", typ: pipeline.TypeFile, mode: 04755, link: big},
		}},
		{name: "dev", typ: pipeline.TypeDir, mode: 0755, children: []*node{
			{name: "console", typ: pipeline.TypeChar, mode: 0600, major: 5, minor: 1},
			{name: "mtdblock0", typ: pipeline.TypeBlock, mode: 0640, gid: 6, major: 31, minor: 0},
			{name: "initctl", typ: pipeline.TypeFIFO, mode: 0600},
			{name: "log", typ: pipeline.TypeSocket, mode: 0666},
		}},
		{name: "etc", typ: pipeline.TypeDir, mode: 0755, long: true, children: []*node{
			{name: "passwd", typ: pipeline.TypeFile, mode: 0644, data: []byte("root:x:0:0:root:/root:/bin/sh\n")},
			{name: "empty", typ: pipeline.TypeFile, mode: 0644},
			{name: "nvram.default", typ: pipeline.TypeFile, mode: 0600, uid: 1000, gid: 100, data: pseudoText(5, 2*65536)},
			{name: "config", typ: pipeline.TypeDir, mode: 0700, children: []*node{
				{name: "deep", typ: pipeline.TypeDir, mode: 0755, children: []*node{
					{name: "wan.conf", typ: pipeline.TypeFile, mode: 02755, gid: 50, data: pseudoText(6, 3000), long: true},
				}},
			}},
		}},
		{name: "tmp", typ: pipeline.TypeDir, mode: 01777},
		{name: "usr", typ: pipeline.TypeDir, mode: 0755, children: []*node{
			{name: "sparse.img", typ: pipeline.TypeFile, mode: 0644, data: sparse},
			{name: "random.bin", typ: pipeline.TypeFile, mode: 0644, data: random},
		}},
	}}
}

func newRand() *rand.Rand { return rand.New(rand.NewSource(1)) }
