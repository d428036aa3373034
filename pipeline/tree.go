package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
)

// EntryType is the kind of a file system entry.
type EntryType string

// Entry types. Device nodes, FIFOs and sockets are recorded, never created.
const (
	TypeFile    EntryType = "file"
	TypeDir     EntryType = "dir"
	TypeSymlink EntryType = "symlink"
	TypeChar    EntryType = "char"
	TypeBlock   EntryType = "block"
	TypeFIFO    EntryType = "fifo"
	TypeSocket  EntryType = "socket"
)

// ModeType is the entry type the file type bits of a Unix mode (S_IFMT,
// 0o170000, as cpio, ext4, JFFS2 and UBIFS store them) name; false for
// bits that name none.
func ModeType(mode uint32) (EntryType, bool) {
	switch mode & 0o170000 {
	case 0o100000:
		return TypeFile, true
	case 0o040000:
		return TypeDir, true
	case 0o120000:
		return TypeSymlink, true
	case 0o020000:
		return TypeChar, true
	case 0o060000:
		return TypeBlock, true
	case 0o010000:
		return TypeFIFO, true
	case 0o140000:
		return TypeSocket, true
	}
	return "", false
}

// Unix permission bits beyond rwx, as stored in archives and file systems.
const (
	ModeSetuid = 0o4000
	ModeSetgid = 0o2000
	ModeSticky = 0o1000
	ModePerm   = 0o7777
)

// OpenFunc opens an entry's bytes. It may be called any number of times, from
// several goroutines, until the Tree is closed.
type OpenFunc func(ctx context.Context) (io.ReadCloser, error)

// Entry is one file, directory, link or node in an unpacked tree.
type Entry struct {
	// Path is absolute and clean inside the innermost file system ("/etc/passwd").
	Path string `json:"path"`
	// Container is the chain of containers that holds the entry, outermost first.
	Container []string  `json:"container"`
	Type      EntryType `json:"type"`
	// Mode holds the Unix permission bits including setuid, setgid and sticky (07777).
	Mode uint32 `json:"mode"`
	UID  uint32 `json:"uid"`
	GID  uint32 `json:"gid"`
	Size int64  `json:"size"`
	// SHA256 is the hex digest of a regular file's contents, empty when it
	// could not be read (see the tree's problems).
	SHA256 string `json:"sha256,omitempty"`
	// LinkTarget is a symlink's target; for a hard link, the path of the
	// entry it links to.
	LinkTarget string `json:"link_target,omitempty"`
	// HardLink reports whether LinkTarget names a hard link rather than a symlink.
	HardLink bool `json:"hard_link,omitempty"`
	// Device holds major and minor numbers for device nodes.
	Major uint32 `json:"major,omitempty"`
	Minor uint32 `json:"minor,omitempty"`
	// Region says where a piece cut out of a raw image lies in it.
	Region *Region `json:"region,omitempty"`
	// Label is the name the container's header gives the entry, when it
	// has one (see Header.Label).
	Label string `json:"label,omitempty"`

	// Key identifies the entry across versions: the container chain without
	// the artifact's own name and without offsets, then the path.
	Key string `json:"-"`

	open OpenFunc
}

// SetOpen attaches the function that reads the entry's bytes.
func (e *Entry) SetOpen(f OpenFunc) { e.open = f }

// Open reads the entry's bytes. Only regular files can be opened.
func (e *Entry) Open(ctx context.Context) (io.ReadCloser, error) {
	if e.Type != TypeFile || e.open == nil {
		return nil, &EntryError{Path: e.Path, Container: e.Container, Err: ErrNotRegular}
	}
	return e.open(ctx)
}

// Readable reports whether the entry is a regular file whose bytes were
// read in full when the tree was made, so Open can read them again.
func (e *Entry) Readable() bool { return e.Type == TypeFile && e.open != nil }

// Where describes the entry's location for messages: "a.bin › squashfs › /etc/passwd".
func (e *Entry) Where() string { return Where(e.Container, e.Path) }

// Where joins a container chain and a path for messages.
func Where(container []string, path string) string {
	if len(container) == 0 {
		return path
	}
	return strings.Join(container, " › ") + " › " + path
}

