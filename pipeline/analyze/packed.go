package analyze

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/fwvet/fwvet/pipeline"
)

// Packed reports an executable or shared library that is packed in the
// candidate where the baseline's file at that path was not, or a new
// packed one (packed-binary-added): its real code is compressed or
// encrypted and only unpacked in memory, so nothing in the file can be
// reviewed. A packed file is told by at least two independent signals
// (packSignals), never by a packer's mark alone. The ELF headers are read
// by fwvet's own bounded parser (rawELF): debug/elf refuses many packed
// files, whose headers packers bend on purpose.
type Packed struct{}

var _ pipeline.Analyzer = Packed{}

// Name implements pipeline.Analyzer.
func (Packed) Name() string { return "packed" }

// Bounds on reading one binary.
const (
	// maxPackedRead caps the loaded bytes whose entropy is measured.
	maxPackedRead = 64 << 20
	// packedEntropy: loaded bytes above this, in bits per byte, are
	// compressed or encrypted.
	packedEntropy = 7.2
	// entropyBlock is the unit the loaded bytes are measured in.
	entropyBlock = 4096
)

// Limits of the ELF header parser: a hostile header cannot make it
// allocate or loop more than this.
const (
	maxRawProgs    = 256
	maxRawSections = 4096
	maxShstrtab    = 1 << 20
)

// rawELF is what fwvet reads from an ELF file's headers itself.
type rawELF struct {
	class64  bool
	order    binary.ByteOrder
	typ      elf.Type
	machine  elf.Machine
	entry    uint64
	shoff    uint64
	shnum    int
	size     int64
	progs    []rawProg
	sections []rawSection
}

type rawProg struct {
	typ    elf.ProgType
	flags  elf.ProgFlag
	off    uint64
	vaddr  uint64
	filesz uint64
	memsz  uint64
}

type rawSection struct {
	name  string
	typ   elf.SectionType
	flags elf.SectionFlag
	addr  uint64
	off   uint64
	size  uint64
}

// inFile is whether the section has bytes in the file, all inside it.
func (s rawSection) inFile(size int64) bool {
	return s.typ != elf.SHT_NOBITS && s.typ != elf.SHT_NULL && s.size > 0 && s.off <= uint64(size) && s.size <= uint64(size)-s.off
}

// fileRange is the part of a segment's file bytes inside the file.
func (p rawProg) fileRange(size int64) (off, n int64) {
	if p.off >= uint64(size) {
		return 0, 0
	}
	end := p.off + min(p.filesz, uint64(size)-p.off)
	return int64(p.off), int64(end - p.off)
}

var errNotELF = errors.New("not an ELF file")

