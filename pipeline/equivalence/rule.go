package equivalence

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"

	"github.com/fwvet/fwvet/pipeline"
)

// Input is one side of a differing file, as a rule sees it.
type Input struct {
	// Path is absolute inside the innermost file system.
	Path string
	// Data holds the file's bytes; nil when the file is larger than the
	// comparison's per-file limit (then only Head is there).
	Data []byte
	// Head holds the file's first bytes (at most HeadSize).
	Head []byte
	Size int64
	// SHA256 is the hex digest of the file's bytes.
	SHA256 string
	// Open reads the file's bytes again, as a stream (nil for an image
	// whose file is not at hand).
	Open func(context.Context) (io.ReadCloser, error)
	// Region is where a piece carved out of a raw image lies in it.
	Region *pipeline.Region
	// Mode holds the permission bits (07777).
	Mode uint32
	// Container, for a file fwvet opened as a container, is the formats it
	// was opened as ("squashfs", "gzip tar"); empty otherwise.
	Container string
	// ChildrenMatch reports, for a container, that every entry in it is
	// identical or explained on both sides, permission bits and setuid
	// included; ChildrenReason says otherwise why not.
	ChildrenMatch  bool
	ChildrenReason string
	// ChildrenDigest is a digest of the container's entries after
	// normalization: paths, types, permission bits and normalized digests.
	ChildrenDigest string

	// unread is set, for a container, when what does not match in it
	// could not be read (opaque or limit-hit).
	unread Class
}

// HeadSize is how many leading bytes of a file Input.Head holds.
const HeadSize = 64 << 10

// Result is what a rule found.
type Result struct {
	// Explained reports that the rule explains every differing byte.
	Explained bool
	// Applied are the rules applied (a rule may apply another to what it
	// unwraps: a signed module's ELF), with their evidence.
	Applied []Applied
	// NormalizedShipped and NormalizedRebuilt are the digests ("sha256:…")
	// of both sides after normalization; equal when Explained.
	NormalizedShipped, NormalizedRebuilt string
	// Reason says why not, when the rule looked at the file but could not
	// explain it ("" when the rule does not apply to such files).
	Reason string
}

// ErrLimit is returned by a rule that stopped at a bound on its work: the
// file is then limit-hit, not unexplained.
var ErrLimit = errors.New("rule work limit hit")

// Rule explains a difference between two files.
type Rule interface {
	// ID names the rule in reports ("elf-build-id").
	ID() string
	// Version changes whenever what the rule accepts changes.
	Version() string
	// Description says in a line what the rule explains.
	Description() string
	// Explain compares the shipped and rebuilt files, which differ. It
	// returns Explained only if the rule explains all differing bytes.
	Explain(ctx context.Context, shipped, rebuilt *Input) (Result, error)
}

// composable is a rule whose explanation is a rewrite that holds whatever
// else differs: a file that no rule explains alone (a generated header
// with both a build date and a build path) is explained when the
// composable rules, applied in turn in the order of Rules, leave both sides
// equal. normalize returns both sides rewritten and the evidence, or nil
// when the rule finds nothing of its kind in a and b or finds something it
// may not explain. origA and origB are the files' bytes, for evidence in
// their offsets; a rule whose evidence is in a's offsets must come first.
type composable interface {
	Rule
	normalize(origA, origB, a, b []byte) (na, nb []byte, ap *Applied)
}

// compose applies the composable rules in turn; it explains the file when
// at least two of them applied and both sides are then equal.
func compose(rules []Rule, s, r *Input) (Result, bool) {
	if s.Data == nil || r.Data == nil {
		return Result{}, false
	}
	a, b := s.Data, r.Data
	var applied []Applied
	for _, rule := range rules {
		c, ok := rule.(composable)
		if !ok {
			continue
		}
		if na, nb, ap := c.normalize(s.Data, r.Data, a, b); ap != nil {
			a, b = na, nb
			applied = append(applied, *ap)
		}
	}
	if len(applied) < 2 || !bytes.Equal(a, b) {
		return Result{}, false
	}
	return Result{Explained: true, Applied: applied, NormalizedShipped: digest(a), NormalizedRebuilt: digest(b)}, true
}

// Rules is the one registered list of rules, in the order they are tried.
func Rules() []Rule {
	return []Rule{
		elfBuildID{},
		moduleSignature{},
		gzipHeader{},
		buildDate{},
		buildPath{},
		paddingRegion{},
		zipTimestamps{},
		ext4Timestamps{},
		containerMetadata{},
	}
}

// RulesDigest identifies a rule set: "sha256:" of its sorted "id@version" lines.
func RulesDigest(rules []Rule) string {
	lines := make([]string, len(rules))
	for i, r := range rules {
		lines[i] = r.ID() + "@" + r.Version()
	}
	sort.Strings(lines)
	sum := sha256.Sum256([]byte(strings.Join(lines, "\n") + "\n"))
	return "sha256:" + hex.EncodeToString(sum[:])
}

func ruleInfos(rules []Rule) []RuleInfo {
	out := make([]RuleInfo, len(rules))
	for i, r := range rules {
		out[i] = RuleInfo{ID: r.ID(), Version: r.Version(), Description: r.Description()}
	}
	return out
}

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// masked returns a copy of b with the ranges zeroed.
func masked(b []byte, ranges [][2]int64) []byte {
	out := append([]byte(nil), b...)
	for _, r := range ranges {
		for i := r[0]; i < r[1] && i < int64(len(out)); i++ {
			out[i] = 0
		}
	}
	return out
}

// diffRanges returns the half-open ranges where a and b differ, a tail of
// the longer one included, at most max of them (more reports truncated),
// and the number of differing bytes.
func diffRanges(a, b []byte, max int) (ranges [][2]int64, truncated bool, n int64) {
	m := min(len(a), len(b))
	start := -1
	add := func(s, e int) {
		if len(ranges) < max {
			ranges = append(ranges, [2]int64{int64(s), int64(e)})
		} else {
			truncated = true
		}
	}
	for i := 0; i < m; i++ {
		if a[i] != b[i] {
			n++
			if start < 0 {
				start = i
			}
		} else if start >= 0 {
			add(start, i)
			start = -1
		}
	}
	if start >= 0 {
		add(start, m)
	}
	if len(a) != len(b) {
		add(m, max2(len(a), len(b)))
	}
	return ranges, truncated, n
}

func max2(a, b int) int {
	if a > b {
		return a
	}
	return b
}

// within reports whether every range of rs lies inside one of allowed.
// allowed is sorted by start, each entry paired with the farthest end of
// those up to it, so a range costs a binary search: a zip of 65,536
// members allows half a million fields.
func within(rs, allowed [][2]int64) bool {
	if len(rs) == 0 {
		return true
	}
	sorted := slices.Clone(allowed)
	slices.SortFunc(sorted, func(a, b [2]int64) int { return cmp.Compare(a[0], b[0]) })
	for i := 1; i < len(sorted); i++ {
		sorted[i][1] = max(sorted[i][1], sorted[i-1][1])
	}
	for _, r := range rs {
		// The last allowed range starting at or before r, with the
		// farthest end of all that do.
		i := sort.Search(len(sorted), func(i int) bool { return sorted[i][0] > r[0] }) - 1
		if i < 0 || sorted[i][1] < r[1] {
			return false
		}
	}
	return true
}

func fmtRanges(rs [][2]int64) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = fmt.Sprintf("[%#x,%#x)", r[0], r[1])
	}
	return strings.Join(parts, " ")
}
