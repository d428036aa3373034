// Package unpack turns an artifact into a Tree: it detects container formats
// by content, extracts them recursively, hashes every regular file and keeps
// every input-controlled quantity within named limits. It never executes
// anything; the only files it creates are spills of decompressed streams
// inside its work directory, and what it hands to a Sink (an Extractor).
//
// A format only lists entries and opens one (pipeline.Container) or turns one
// stream into another (pipeline.Decompressor); name checks, limits, hashing,
// recursion and concurrency are done here, once, for all of them.
package unpack

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/sirupsen/logrus"

	"github.com/fwvet/fwvet/pipeline"
)

// Options configure an Unpacker.
type Options struct {
	// Formats are tried in order; nil means Formats().
	Formats []pipeline.Format
	Limits  pipeline.Limits
	// WorkDir receives spills of decompressed streams and of a large
	// image's index (pipeline.Index.SpillTo); it must exist.
	WorkDir string
	// Jobs bounds the files hashed, and the nested containers opened, at
	// once; zero means GOMAXPROCS.
	Jobs int
	Log  logrus.FieldLogger
	// Sink, when set, receives every regular file's bytes as they are
	// hashed (an Extractor), so that writing them out costs no second read.
	Sink Sink
	// NoHash reads every file, within the same limits, but leaves SHA256
	// empty: for extracting only (fwvet unpack), where hashing would be
	// most of the work.
	NoHash bool
}

// Sink receives the bytes of the files the unpacker hashes. Create and Link
// may be called from several goroutines; a file whose read fails is left
// with the bytes read so far, and its entry has no SHA256.
type Sink interface {
	Create(e *pipeline.Entry) (io.WriteCloser, error)
	// Link records that e is the same file as an earlier one (a hard link of
	// one inode), whose bytes went to Create and are not read again.
	Link(e, first *pipeline.Entry) error
}

// Unpacker extracts artifacts into trees.
type Unpacker struct {
	opts Options
	// sigs are the carvable formats' magics; sigReach is how far past a
	// container's start the farthest one lies.
	sigs     []signature
	sigReach int
}

// New checks the options and returns an Unpacker.
func New(opts Options) (*Unpacker, error) {
	if opts.Formats == nil {
		opts.Formats = Formats()
	}
	if opts.WorkDir == "" {
		return nil, errors.New("unpack: no work directory")
	}
	if st, err := os.Stat(opts.WorkDir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("unpack: work directory %q is not a directory", opts.WorkDir)
	}
	l := opts.Limits
	if l.MaxDepth <= 0 || l.MaxTotalBytes <= 0 || l.MaxFileSize <= 0 || l.MaxEntries <= 0 || l.MaxRatio <= 1 || l.MaxPathLen <= 0 {
		return nil, fmt.Errorf("unpack: every limit must be positive (got %+v)", l)
	}
	if opts.Jobs <= 0 {
		opts.Jobs = runtime.GOMAXPROCS(0)
	}
	if opts.Log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		opts.Log = l
	}
	u := &Unpacker{opts: opts}
	u.sigs, u.sigReach = signatures(opts.Formats)
	return u, nil
}

// Unpack indexes every entry of the artifact, recursing into nested
// containers. A malformed or unknown top-level input is an error; a problem
// inside a nested container is recorded in the tree's Problems and the rest
// is kept. The caller must Close the tree.
func (u *Unpacker) Unpack(ctx context.Context, art *pipeline.Artifact) (*pipeline.Tree, error) {
	r := &run{u: u, log: u.opts.Log.WithField("artifact", art.Name), formatAt: map[string]formatSeen{},
		nestSlots: make(chan struct{}, u.opts.Jobs-1), hashSlots: make(chan struct{}, u.opts.Jobs)}
	r.index.SpillTo(u.opts.WorkDir)
	var err error
	if art.IsDir {
		err = r.dir(ctx, art)
	} else {
		err = r.file(ctx, art)
	}
	var le *pipeline.LimitError
	switch {
	case errors.As(err, &le):
		// A limit stops unpacking but is an outcome, not a failure to run:
		// the tree says what was seen and that it is incomplete.
		r.limitProblem([]string{art.Name}, "/", le)
		r.incomplete = true
	case err != nil:
		r.closeAll()
		return nil, err
	}
	// Nested containers are opened concurrently, so problems and formats
	// are put in an order that does not depend on which finished first:
	// problems by container, each container's in the order they were met.
	slices.SortStableFunc(r.problems, func(a, b pipeline.Problem) int { return slices.Compare(a.Container, b.Container) })
	t := r.index.Tree(r.problems)
	t.Formats = r.sortedFormats()
	t.Bytes = r.total.Load()
	t.Incomplete = r.incomplete
	for _, c := range r.closers {
		t.AddCloser(c)
	}
	return t, nil
}

