package squashfs

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"sync"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/unpack/blockcache"
)

// fileData locates a regular file's bytes: whole blocks from blocksStart
// and, optionally, a tail in a fragment block.
//
// Neither the block list nor the fileData is kept: a walk keeps every
// file's opener until the tree is closed, and a sparse file of 1 GiB lists
// 8,192 blocks in a few bytes of image, so many such files (or many links
// to one) would hold memory that the input, not the image size, decides;
// and at the entry limit, a million files' fileData were a fifth of what
// both trees of a diff held. The walk checks the inode and its list when
// it meets them; an opener holds the inode's reference and reads both
// again from the inode table (whose metadata blocks are cached) each time
// the file is opened.
type fileData struct {
	img     *Image
	start   int64
	size    int64
	nblocks int
	frag    uint32
	fragOff uint32
	number  uint32

	// listBlock and listOff locate the block list in the inode table.
	listBlock int64
	listOff   int
}

// inlineBlocks is the longest block list that the walk reads again for
// each link to its inode: a longer one is checked once.
const inlineBlocks = 16

// fileData locates the bytes of a file inode and, with check, reads its
// block list to check it against the image.
func (img *Image) fileData(in *inode, check bool) (*fileData, error) {
	bs := uint64(img.sb.BlockSize)
	n := in.size / bs
	hasFrag := in.frag != noFragment
	if !hasFrag && in.size%bs != 0 {
		n++
	}
	if hasFrag && in.size%bs == 0 {
		return nil, corrupt("file inode %d has a fragment but no tail", in.number)
	}
	// Each block has a 4-byte size entry in the inode table, and a metadata
	// block of at least 3 bytes on disk holds at most 8 KiB of entries.
	if n*4 > (img.sb.DirectoryTableStart-img.sb.InodeTableStart)/3*metaBlockSize+metaBlockSize {
		return nil, corrupt("file inode %d needs %d blocks, more than the inode table can list", in.number, n)
	}
	f := &fileData{img: img, start: int64(in.blocksStart), size: int64(in.size), nblocks: int(n), frag: in.frag, fragOff: in.fragOffset,
		number: in.number, listBlock: in.listBlock, listOff: in.listOff}
	if check {
		// Without check, blockList checks the words as it reads them.
		if err := f.readList(nil); err != nil {
			return nil, err
		}
	}
	if hasFrag {
		if int(in.frag) >= len(img.frags) {
			return nil, corrupt("file inode %d names fragment %d of %d", in.number, in.frag, len(img.frags))
		}
		if uint64(in.fragOffset)+in.size%bs > bs {
			return nil, corrupt("file inode %d has its tail past the end of fragment %d", in.number, in.frag)
		}
	}
	return f, nil
}

// readList reads the file's block list from the inode table and checks
// every size word, storing them in dst unless it is nil. It reads in
// chunks, so that checking a long list allocates nothing.
func (f *fileData) readList(dst []uint32) error {
	img := f.img
	bs := uint64(img.sb.BlockSize)
	mr := img.meta.reader(f.listBlock, f.listOff, int64(img.sb.DirectoryTableStart))
	var raw [4096]byte
	end := uint64(f.start)
	for i := 0; i < f.nblocks; {
		k := min(f.nblocks-i, len(raw)/4)
		if err := mr.read(raw[:k*4]); err != nil {
			return err
		}
		for j := range k {
			w := binary.LittleEndian.Uint32(raw[j*4:])
			c := uint64(w &^ blockUncomp)
			if w&^(blockUncomp|0xffffff) != 0 || c > bs {
				return corrupt("file inode %d block %d has bad size word %#x", f.number, i+j, w)
			}
			end += c
			if dst != nil {
				dst[i+j] = w
			}
		}
		i += k
	}
	if end > img.sb.BytesUsed {
		return corrupt("file inode %d has data up to %d, past the %d used bytes", f.number, end, img.sb.BytesUsed)
	}
	return nil
}

// blockList reads the file's block list again.
func (f *fileData) blockList() ([]uint32, error) {
	if f.nblocks == 0 {
		return nil, nil
	}
	list := make([]uint32, f.nblocks)
	if err := f.readList(list); err != nil {
		return nil, err
	}
	return list, nil
}

