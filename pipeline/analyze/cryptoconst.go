package analyze

import (
	"bytes"
	"context"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"math/big"
	"slices"
	"strings"
	"sync"

	"github.com/fwvet/fwvet/pipeline"
)

// CryptoConstants reports a modified binary whose code is unchanged while a
// cryptographic constant in its read-only data changed
// (crypto-constant-changed): a curve point or parameter, an S-box, a prime
// or an embedded public key replaced in place, the shape of the ScreenOS
// Dual_EC change (CVE-2015-7756) in which the code stayed as it was.
//
// The code is the executable sections' bytes (.text, .init, .plt…) or,
// without section headers, the executable PT_LOAD segments', with the
// build id and debug link notes masked; the data is the non-executable
// read-only sections (.rodata, .data.rel.ro…) or, without section headers,
// the PT_LOAD segments (executable ones too: MIPS and ARM link .rodata
// into the executable segment). A changed data run is a constant
// when it overlaps a known constant (recognized by value, in either byte
// order: knownConstants), a DER SubjectPublicKeyInfo, or is 32 to 1024
// bytes of high entropy; a changed PEM public key counts too.
//
// When the code changed, the update is a normal one and data changes are
// expected, with one exception: a known constant of the baseline whose
// neighbouring bytes are still there in the candidate, with a different
// value of the same size between them (a curve point swapped for another
// while the code around it was rebuilt). Without section headers on a
// target whose one executable segment also holds the read-only data (MIPS,
// ARM), any data change is a code change and only that exception can fire.
type CryptoConstants struct{}

var _ pipeline.Analyzer = CryptoConstants{}

// Name implements pipeline.Analyzer.
func (CryptoConstants) Name() string { return "crypto-constants" }

// Bounds on reading one binary.
const (
	// maxConstData caps the read-only data read into memory per version.
	maxConstData = 16 << 20
	// maxCodeHash caps the code bytes hashed per version.
	maxCodeHash = 64 << 20
	// Changed runs closer than constGap are one run.
	constGap = 8
	// maxConstRuns caps the changed runs looked at per region.
	maxConstRuns = 4096
	// Shape of an unknown constant: a changed run of this many bytes…
	minConstRun, maxConstRun = 32, 1024
	// …above this entropy, bits per byte (less for runs too short to
	// reach it: highEntropyRun).
	constEntropy = 6.0
	// maxConstFindings caps the constants listed per binary.
	maxConstFindings = 32
)

// knownConst is a constant recognized by value.
type knownConst struct {
	name string
	b    []byte
}

// knownConstants are the constants fwvet recognizes, each in both byte
// orders: big-endian and little-endian integers, or tables of 32-bit
// words in either order.
var knownConstants = sync.OnceValue(func() []knownConst {
	var out []knownConst
	num := func(name string, n *big.Int, size int) {
		be := n.FillBytes(make([]byte, size))
		out = append(out, knownConst{name, be}, knownConst{name + " (little-endian)", reversedBytes(be)})
	}
	hexNum := func(name, h string, size int) {
		n, ok := new(big.Int).SetString(h, 16)
		if !ok {
			panic("knownConstants: bad hex for " + name)
		}
		num(name, n, size)
	}
	curve := func(name string, p *elliptic.CurveParams) {
		size := (p.BitSize + 7) / 8
		num(name+" p", p.P, size)
		num(name+" a", new(big.Int).Sub(p.P, big.NewInt(3)), size)
		num(name+" b", p.B, size)
		num(name+" Gx", p.Gx, size)
		num(name+" Gy", p.Gy, size)
		num(name+" n", p.N, size)
	}
	curve("P-256", elliptic.P256().Params())
	curve("P-384", elliptic.P384().Params())
	hexNum("secp256k1 p", "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFC2F", 32)
	hexNum("secp256k1 n", "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141", 32)
	hexNum("secp256k1 Gx", "79BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798", 32)
	hexNum("secp256k1 Gy", "483ADA7726A3C4655DA4FBFC0E1108A8FD17B448A68554199C47D08FFB10D4B8", 32)
	p25519 := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))
	num("Curve25519 p", p25519, 32)
	hexNum("Curve25519 order", "1000000000000000000000000000000014DEF9DEA2F79CD65812631A5CF5D3ED", 32)
	hexNum("Ed25519 d", "52036CEE2B6FFE738CC740797779E89800700A4D4141D8AB75EB4DCA135978A3", 32)
	hexNum("Ed25519 base y", "6666666666666666666666666666666666666666666666666666666666666658", 32)
	hexNum("RFC 2409 MODP 1024 prime", modp1024, 128)
	hexNum("RFC 3526 MODP 2048 prime", modp2048, 256)
	sbox, inv := aesSBoxes()
	out = append(out, knownConst{"AES S-box", sbox[:]}, knownConst{"AES inverse S-box", inv[:]})
	k, iv := sha256Constants()
	words := func(name string, ws []uint32) {
		be, le := make([]byte, 4*len(ws)), make([]byte, 4*len(ws))
		for i, w := range ws {
			binary.BigEndian.PutUint32(be[4*i:], w)
			binary.LittleEndian.PutUint32(le[4*i:], w)
		}
		out = append(out, knownConst{name, be}, knownConst{name + " (little-endian)", le})
	}
	words("SHA-256 K", k[:])
	words("SHA-256 IV", iv[:])
	return out
})

