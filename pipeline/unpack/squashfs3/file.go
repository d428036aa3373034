package squashfs3

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/unpack/blockcache"
)

// fileData locates a regular file's bytes: whole blocks from start and,
// optionally, a tail in a fragment block.
type fileData struct {
	img     *Image
	size    int64
	blocks  []uint32
	offs    []int64 // offs[i] is where block i starts on disk
	frag    uint32
	fragOff uint32
}

// fileData reads the block list of a file inode and checks it against the image.
func (img *Image) fileData(in *inode) (*fileData, error) {
	bs := uint64(img.sb.blockSize)
	hasFrag := in.frag != noFragment
	n := in.size / bs
	if !hasFrag && in.size%bs != 0 {
		n++
	}
	if hasFrag && in.size%bs == 0 {
		return nil, corrupt("file inode %d has a fragment but no tail", in.number)
	}
	// Each block has a 4-byte size in the inode table, and a metadata
	// block of at least 3 bytes on disk holds at most 8 KiB of them.
	if n*4 > (img.sb.dirTableStart-img.sb.inodeTableStart)/3*metaBlockSize+metaBlockSize {
		return nil, corrupt("file inode %d needs %d blocks, more than the inode table can list", in.number, n)
	}
	f := &fileData{img: img, size: int64(in.size), frag: in.frag, fragOff: in.fragOffset}
	raw := make([]byte, n*4)
	if err := in.blockList.read(raw); err != nil {
		return nil, fmt.Errorf("reading block list: %w", err)
	}
	f.blocks = make([]uint32, n)
	f.offs = make([]int64, n+1)
	end := in.blocksStart
	f.offs[0] = int64(end)
	for i := range f.blocks {
		w := img.o.u32(raw[i*4:])
		c := uint64(w &^ blockUncomp)
		if w&^(blockUncomp|0xffffff) != 0 || c > bs {
			return nil, corrupt("file inode %d block %d has bad size word %#x", in.number, i, w)
		}
		f.blocks[i] = w
		end += c
		f.offs[i+1] = int64(end)
	}
	if end > img.sb.bytesUsed {
		return nil, corrupt("file inode %d has data up to %d, past the %d used bytes", in.number, end, img.sb.bytesUsed)
	}
	if hasFrag {
		if in.frag >= img.sb.fragments {
			return nil, corrupt("file inode %d names fragment %d of %d", in.number, in.frag, img.sb.fragments)
		}
		if uint64(in.fragOffset)+in.size%bs > bs {
			return nil, corrupt("file inode %d has its tail past the end of fragment %d", in.number, in.frag)
		}
	}
	return f, nil
}

// openAt opens the file inode at ref, reading it and its block list again:
// the walk keeps neither.
func (img *Image) openAt(_ context.Context, ref uint64, size int64) (io.ReadCloser, error) {
	in, err := img.inode(ref)
	if err != nil {
		return nil, fmt.Errorf("%s: reading inode %#x: %w", img.Describe(), ref, err)
	}
	if in.typ != pipeline.TypeFile || int64(in.size) != size {
		return nil, corrupt("inode %#x is a %s of %d bytes, not the file of %d its entry gave", ref, in.typ, in.size, size)
	}
	f, err := img.fileData(in)
	if err != nil {
		return nil, fmt.Errorf("%s: inode %#x: %w", img.Describe(), ref, err)
	}
	return &fileReader{f: f}, nil
}