// parseRawELF reads an ELF file's header, program headers and section
// headers (with their names), each checked against the file's size. A
// section table that does not fit is dropped (as sstrip leaves it), a
// program header table that does not fit is an error.
func parseRawELF(r io.ReaderAt, size int64) (*rawELF, error) {
	var h [64]byte
	if size < 52 {
		return nil, errNotELF
	}
	n, _ := r.ReadAt(h[:min(int64(len(h)), size)], 0)
	if n < 52 || !bytes.Equal(h[:4], []byte(elf.ELFMAG)) {
		return nil, errNotELF
	}
	f := &rawELF{size: size}
	switch elf.Data(h[elf.EI_DATA]) {
	case elf.ELFDATA2LSB:
		f.order = binary.LittleEndian
	case elf.ELFDATA2MSB:
		f.order = binary.BigEndian
	default:
		return nil, errNotELF
	}
	bo := f.order
	var phoff uint64
	var phentsize, phnum, shentsize, shnum, shstrndx int
	switch elf.Class(h[elf.EI_CLASS]) {
	case elf.ELFCLASS32:
		f.typ, f.machine = elf.Type(bo.Uint16(h[16:])), elf.Machine(bo.Uint16(h[18:]))
		f.entry = uint64(bo.Uint32(h[24:]))
		phoff, f.shoff = uint64(bo.Uint32(h[28:])), uint64(bo.Uint32(h[32:]))
		phentsize, phnum = int(bo.Uint16(h[42:])), int(bo.Uint16(h[44:]))
		shentsize, shnum, shstrndx = int(bo.Uint16(h[46:])), int(bo.Uint16(h[48:])), int(bo.Uint16(h[50:]))
	case elf.ELFCLASS64:
		if n < 64 {
			return nil, errNotELF
		}
		f.class64 = true
		f.typ, f.machine = elf.Type(bo.Uint16(h[16:])), elf.Machine(bo.Uint16(h[18:]))
		f.entry = bo.Uint64(h[24:])
		phoff, f.shoff = bo.Uint64(h[32:]), bo.Uint64(h[40:])
		phentsize, phnum = int(bo.Uint16(h[54:])), int(bo.Uint16(h[56:]))
		shentsize, shnum, shstrndx = int(bo.Uint16(h[58:])), int(bo.Uint16(h[60:])), int(bo.Uint16(h[62:]))
	default:
		return nil, errNotELF
	}
	phmin, shmin := 32, 40
	if f.class64 {
		phmin, shmin = 56, 64
	}
	if phnum > 0 {
		if phnum > maxRawProgs || phentsize < phmin || phentsize > 1024 {
			return nil, fmt.Errorf("ELF: %d program headers of %d bytes", phnum, phentsize)
		}
		tab := uint64(phnum * phentsize)
		if phoff > uint64(size) || tab > uint64(size)-phoff {
			return nil, fmt.Errorf("ELF: program headers at 0x%x beyond the file's %d bytes", phoff, size)
		}
		b := make([]byte, tab)
		if _, err := r.ReadAt(b, int64(phoff)); err != nil {
			return nil, fmt.Errorf("ELF: reading program headers: %w", err)
		}
		for i := 0; i < phnum; i++ {
			e := b[i*phentsize:]
			var p rawProg
			if f.class64 {
				p = rawProg{typ: elf.ProgType(bo.Uint32(e)), flags: elf.ProgFlag(bo.Uint32(e[4:])), off: bo.Uint64(e[8:]),
					vaddr: bo.Uint64(e[16:]), filesz: bo.Uint64(e[32:]), memsz: bo.Uint64(e[40:])}
			} else {
				p = rawProg{typ: elf.ProgType(bo.Uint32(e)), off: uint64(bo.Uint32(e[4:])), vaddr: uint64(bo.Uint32(e[8:])),
					filesz: uint64(bo.Uint32(e[16:])), memsz: uint64(bo.Uint32(e[20:])), flags: elf.ProgFlag(bo.Uint32(e[24:]))}
			}
			f.progs = append(f.progs, p)
		}
	}
	f.shnum = shnum
	if f.shoff == 0 || shnum == 0 || shnum > maxRawSections || shentsize < shmin || shentsize > 1024 {
		return f, nil
	}
	tab := uint64(shnum * shentsize)
	if f.shoff > uint64(size) || tab > uint64(size)-f.shoff {
		return f, nil
	}
	b := make([]byte, tab)
	if _, err := r.ReadAt(b, int64(f.shoff)); err != nil {
		return f, nil
	}
	nameOff := make([]uint32, shnum)
	for i := 0; i < shnum; i++ {
		e := b[i*shentsize:]
		var s rawSection
		nameOff[i] = bo.Uint32(e)
		if f.class64 {
			s = rawSection{typ: elf.SectionType(bo.Uint32(e[4:])), flags: elf.SectionFlag(bo.Uint64(e[8:])),
				addr: bo.Uint64(e[16:]), off: bo.Uint64(e[24:]), size: bo.Uint64(e[32:])}
		} else {
			s = rawSection{typ: elf.SectionType(bo.Uint32(e[4:])), flags: elf.SectionFlag(bo.Uint32(e[8:])),
				addr: uint64(bo.Uint32(e[12:])), off: uint64(bo.Uint32(e[16:])), size: uint64(bo.Uint32(e[20:]))}
		}
		f.sections = append(f.sections, s)
	}
	if shstrndx > 0 && shstrndx < shnum {
		st := f.sections[shstrndx]
		if st.inFile(size) && st.size <= maxShstrtab {
			names := make([]byte, st.size)
			if _, err := r.ReadAt(names, int64(st.off)); err == nil {
				for i := range f.sections {
					if o := nameOff[i]; uint64(o) < st.size {
						name := names[o:]
						if j := bytes.IndexByte(name, 0); j >= 0 {
							name = name[:j]
						}
						f.sections[i].name = string(name)
					}
				}
			}
		}
	}
	return f, nil
}

// loads are the PT_LOAD segments.
func (f *rawELF) loads() []rawProg {
	var out []rawProg
	for _, p := range f.progs {
		if p.typ == elf.PT_LOAD {
			out = append(out, p)
		}
	}
	return out
}

// packMarks are packers' marks in the bytes of a file they packed.
var packMarks = []struct{ name, mark string }{
	{"UPX l_info/p_info magic UPX!", "UPX!"},
	{"UPX banner", "$Info: This file is packed with the UPX"},
	{"UPX id", "$Id: UPX"},
}