// The Oakley / MODP primes of RFC 2409 (group 2) and RFC 3526 (group 14).
const (
	modp1024 = "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7EDEE386BFB5A899FA5AE9F24117C4B1FE649286651ECE65381FFFFFFFFFFFFFFFF"
	modp2048 = "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7EDEE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3BE39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6955817183995497CEA956AE515D2261898FA051015728E5A8AACAA68FFFFFFFFFFFFFFFF"
)

func reversedBytes(b []byte) []byte {
	r := slices.Clone(b)
	slices.Reverse(r)
	return r
}

// aesSBoxes computes the AES S-box and its inverse (FIPS 197, 5.1.1).
func aesSBoxes() (sbox, inv [256]byte) {
	mul := func(a, b byte) byte {
		var p byte
		for b != 0 {
			if b&1 != 0 {
				p ^= a
			}
			hi := a & 0x80
			a <<= 1
			if hi != 0 {
				a ^= 0x1b
			}
			b >>= 1
		}
		return p
	}
	for i := 0; i < 256; i++ {
		var x byte // the multiplicative inverse, 0 for 0
		if i != 0 {
			for c := 1; c < 256; c++ {
				if mul(byte(i), byte(c)) == 1 {
					x = byte(c)
					break
				}
			}
		}
		s := x ^ (x<<1 | x>>7) ^ (x<<2 | x>>6) ^ (x<<3 | x>>5) ^ (x<<4 | x>>4) ^ 0x63
		sbox[i] = s
		inv[s] = byte(i)
	}
	return sbox, inv
}

// sha256Constants computes SHA-256's round constants and initial hash
// value from the primes (FIPS 180-4, 4.2.2 and 5.3.3).
func sha256Constants() (k [64]uint32, iv [8]uint32) {
	var primes []int
	for n := 2; len(primes) < 64; n++ {
		prime := true
		for _, p := range primes {
			if n%p == 0 {
				prime = false
				break
			}
		}
		if prime {
			primes = append(primes, n)
		}
	}
	frac := func(x float64) uint32 { return uint32((x - math.Floor(x)) * (1 << 32)) }
	for i, p := range primes {
		k[i] = frac(math.Cbrt(float64(p)))
		if i < 8 {
			iv[i] = frac(math.Sqrt(float64(p)))
		}
	}
	return k, iv
}

// constRegion is one region of a binary's read-only data, read whole.
type constRegion struct {
	name string
	off  int64
	b    []byte
}

// constImage is what the analyzer reads from one version of a binary.
type constImage struct {
	elf     *rawELF
	code    string // sha256 of the masked code bytes
	data    []constRegion
	capped  bool
	bySects bool
}

// masks are the file ranges left out of the comparison: the build id and
// debug link notes, which a rebuild changes.
func (f *rawELF) masks() [][2]int64 {
	var out [][2]int64
	for _, s := range f.sections {
		if (s.name == ".note.gnu.build-id" || s.name == ".gnu_debuglink") && s.inFile(f.size) {
			out = append(out, [2]int64{int64(s.off), int64(s.off + s.size)})
		}
	}
	for _, p := range f.progs {
		if p.typ == elf.PT_NOTE {
			if off, n := p.fileRange(f.size); n > 0 && n <= 4096 {
				out = append(out, [2]int64{off, off + n})
			}
		}
	}
	return out
}