// openAt opens the file inode at ref, which the walk checked.
func (img *Image) openAt(_ context.Context, ref uint64, _ int64) (io.ReadCloser, error) {
	in, err := img.inode(ref)
	if err != nil {
		return nil, err
	}
	if in.typ != pipeline.TypeFile {
		return nil, corrupt("inode reference %#x is a %s, not a file", ref, in.typ)
	}
	f, err := img.fileData(in, false)
	if err != nil {
		return nil, err
	}
	blocks, err := f.blockList()
	if err != nil {
		return nil, err
	}
	return &fileReader{f: f, blocks: blocks, at: f.start, remaining: f.size}, nil
}

// fileReader streams a file's bytes, one block at a time. It is also an
// io.ReaderAt with a Size, so a container nested in the image, or a binary
// an analyzer parses, is read in place.
type fileReader struct {
	f *fileData
	// blocks is the file's block list, read for this reader.
	blocks    []uint32
	next      int   // next block index
	at        int64 // disk offset of block next
	remaining int64
	buf       []byte // bytes of the current block not yet read
	bufs      *blockBufs

	offsOnce sync.Once
	// offs holds the disk offset of each block, made on the first ReadAt.
	offs []int64
}

// Size is the file's size.
func (r *fileReader) Size() int64 { return r.f.size }

// ReadAt implements io.ReaderAt, decompressing the blocks it needs through
// the image's cache: parsers of binaries hop between headers, tables and
// strings in a handful of blocks.
func (r *fileReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("negative offset %d", off)
	}
	bs := int64(r.f.img.sb.BlockSize)
	n := 0
	for len(p) > 0 {
		if off >= r.f.size {
			return n, io.EOF
		}
		i := int(off / bs)
		data, err := r.block(i)
		if err != nil {
			return n, err
		}
		k := copy(p, data[off-int64(i)*bs:])
		if k == 0 {
			return n, corrupt("block %d of a file is shorter than its size says", i)
		}
		n += k
		p = p[k:]
		off += int64(k)
	}
	return n, nil
}

// The image's cache keeps 4 MiB of blocks, and at least 8 of them: the
// fragments that the workers hashing consecutive small files share, and
// the blocks of the files read in place at once (the jars of a /usr image,
// a few blocks each). Both images of a diff keep theirs to the end; 8 MiB
// each was no faster on the /usr bench pair.
const (
	cacheBytes     = 4 << 20
	cacheMinBlocks = 8
)

// block returns the bytes of block i of the file (the tail for the last
// block of a file with a fragment), shared through the image's cache.
func (r *fileReader) block(i int) ([]byte, error) {
	f := r.f
	img := f.img
	bs := int64(img.sb.BlockSize)
	want := min(bs, f.size-int64(i)*bs)
	if i < len(r.blocks) {
		r.offsOnce.Do(func() {
			r.offs = make([]int64, len(r.blocks)+1)
			r.offs[0] = f.start
			for j, w := range r.blocks {
				r.offs[j+1] = r.offs[j] + int64(w&^blockUncomp)
			}
		})
		w, off := r.blocks[i], r.offs[i]
		return img.cache.Get(blockcache.Key{Off: off, Word: w, Want: int32(want)}, func() ([]byte, error) {
			bufs := img.bufPool.Get().(*blockBufs)
			defer img.bufPool.Put(bufs)
			data, err := f.decodeBlock(i, w, off, bufs)
			if err != nil {
				return nil, err
			}
			return append([]byte(nil), data...), nil
		})
	}
	if f.frag == noFragment || i != len(r.blocks) {
		return nil, corrupt("block %d past the end of a file of %d blocks", i, len(r.blocks))
	}
	frag, err := img.fragment(f.frag)
	if err != nil {
		return nil, err
	}
	lo := int64(f.fragOff)
	if lo+want > int64(len(frag)) {
		return nil, corrupt("tail of %d bytes at %d lies past fragment %d of %d bytes", want, lo, f.frag, len(frag))
	}
	return frag[lo : lo+want], nil
}

type blockBufs struct{ comp, plain []byte }

func (r *fileReader) Read(p []byte) (int, error) {
	if len(r.buf) == 0 {
		if r.remaining == 0 {
			return 0, io.EOF
		}
		if err := r.load(); err != nil {
			return 0, err
		}
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	r.remaining -= int64(n)
	return n, nil
}

// WriteTo hands each decompressed block to w without a copy.
func (r *fileReader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		if len(r.buf) == 0 {
			if r.remaining == 0 {
				return total, nil
			}
			if err := r.load(); err != nil {
				return total, err
			}
		}
		n, err := w.Write(r.buf)
		total += int64(n)
		r.buf = r.buf[n:]
		r.remaining -= int64(n)
		if err != nil {
			return total, err
		}
	}
}

