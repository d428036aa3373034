package equivalence

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"sort"
	"time"
)

// ext4Timestamps explains ext2/3/4 images (mke2fs -d of the same tree)
// that differ only in times: the superblock's (written, checked, made,
// mounted, each backup's too) and every inode's access, change,
// modification and creation times with their nanosecond fields, and the
// superblock and inode checksums that cover them, each of which must be
// right for its side's bytes. Everything else (block and inode bitmaps,
// extents, directories, the journal, file data, UUID, hash seed) must be
// equal: a rebuild that allocated other blocks, or was made with another
// UUID, is not explained by it.
type ext4Timestamps struct{}

func (ext4Timestamps) ID() string      { return "ext4-timestamps" }
func (ext4Timestamps) Version() string { return "1" }
func (ext4Timestamps) Description() string {
	return "ext2/3/4 images that differ only in superblock and inode times and the checksums that cover them"
}

// maxExt4Groups bounds the block groups a rule walks.
const maxExt4Groups = 1 << 16

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// crc32c is the kernel's crc32c_le: no inversion on the way in or out.
func crc32c(c uint32, p []byte) uint32 { return ^crc32.Update(^c, castagnoli, p) }

func isExt4(head []byte) bool {
	return len(head) >= 1024+0x3a && binary.LittleEndian.Uint16(head[1024+0x38:]) == 0xef53
}

// Superblock and inode fields, as offsets into each.
var (
	sbTimes = []struct {
		off  int64
		name string
	}{{0x2c, "s_mtime"}, {0x30, "s_wtime"}, {0x40, "s_lastcheck"}, {0x108, "s_mkfs_time"}, {0x198, "s_first_error_time"}, {0x1cc, "s_last_error_time"}}
	inodeTimes = []struct {
		off  int64
		name string
	}{{0x08, "i_atime"}, {0x0c, "i_ctime"}, {0x10, "i_mtime"}}
	// The times past the first 128 bytes, present when i_extra_isize
	// reaches their end.
	inodeExtraTimes = []struct {
		off  int64
		name string
	}{{0x84, "i_ctime_extra"}, {0x88, "i_mtime_extra"}, {0x8c, "i_atime_extra"}, {0x90, "i_crtime"}, {0x94, "i_crtime_extra"}}
)

const (
	ext4MetadataCsum = 0x400  // ro_compat
	ext4Bit64        = 0x80   // incompat
	ext4CsumSeed     = 0x2000 // incompat
)

// ext4Image is where an image's superblocks and inode tables lie.
type ext4Image struct {
	supers []int64 // byte offsets of the primary and backup superblocks
	tables []int64 // byte offset of each group's inode table, in group order
	byOff  []int   // groups in the order of their tables' offsets
	ipg    int64   // inodes per group
	size   int64   // inode size
	end    int64   // where the file system's blocks end
	csum   bool
	seed   uint32
}