// maskRanges zeroes the bytes of b (read at file offset off) that masks cover.
func maskRanges(b []byte, off int64, masks [][2]int64) {
	for _, m := range masks {
		lo, hi := max(m[0], off), min(m[1], off+int64(len(b)))
		for i := lo; i < hi; i++ {
			b[i-off] = 0
		}
	}
}

// readConstImage reads a binary's code digest and read-only data.
func readConstImage(ctx context.Context, r io.ReaderAt, f *rawELF) (*constImage, error) {
	img := &constImage{elf: f}
	type part struct {
		name   string
		off, n int64
	}
	var code, data []part
	for _, s := range f.sections {
		if !s.inFile(f.size) || s.flags&elf.SHF_ALLOC == 0 {
			continue
		}
		img.bySects = true
		switch {
		case s.flags&elf.SHF_EXECINSTR != 0:
			code = append(code, part{s.name, int64(s.off), int64(s.size)})
		case s.typ == elf.SHT_PROGBITS && (s.flags&elf.SHF_WRITE == 0 || strings.HasPrefix(s.name, ".data.rel.ro")):
			data = append(data, part{s.name, int64(s.off), int64(s.size)})
		}
	}
	if !img.bySects {
		for i, p := range f.loads() {
			off, n := p.fileRange(f.size)
			if n == 0 {
				continue
			}
			name := fmt.Sprintf("PT_LOAD[%d] (%s)", i, p.flags)
			if p.flags&elf.PF_X != 0 {
				code = append(code, part{name, off, n})
			}
			// Without sections, the read-only data may share the
			// executable segment (MIPS and ARM link it there): every
			// segment is searched for constants.
			data = append(data, part{name, off, n})
		}
	}
	masks := f.masks()
	h := sha256.New()
	buf := make([]byte, 64<<10)
	var hashed int64
	for _, c := range code {
		fmt.Fprintf(h, "%s\x00%d\x00", c.name, c.n)
		for o := c.off; o < c.off+c.n && hashed < maxCodeHash; {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			n, err := r.ReadAt(buf[:min(int64(len(buf)), c.off+c.n-o)], o)
			if n == 0 {
				return nil, fmt.Errorf("reading code at 0x%x: %w", o, err)
			}
			maskRanges(buf[:n], o, masks)
			h.Write(buf[:n])
			o += int64(n)
			hashed += int64(n)
		}
	}
	img.code = hex.EncodeToString(h.Sum(nil))
	var read int64
	for _, d := range data {
		if read+d.n > maxConstData {
			img.capped = true
			continue
		}
		b := make([]byte, d.n)
		if _, err := r.ReadAt(b, d.off); err != nil && err != io.EOF {
			return nil, fmt.Errorf("reading %s: %w", d.name, err)
		}
		maskRanges(b, d.off, masks)
		read += d.n
		img.data = append(img.data, constRegion{d.name, d.off, b})
	}
	return img, nil
}

// constSpan is a known constant or key found in a region, at region
// offsets [off, end).
type constSpan struct {
	name     string
	off, end int
}

// findKnown lists the known constants and DER public keys in b, adjacent
// ones joined (a point's x and y coordinates are one span).
func findKnown(b []byte) []constSpan {
	var spans []constSpan
	for _, k := range knownConstants() {
		for from, hits := 0, 0; hits < 64; hits++ {
			i := bytes.Index(b[from:], k.b)
			if i < 0 {
				break
			}
			spans = append(spans, constSpan{k.name, from + i, from + i + len(k.b)})
			from += i + len(k.b)
		}
	}
	spans = append(spans, findSPKI(b)...)
	slices.SortFunc(spans, func(a, b constSpan) int { return a.off - b.off })
	var out []constSpan
	for _, s := range spans {
		if n := len(out); n > 0 && s.off <= out[n-1].end+constGap {
			last := &out[n-1]
			last.end = max(last.end, s.end)
			if !strings.Contains(last.name, s.name) {
				last.name += " + " + s.name
			}
			continue
		}
		out = append(out, s)
	}
	return out
}

// spkiOIDs are the algorithm identifiers a DER public key starts with.
var spkiOIDs = [][]byte{
	{0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01}, // rsaEncryption
	{0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01},             // id-ecPublicKey
	{0x06, 0x03, 0x2b, 0x65, 0x70},                                     // Ed25519
}

