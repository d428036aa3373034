package analyze

import (
	"bytes"
	"encoding/binary"

	"github.com/fwvet/fwvet/pipeline"
)

// Bounds on what one file's profile keeps.
const (
	maxEndpointsPerFile = 2048
	maxNotablePerFile   = 256
	maxPEMBlocks        = 512
	maxPEMBlockSize     = 64 << 10
	// maxRun bounds one run of text; longer runs are cut into pieces.
	maxRun = 64 << 10
	// minRun is the shortest run of text worth looking into, as strings -n 4.
	minRun = 4
)

// notable are the strings of the exec, shell and network families that a
// statically linked binary or a script gains when it gains a way in.
var notable = []string{
	"/bin/sh", "/bin/bash", "/bin/ash", "sh -c", "/dev/tcp/", "/dev/udp/",
	"telnetd", "nc -l", "nc -e", "netcat", "ncat ", "socat ", "bind shell",
	"wget ", "curl ", "tftp ", "ftpget", "dropbear -p",
	"chmod 777", "chmod +s", "/etc/shadow", "iptables -F", "LD_PRELOAD",
	"system(", "popen(", "execve", "execl", "execvp",
}

// notableBytes are the notable strings as bytes, made once.
var notableBytes = func() [][]byte {
	out := make([][]byte, len(notable))
	for i, n := range notable {
		out[i] = []byte(n)
	}
	return out
}()

// profiler builds a Profile from a stream of bytes in one pass.
type profiler struct {
	p      *pipeline.Profile
	counts [256]uint64
	off    int64  // offset of the next byte
	head   []byte // the first bytes, for the magic
	run    []byte // a run of text cut by the end of a write, carried over
	runOff int64
	// notable is false for dynamically linked ELF files, whose imports
	// say more than their strings.
	notable bool
	decided bool
	seen    []bool // notable strings found so far
}

func newProfiler() *profiler {
	return &profiler{p: &pipeline.Profile{Endpoints: map[string]int64{}, Notable: map[string]int64{}}, seen: make([]bool, len(notable))}
}

// isText: printable ASCII, and the whitespace of text files, so that a
// config file or a PEM block is one run.
var isText = func() (t [256]bool) {
	for c := 0x20; c < 0x7f; c++ {
		t[c] = true
	}
	t['\t'], t['\n'], t['\r'] = true, true, true
	return
}()

func (pr *profiler) Write(b []byte) (int, error) {
	if len(pr.head) < pipeline.MatchSize {
		pr.head = append(pr.head, b[:min(len(b), pipeline.MatchSize-len(pr.head))]...)
	}
	if !pr.decided {
		// Callers write in large chunks: the program headers are here.
		pr.decide()
	}
	pr.histogram(b)
	for i := 0; i < len(b); {
		if !isText[b[i]] {
			if len(pr.run) > 0 {
				pr.runEnds(nil, 0) // the run carried over ends at b[0]
			}
			for i < len(b) && !isText[b[i]] {
				i++
			}
			continue
		}
		j := i
		for j < len(b) && isText[b[j]] {
			j++
		}
		if j == len(b) {
			// A run that reaches the end of b may go on in the next write.
			if len(pr.run) == 0 {
				pr.runOff = pr.off + int64(i)
			}
			pr.run = append(pr.run, b[i:]...)
			if len(pr.run) >= maxRun {
				pr.look(pr.run, pr.runOff)
				pr.run = pr.run[:0]
			}
			break
		}
		pr.runEnds(b[i:j], pr.off+int64(i))
		i = j
	}
	pr.off += int64(len(b))
	return len(b), nil
}

// histogram counts byte values. Four tables take turns so that runs of one
// value (zeros, padding) do not make each increment wait for the last.
func (pr *profiler) histogram(b []byte) {
	var c [4][256]uint32
	for len(b) >= 4 {
		n := min(len(b)&^3, 1<<30)
		for i := 0; i < n; i += 4 {
			c[0][b[i]]++
			c[1][b[i+1]]++
			c[2][b[i+2]]++
			c[3][b[i+3]]++
		}
		b = b[n:]
	}
	for _, x := range b {
		c[0][x]++
	}
	for v := range pr.counts {
		pr.counts[v] += uint64(c[0][v]) + uint64(c[1][v]) + uint64(c[2][v]) + uint64(c[3][v])
	}
}

// runEnds handles a run that ends here: the carried-over part, then b.
func (pr *profiler) runEnds(b []byte, off int64) {
	if len(pr.run) > 0 {
		pr.run = append(pr.run, b...)
		pr.look(pr.run, pr.runOff)
		pr.run = pr.run[:0]
		return
	}
	for len(b) > maxRun {
		pr.look(b[:maxRun], off)
		b, off = b[maxRun:], off+maxRun
	}
	pr.look(b, off)
}

// decide looks at the ELF program headers in the first bytes: a
// dynamically linked binary asks for an interpreter or has a dynamic segment.
func (pr *profiler) decide() {
	pr.decided, pr.notable = true, true
	h := pr.head
	if len(h) < 64 || string(h[:4]) != "\x7fELF" {
		return
	}
	var order binary.ByteOrder = binary.LittleEndian
	if h[5] == 2 {
		order = binary.BigEndian
	}
	var phoff, phentsize, phnum uint64
	if h[4] == 2 { // 64-bit
		phoff, phentsize, phnum = order.Uint64(h[32:]), uint64(order.Uint16(h[54:])), uint64(order.Uint16(h[56:]))
	} else {
		phoff, phentsize, phnum = uint64(order.Uint32(h[28:])), uint64(order.Uint16(h[42:])), uint64(order.Uint16(h[44:]))
	}
	for i := uint64(0); i < phnum && phentsize >= 4; i++ {
		o := phoff + i*phentsize
		if o+4 > uint64(len(h)) {
			return
		}
		if t := order.Uint32(h[o:]); t == 2 || t == 3 { // PT_DYNAMIC, PT_INTERP
			pr.notable = false
			return
		}
	}
}