func (r *run) file(ctx context.Context, art *pipeline.Artifact) error {
	f, err := os.Open(art.Path)
	if err != nil {
		return fmt.Errorf("opening %s: %w", art.Path, err)
	}
	r.closers = append(r.closers, f)
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("reading %s: %w", art.Path, err)
	}
	in := input{ra: f, size: st.Size(), chain: []string{art.Name}, top: true}
	if err := r.container(ctx, in); err != nil {
		if errors.Is(err, errNotContainer) {
			return fmt.Errorf("%s: %w: no supported container format (tried %s)", art.Name, pipeline.ErrUnknownFormat, r.formatNames())
		}
		return err
	}
	return nil
}

func (r *run) formatNames() string {
	s := ""
	for i, f := range r.u.opts.Formats {
		if i > 0 {
			s += ", "
		}
		s += f.Name()
	}
	return s
}

// run is the state of one Unpack call.
type run struct {
	u   *Unpacker
	log logrus.FieldLogger

	// nestSlots bounds the nested containers opened besides the one each
	// caller opens itself, across the whole artifact, so that recursion
	// does not multiply goroutines.
	nestSlots chan struct{}
	// hashSlots bounds the files hashed at once across all containers.
	hashSlots chan struct{}

	mu         sync.Mutex
	index      pipeline.Index
	problems   []pipeline.Problem
	formatAt   map[string]formatSeen
	closers    []io.Closer
	incomplete bool

	total atomic.Int64 // bytes decompressed or read, against MaxTotalBytes
	count atomic.Int64 // entries, against MaxEntries
}

// formatSeen is where a format was first opened: the container's keys and
// its depth, which identify one container whatever the order of the work.
type formatSeen struct {
	keys  string
	depth int
}

func (a formatSeen) compare(b formatSeen) int {
	return cmp.Or(cmp.Compare(a.keys, b.keys), cmp.Compare(a.depth, b.depth))
}

// sawFormat records that a format was opened for in.
func (r *run) sawFormat(name string, in input) {
	at := formatSeen{strings.Join(in.keys, "\x00"), in.depth}
	r.mu.Lock()
	defer r.mu.Unlock()
	if old, ok := r.formatAt[name]; !ok || at.compare(old) < 0 {
		r.formatAt[name] = at
	}
}

// sortedFormats lists the formats opened depth first in path order: a
// container's own formats, outer first, before those of the containers it
// holds; by name when opened at the same container (raw and the format
// that claimed its start).
func (r *run) sortedFormats() []string {
	names := slices.Collect(maps.Keys(r.formatAt))
	slices.SortFunc(names, func(a, b string) int {
		return cmp.Or(r.formatAt[a].compare(r.formatAt[b]), cmp.Compare(a, b))
	})
	return names
}

func (r *run) closeAll() {
	for i := len(r.closers) - 1; i >= 0; i-- {
		r.closers[i].Close()
	}
	r.closers = nil
}

func (r *run) problem(p pipeline.Problem) {
	r.mu.Lock()
	r.problems = append(r.problems, p)
	r.mu.Unlock()
	r.log.WithFields(logrus.Fields{"path": pipeline.Where(p.Container, p.Path), "kind": p.Kind, "limit": p.Limit}).Warn(p.Reason)
}

// limitProblem records a limit hit as a problem.
func (r *run) limitProblem(chain []string, path string, le *pipeline.LimitError) {
	r.problem(pipeline.Problem{Kind: pipeline.ProblemLimit, Container: chain, Path: path, Limit: le.Limit, Reason: le.Error()})
}

