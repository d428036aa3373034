package analyze

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/fixture"
)

// binFixture reads a fixture of scripts/fixtures/binaries.sh, skipping the
// test when it has not been built.
func binFixture(t *testing.T, name string) []byte {
	t.Helper()
	p := filepath.Join(fixture.Root(t), "testdata", "build", "fw", "binaries", name)
	b, err := os.ReadFile(p)
	if os.IsNotExist(err) {
		t.Skipf("fixture fw/binaries/%s is missing: run scripts/mkfixtures (scripts/fixtures/binaries.sh)", name)
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPackedBinaryAdded: a real static program built by the real compilers
// for x86-64, MIPS (little endian) and 32-bit ARM, then replaced by a
// stub carrying it deflate-compressed with its section table removed
// (scripts/fixtures/binaries.sh). Only that, or a new packed file, is
// packed-binary-added; a rebuild, a packed file packed before, and a
// program with one compressed resource (one signal) are not.
func TestPackedBinaryAdded(t *testing.T) {
	for _, arch := range []string{"x86_64", "i686", "mipsel", "mips", "armhf"} {
		for _, tt := range []struct {
			old, cur string // old "" for an added file
			want     bool
		}{
			{"plain", "packed", true},
			{"", "packed", true},
			{"plain", "plain-rebuilt", false},
			{"packed", "packed2", false},
			{"plain", "blob", false},
			{"", "plain", false},
			{"", "blob", false},
		} {
			t.Run(arch+"/"+tt.old+"→"+tt.cur, func(t *testing.T) {
				cur := fileEntry("/usr/sbin/netcfg", string(binFixture(t, arch+"-"+tt.cur)), 0o755)
				ch := added(cur)
				if tt.old != "" {
					ch = changed(fileEntry("/usr/sbin/netcfg", string(binFixture(t, arch+"-"+tt.old)), 0o755), cur, "content")
				}
				fs := analyzeWith(t, Packed{}, scanned(t, ch))
				if !tt.want {
					none(t, fs)
					return
				}
				f := only(t, fs, pipeline.IDPackedBinaryAdded, pipeline.SeverityHigh, ch)
				if !f.AllowOnly {
					t.Error("not AllowOnly: a declared path would hide it")
				}
				sig, _ := f.Evidence["signals"].([]string)
				if len(sig) < 2 {
					t.Errorf("signals %q, want at least two", sig)
				}
				contains(t, "signals", strings.Join(sig, "; "), "no section header table", "bits per byte")
				if m, _ := f.Evidence["machine"].(string); m == "" {
					t.Error("no machine in the evidence")
				}
				if f.Evidence["entropy"] == nil || f.Evidence["segments"] == nil {
					t.Errorf("evidence lacks entropy or segments: %v", f.Evidence)
				}
				if tt.old != "" {
					contains(t, "message", f.Message, "previous version was not")
				}
			})
		}
	}
}

// synthELF builds a 64-bit little-endian executable: one PT_LOAD over the
// whole file with memsz, no section table, the payload after the headers.
func synthELF(payload []byte, memsz uint64) []byte {
	const ehsize, phsize = 64, 56
	b := make([]byte, ehsize+phsize, ehsize+phsize+len(payload))
	copy(b, elf.ELFMAG)
	b[elf.EI_CLASS], b[elf.EI_DATA], b[elf.EI_VERSION] = byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), 1
	le := binary.LittleEndian
	le.PutUint16(b[16:], uint16(elf.ET_EXEC))
	le.PutUint16(b[18:], uint16(elf.EM_X86_64))
	le.PutUint32(b[20:], 1)
	le.PutUint64(b[24:], 0x400000+ehsize+phsize)
	le.PutUint64(b[32:], ehsize)
	le.PutUint16(b[52:], ehsize)
	le.PutUint16(b[54:], phsize)
	le.PutUint16(b[56:], 1)
	p := b[ehsize:]
	le.PutUint32(p, uint32(elf.PT_LOAD))
	le.PutUint32(p[4:], uint32(elf.PF_R|elf.PF_X))
	le.PutUint64(p[16:], 0x400000)
	le.PutUint64(p[24:], 0x400000)
	size := uint64(ehsize + phsize + len(payload))
	le.PutUint64(p[32:], size)
	le.PutUint64(p[40:], max(memsz, size))
	return append(b, payload...)
}

// TestPackSignals: the rule of two signals on synthetic files.
func TestPackSignals(t *testing.T) {
	random := randomBytes(t, 256<<10)
	text := bytes.Repeat([]byte("plain code and data, nothing packed here. "), 6000)
	upx := append(append([]byte("UPX!"), text...), "$Info: This file is packed with the UPX executable packer $\n"...)
	for _, tt := range []struct {
		name    string
		file    []byte
		signals int
	}{
		{"random, no sections", synthELF(random, 0), 2},
		{"random, no sections, unpacks into memory", synthELF(random, 4<<20), 3},
		{"text, no sections", synthELF(text, 0), 1},
		{"UPX marks, no sections", synthELF(upx, 0), 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := bytes.NewReader(tt.file)
			f, err := parseRawELF(r, r.Size())
			if err != nil {
				t.Fatal(err)
			}
			info, err := readPackInfo(context.Background(), r, f)
			if err != nil {
				t.Fatal(err)
			}
			if len(info.Signals) != tt.signals {
				t.Errorf("signals %q, want %d", info.Signals, tt.signals)
			}
			if info.packed() != (tt.signals >= 2) {
				t.Errorf("packed = %v with %d signals", info.packed(), len(info.Signals))
			}
		})
	}
	// A mark split across two reads is still found.
	pad := bytes.Repeat([]byte{'a'}, 64<<10-64-56-2)
	file := synthELF(append(append(pad, "UPX!"...), text[:1000]...), 0)
	r := bytes.NewReader(file)
	f, _ := parseRawELF(r, r.Size())
	info, err := readPackInfo(context.Background(), r, f)
	if err != nil || len(info.Marks) != 1 {
		t.Errorf("marks %q (%v), want the UPX! magic across the seam", info.Marks, err)
	}
}