// packInfo is what tells a packed binary.
type packInfo struct {
	Signals []string
	// Entropy is of the loaded bytes read, in bits per byte; HighShare is
	// the share of them in 4 KiB blocks above packedEntropy.
	Entropy   float64
	HighShare float64
	Loads     int
	FileSize  uint64
	MemSize   uint64
	Read      int64
	Capped    bool
	Marks     []string
}

// packed is whether at least two independent signals agree.
func (p *packInfo) packed() bool { return len(p.Signals) >= 2 }

// readPackInfo measures an ELF file's signals of packing, streaming its
// loaded bytes (at most maxPackedRead of them).
func readPackInfo(ctx context.Context, r io.ReaderAt, f *rawELF) (*packInfo, error) {
	info := &packInfo{}
	loads := f.loads()
	info.Loads = len(loads)
	// The ranges of the file the loader maps, merged; the whole file when
	// no segment says.
	type span struct{ off, n int64 }
	var spans []span
	for _, p := range loads {
		// What the file holds of the segment, and its memory size
		// capped at 1 TiB: a hostile header cannot overflow the sums.
		off, n := p.fileRange(f.size)
		info.FileSize += uint64(n)
		info.MemSize += min(p.memsz, 1<<40)
		if n > 0 {
			spans = append(spans, span{off, n})
		}
	}
	if len(spans) == 0 {
		spans = []span{{0, f.size}}
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].off < spans[j].off })
	merged := spans[:1]
	for _, s := range spans[1:] {
		last := &merged[len(merged)-1]
		if s.off <= last.off+last.n {
			last.n = max(last.n, s.off+s.n-last.off)
		} else {
			merged = append(merged, s)
		}
	}
	// Section coverage of the loaded bytes.
	var loaded int64
	for _, s := range merged {
		loaded += s.n
	}
	if f.shnum == 0 || f.shoff == 0 || len(f.sections) == 0 {
		info.Signals = append(info.Signals, "no section header table")
	} else if loaded > 0 {
		var covered int64
		for _, s := range merged {
			for _, sec := range f.sections {
				if sec.flags&elf.SHF_ALLOC == 0 || !sec.inFile(f.size) {
					continue
				}
				lo, hi := max(s.off, int64(sec.off)), min(s.off+s.n, int64(sec.off+sec.size))
				if hi > lo {
					covered += hi - lo
				}
			}
		}
		if covered*2 < loaded {
			info.Signals = append(info.Signals, fmt.Sprintf("sections cover %d of the %d loaded bytes", covered, loaded))
		}
	}
	if len(loads) > 0 && len(loads) <= 4 && info.MemSize >= 2*info.FileSize && info.MemSize-info.FileSize >= 64<<10 {
		info.Signals = append(info.Signals, fmt.Sprintf("%d PT_LOAD segments map %d bytes of file into %d bytes of memory (a stub that unpacks into memory)",
			len(loads), info.FileSize, info.MemSize))
	}
	// Entropy, by 4 KiB block, and the packers' marks, in one pass.
	var total [256]uint64
	var block [256]uint64
	var inBlock, highBytes int64
	flush := func() {
		if inBlock == 0 {
			return
		}
		if pipeline.Entropy(&block) > packedEntropy {
			highBytes += inBlock
		}
		block, inBlock = [256]uint64{}, 0
	}
	longest := 0
	for _, m := range packMarks {
		longest = max(longest, len(m.mark))
	}
	marks := map[string]bool{}
	buf := make([]byte, 64<<10)
	var tail, seam []byte
	for _, s := range merged {
		for off := s.off; off < s.off+s.n && info.Read < maxPackedRead; {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			want := min(int64(len(buf)), s.off+s.n-off, maxPackedRead-info.Read)
			n, err := r.ReadAt(buf[:want], off)
			if n == 0 && err != nil {
				return nil, fmt.Errorf("reading loaded bytes at 0x%x: %w", off, err)
			}
			b := buf[:n]
			for _, c := range b {
				total[c]++
				block[c]++
				inBlock++
				if inBlock == entropyBlock {
					flush()
				}
			}
			// A mark may straddle two reads: the last bytes of the
			// previous one are searched with the first of this one.
			seam = append(append(seam[:0], tail...), b[:min(len(b), longest-1)]...)
			for _, m := range packMarks {
				if !marks[m.name] && (bytes.Contains(b, []byte(m.mark)) || bytes.Contains(seam, []byte(m.mark))) {
					marks[m.name] = true
				}
			}
			tail = append(tail[:0], b[max(0, len(b)-longest+1):]...)
			off += int64(n)
			info.Read += int64(n)
		}
	}
	flush()
	info.Capped = info.Read < loaded
	info.Entropy = pipeline.Entropy(&total)
	if info.Read > 0 {
		info.HighShare = float64(highBytes) / float64(info.Read)
	}
	if info.Read >= 2*entropyBlock && info.HighShare >= 0.6 {
		info.Signals = append(info.Signals, fmt.Sprintf("%.0f%% of the loaded bytes above %.1f bits per byte (%.2f overall)", 100*info.HighShare, packedEntropy, info.Entropy))
	}
	for _, m := range packMarks {
		if marks[m.name] {
			info.Marks = append(info.Marks, m.name)
		}
	}
	if len(info.Marks) > 0 {
		info.Signals = append(info.Signals, "packer mark: "+strings.Join(info.Marks, ", "))
	}
	return info, nil
}