// look searches one run of text for endpoints, notable strings and PEM blocks.
func (pr *profiler) look(run []byte, runOff int64) {
	if len(run) < minRun {
		return
	}
	p := pr.p
	if bytes.IndexByte(run, '.') >= 0 || bytes.IndexByte(run, ':') >= 0 {
		extractEndpoints(run, func(ep string, at int) {
			if _, ok := p.Endpoints[ep]; ok {
				return
			}
			if len(p.Endpoints) >= maxEndpointsPerFile {
				p.Truncated = true
				return
			}
			p.Endpoints[ep] = runOff + int64(at)
		})
	}
	if pr.notable {
		for i, n := range notableBytes {
			if pr.seen[i] || len(run) < len(n) {
				continue
			}
			if j := bytes.Index(run, n); j >= 0 {
				pr.seen[i] = true
				p.Notable[notable[i]] = runOff + int64(j)
			}
		}
	}
	if len(run) > len(pemBegin) && bytes.Contains(run, pemBegin) {
		pr.pem(run, runOff)
	}
}

var (
	pemBegin = []byte("-----BEGIN ")
	pemEnd   = []byte("-----END ")
	pemDash  = []byte("-----")
)

// pem collects the PEM blocks of a run.
func (pr *profiler) pem(run []byte, runOff int64) {
	for rest, base := run, 0; ; {
		i := bytes.Index(rest, pemBegin)
		if i < 0 {
			return
		}
		line := rest[i+len(pemBegin):]
		j := bytes.Index(line, pemDash)
		if j <= 0 || j > 64 {
			rest, base = rest[i+len(pemBegin):], base+i+len(pemBegin)
			continue
		}
		typ := string(line[:j])
		end := append(append(append([]byte{}, pemEnd...), typ...), pemDash...)
		k := bytes.Index(rest[i:], end)
		if k < 0 {
			return
		}
		block := rest[i : i+k+len(end)]
		if len(pr.p.PEM) >= maxPEMBlocks || len(block) > maxPEMBlockSize {
			pr.p.Truncated = true
		} else {
			pr.p.PEM = append(pr.p.PEM, pipeline.PEMBlock{Offset: runOff + int64(base+i), Type: typ, Text: append([]byte(nil), block...)})
		}
		rest, base = rest[i+k+len(end):], base+i+k+len(end)
	}
}

// finish completes the profile.
func (pr *profiler) finish() *pipeline.Profile {
	if !pr.decided {
		pr.decide()
	}
	if len(pr.run) > 0 {
		pr.look(pr.run, pr.runOff)
		pr.run = pr.run[:0]
	}
	p := pr.p
	p.Size = pr.off
	p.Entropy = pipeline.Entropy(&pr.counts)
	p.Magic = magicOf(pr.head)
	return p
}

// magics are formats whose first bytes say what they are; a file that
// starts with one is explained, whatever its entropy.
var magics = []struct {
	name   string
	off    int
	prefix string
}{
	{"elf", 0, "\x7fELF"},
	{"gzip", 0, "\x1f\x8b"},
	{"xz", 0, "\xfd7zXZ\x00"},
	{"zstd", 0, "\x28\xb5\x2f\xfd"},
	{"bzip2", 0, "BZh"},
	{"lzma", 0, "\x5d\x00\x00"},
	{"lz4", 0, "\x04\x22\x4d\x18"},
	{"zip", 0, "PK\x03\x04"},
	{"7z", 0, "7z\xbc\xaf\x27\x1c"},
	{"squashfs", 0, "hsqs"},
	{"cpio", 0, "070701"},
	{"cpio", 0, "070707"},
	{"tar", 257, "ustar"},
	{"png", 0, "\x89PNG\r\n\x1a\n"},
	{"jpeg", 0, "\xff\xd8\xff"},
	{"gif", 0, "GIF8"},
	{"webp", 8, "WEBP"},
	{"ico", 0, "\x00\x00\x01\x00"},
	{"pdf", 0, "%PDF-"},
	{"woff", 0, "wOFF"},
	{"woff2", 0, "wOF2"},
	{"ttf", 0, "\x00\x01\x00\x00"},
	{"otf", 0, "OTTO"},
	{"uimage", 0, "\x27\x05\x19\x56"},
	{"dtb", 0, "\xd0\x0d\xfe\xed"},
	{"ubi", 0, "UBI#"},
	{"jffs2", 0, "\x85\x19"},
	{"jffs2", 0, "\x19\x85"},
	{"java-class", 0, "\xca\xfe\xba\xbe"},
	{"sqlite", 0, "SQLite format 3\x00"},
	{"der", 0, "\x30\x82"},
	{"gpg-keyring", 0, "\x99\x01"},
	{"gpg-keybox", 8, "KBXf"},
	{"terminfo", 0, "\x1a\x01"},
	{"terminfo", 0, "\x1e\x02"},
	{"gettext-mo", 0, "\xde\x12\x04\x95"},
	{"gettext-mo", 0, "\x95\x04\x12\xde"},
	{"zoneinfo", 0, "TZif"},
	{"firmware-ihex", 0, ":10"},
}

func magicOf(head []byte) string {
	for _, m := range magics {
		if len(head) >= m.off+len(m.prefix) && string(head[m.off:m.off+len(m.prefix)]) == m.prefix {
			return m.name
		}
	}
	return ""
}