// findSPKI lists the DER SubjectPublicKeyInfo structures in b.
func findSPKI(b []byte) []constSpan {
	var out []constSpan
	for _, oid := range spkiOIDs {
		for from, hits := 0, 0; hits < 64; hits++ {
			i := bytes.Index(b[from:], oid)
			if i < 0 {
				break
			}
			at := from + i
			from = at + len(oid)
			// SEQUENCE { SEQUENCE { OID … } BIT STRING }: the inner
			// header is 2 bytes, the outer 2 to 4.
			for _, hdr := range []int{2, 3, 4} {
				start := at - 2 - hdr
				if start < 0 || b[start] != 0x30 || b[at-2] != 0x30 {
					continue
				}
				n, ok := derLen(b[start+1:], hdr-1)
				if !ok || n > 2100 || start+hdr+n > len(b) {
					continue
				}
				der := b[start : start+hdr+n]
				if pub, err := x509.ParsePKIXPublicKey(der); err == nil {
					out = append(out, constSpan{fmt.Sprintf("DER SubjectPublicKeyInfo (%T)", pub), start, start + len(der)})
					break
				}
			}
		}
	}
	return out
}

// derLen decodes a DER length of exactly size bytes (its first byte
// included).
func derLen(b []byte, size int) (int, bool) {
	if len(b) < size {
		return 0, false
	}
	if size == 1 {
		return int(b[0]), b[0] < 0x80
	}
	if int(b[0]) != 0x80|(size-1) {
		return 0, false
	}
	n := 0
	for _, c := range b[1:size] {
		n = n<<8 | int(c)
	}
	return n, true
}

// highEntropyRun is whether a changed run looks like key material: few
// repeated bytes and not text. A run of n bytes cannot exceed log2(n)
// bits per byte, so short runs are held to 85% of that.
func highEntropyRun(b []byte) bool {
	if len(b) < minConstRun {
		return false
	}
	var counts [256]uint64
	printable := 0
	for _, c := range b {
		counts[c]++
		if c >= 0x20 && c < 0x7f {
			printable++
		}
	}
	want := min(constEntropy, 0.85*math.Log2(float64(min(len(b), 256))))
	return pipeline.Entropy(&counts) >= want && printable*10 < len(b)*9
}

// changedConst is one constant that changed.
type changedConst struct {
	Region string `json:"section"`
	Start  int64  `json:"offset"`
	End    int64  `json:"end"`
	Name   string `json:"constant"`
	Before string `json:"before"`
	After  string `json:"after"`
}

func hexHead(b []byte) string { return hex.EncodeToString(b[:min(len(b), 64)]) }

// sameOffsetChanges compares regions of the same name and size byte by
// byte: the changed runs that are constants.
func sameOffsetChanges(old, cur *constImage) []changedConst {
	var out []changedConst
	for _, rn := range cur.data {
		i := slices.IndexFunc(old.data, func(r constRegion) bool { return r.name == rn.name && len(r.b) == len(rn.b) })
		if i < 0 {
			continue
		}
		ro := old.data[i]
		if bytes.Equal(ro.b, rn.b) {
			continue
		}
		oldKnown, newKnown := findKnown(ro.b), findKnown(rn.b)
		for _, run := range diffRuns(ro.b, rn.b) {
			lo, hi, name := run[0], run[1], ""
			for _, s := range append(slices.Clone(oldKnown), newKnown...) {
				if s.off < hi && lo < s.end {
					lo, hi, name = min(lo, s.off), max(hi, s.end), s.name
					break
				}
			}
			if name == "" {
				if hi-lo > maxConstRun || !(highEntropyRun(rn.b[lo:hi]) || highEntropyRun(ro.b[lo:hi])) {
					continue
				}
				name = "high-entropy constant"
			}
			if n := len(out); n > 0 && out[n-1].Region == rn.name && int64(lo)+rn.off < out[n-1].End {
				continue // a run inside the constant just listed
			}
			out = append(out, changedConst{Region: rn.name, Start: rn.off + int64(lo), End: rn.off + int64(hi), Name: name,
				Before: hexHead(ro.b[lo:hi]), After: hexHead(rn.b[lo:hi])})
		}
	}
	return out
}