// ChainKey is the key of the container that a chain leads into: the paths
// in it (the nested container files, each absolute in its parent), without
// the artifact's name and the format names, joined as Entry.Key joins them.
// Entries in that container have keys ChainKey + "\x00" + Path, or just
// Path at the top.
func ChainKey(chain []string) string {
	var parts []string
	for i, c := range chain {
		if i > 0 && strings.HasPrefix(c, "/") {
			parts = append(parts, c)
		}
	}
	return strings.Join(parts, "\x00")
}

// IsSetID reports whether the mode has setuid or setgid.
func IsSetID(mode uint32) bool { return mode&(ModeSetuid|ModeSetgid) != 0 }

// ProblemKind says why part of an image could not be indexed.
type ProblemKind string

// Problem kinds.
const (
	// ProblemUnsafe: an entry that escapes, collides or is otherwise hostile.
	ProblemUnsafe ProblemKind = "unsafe"
	// ProblemLimit: a named limit was hit.
	ProblemLimit ProblemKind = "limit"
	// ProblemCorrupt: a nested container is malformed.
	ProblemCorrupt ProblemKind = "corrupt"
)

// Problem is something the unpacker skipped, refused or could not read.
type Problem struct {
	Kind      ProblemKind `json:"kind"`
	Container []string    `json:"container"`
	Path      string      `json:"path"`
	// Limit names the limit that was hit, for ProblemLimit.
	Limit  string `json:"limit,omitempty"`
	Reason string `json:"reason"`
}

// Tree is the index of everything unpacked from one artifact. Its
// entries are sorted by Key and packed (see Index); Entry, All, Lookup and
// Find decode them.
type Tree struct {
	Problems []Problem
	// Formats lists every container format opened, depth first in path
	// order: a container's own formats, outer first, before those of the
	// containers it holds.
	Formats []string
	// Bytes is the total of regular file bytes read.
	Bytes int64
	// Incomplete reports that unpacking stopped early (a limit that bounds
	// the whole artifact was hit), so the entries are only part of the image.
	Incomplete bool

	packed
	refs    []uint64 // sorted by key
	closers []io.Closer
}

// NewTree packs the entries and sorts them by key.
func NewTree(entries []*Entry, problems []Problem) *Tree {
	var x Index
	for _, e := range entries {
		x.Add(e)
	}
	return x.Tree(problems)
}

// Lookup finds an entry by key.
func (t *Tree) Lookup(key string) *Entry {
	if i, ok := t.Search(key); ok {
		return t.Entry(i)
	}
	return nil
}

// Find returns the entries at an absolute path, in any container.
func (t *Tree) Find(path string) []*Entry {
	var out []*Entry
	for i := range t.refs {
		if t.hasPath(i, path) {
			out = append(out, t.Entry(i))
		}
	}
	return out
}

// AddCloser registers a resource that entries read from, released by Close.
func (t *Tree) AddCloser(c io.Closer) { t.closers = append(t.closers, c) }

// Close releases the files the entries read from. Entries cannot be opened after.
func (t *Tree) Close() error {
	var first error
	for i := len(t.closers) - 1; i >= 0; i-- {
		if err := t.closers[i].Close(); err != nil && first == nil {
			first = err
		}
	}
	t.closers = nil
	return first
}

// Digest is a digest of the tree's listing ("sha256:<hex>"): every entry's
// key, type, mode, owner, size, content hash and link target. Two trees
// with the same digest hold the same entries; it names directory artifacts.
func (t *Tree) Digest() string {
	h := sha256.New()
	for e := range t.All() {
		fmt.Fprintf(h, "%q %s %o %d %d %d %s %q %t %d %d\n", e.Key, e.Type, e.Mode, e.UID, e.GID, e.Size, e.SHA256, e.LinkTarget, e.HardLink, e.Major, e.Minor)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// ContextReader stops a long read when ctx ends: each Read checks it first.
// It hides any WriterTo of r on purpose, so that a copy goes through Read.
func ContextReader(ctx context.Context, r io.Reader) io.Reader { return ctxReader{ctx, r} }

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