func (r *fileReader) Close() error {
	if r.bufs != nil {
		r.f.img.bufPool.Put(r.bufs)
		r.bufs = nil
	}
	r.buf = nil
	return nil
}

func (r *fileReader) load() error {
	img := r.f.img
	if r.next < len(r.blocks) {
		if r.bufs == nil {
			r.bufs = img.bufPool.Get().(*blockBufs)
		}
		w := r.blocks[r.next]
		data, err := r.f.decodeBlock(r.next, w, r.at, r.bufs)
		if err != nil {
			return err
		}
		r.next++
		r.at += int64(w &^ blockUncomp)
		r.buf = data
		return nil
	}
	if r.f.frag == noFragment {
		return corrupt("file ends %d bytes early: no block or fragment holds them", r.remaining)
	}
	frag, err := img.fragment(r.f.frag)
	if err != nil {
		return err
	}
	lo, hi := int64(r.f.fragOff), int64(r.f.fragOff)+r.remaining
	if hi > int64(len(frag)) {
		return corrupt("tail of %d bytes at %d lies past fragment %d of %d bytes", r.remaining, lo, r.f.frag, len(frag))
	}
	r.buf = frag[lo:hi]
	return nil
}

// decodeBlock returns the bytes of data block i, of size word at disk
// offset off, decompressed into bufs.
func (f *fileData) decodeBlock(i int, word uint32, off int64, bufs *blockBufs) ([]byte, error) {
	img := f.img
	bs := int64(img.sb.BlockSize)
	want := min(bs, f.size-int64(i)*bs)
	c := int64(word &^ blockUncomp)
	plain := bufs.plain[:want]
	switch {
	case c == 0: // a hole
		clear(plain)
	case word&blockUncomp != 0:
		if c < want {
			clear(plain[c:])
		}
		if _, err := img.r.ReadAt(plain[:min(c, want)], off); err != nil {
			return nil, fmt.Errorf("reading block at %d: %w", off, err)
		}
	default:
		comp := bufs.comp[:c]
		if _, err := img.r.ReadAt(comp, off); err != nil {
			return nil, fmt.Errorf("reading block at %d: %w", off, err)
		}
		out, err := img.codec.decompress(bufs.plain[:0], comp, int(bs))
		if err != nil {
			return nil, fmt.Errorf("%w: data block at %d: %v", ErrCorrupt, off, err)
		}
		if int64(len(out)) > want {
			return nil, corrupt("data block at %d unpacks to %d bytes, %d expected", off, len(out), want)
		}
		if int64(len(out)) < want {
			// Blocks other than the last may unpack short; the rest is zeros.
			n := len(out)
			out = out[:want]
			clear(out[n:])
		}
		plain = out
	}
	return plain, nil
}

// fragment returns the decompressed fragment block i, from the cache if it
// is there. The returned bytes are shared and must not be modified.
func (img *Image) fragment(i uint32) ([]byte, error) {
	return img.cache.Get(blockcache.Key{Off: int64(i), Frag: true}, func() ([]byte, error) { return img.loadFragment(i) })
}

func (img *Image) loadFragment(i uint32) ([]byte, error) {
	fr := img.frags[i]
	c := int64(fr.size &^ blockUncomp)
	if fr.size&^(blockUncomp|0xffffff) != 0 || c == 0 || c > int64(img.sb.BlockSize) || fr.start < 0 || fr.start+c > int64(img.sb.BytesUsed) {
		return nil, corrupt("fragment %d at %d of %d bytes lies outside the image", i, fr.start, c)
	}
	raw := make([]byte, c)
	if _, err := img.r.ReadAt(raw, fr.start); err != nil {
		return nil, fmt.Errorf("reading fragment %d: %w", i, err)
	}
	if fr.size&blockUncomp != 0 {
		return raw, nil
	}
	out, err := img.codec.decompress(make([]byte, 0, img.sb.BlockSize), raw, int(img.sb.BlockSize))
	if err != nil {
		return nil, fmt.Errorf("%w: fragment %d: %v", ErrCorrupt, i, err)
	}
	return out, nil
}