// Analyze implements pipeline.Analyzer. Binaries are read concurrently;
// findings keep the order of the changes.
func (Packed) Analyze(ctx context.Context, in *pipeline.AnalysisInput) ([]pipeline.Finding, error) {
	var bins []*pipeline.Change
	for _, ch := range in.Changes {
		s := in.Scans[ch.Key]
		if s == nil || s.New == nil || s.New.Magic != "elf" || ch.New == nil {
			continue
		}
		if ch.Kind == pipeline.ChangeAdded || ch.Kind == pipeline.ChangeModified {
			bins = append(bins, ch)
		}
	}
	return eachChange(ctx, in, bins, func(ctx context.Context, ch *pipeline.Change) ([]pipeline.Finding, error) {
		return one(packedChange(ctx, in, ch, in.Scans[ch.Key]))
	})
}

// packedChange is the packed-binary-added finding of one added or
// modified ELF file, or nil.
func packedChange(ctx context.Context, in *pipeline.AnalysisInput, ch *pipeline.Change, s *pipeline.Scan) (*pipeline.Finding, error) {
	cur, curELF, err := packOf(ctx, in, ch.New)
	if err != nil || cur == nil || !cur.packed() {
		return nil, err
	}
	var old *packInfo
	if ch.Kind == pipeline.ChangeModified && ch.Old != nil && s.Old != nil && s.Old.Magic == "elf" {
		if old, _, err = packOf(ctx, in, ch.Old); err != nil {
			return nil, err
		}
		if old != nil && old.packed() {
			return nil, nil // packed before: not newly packed
		}
	}
	f := packedFinding(ch, curELF, cur, old)
	return &f, nil
}

// packOf reads one version's signals; nil for an ELF file that is not an
// executable or shared library, or whose headers do not parse.
func packOf(ctx context.Context, in *pipeline.AnalysisInput, e *pipeline.Entry) (*packInfo, *rawELF, error) {
	ra, done, err := openAt(ctx, e, in.WorkDir)
	if err != nil {
		return nil, nil, err
	}
	defer done()
	f, err := parseRawELF(ra, ra.Size())
	if err != nil || (f.typ != elf.ET_EXEC && f.typ != elf.ET_DYN) {
		return nil, nil, nil
	}
	info, err := readPackInfo(ctx, ra, f)
	if err != nil {
		return nil, nil, fmt.Errorf("reading %s: %w", e.Where(), err)
	}
	return info, f, nil
}

func packedFinding(ch *pipeline.Change, f *rawELF, cur, old *packInfo) pipeline.Finding {
	var segs []map[string]any
	for _, p := range f.loads() {
		segs = append(segs, map[string]any{"offset": p.off, "vaddr": fmt.Sprintf("0x%x", p.vaddr), "filesz": p.filesz, "memsz": p.memsz, "flags": p.flags.String()})
		if len(segs) == 16 {
			break
		}
	}
	ev := map[string]any{
		"signals":      cur.Signals,
		"entropy":      fmt.Sprintf("%.3f", cur.Entropy),
		"high_entropy": fmt.Sprintf("%.0f%%", 100*cur.HighShare),
		"segments":     segs,
		"sections":     len(f.sections),
		"machine":      f.machine.String(),
		"bytes_read":   cur.Read,
		"inspect":      fmt.Sprintf("fwvet unpack REF DIR && readelf -hlS DIR%s; ent DIR%s", ch.Path, ch.Path),
	}
	if len(cur.Marks) > 0 {
		ev["packer_marks"] = cur.Marks
	}
	if cur.Capped {
		ev["capped"] = fmt.Sprintf("only the first %d MiB of the loaded bytes were measured", maxPackedRead>>20)
	}
	msg := "new packed ELF: " + strings.Join(cur.Signals, "; ")
	if old != nil {
		ev["old_signals"] = append([]string{}, old.Signals...)
		msg = "packed where the previous version was not: " + strings.Join(cur.Signals, "; ")
	}
	fd := finding(pipeline.IDPackedBinaryAdded, ch, msg, ev)
	fd.AllowOnly = true
	return fd
}