// diffRuns lists the differing runs of two equal-size byte slices, runs
// closer than constGap joined.
func diffRuns(a, b []byte) [][2]int {
	var out [][2]int
	for i := 0; i < len(a) && len(out) < maxConstRuns; i++ {
		if a[i] == b[i] {
			continue
		}
		j := i + 1
		for same := 0; j < len(a) && same < constGap; j++ {
			if a[j] == b[j] {
				same++
			} else {
				same = 0
			}
		}
		// j is past the run and its trailing equal bytes.
		end := j
		for end > i+1 && a[end-1] == b[end-1] {
			end--
		}
		out = append(out, [2]int{i, end})
		i = j - 1
	}
	return out
}

// replacedKnown finds the baseline's known constants that the candidate
// replaced in place: the bytes before and after them are still there,
// the same distance apart, with another value between.
// With strict (the code changed), both anchors (or one and the region's
// edge) must place it, and the
// old value must be gone from the candidate (not merely moved).
func replacedKnown(old, cur *constImage, strict bool) []changedConst {
	const anchor = 16
	var out []changedConst
	for _, ro := range old.data {
		for _, s := range findKnown(ro.b) {
			n := s.end - s.off
			var pre, post []byte
			if s.off >= anchor {
				pre = ro.b[s.off-anchor : s.off]
			}
			if s.end+anchor <= len(ro.b) {
				post = ro.b[s.end : s.end+anchor]
			}
			// Strictly, each side is a distinctive anchor or the edge of
			// the region (a constant at the end of a segment).
			edge := func(a []byte) bool { return a == nil || distinctive(a) }
			if !distinctive(pre) && !distinctive(post) || strict && !(edge(pre) && edge(post)) {
				continue
			}
			if strict && slices.ContainsFunc(cur.data, func(r constRegion) bool { return bytes.Contains(r.b, ro.b[s.off:s.end]) }) {
				continue // still there, maybe moved
			}
			for _, rn := range cur.data {
				at := anchored(rn.b, pre, post, n)
				if at < 0 {
					continue
				}
				now := rn.b[at : at+n]
				if !bytes.Equal(now, ro.b[s.off:s.end]) {
					out = append(out, changedConst{Region: rn.name, Start: rn.off + int64(at), End: rn.off + int64(at+n), Name: s.name,
						Before: hexHead(ro.b[s.off:s.end]), After: hexHead(now)})
				}
				break
			}
		}
	}
	return out
}

// distinctive is whether an anchor can place a constant: not absent and
// not one byte repeated (padding).
func distinctive(b []byte) bool {
	return len(b) > 0 && bytes.Count(b, b[:1]) < len(b)
}

// anchored is where, in b, n bytes lie between pre and post, each found
// once (a missing or repetitive anchor is not used); -1 if nowhere.
func anchored(b, pre, post []byte, n int) int {
	once := func(a []byte) int {
		if !distinctive(a) {
			return -1
		}
		i := bytes.Index(b, a)
		if i < 0 || bytes.Contains(b[i+1:], a) {
			return -1
		}
		return i
	}
	p, q := once(pre), once(post)
	switch {
	case p >= 0 && q >= 0:
		if q == p+len(pre)+n {
			return q - n
		}
		return -1
	case p >= 0 && len(post) == 0:
		if p+len(pre)+n <= len(b) {
			return p + len(pre)
		}
	case q >= 0 && len(pre) == 0:
		if q >= n {
			return q - n
		}
	case p >= 0 && q < 0 && p+len(pre)+n+len(post) <= len(b):
		// The bytes after changed too (the constant's neighbour was
		// replaced with it): the bytes before place it.
		return p + len(pre)
	case q >= 0 && p < 0 && q >= n:
		return q - n
	}
	return -1
}