// globalLimit is a limit that bounds the whole artifact: hitting it stops
// everything, and the tree is marked incomplete.
type globalLimit struct{ *pipeline.LimitError }

func (g *globalLimit) Unwrap() error { return g.LimitError }

// addBytes charges n bytes to the artifact's budget.
func (r *run) addBytes(n int64) error {
	if t := r.total.Add(n); t > r.u.opts.Limits.MaxTotalBytes {
		return &globalLimit{&pipeline.LimitError{Limit: "max-total-bytes", Value: r.u.opts.Limits.MaxTotalBytes,
			Msg: fmt.Sprintf("more than %d bytes decompressed or read from this artifact", r.u.opts.Limits.MaxTotalBytes)}}
	}
	return nil
}

// addEntry charges one entry to the artifact's budget.
func (r *run) addEntry() error {
	if c := r.count.Add(1); c > r.u.opts.Limits.MaxEntries {
		return &globalLimit{&pipeline.LimitError{Limit: "max-entries", Value: r.u.opts.Limits.MaxEntries,
			Msg: fmt.Sprintf("more than %d entries in this artifact", r.u.opts.Limits.MaxEntries)}}
	}
	return nil
}

// errNotContainer reports that an input matched no format.
var errNotContainer = errors.New("not a container")

// input is one byte source that may hold a container.
type input struct {
	ra   io.ReaderAt
	size int64
	// chain is the display chain up to and including this input's name.
	chain []string
	// keys are the paths of the nested containers that lead here.
	keys  []string
	depth int
	top   bool
	// carved marks a region cut out by the carver, never carved again.
	carved bool
}

func (r *run) detect(head []byte) pipeline.Format {
	for _, f := range r.u.opts.Formats {
		if f.Match(head) {
			return f
		}
	}
	return nil
}

func readHead(ra io.ReaderAt, size int64) ([]byte, error) {
	n := int64(pipeline.MatchSize)
	if size < n {
		n = size
	}
	head := make([]byte, n)
	if _, err := ra.ReadAt(head, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return head, nil
}

// container detects the format of in and unpacks it. It returns
// errNotContainer when no format matches.
func (r *run) container(ctx context.Context, in input) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	head, err := readHead(in.ra, in.size)
	if err != nil {
		return fmt.Errorf("reading %s: %w", pipeline.Where(in.chain[:len(in.chain)-1], in.chain[len(in.chain)-1]), err)
	}
	f := r.detect(head)
	if r.shouldCarve(in, head) {
		// A compressed stream at the start that ends before the input
		// does (a kernel, then a file system) is the first region of a
		// raw image, not the whole input.
		var lead *candidate
		if d, ok := f.(pipeline.Decompressor); ok {
			lead = r.shortStream(ctx, d, in)
		}
		if f == nil || lead != nil || r.shortSpan(f, in) {
			if err := r.carve(ctx, in, lead); !errors.Is(err, errNotContainer) {
				return err
			}
		}
	}
	if f == nil {
		return errNotContainer
	}
	if in.depth >= r.u.opts.Limits.MaxDepth {
		r.limitProblem(in.chain, "/", &pipeline.LimitError{Limit: "max-depth", Value: int64(r.u.opts.Limits.MaxDepth),
			Msg: fmt.Sprintf("%s container nested more than %d levels deep; not opened", f.Name(), r.u.opts.Limits.MaxDepth)})
		return nil
	}
	chain := append(append([]string(nil), in.chain...), f.Name())
	switch f := f.(type) {
	case pipeline.Decompressor:
		return r.decompress(ctx, f, in, chain)
	case pipeline.Container:
		r.sawFormat(f.Name(), in)
		walk := func(visit func(*pipeline.Header, pipeline.OpenFunc) error) error {
			return f.Walk(ctx, in.ra, in.size, r.u.opts.Limits, visit)
		}
		return r.archive(ctx, walk, in, chain)
	default:
		return fmt.Errorf("format %s is neither an archive nor a decompressor", f.Name())
	}
}

