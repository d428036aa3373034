package ihex_test

import (
	"bytes"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/fixture"
	"github.com/fwvet/fwvet/pipeline/unpack/ihex"
)

func decode(t *testing.T, text []byte) ([]byte, error) {
	t.Helper()
	rc, err := ihex.Format{}.NewReader(bytes.NewReader(text))
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	// Small reads cross every fill and record boundary.
	var out bytes.Buffer
	buf := make([]byte, 777)
	for {
		n, err := rc.Read(buf)
		out.Write(buf[:n])
		if err == io.EOF {
			return out.Bytes(), nil
		}
		if err != nil {
			return out.Bytes(), err
		}
	}
}

func read(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(fixture.Path(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// srecCat converts a hex file to binary with srecord, filling the gaps
// with 0xFF and moving the lowest address to offset 0, as the reader does.
func srecCat(t *testing.T, path string) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "back.bin")
	cmd := exec.Command("srec_cat", "(", path, "-intel", "-fill", "0xFF", "-over", "(", path, "-intel", ")", ")",
		"-offset", "-", "-minimum-address", path, "-intel", "-o", out, "-binary")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestFiles: every file srec_cat and objcopy wrote decodes to the bytes it
// was made from and to what srec_cat decodes it to.
func TestFiles(t *testing.T) {
	busybox := read(t, "stage/formats/bin/busybox")
	tiny := read(t, "fw/ihex-tiny.sqfs")
	passwd := read(t, "stage/formats/etc/passwd")
	gaps := append(append(append([]byte(nil), passwd...), bytes.Repeat([]byte{0xFF}, 0x10000-len(passwd))...), tiny...)
	for _, tc := range []struct {
		hex  string
		want []byte
	}{
		{"fw/ihex-tiny.hex", tiny},
		{"fw/ihex-busybox.hex", busybox},
		{"fw/ihex-busybox-crlf.hex", busybox},
		{"fw/ihex-busybox-seg.hex", busybox},
		{"fw/ihex-gaps.hex", gaps},
	} {
		t.Run(tc.hex, func(t *testing.T) {
			text := read(t, tc.hex)
			if !(ihex.Format{}).Match(text[:min(len(text), pipeline.MatchSize)]) {
				t.Error("Match rejects the file")
			}
			got, err := decode(t, text)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.want) {
				t.Errorf("decoded %d bytes, not the %d it was made from", len(got), len(tc.want))
			}
			if ref := srecCat(t, fixture.Path(t, tc.hex)); !bytes.Equal(got, ref) {
				t.Errorf("decoded %d bytes, not the %d srec_cat gives", len(got), len(ref))
			}
		})
	}
}

// TestDamaged: each damage ends the stream in an error naming the line.
func TestDamaged(t *testing.T) {
	for _, tc := range []struct{ hex, want string }{
		{"fw/ihex-badsum.hex", "ihex: line 100: checksum 0x00, want"},
		{"fw/ihex-shortline.hex", "ihex: line 50: length byte says 32 data bytes, the record holds 29"},
		{"fw/ihex-noeof.hex", "no EOF record (type 01)"},
		{"fw/ihex-trunc.hex", "ihex: line"},
	} {
		t.Run(tc.hex, func(t *testing.T) {
			_, err := decode(t, read(t, tc.hex))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// blocks splits a hex file into runs that each start with a type 04 record,
// without the EOF record.
func blocks(text []byte) [][]string {
	var out [][]string
	for _, l := range strings.Split(strings.TrimSpace(string(text)), "\n") {
		switch {
		case strings.HasPrefix(l, ":00000001"):
		case strings.HasPrefix(l, ":02000004") || len(out) == 0:
			out = append(out, []string{l})
		default:
			out[len(out)-1] = append(out[len(out)-1], l)
		}
	}
	return out
}

func join(bl [][]string) []byte {
	var b strings.Builder
	for _, ls := range bl {
		for _, l := range ls {
			b.WriteString(l + "\n")
		}
	}
	b.WriteString(":00000001FF\n")
	return []byte(b.String())
}

// TestOrder: records out of address order decode to the same image while
// they fit the sort buffer; beyond it, ascending files stream and others
// fail clearly.
func TestOrder(t *testing.T) {
	busybox := read(t, "stage/formats/bin/busybox")
	bl := blocks(read(t, "fw/ihex-busybox.hex"))
	rev := make([][]string, len(bl))
	for i := range bl {
		rev[len(bl)-1-i] = bl[i]
	}
	tiny := blocks(read(t, "fw/ihex-tiny.hex"))
	shuffled := append([]string{tiny[0][0]}, tiny[0][1:]...)
	rand.New(rand.NewSource(1)).Shuffle(len(shuffled)-1, func(i, j int) { shuffled[i+1], shuffled[j+1] = shuffled[j+1], shuffled[i+1] })
	// Overlaps that agree are kept once.
	doubled := append(append([]string(nil), shuffled...), shuffled[1:20]...)

	for _, tc := range []struct {
		name   string
		text   []byte
		buffer int
		want   []byte
		err    string
	}{
		{"reversed 64 KiB blocks", join(rev), 0, busybox, ""},
		{"shuffled records", join([][]string{shuffled}), 0, read(t, "fw/ihex-tiny.sqfs"), ""},
		{"repeated records", join([][]string{doubled}), 0, read(t, "fw/ihex-tiny.sqfs"), ""},
		{"ascending past the buffer", join(bl), 100 << 10, busybox, ""},
		{"reversed past the buffer", join(rev), 100 << 10, nil, "out of address order"},
		{"descending after the buffer", join(append(append([][]string(nil), bl[3:]...), bl[:3]...)), 300 << 10, nil, "already written"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.buffer > 0 {
				defer ihex.SetMaxBuffered(tc.buffer)()
			}
			got, err := decode(t, tc.text)
			switch {
			case tc.err == "" && err != nil:
				t.Fatal(err)
			case tc.err == "" && !bytes.Equal(got, tc.want):
				t.Fatalf("decoded %d bytes, want %d", len(got), len(tc.want))
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("error %v, want one containing %q", err, tc.err)
			}
		})
	}
}

// rec formats one record with its checksum.
func rec(typ byte, addr uint16, data ...byte) string {
	b := append([]byte{byte(len(data)), byte(addr >> 8), byte(addr), typ}, data...)
	var sum byte
	for _, c := range b {
		sum += c
	}
	return fmt.Sprintf(":%X%02X", b, -sum)
}

// TestSynthetic covers what the tools do not write: segment addressing
// with gaps, blank lines and a BOM, conflicting data, huge gaps.
func TestSynthetic(t *testing.T) {
	eof := rec(1, 0)
	for _, tc := range []struct {
		name string
		text string
		want []byte
		err  string
	}{
		{"bom, blanks, lone CR", "\xEF\xBB\xBF" + rec(0, 0x10, 1, 2) + "\r\r\n  " + rec(0, 0x13, 3) + " \r" + eof + "\rjunk after EOF",
			[]byte{1, 2, 0xFF, 3}, ""},
		{"segments", rec(2, 0, 0x10, 0x00) + "\n" + rec(0, 0xFFFE, 7, 8) + "\n" + rec(2, 0, 0x20, 0x00) + "\n" + rec(0, 0, 9) + "\n" + eof,
			append(append([]byte{7, 8}, bytes.Repeat([]byte{0xFF}, 0x20000-0x1FFFE-2)...), 9), ""},
		{"start records ignored", rec(3, 0, 1, 2, 3, 4) + "\n" + rec(5, 0, 1, 2, 3, 4) + "\n" + rec(0, 0, 5) + "\n" + eof, []byte{5}, ""},
		{"empty", eof, nil, ""},
		{"conflict", rec(0, 4, 1, 2) + "\n" + rec(0, 3, 0, 9) + "\n" + eof, nil, "line 1: data at 0x4 differs from line 2's for the same addresses"},
		{"huge gap", rec(0, 0, 1) + "\n" + rec(4, 0, 0x20, 0) + "\n" + rec(0, 0, 2) + "\n" + eof, nil, "exceeds the 268435456-byte bound"},
		{"segment wrap", rec(0, 0, 1) + "\n" + rec(2, 0, 0x10, 0) + "\n" + rec(0, 0xFFFF, 1, 2) + "\n" + eof, nil, "line 3: data at offset 0xffff runs 1 bytes past its 64 KiB segment"},
		{"bad digit", rec(0, 0, 1) + "\n:0100000G00\n" + eof, nil, "line 2: \"0G\" is not a hex byte"},
		{"unknown type", rec(6, 0, 1) + "\n" + eof, nil, "line 1: unknown record type 0x06"},
		{"not a record", rec(0, 0, 1) + "\nhello\n" + eof, nil, "line 2: not a record"},
		{"long line", rec(0, 0, 1) + "\n:" + strings.Repeat("0", 5000) + "\n" + eof, nil, "line 2: longer than 4096 bytes"},
		{"bad EOF", rec(0, 0, 1) + "\n" + rec(1, 0, 1) + "\n", nil, "type 0x01 record with 1 data bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decode(t, []byte(tc.text))
			switch {
			case tc.err == "" && err != nil:
				t.Fatal(err)
			case tc.err == "" && !bytes.Equal(got, tc.want):
				t.Fatalf("got % x, want % x", got, tc.want)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("error %v, want one containing %q", err, tc.err)
			}
		})
	}
}

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		head string
		want bool
	}{
		{rec(0, 0, 1, 2, 3) + "\n", true},
		{"\xEF\xBB\xBF\r\n  " + rec(4, 0, 0, 0) + "\r\n", true},
		{rec(1, 0), true},
		{rec(0, 0, 1, 2, 3)[:9], false},
		{":0100000001\n", false}, // bad checksum
		{":00000001FF" + "x\n", false},
		{"", false},
		{":", false},
		{"hello", false},
	} {
		if got := (ihex.Format{}).Match([]byte(tc.head)); got != tc.want {
			t.Errorf("Match(%q) = %v", tc.head, got)
		}
	}
}