// block returns the bytes of block i of the file (the tail for the last
// block of a file with a fragment), shared with the image's cache or the
// zeros of a hole: not to be modified.
func (f *fileData) block(i int) ([]byte, error) {
	img := f.img
	bs := int64(img.sb.blockSize)
	want := min(bs, f.size-int64(i)*bs)
	if want <= 0 {
		return nil, io.EOF
	}
	if i < len(f.blocks) {
		word := f.blocks[i]
		if word&^blockUncomp == 0 { // a hole
			return zeros[:want], nil
		}
		off := f.offs[i]
		return img.cache.Get(blockcache.Key{Off: off, Word: word, Want: int32(want)}, func() ([]byte, error) {
			return f.loadBlock(word, off, want)
		})
	}
	if f.frag == noFragment || i != len(f.blocks) {
		return nil, corrupt("block %d past the end of a file of %d blocks", i, len(f.blocks))
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

// loadBlock reads and decompresses the data block at off.
func (f *fileData) loadBlock(word uint32, off, want int64) ([]byte, error) {
	img := f.img
	bs := int64(img.sb.blockSize)
	c := int64(word &^ blockUncomp)
	if word&blockUncomp != 0 {
		plain := make([]byte, want)
		if _, err := img.r.ReadAt(plain[:min(c, want)], off); err != nil {
			return nil, fmt.Errorf("reading block at %d: %w", off, err)
		}
		return plain, nil
	}
	comp := make([]byte, c)
	if _, err := img.r.ReadAt(comp, off); err != nil {
		return nil, fmt.Errorf("reading block at %d: %w", off, err)
	}
	out, err := img.codec.decompress(make([]byte, 0, bs), comp, int(bs))
	if err != nil {
		return nil, fmt.Errorf("%w: data block at %d: %w", ErrCorrupt, off, err)
	}
	if int64(len(out)) > want {
		return nil, corrupt("data block at %d unpacks to %d bytes, %d expected", off, len(out), want)
	}
	for int64(len(out)) < want {
		out = append(out, 0) // blocks may unpack short; the rest is zeros
	}
	return out, nil
}

// The image's cache keeps 4 MiB of blocks, and at least 8 of them: the
// fragments that consecutive small files share, and the blocks of the
// files read in place at once. It belongs to the image, not to a reader,
// because the index keeps a reader open for every nested container.
const (
	cacheBytes     = 4 << 20
	cacheMinBlocks = 8
)

// zeros is the bytes of a hole, shared: the blocks block returns are read only.
var zeros = make([]byte, maxBlockSize)

// fileReader streams a file's bytes one block at a time. It is also an
// io.ReaderAt with a Size, so a container nested in the image is read in
// place.
type fileReader struct {
	f   *fileData
	mu  sync.Mutex
	pos int64
}

// Size is the file's size.
func (r *fileReader) Size() int64 { return r.f.size }

// ReadAt implements io.ReaderAt.
func (r *fileReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("negative offset %d", off)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	bs := int64(r.f.img.sb.blockSize)
	n := 0
	for len(p) > 0 {
		if off >= r.f.size {
			return n, io.EOF
		}
		i := int(off / bs)
		data, err := r.f.block(i)
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

func (r *fileReader) Read(p []byte) (int, error) {
	r.mu.Lock()
	pos := r.pos
	r.mu.Unlock()
	if pos >= r.f.size {
		return 0, io.EOF
	}
	bs := int64(r.f.img.sb.blockSize)
	// Never more than the rest of one block, so a read is one decode.
	if rest := bs - pos%bs; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := r.ReadAt(p, pos)
	r.mu.Lock()
	r.pos += int64(n)
	r.mu.Unlock()
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

func (r *fileReader) Close() error { return nil }

// fragment returns the decompressed fragment block i, from the cache if it
// is there. The returned bytes are shared and must not be modified.
func (img *Image) fragment(i uint32) ([]byte, error) {
	return img.cache.Get(blockcache.Key{Off: int64(i), Frag: true}, func() ([]byte, error) { return img.loadFragment(i) })
}

func (img *Image) loadFragment(i uint32) ([]byte, error) {
	start, size, err := img.fragmentEntry(i)
	if err != nil {
		return nil, err
	}
	c := int64(size &^ blockUncomp)
	if size&^(blockUncomp|0xffffff) != 0 || c == 0 || c > int64(img.sb.blockSize) || start+c > int64(img.sb.bytesUsed) {
		return nil, corrupt("fragment %d at %d of %d bytes lies outside the image", i, start, c)
	}
	raw := make([]byte, c)
	if _, err := img.r.ReadAt(raw, start); err != nil {
		return nil, fmt.Errorf("reading fragment %d: %w", i, err)
	}
	if size&blockUncomp != 0 {
		return raw, nil
	}
	out, err := img.codec.decompress(make([]byte, 0, img.sb.blockSize), raw, int(img.sb.blockSize))
	if err != nil {
		return nil, fmt.Errorf("%w: fragment %d: %w", ErrCorrupt, i, err)
	}
	return out, nil
}