// TestParseRawELFHostile: headers that claim more than the file has are
// refused or dropped, never read past the file.
func TestParseRawELFHostile(t *testing.T) {
	good := synthELF(bytes.Repeat([]byte{1}, 100), 0)
	le := binary.LittleEndian
	for _, tt := range []struct {
		name  string
		patch func(b []byte) []byte
		ok    bool
	}{
		{"good", func(b []byte) []byte { return b }, true},
		{"short", func(b []byte) []byte { return b[:40] }, false},
		{"bad magic", func(b []byte) []byte { b[1] = 'X'; return b }, false},
		{"phnum huge", func(b []byte) []byte { le.PutUint16(b[56:], 0xffff); return b }, false},
		{"phoff beyond", func(b []byte) []byte { le.PutUint64(b[32:], 1<<62); return b }, false},
		{"phentsize tiny", func(b []byte) []byte { le.PutUint16(b[54:], 4); return b }, false},
		{"section table beyond", func(b []byte) []byte {
			le.PutUint64(b[40:], 1<<40)
			le.PutUint16(b[58:], 64)
			le.PutUint16(b[60:], 4000)
			return b
		}, true},
		{"segment beyond", func(b []byte) []byte { le.PutUint64(b[64+8:], 1<<50); le.PutUint64(b[64+32:], 1<<60); return b }, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.patch(bytes.Clone(good))
			r := bytes.NewReader(b)
			f, err := parseRawELF(r, r.Size())
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok %v", err, tt.ok)
			}
			if f != nil {
				if len(f.sections) != 0 {
					t.Errorf("%d sections read from a table outside the file", len(f.sections))
				}
				if _, err := readPackInfo(context.Background(), r, f); err != nil {
					t.Errorf("readPackInfo: %v", err)
				}
			}
		})
	}
}

// TestPackedRealSections: the real fixtures' headers read as debug/elf
// reads them.
func TestPackedRealSections(t *testing.T) {
	b := binFixture(t, "x86_64-plain")
	r := bytes.NewReader(b)
	f, err := parseRawELF(r, r.Size())
	if err != nil {
		t.Fatal(err)
	}
	std, err := elf.NewFile(r)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.sections) != len(std.Sections) || len(f.progs) != len(std.Progs) {
		t.Fatalf("%d sections, %d programs; debug/elf reads %d, %d", len(f.sections), len(f.progs), len(std.Sections), len(std.Progs))
	}
	for i, s := range std.Sections {
		if f.sections[i].name != s.Name || f.sections[i].off != s.Offset || f.sections[i].size != s.Size {
			t.Errorf("section %d = %+v, debug/elf %s at 0x%x size %d", i, f.sections[i], s.Name, s.Offset, s.Size)
		}
	}
}

// FuzzPackedELF: the header parser and the signal reader on any bytes
// never panic, and read only inside the file.
func FuzzPackedELF(f *testing.F) {
	f.Add(synthELF([]byte("UPX! payload"), 1<<20))
	f.Add(synthELF(bytes.Repeat([]byte{0xa5, 0x5a, 0x33}, 3000), 0))
	b32 := synthELF(nil, 0)
	b32[elf.EI_CLASS] = byte(elf.ELFCLASS32)
	f.Add(b32)
	f.Add([]byte("\x7fELF"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		ef, err := parseRawELF(r, r.Size())
		if err != nil {
			return
		}
		for _, s := range ef.sections {
			if s.inFile(ef.size) && s.off+s.size > uint64(len(b)) {
				t.Fatalf("section %+v said in a file of %d bytes", s, len(b))
			}
		}
		if _, err := readPackInfo(context.Background(), r, ef); err != nil {
			t.Fatal(err)
		}
		if _, err := readConstImage(context.Background(), r, ef); err != nil {
			t.Fatal(err)
		}
	})
}