// decompress peels one compression layer into a spill file and unpacks what
// it holds. Inside an image, a compressed file that holds no container (a
// man page, a kernel) is left as the file it is.
func (r *run) decompress(ctx context.Context, f pipeline.Decompressor, in input, chain []string) error {
	where := pipeline.Where(in.chain[:len(in.chain)-1], in.chain[len(in.chain)-1])
	src := &countingReader{r: io.NewSectionReader(in.ra, 0, in.size)}
	peek := make([]byte, pipeline.MatchSize)
	rc, err := f.NewReader(src)
	n := 0
	if err == nil {
		defer rc.Close()
		n, err = io.ReadFull(rc, peek)
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			err = nil
		}
	}
	peek = peek[:n]
	switch {
	case err != nil && in.top:
		return fmt.Errorf("%s: reading %s stream: %w", where, f.Name(), err)
	case err != nil:
		// Inside an image a damaged compressed file is still indexed and
		// diffed as the file it is; only what it might hold is out of reach.
		r.log.WithError(err).WithField("path", where).Debugf("%s stream unreadable, indexed as a plain file", f.Name())
		return errNotContainer
	case r.detect(peek) == nil && !in.top:
		return errNotContainer
	}
	r.sawFormat(f.Name(), in)
	spill, size, err := r.spill(ctx, io.MultiReader(bytesReader(peek), rc), src, chain)
	if err != nil {
		return err
	}
	next := input{ra: spill, size: size, chain: chain, keys: in.keys, depth: in.depth + 1, top: in.top}
	err = r.container(ctx, next)
	if errors.Is(err, errNotContainer) && in.top {
		return fmt.Errorf("%s: the %s stream holds no supported container format: %w", where, f.Name(), pipeline.ErrUnknownFormat)
	}
	return err
}

// spill copies a decompressed stream into a file of the work directory,
// within the byte and ratio limits. consumed reports the compressed bytes
// read so far.
func (r *run) spill(ctx context.Context, src io.Reader, consumed *countingReader, chain []string) (*os.File, int64, error) {
	f, err := os.CreateTemp(r.u.opts.WorkDir, "spill-*")
	if err != nil {
		return nil, 0, fmt.Errorf("creating spill file: %w", err)
	}
	r.mu.Lock()
	r.closers = append(r.closers, removeOnClose{f})
	r.mu.Unlock()
	lim := r.u.opts.Limits
	buf := make([]byte, 256<<10)
	var size int64
	for {
		if err := ctx.Err(); err != nil {
			return nil, 0, err
		}
		n, rerr := src.Read(buf)
		if n > 0 {
			size += int64(n)
			if size > lim.MaxFileSize {
				return nil, 0, &pipeline.LimitError{Limit: "max-file-size", Value: lim.MaxFileSize,
					Msg: fmt.Sprintf("%s decompresses to more than %d bytes", pipeline.Where(chain[:len(chain)-1], chain[len(chain)-1]), lim.MaxFileSize)}
			}
			if consumed != nil && size > lim.RatioMinBytes && float64(size) > lim.MaxRatio*float64(max(consumed.n, 1)) {
				return nil, 0, &pipeline.LimitError{Limit: "max-ratio", Value: int64(lim.MaxRatio),
					Msg: fmt.Sprintf("%s expands %d bytes into more than %d (over %.0f:1): a decompression bomb", pipeline.Where(chain[:len(chain)-1], chain[len(chain)-1]), consumed.n, size, lim.MaxRatio)}
			}
			if err := r.addBytes(int64(n)); err != nil {
				return nil, 0, err
			}
			if _, err := f.Write(buf[:n]); err != nil {
				return nil, 0, fmt.Errorf("writing spill file: %w", err)
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return nil, 0, fmt.Errorf("decompressing %s: %w", pipeline.Where(chain[:len(chain)-1], chain[len(chain)-1]), rerr)
		}
	}
	return f, size, nil
}

type removeOnClose struct{ *os.File }

func (f removeOnClose) Close() error {
	err := f.File.Close()
	if rerr := os.Remove(f.Name()); err == nil && rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
		err = rerr
	}
	return err
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
