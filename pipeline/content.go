package pipeline

import "math"

// Profile is what one pass over a file's bytes found. Every list in it is
// bounded; Truncated says when a bound cut one short.
type Profile struct {
	Size int64 `json:"size"`
	// Entropy is the Shannon entropy of the bytes, in bits per byte.
	Entropy float64 `json:"entropy"`
	// Magic names the format the first bytes announce ("elf", "gzip",
	// "png"…), empty when none is known.
	Magic string `json:"magic,omitempty"`
	// Endpoints maps each URL, IP address and host name found in the
	// file's strings to the offset of its first occurrence.
	Endpoints map[string]int64 `json:"endpoints,omitempty"`
	// Notable maps strings of the exec, shell and network families
	// ("/bin/sh", "nc -l", "wget ") to their first offset.
	Notable map[string]int64 `json:"notable,omitempty"`
	// PEM holds the PEM blocks found, whole.
	PEM       []PEMBlock `json:"pem,omitempty"`
	Truncated bool       `json:"truncated,omitempty"`
}

// PEMBlock is one "-----BEGIN TYPE-----" block and where it starts.
type PEMBlock struct {
	Offset int64  `json:"offset"`
	Type   string `json:"type"`
	Text   []byte `json:"-"`
}

// Range is a run of bytes.
type Range struct {
	Off int64 `json:"offset"`
	Len int64 `json:"length"`
}

// Scan is what the analyzers' shared pass over a changed file found: the
// profile of each side and, for two versions of the same size, the byte
// ranges that differ.
type Scan struct {
	Old *Profile
	New *Profile
	// Diff lists the differing ranges of two same-size versions, in order;
	// DiffMany is set instead when more differ than a patch would touch.
	Diff     []Range
	DiffMany bool
}

// Entropy is the Shannon entropy, in bits per byte (0 to 8), of bytes whose
// values were counted in counts: near 8 is compressed or encrypted data.
func Entropy(counts *[256]uint64) float64 {
	var total uint64
	for _, c := range counts {
		total += c
	}
	if total == 0 {
		return 0
	}
	var h float64
	n := float64(total)
	for _, c := range counts {
		if c > 0 {
			p := float64(c) / n
			h -= p * math.Log2(p)
		}
	}
	return h
}