func parseExt4(b []byte) (*ext4Image, error) {
	le := binary.LittleEndian
	if len(b) < 2048 || !isExt4(b) {
		return nil, errors.New("no ext2/3/4 superblock")
	}
	sb := b[1024:2048]
	logBS := le.Uint32(sb[0x18:])
	if logBS > 6 {
		return nil, fmt.Errorf("block size 2^%d", 10+logBS)
	}
	bs := int64(1024) << logBS
	bpg := int64(le.Uint32(sb[0x20:]))
	first := int64(le.Uint32(sb[0x14:]))
	blocks := int64(le.Uint32(sb[0x04:]))
	incompat, roCompat := le.Uint32(sb[0x60:]), le.Uint32(sb[0x64:])
	if incompat&ext4Bit64 != 0 {
		blocks |= int64(le.Uint32(sb[0x150:])) << 32
	}
	img := &ext4Image{ipg: int64(le.Uint32(sb[0x28:])), size: 128, csum: roCompat&ext4MetadataCsum != 0}
	if le.Uint32(sb[0x4c:]) >= 1 {
		img.size = int64(le.Uint16(sb[0x58:]))
	}
	descSize := int64(32)
	if incompat&ext4Bit64 != 0 && le.Uint16(sb[0xfe:]) >= 64 {
		descSize = int64(le.Uint16(sb[0xfe:]))
	}
	if bpg == 0 || img.ipg == 0 || img.size < 128 || img.size > bs || img.size&(img.size-1) != 0 ||
		blocks > int64(len(b))/bs || first >= blocks {
		return nil, errors.New("a superblock whose geometry does not fit the image")
	}
	groups := (blocks - first + bpg - 1) / bpg
	if groups > maxExt4Groups || img.ipg > int64(len(b))/img.size {
		return nil, fmt.Errorf("%d block groups of %d inodes, more than the image holds", groups, img.ipg)
	}
	if incompat&ext4CsumSeed != 0 {
		img.seed = le.Uint32(sb[0x270:])
	} else {
		img.seed = crc32c(^uint32(0), sb[0x68:0x78])
	}
	img.end = blocks * bs
	img.supers = append(img.supers, 1024)
	gdt := (first + 1) * bs
	if gdt+groups*descSize > int64(len(b)) {
		return nil, errors.New("the group descriptors run past the image")
	}
	for g := range groups {
		// A backup superblock starts its group, where mke2fs put one.
		if at := (first + g*bpg) * bs; g > 0 && at+1024 <= int64(len(b)) && le.Uint16(b[at+0x38:]) == 0xef53 && int64(le.Uint16(b[at+0x5a:])) == g {
			img.supers = append(img.supers, at)
		}
		d := b[gdt+g*descSize:]
		table := int64(le.Uint32(d[0x08:]))
		if descSize >= 64 {
			table |= int64(le.Uint32(d[0x28:])) << 32
		}
		if table <= 0 || table >= blocks || table*bs+img.ipg*img.size > int64(len(b)) {
			return nil, fmt.Errorf("block group %d's inode table lies outside the image", g)
		}
		img.tables = append(img.tables, table*bs)
	}
	img.byOff = make([]int, len(img.tables))
	for i := range img.byOff {
		img.byOff[i] = i
	}
	slices.SortFunc(img.byOff, func(x, y int) int { return cmp.Compare(img.tables[x], img.tables[y]) })
	return img, nil
}

// superAt returns the offset of the superblock holding byte off, if one does.
func (img *ext4Image) superAt(off int64) (int64, bool) {
	for _, at := range img.supers {
		if off >= at && off < at+1024 {
			return at, true
		}
	}
	return 0, false
}

// inodeAt returns the number and offset of the inode slot holding byte
// off, if one does.
func (img *ext4Image) inodeAt(off int64) (num, at int64, ok bool) {
	i := sort.Search(len(img.byOff), func(i int) bool { return img.tables[img.byOff[i]] > off }) - 1
	if i < 0 {
		return 0, 0, false
	}
	g := img.byOff[i]
	rel := off - img.tables[g]
	if rel >= img.ipg*img.size {
		return 0, 0, false
	}
	return int64(g)*img.ipg + rel/img.size + 1, img.tables[g] + rel/img.size*img.size, true
}

// field returns the time or checksum field of the image b that holds byte
// off, if one does.
func (img *ext4Image) field(b []byte, off int64) (stampField, bool) {
	le := binary.LittleEndian
	unix := func(v []byte) string { return time.Unix(int64(int32(le.Uint32(v))), 0).UTC().Format(time.RFC3339) }
	hex := func(v []byte) string { return fmt.Sprintf("%#x", v) }
	in := func(at, fo, n int64) bool { return off >= at+fo && off < at+fo+n }
	if off >= img.end {
		// Past the last block: padding (one fill byte) to the image's size.
		if _, ok := fill(b[img.end:]); !ok {
			return stampField{}, false
		}
		return paddingField("after the last block", img.end, int64(len(b))), true
	}
	if at, ok := img.superAt(off); ok {
		where := "superblock"
		if at != 1024 {
			where = fmt.Sprintf("backup superblock at %#x", at)
		}
		for _, f := range sbTimes {
			if in(at, f.off, 4) {
				return stampField{where, f.name, [2]int64{at + f.off, at + f.off + 4}, unix}, true
			}
		}
		if img.csum && in(at, 0x3fc, 4) {
			return stampField{where, "s_checksum", [2]int64{at + 0x3fc, at + 0x400}, hex}, true
		}
		return stampField{}, false
	}
	num, at, ok := img.inodeAt(off)
	if !ok {
		return stampField{}, false
	}
	member := fmt.Sprintf("inode %d", num)
	for _, f := range inodeTimes {
		if in(at, f.off, 4) {
			return stampField{member, f.name, [2]int64{at + f.off, at + f.off + 4}, unix}, true
		}
	}
	extra := int64(0)
	if img.size > 128 {
		extra = int64(le.Uint16(b[at+0x80:]))
	}
	for _, f := range inodeExtraTimes {
		if 128+extra >= f.off+4 && f.off+4 <= img.size && in(at, f.off, 4) {
			dec := hex
			if f.name == "i_crtime" {
				dec = unix
			}
			return stampField{member, f.name, [2]int64{at + f.off, at + f.off + 4}, dec}, true
		}
	}
	if img.csum && in(at, 0x7c, 2) {
		return stampField{member, "i_checksum_lo", [2]int64{at + 0x7c, at + 0x7e}, hex}, true
	}
	if img.csum && 128+extra >= 0x84 && img.size >= 0x84 && in(at, 0x82, 2) {
		return stampField{member, "i_checksum_hi", [2]int64{at + 0x82, at + 0x84}, hex}, true
	}
	return stampField{}, false
}

