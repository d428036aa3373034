package pipeline

import (
	"context"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// Header describes one entry as a container format stores it, before the
// unpacker has sanitised its name.
type Header struct {
	// Name is the entry's name as stored, '/'-separated.
	Name     string
	Type     EntryType
	Mode     uint32
	UID, GID uint32
	Size     int64
	// LinkName is a symlink's target, or the name a hard link points to.
	LinkName string
	HardLink bool
	Major    uint32
	Minor    uint32
	// OpenAt and Locator open a regular file for a walk that passes no
	// OpenFunc: a walk of a large image gives each file a number, a few
	// bytes in the index, rather than a closure of its own in memory. A
	// walk passes one OpenAt for all its entries.
	OpenAt  OpenAt
	Locator uint64
	// Identity, when non-zero, is shared by entries that are the same object
	// (hard links of one inode), so their bytes are read and counted once:
	// every later name reads the first one's. A walk may leave it zero for
	// an object it knows has one name.
	Identity uint64
	// Damage, when set, is what the format found wrong with this entry alone
	// (a hash that does not match its bytes). The entry is still indexed and
	// the damage is reported as a problem of the container.
	Damage string
	// Region, for a piece of a raw image cut out by the carver, says where
	// it lies in that image.
	Region *Region
	// Label is a name that the container's header gives the entry (a
	// uImage's name, a UBI volume's name, a FIT image's node and
	// description). Releases put their version in such names, so a format
	// names the entry by what it is and where it sits (Name) and keeps the
	// header's name here: shown, and its change reported, but never part
	// of a path that findings and manifests use.
	Label string
}

// JoinDamage joins the non-empty parts of an entry's Damage.
func JoinDamage(parts ...string) string {
	var out string
	for _, p := range parts {
		switch {
		case p == "":
		case out == "":
			out = p
		default:
			out += "; " + p
		}
	}
	return out
}

// OpenAt opens the file of size bytes that a walk located at loc
// (Header.Locator).
type OpenAt func(ctx context.Context, loc uint64, size int64) (io.ReadCloser, error)

// SectionAt is the OpenAt of a format that stores each file's bytes in
// one piece of r: its locator is their offset.
func SectionAt(r io.ReaderAt) OpenAt {
	return func(_ context.Context, loc uint64, size int64) (io.ReadCloser, error) {
		if loc > math.MaxInt64 {
			return nil, fmt.Errorf("file offset %d is out of range", loc)
		}
		return section{io.NewSectionReader(r, int64(loc), size)}, nil
	}
}

// Opener returns the entry's opener: open as the walk passed it, or one
// built from OpenAt and Locator when the walk located the entry instead.
func (h *Header) Opener(open OpenFunc) OpenFunc {
	if open != nil || h.OpenAt == nil {
		return open
	}
	at, loc, size := h.OpenAt, h.Locator, h.Size
	return func(ctx context.Context) (io.ReadCloser, error) { return at(ctx, loc, size) }
}

// Region is a byte range of a raw image (a flash dump, a vendor blob): a
// container found by its signature, or bytes no format claimed.
type Region struct {
	Offset int64 `json:"offset"`
	Size   int64 `json:"size"`
	// Format is the container found there, or RegionBlob or RegionPadding.
	Format string `json:"format"`
	// Entropy is the Shannon entropy of an unclaimed region, in bits per
	// byte (0 to 8): near 8 is compressed or encrypted data.
	Entropy float64 `json:"entropy,omitempty"`
}

// Kinds of unclaimed region.
const (
	// RegionBlob is bytes that no known format claimed.
	RegionBlob = "blob"
	// RegionPadding is a run of one fill byte (0x00 or 0xFF), as erased
	// flash and alignment leave.
	RegionPadding = "padding"
)

// OpenSection opens n bytes at off of r: the entry of a format that stores
// files whole and uncompressed. The reader is an io.ReaderAt with a Size, so
// a nested container in it is read in place.
func OpenSection(r io.ReaderAt, off, n int64) OpenFunc {
	return func(context.Context) (io.ReadCloser, error) { return section{io.NewSectionReader(r, off, n)}, nil }
}

type section struct{ *io.SectionReader }

func (section) Close() error { return nil }

// MatchSize is how many leading bytes of an input a Format's Match sees.
const MatchSize = 4096

// Format is a container format recognised by its leading bytes.
type Format interface {
	// Name is the short format name used in container chains ("squashfs", "gzip").
	Name() string
	// Match reports whether head, the first MatchSize bytes of an input (or
	// fewer for a short input), starts with this format.
	Match(head []byte) bool
}

// Decompressor is a compression layer: one stream in, one stream out.
type Decompressor interface {
	Format
	NewReader(r io.Reader) (io.ReadCloser, error)
}

// Container is a format that holds entries: an archive or a file system
// image.
type Container interface {
	Format
	// Walk lists the entries of the container held in r, calling visit for each
	// in their stored order; an error from visit stops the walk and is returned.
	// The OpenFunc passed with a regular file may be called after Walk
	// returns and from several goroutines, for as long as r stays open.
	Walk(ctx context.Context, r io.ReaderAt, size int64, lim Limits, visit func(*Header, OpenFunc) error) error
}

// Signature is a magic number that starts a container: Magic found at
// Offset bytes from the container's start, which sits at a multiple of
// Align (0 or 1: any offset) in the enclosing image.
type Signature struct {
	Offset int
	Magic  []byte
	Align  int
}

// Carvable is a format that can be found at any offset of a raw flash dump
// or vendor blob, not only at the start of its input. A candidate found by
// signature is kept only if Match accepts the bytes from its start.
type Carvable interface {
	Format
	Signatures() []Signature
}

// Spanner is a format that knows how many bytes its container takes, so a
// carver can cut it out of a larger image exactly. Formats without it are
// cut at the next container found, or at the end of the image.
type Spanner interface {
	// Span reports the length of the container at the start of r, at most
	// size, or an error when its header does not say.
	Span(r io.ReaderAt, size int64) (int64, error)
}

// Limits bounds everything an input controls. Each has a name used in flags,
// errors and reports.
type Limits struct {
	// MaxDepth bounds container nesting ("max-depth").
	MaxDepth int
	// MaxTotalBytes bounds the bytes decompressed and read per artifact ("max-total-bytes").
	MaxTotalBytes int64
	// MaxFileSize bounds one entry's size ("max-file-size").
	MaxFileSize int64
	// MaxEntries bounds the entries per artifact ("max-entries").
	MaxEntries int64
	// MaxRatio bounds output/input of a container once it has produced
	// RatioMinBytes ("max-ratio").
	MaxRatio      float64
	RatioMinBytes int64
	// MaxPathLen bounds an entry's path length in bytes ("max-path-length").
	MaxPathLen int
}

// DefaultLimits suit real firmware: a few GiB unpacked, hundreds of thousands of files.
func DefaultLimits() Limits {
	return Limits{
		MaxDepth:      16,
		MaxTotalBytes: 16 << 30,
		MaxFileSize:   4 << 30,
		MaxEntries:    1 << 20,
		MaxRatio:      100,
		RatioMinBytes: 16 << 20,
		MaxPathLen:    4096,
	}
}

// LimitNames lists the names Set accepts.
var LimitNames = []string{"max-depth", "max-total-bytes", "max-file-size", "max-entries", "max-ratio", "ratio-min-bytes", "max-path-length"}

// Set changes one limit from a "name=value" string; sizes take KiB, MiB and GiB suffixes.
func (l *Limits) Set(spec string) error {
	name, val, ok := strings.Cut(spec, "=")
	if !ok {
		return fmt.Errorf("limit %q: want name=value", spec)
	}
	if name == "max-ratio" {
		f, err := strconv.ParseFloat(val, 64)
		if err != nil || f <= 1 {
			return fmt.Errorf("limit %s: %q is not a ratio above 1", name, val)
		}
		l.MaxRatio = f
		return nil
	}
	n, err := parseSize(val)
	if err != nil || n <= 0 {
		return fmt.Errorf("limit %s: %q is not a positive size", name, val)
	}
	switch name {
	case "max-depth":
		l.MaxDepth = int(n)
	case "max-total-bytes":
		l.MaxTotalBytes = n
	case "max-file-size":
		l.MaxFileSize = n
	case "max-entries":
		l.MaxEntries = n
	case "ratio-min-bytes":
		l.RatioMinBytes = n
	case "max-path-length":
		l.MaxPathLen = int(n)
	default:
		return fmt.Errorf("unknown limit %q (known: %s)", name, strings.Join(LimitNames, ", "))
	}
	return nil
}

func parseSize(s string) (int64, error) {
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		m      int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}} {
		if strings.HasSuffix(s, u.suffix) {
			mult, s = u.m, strings.TrimSuffix(s, u.suffix)
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, err
	}
	if n > (1<<62)/mult {
		return 0, fmt.Errorf("%s is too large", s)
	}
	return n * mult, nil
}
