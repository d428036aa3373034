package equivalence

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
)

// moduleSignature explains kernel modules that differ only in the
// signature appended to them (scripts/sign-file: the signature, struct
// module_signature, "~Module signature appended~\n"); what is signed must
// be equal, or differ only as elf-build-id allows.
type moduleSignature struct{}

func (moduleSignature) ID() string      { return "module-signature" }
func (moduleSignature) Version() string { return "1" }
func (moduleSignature) Description() string {
	return "kernel modules that differ only in their appended signature (~Module signature appended~)"
}

const moduleSigMagic = "~Module signature appended~\n"

// moduleSig is a parsed appended signature.
type moduleSig struct {
	// body is the length of the signed module in front of it.
	body  int64
	idTyp byte
	size  int64 // signer, key id and signature bytes
	sum   string
}

// parseModuleSig finds the appended signature at the end of b.
func parseModuleSig(b []byte) (moduleSig, bool) {
	const info = 12
	n := int64(len(b))
	if n < int64(len(moduleSigMagic))+info || !bytes.HasSuffix(b, []byte(moduleSigMagic)) {
		return moduleSig{}, false
	}
	h := b[n-int64(len(moduleSigMagic))-info : n-int64(len(moduleSigMagic))]
	signer, keyID := int64(h[3]), int64(h[4])
	sigLen := int64(binary.BigEndian.Uint32(h[8:12]))
	total := signer + keyID + sigLen
	body := n - int64(len(moduleSigMagic)) - info - total
	if body < 0 || total < 0 {
		return moduleSig{}, false
	}
	sum := sha256.Sum256(b[body:])
	return moduleSig{body: body, idTyp: h[2], size: total, sum: hex.EncodeToString(sum[:8])}, true
}

func (s moduleSig) String() string {
	kind := map[byte]string{0: "PGP", 1: "X.509", 2: "PKCS#7"}[s.idTyp]
	if kind == "" {
		kind = fmt.Sprintf("id_type %d", s.idTyp)
	}
	return fmt.Sprintf("%s signature, %d bytes, sha256 %s…", kind, s.size, s.sum)
}

func (moduleSignature) Explain(_ context.Context, s, r *Input) (Result, error) {
	if s.Data == nil || r.Data == nil {
		return Result{}, nil
	}
	sa, oka := parseModuleSig(s.Data)
	sb, okb := parseModuleSig(r.Data)
	if !oka && !okb {
		return Result{}, nil
	}
	if oka != okb {
		return Result{Reason: "module-signature: only one side is signed"}, nil
	}
	a, b := s.Data[:sa.body], r.Data[:sb.body]
	ap := Applied{ID: "module-signature", Ranges: [][2]int64{{sa.body, int64(len(s.Data))}},
		Before: []string{sa.String()}, After: []string{sb.String()}}
	if sa.body != sb.body {
		ap.RebuiltRanges = [][2]int64{{sb.body, int64(len(r.Data))}}
	}
	if bytes.Equal(a, b) {
		return Result{Explained: true, Applied: []Applied{ap}, NormalizedShipped: digest(a), NormalizedRebuilt: digest(b)}, nil
	}
	if isELF(a) && isELF(b) {
		if res := explainELF(a, b); res.Explained {
			res.Applied = append([]Applied{ap}, res.Applied...)
			return res, nil
		}
	}
	return Result{Reason: "module-signature: the signed modules differ"}, nil
}