// pemKeysChanged lists the PEM public keys of the candidate that the
// baseline lacks, when the baseline had one that is gone.
func pemKeysChanged(s *pipeline.Scan) []changedConst {
	if s == nil || s.Old == nil || s.New == nil {
		return nil
	}
	keys := func(p *pipeline.Profile) map[string]pipeline.PEMBlock {
		m := map[string]pipeline.PEMBlock{}
		for _, b := range p.PEM {
			if strings.Contains(b.Type, "PUBLIC KEY") {
				m[string(b.Text)] = b
			}
		}
		return m
	}
	old, cur := keys(s.Old), keys(s.New)
	gone := ""
	for t := range old {
		if _, ok := cur[t]; !ok {
			gone = t
			break
		}
	}
	if gone == "" {
		return nil
	}
	var out []changedConst
	for t, b := range cur {
		if _, ok := old[t]; !ok {
			out = append(out, changedConst{Region: "PEM", Start: b.Offset, End: b.Offset + int64(len(b.Text)), Name: "PEM " + b.Type,
				Before: hexHead([]byte(gone)), After: hexHead(b.Text)})
		}
	}
	slices.SortFunc(out, func(a, b changedConst) int { return int(a.Start - b.Start) })
	return out
}

// Analyze implements pipeline.Analyzer. Binaries are read concurrently;
// findings keep the order of the changes.
func (CryptoConstants) Analyze(ctx context.Context, in *pipeline.AnalysisInput) ([]pipeline.Finding, error) {
	return eachChange(ctx, in, modifiedELF(in), func(ctx context.Context, ch *pipeline.Change) ([]pipeline.Finding, error) {
		return one(cryptoChange(ctx, in, ch, in.Scans[ch.Key]))
	})
}

// readConstVersion reads one version; nil when its headers do not parse.
func readConstVersion(ctx context.Context, in *pipeline.AnalysisInput, e *pipeline.Entry) (*constImage, error) {
	ra, done, err := openAt(ctx, e, in.WorkDir)
	if err != nil {
		return nil, err
	}
	defer done()
	f, err := parseRawELF(ra, ra.Size())
	if err != nil {
		return nil, nil
	}
	img, err := readConstImage(ctx, ra, f)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", e.Where(), err)
	}
	return img, nil
}

// cryptoChange is the crypto-constant-changed finding of one modified
// binary, or nil.
func cryptoChange(ctx context.Context, in *pipeline.AnalysisInput, ch *pipeline.Change, s *pipeline.Scan) (*pipeline.Finding, error) {
	old, err := readConstVersion(ctx, in, ch.Old)
	if err != nil || old == nil {
		return nil, err
	}
	cur, err := readConstVersion(ctx, in, ch.New)
	if err != nil || cur == nil {
		return nil, err
	}
	if old.elf.machine != cur.elf.machine {
		return nil, nil
	}
	codeSame := old.code == cur.code
	var found []changedConst
	if codeSame {
		found = sameOffsetChanges(old, cur)
	}
	// A known constant replaced in place, whether the code changed or
	// not (when not, it is usually listed already).
	for _, c := range replacedKnown(old, cur, !codeSame) {
		if !slices.ContainsFunc(found, func(f changedConst) bool { return f.Start < c.End && c.Start < f.End }) {
			found = append(found, c)
		}
	}
	if codeSame {
		found = append(found, pemKeysChanged(s)...)
	}
	if len(found) == 0 {
		return nil, nil
	}
	if len(found) > maxConstFindings {
		found = found[:maxConstFindings]
	}
	code := "unchanged (masked build id and debug link)"
	if !codeSame {
		code = "changed; the known constant was replaced in place by another value of the same size"
	}
	first := found[0]
	msg := fmt.Sprintf("%s changed in %s at 0x%x-0x%x while the code is unchanged", first.Name, first.Region, first.Start, first.End)
	if !codeSame {
		msg = fmt.Sprintf("%s replaced in place in %s at 0x%x-0x%x (same size, the code around it rebuilt)", first.Name, first.Region, first.Start, first.End)
	}
	if len(found) > 1 {
		msg += fmt.Sprintf(" (%d constants)", len(found))
	}
	ev := map[string]any{
		"constants": found, "code": code, "machine": cur.elf.machine.String(),
		"by":      map[bool]string{true: "sections", false: "segments (no section headers)"}[cur.bySects],
		"inspect": fmt.Sprintf("fwvet unpack REF DIR && objdump -s -j .rodata DIR%s; cmp -l OLD NEW", ch.Path),
	}
	if old.capped || cur.capped {
		ev["capped"] = fmt.Sprintf("only the first %d MiB of read-only data were compared", maxConstData>>20)
	}
	f := finding(pipeline.IDCryptoConstant, ch, msg, ev)
	f.AllowOnly = true
	return &f, nil
}
