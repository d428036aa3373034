package equivalence

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"
)

// gzipHeader explains gzip files whose decompressed bytes are equal: the
// header (MTIME, XFL, OS, the original name) and the compressed stream
// (another level or implementation) may differ. The decompressed bytes are
// compared as they stream, up to MaxGzipBytes.
type gzipHeader struct{}

// MaxGzipBytes bounds the decompressed bytes the gzip rule compares per file.
var MaxGzipBytes int64 = 1 << 30

func (gzipHeader) ID() string      { return "gzip-header" }
func (gzipHeader) Version() string { return "1" }
func (gzipHeader) Description() string {
	return "gzip streams with equal decompressed bytes: MTIME, XFL, OS, name, compression level or implementation"
}

// gzHeader is a parsed gzip member header (RFC 1952).
type gzHeader struct {
	end   int64
	mtime uint32
	xfl   byte
	os    byte
	name  string
}

// parseGzipHeader reads the header of the first member of b.
func parseGzipHeader(b []byte) (gzHeader, error) {
	if len(b) < 10 || b[0] != 0x1f || b[1] != 0x8b || b[2] != 8 {
		return gzHeader{}, errors.New("not a gzip stream")
	}
	flg := b[3]
	h := gzHeader{mtime: binary.LittleEndian.Uint32(b[4:8]), xfl: b[8], os: b[9]}
	p := 10
	if flg&0x04 != 0 { // FEXTRA
		if p+2 > len(b) {
			return gzHeader{}, errors.New("truncated gzip header")
		}
		p += 2 + int(binary.LittleEndian.Uint16(b[p:]))
	}
	zstr := func() (string, error) {
		if p > len(b) {
			return "", errors.New("truncated gzip header")
		}
		i := bytes.IndexByte(b[p:], 0)
		if i < 0 {
			return "", errors.New("truncated gzip header")
		}
		s := string(b[p : p+i])
		p += i + 1
		return s, nil
	}
	if flg&0x08 != 0 { // FNAME
		s, err := zstr()
		if err != nil {
			return gzHeader{}, err
		}
		h.name = s
	}
	if flg&0x10 != 0 { // FCOMMENT
		if _, err := zstr(); err != nil {
			return gzHeader{}, err
		}
	}
	if flg&0x02 != 0 { // FHCRC
		p += 2
	}
	if p > len(b) {
		return gzHeader{}, errors.New("truncated gzip header")
	}
	h.end = int64(p)
	return h, nil
}

func (h gzHeader) String() string {
	level := map[byte]string{2: "best compression", 4: "fastest"}[h.xfl]
	if level == "" {
		level = "default"
	}
	s := fmt.Sprintf("mtime=%d", h.mtime)
	if h.mtime != 0 {
		s += " (" + time.Unix(int64(h.mtime), 0).UTC().Format(time.RFC3339) + ")"
	}
	s += fmt.Sprintf(" xfl=%d (%s) os=%d", h.xfl, level, h.os)
	if h.name != "" {
		s += fmt.Sprintf(" name=%q", h.name)
	}
	return s
}

func (gzipHeader) Explain(ctx context.Context, s, r *Input) (Result, error) {
	if s.Data == nil || r.Data == nil {
		return Result{}, nil
	}
	ha, errA := parseGzipHeader(s.Data)
	hb, errB := parseGzipHeader(r.Data)
	if errA != nil || errB != nil {
		if errA == nil || errB == nil {
			return Result{Reason: "gzip-header: only one side is gzip"}, nil
		}
		return Result{}, nil
	}
	da, db, same, err := compareGunzip(ctx, s.Data, r.Data)
	if err != nil {
		if errors.Is(err, ErrLimit) {
			return Result{}, err
		}
		return Result{Reason: "gzip-header: " + err.Error()}, nil
	}
	if !same {
		return Result{Reason: "gzip-header: the decompressed bytes differ"}, nil
	}
	ap := Applied{ID: "gzip-header", Ranges: [][2]int64{{0, ha.end}}, Before: []string{ha.String()}, After: []string{hb.String()}}
	if ha.end != hb.end || !bytes.Equal(s.Data[ha.end:], r.Data[hb.end:]) {
		ap.Ranges = append(ap.Ranges, [2]int64{ha.end, int64(len(s.Data))})
		ap.Before = append(ap.Before, fmt.Sprintf("compressed stream, %d bytes", int64(len(s.Data))-ha.end))
		ap.After = append(ap.After, fmt.Sprintf("compressed stream, %d bytes", int64(len(r.Data))-hb.end))
	}
	if ha.end != hb.end || len(ap.Ranges) > 1 {
		ap.RebuiltRanges = [][2]int64{{0, hb.end}}
		if len(ap.Ranges) > 1 {
			ap.RebuiltRanges = append(ap.RebuiltRanges, [2]int64{hb.end, int64(len(r.Data))})
		}
	}
	return Result{Explained: true, Applied: []Applied{ap}, NormalizedShipped: da, NormalizedRebuilt: db}, nil
}

// compareGunzip decompresses both streams side by side and reports whether
// they are equal, with the digests of the decompressed bytes.
func compareGunzip(ctx context.Context, a, b []byte) (da, db string, same bool, err error) {
	za, err := gzip.NewReader(bytes.NewReader(a))
	if err != nil {
		return "", "", false, err
	}
	zb, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return "", "", false, err
	}
	ha, hb := sha256.New(), sha256.New()
	bufA, bufB := make([]byte, 32<<10), make([]byte, 32<<10)
	var total int64
	for {
		if err := ctx.Err(); err != nil {
			return "", "", false, err
		}
		na, errA := io.ReadFull(za, bufA)
		nb, errB := io.ReadFull(zb, bufB)
		if errA != nil && errA != io.EOF && errA != io.ErrUnexpectedEOF {
			return "", "", false, fmt.Errorf("shipped: %w", errA)
		}
		if errB != nil && errB != io.EOF && errB != io.ErrUnexpectedEOF {
			return "", "", false, fmt.Errorf("rebuilt: %w", errB)
		}
		if na != nb || !bytes.Equal(bufA[:na], bufB[:nb]) {
			return "", "", false, nil
		}
		ha.Write(bufA[:na])
		hb.Write(bufB[:nb])
		total += int64(na)
		if total > MaxGzipBytes {
			return "", "", false, ErrLimit
		}
		if errA != nil || errB != nil {
			if (errA == nil) != (errB == nil) {
				return "", "", false, nil
			}
			break
		}
	}
	return "sha256:" + hex.EncodeToString(ha.Sum(nil)), "sha256:" + hex.EncodeToString(hb.Sum(nil)), true, nil
}