// changedFields returns the fields that hold the differing bytes, each
// once, in order, or false when a differing byte lies in none.
func (img *ext4Image) changedFields(b []byte, diffs [][2]int64) ([]stampField, bool) {
	var out []stampField
	for _, d := range diffs {
		for pos := d[0]; pos < d[1]; {
			f, ok := img.field(b, pos)
			if !ok {
				return nil, false
			}
			if len(out) == 0 || out[len(out)-1].at != f.at {
				out = append(out, f)
			}
			pos = f.at[1]
		}
	}
	return out, true
}

// checksumsHold reports whether, in b, the checksum of every superblock
// and inode that holds one of fields is right.
func (img *ext4Image) checksumsHold(b []byte, fields []stampField) error {
	if !img.csum {
		return nil
	}
	le := binary.LittleEndian
	buf := make([]byte, img.size)
	done := map[int64]bool{}
	for _, f := range fields {
		if at, ok := img.superAt(f.at[0]); ok {
			if !done[at] && crc32c(^uint32(0), b[at:at+0x3fc]) != le.Uint32(b[at+0x3fc:]) {
				return fmt.Errorf("the superblock at %#x has a wrong checksum", at)
			}
			done[at] = true
			continue
		}
		num, at, ok := img.inodeAt(f.at[0])
		if !ok || done[at] {
			continue
		}
		done[at] = true
		copy(buf, b[at:at+img.size])
		var n [4]byte
		le.PutUint32(n[:], uint32(num))
		c := crc32c(img.seed, n[:])
		c = crc32c(c, buf[0x64:0x68]) // i_generation
		buf[0x7c], buf[0x7d] = 0, 0
		hasHi := img.size >= 0x84 && 128+int64(le.Uint16(buf[0x80:])) >= 0x84
		if hasHi {
			buf[0x82], buf[0x83] = 0, 0
		}
		c = crc32c(c, buf)
		want := uint32(le.Uint16(b[at+0x7c:]))
		if hasHi {
			want |= uint32(le.Uint16(b[at+0x82:])) << 16
		} else {
			c &= 0xffff
		}
		if c != want {
			return fmt.Errorf("inode %d has a wrong checksum", num)
		}
	}
	return nil
}

func (ext4Timestamps) Explain(_ context.Context, s, r *Input) (Result, error) {
	if !isExt4(s.Head) || !isExt4(r.Head) {
		return Result{}, nil
	}
	if s.Data == nil || r.Data == nil {
		// Its inode tables are read in place, so an image over the
		// per-file limit is not judged: limit-hit.
		return Result{}, ErrLimit
	}
	if len(s.Data) != len(r.Data) {
		return Result{Reason: fmt.Sprintf("ext4-timestamps: %d bytes and %d: more than times differ", len(s.Data), len(r.Data))}, nil
	}
	img, err := parseExt4(s.Data)
	if err != nil {
		return Result{Reason: "ext4-timestamps: " + err.Error()}, nil
	}
	diffs, truncated, _ := diffRanges(s.Data, r.Data, 1<<20)
	fields, ok := img.changedFields(s.Data, diffs)
	if truncated || !ok {
		return Result{Reason: "ext4-timestamps: bytes other than times and their checksums differ"}, nil
	}
	for _, side := range []struct {
		name string
		b    []byte
	}{{"shipped", s.Data}, {"rebuilt", r.Data}} {
		if err := img.checksumsHold(side.b, fields); err != nil {
			return Result{Reason: fmt.Sprintf("ext4-timestamps: %s: %v", side.name, err)}, nil
		}
		if _, ok := fill(side.b[img.end:]); !ok {
			return Result{Reason: fmt.Sprintf("ext4-timestamps: %s: what follows the last block is not padding", side.name)}, nil
		}
	}
	return stampResult("ext4-timestamps", fields, s.Data, r.Data, diffs), nil
}
