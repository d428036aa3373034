package unpack

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"maps"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"golang.org/x/sync/errgroup"

	"github.com/fwvet/fwvet/pipeline"
)

// walkFunc lists a container's entries.
type walkFunc func(visit func(*pipeline.Header, pipeline.OpenFunc) error) error

// pending is a regular file waiting to be hashed, its entry packed in
// the run's index already. It holds no pointer: a /usr image's walk lists
// hundreds of thousands of them.
type pending struct {
	id uint32 // the entry's record
	// same is the index, among the container's files, of an earlier file
	// with the same bytes (a hard link), hashed in its place; -1 for none.
	same int32
	// skip is set when the entry was replaced or refused before hashing.
	skip bool
	// nest is set, once the file is hashed, when it is or may hold a
	// container: its first bytes match a format, or it is a file worth
	// carving in which the carver's magics were seen. Only this is kept of
	// its bytes.
	nest bool
}

// archive indexes the entries of one container, hashes its files and
// recurses into the files that are containers themselves. Each entry is
// packed in the index as it is walked, its digest written once its file
// is hashed.
func (r *run) archive(ctx context.Context, walk walkFunc, in input, chain []string) error {
	keyPrefix := ""
	if len(in.keys) > 0 {
		keyPrefix = strings.Join(in.keys, "\x00") + "\x00"
	}
	chain = chain[:len(chain):len(chain)] // entries share it; appends must copy
	var (
		local = newNames(func(id uint32, p string) bool { return r.index.HasKey(id, keyPrefix, p) })
		files []pending
		// byIdentity holds the first file of each inode that may have
		// further names (Header.Identity).
		byIdentity = map[uint64]int32{}
		at         = -1 // the walk's OpenAt in the index, once it gives one
	)
	werr := walk(func(h *pipeline.Header, open pipeline.OpenFunc) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := r.addEntry(); err != nil {
			return err
		}
		e, ok := r.sanitize(h, chain, local)
		if !ok {
			return nil
		}
		e.Key = keyPrefix + e.Path
		// The path is the key's tail: one string per entry, not two.
		e.Path = e.Key[len(keyPrefix):]
		if h.Damage != "" {
			r.problem(pipeline.Problem{Kind: pipeline.ProblemCorrupt, Container: chain, Path: e.Path, Reason: h.Damage})
		}
		s := nameSlot{file: -1, dir: e.Type == pipeline.TypeDir}
		if e.Type == pipeline.TypeFile {
			p := pending{same: -1}
			switch {
			case h.HardLink:
				i, _ := local.lookup(e.LinkTarget) // sanitize found it, a file
				p.same = local.slots[i].file
			case e.Size > r.u.opts.Limits.MaxFileSize:
				r.limitProblem(chain, e.Path, &pipeline.LimitError{Limit: "max-file-size", Value: r.u.opts.Limits.MaxFileSize,
					Msg: fmt.Sprintf("entry of %d bytes not read", e.Size)})
				p.skip = true
			case h.Identity != 0:
				if first, ok := byIdentity[h.Identity]; ok {
					p.same = first
				} else {
					byIdentity[h.Identity] = int32(len(files))
				}
			}
			switch {
			case p.same >= 0:
				// Another name of an earlier file reads that file's bytes,
				// whatever its own header says: the digest it is given is
				// of those, and so is what it opens.
				first := files[p.same].id
				e.Size = r.index.Entry(first).Size
				if e.Size > r.u.opts.Limits.MaxFileSize {
					p.skip = true // reported at the first name
				}
				var ok bool
				if p.id, ok = r.index.AddLink(e, first); !ok {
					p.skip = true
				}
			case open == nil && h.OpenAt != nil:
				if at < 0 {
					at = r.index.AddOpenAt(h.OpenAt)
				}
				p.id = r.index.AddFileAt(e, at, h.Locator)
			case open == nil:
				p.skip = true
				fallthrough
			default:
				p.id = r.index.AddFile(e, open)
			}
			s.id, s.file = p.id, int32(len(files))
			files = append(files, p)
		} else {
			s.id = r.index.Add(e)
		}
		if i, dup := local.lookup(e.Path); dup {
			old := local.slots[i]
			if !old.dir || e.Type != pipeline.TypeDir {
				r.problem(pipeline.Problem{Kind: pipeline.ProblemUnsafe, Container: chain, Path: e.Path,
					Reason: fmt.Sprintf("entry %q collides with an earlier %s at the same path; the later one is kept, as an extractor would", h.Name, r.index.Entry(old.id).Type)})
			}
			if old.file >= 0 {
				files[old.file].skip = true
			}
			r.index.Drop(old.id)
			local.replace(i, s)
		} else {
			local.add(e.Path, s)
		}
		return nil
	})
	local.release()
	clear(byIdentity)
	// A name whose first was replaced by a later entry of its path, or
	// refused, is read itself, through the opener it shares: an extractor
	// leaves the first's bytes there ("T=evil; L->T; T=benign").
	for i := range files {
		if p := &files[i]; p.same >= 0 && files[p.same].skip && !p.skip {
			p.same = -1
		}
	}

	var gl *globalLimit
	switch {
	case werr == nil:
	case errors.As(werr, &gl), ctx.Err() != nil:
		return werr
	case in.top:
		return fmt.Errorf("%s: %w", pipeline.Where(chain[:len(chain)-1], chain[len(chain)-1]), werr)
	default:
		// Keep what the container held before the damage.
		r.problem(pipeline.Problem{Kind: pipeline.ProblemCorrupt, Container: chain, Path: "/", Reason: werr.Error()})
	}

	if err := r.hashAll(ctx, files, in, chain); err != nil {
		return err
	}
	for _, p := range files {
		if p.same >= 0 && !p.skip && r.index.CopyHashed(p.id, files[p.same].id) {
			if sink := r.u.opts.Sink; sink != nil {
				if err := sink.Link(r.index.Entry(p.id), r.index.Entry(files[p.same].id)); err != nil {
					return err
				}
			}
		}
	}
	// Only the records of the files that may hold containers are kept
	// from here on: a /usr image's man pages and jars are tens of
	// thousands of them, each decoded again when it is opened.
	var nest []uint32
	for _, p := range files {
		if p.nest && !p.skip && p.same < 0 && r.index.Entry(p.id).Readable() {
			nest = append(nest, p.id)
		}
	}
	files = nil
	return r.nestAll(ctx, nest, in, chain)
}

// nestAll opens the files that are, or may hold, containers (archive
// picks them: read, marked nest, not a hard link of another). Each is read
// again, and searched for signatures if it may hold an image, so they are
// opened concurrently: in a free slot of the run when there is one, else
// here. Their failures are recorded afterwards in file order, so that the
// problems do not depend on which finished first.
func (r *run) nestAll(ctx context.Context, files []uint32, in input, chain []string) error {
	g, gctx := errgroup.WithContext(ctx)
	errs := make([]error, len(files))
	for i, id := range files {
		select {
		case r.nestSlots <- struct{}{}:
			g.Go(func() error {
				defer func() { <-r.nestSlots }()
				errs[i] = r.nested(gctx, r.index.Entry(id), in, chain)
				return fatal(errs[i])
			})
		default:
			errs[i] = r.nested(gctx, r.index.Entry(id), in, chain)
			if err := fatal(errs[i]); err != nil {
				// A worker's failure may be why this one was cancelled.
				if werr := g.Wait(); werr != nil {
					err = werr
				}
				r.nestedProblems(files, errs, chain)
				return err
			}
		}
	}
	err := g.Wait()
	r.nestedProblems(files, errs, chain)
	return err
}

// nestedProblems records, in file order, the failures of nested containers
// that stay with their container; those that stop the artifact are the
// caller's.
func (r *run) nestedProblems(files []uint32, errs []error, chain []string) {
	for i, err := range errs {
		if err != nil && fatal(err) == nil {
			r.nestedProblem(err, chain, r.index.Entry(files[i]).Path)
		}
	}
}

// sanitize turns a header into an entry, or records why it was refused.
// Names are cleaned and rooted; a name with "..", a NUL or a parent that is
// not a directory is refused, as is a hard link to anything but an earlier
// regular file of the same container.
func (r *run) sanitize(h *pipeline.Header, chain []string, local *names) (*pipeline.Entry, bool) {
	unsafe := func(p, format string, args ...any) (*pipeline.Entry, bool) {
		r.problem(pipeline.Problem{Kind: pipeline.ProblemUnsafe, Container: chain, Path: p, Reason: fmt.Sprintf(format, args...)})
		return nil, false
	}
	lim := r.u.opts.Limits
	name := h.Name
	shown := name
	if len(shown) > 256 {
		shown = shown[:256] + "…"
	}
	if len(name) > lim.MaxPathLen || len(h.LinkName) > lim.MaxPathLen {
		r.limitProblem(chain, shown, &pipeline.LimitError{Limit: "max-path-length", Value: int64(lim.MaxPathLen),
			Msg: fmt.Sprintf("entry name or link target of %d bytes refused", max(len(name), len(h.LinkName)))})
		return nil, false
	}
	if strings.IndexByte(name, 0) >= 0 || strings.IndexByte(h.LinkName, 0) >= 0 {
		return unsafe(strings.ReplaceAll(shown, "\x00", `\0`), "entry name or link target holds a NUL byte; refused")
	}
	if hasDotDot(name) {
		return unsafe(shown, "entry name %q climbs out with \"..\"; refused", shown)
	}
	clean := path.Clean("/" + name)
	if strings.HasPrefix(name, "/") {
		r.problem(pipeline.Problem{Kind: pipeline.ProblemUnsafe, Container: chain, Path: clean,
			Reason: fmt.Sprintf("entry name %q is absolute; indexed as %s, never written there", shown, clean)})
	}
	if clean == "/" && h.Type != pipeline.TypeDir {
		return unsafe(shown, "entry %q of type %s names the root", shown, h.Type)
	}
	if slot, ok := local.ancestor(clean); ok {
		dir := r.index.Entry(slot.id)
		return unsafe(clean, "entry goes through %s, which is a %s, not a directory: a link-then-write escape; refused", dir.Path, dir.Type)
	}
	switch h.Type {
	case pipeline.TypeFile, pipeline.TypeDir, pipeline.TypeSymlink, pipeline.TypeChar, pipeline.TypeBlock, pipeline.TypeFIFO, pipeline.TypeSocket:
	default:
		return unsafe(clean, "entry %q has an unsupported type %q; refused", shown, h.Type)
	}
	e := &pipeline.Entry{
		Path: clean, Container: chain, Type: h.Type, Mode: h.Mode & pipeline.ModePerm,
		UID: h.UID, GID: h.GID, Size: h.Size, Major: h.Major, Minor: h.Minor, Region: h.Region,
		Label: cleanLabel(h.Label),
	}
	if e.Type != pipeline.TypeFile {
		e.Size = 0
	}
	if h.Size < 0 {
		return unsafe(clean, "entry %q has a negative size", shown)
	}
	switch {
	case h.Type == pipeline.TypeSymlink:
		e.LinkTarget = h.LinkName
	case h.HardLink:
		if hasDotDot(h.LinkName) {
			return unsafe(clean, "hard link to %q climbs out with \"..\"; refused", h.LinkName)
		}
		target := path.Clean("/" + h.LinkName)
		i, ok := local.lookup(target)
		if !ok || local.slots[i].file < 0 {
			return unsafe(clean, "hard link to %q, which is not an earlier regular file of this archive; refused", h.LinkName)
		}
		e.Type, e.LinkTarget, e.HardLink = pipeline.TypeFile, target, true
	}
	return e, true
}

// maxLabel bounds a header label kept for display.
const maxLabel = 256

// cleanLabel keeps a header label printable and short: it is shown to
// people and stored in reports, and the header that gave it is hostile.
func cleanLabel(s string) string {
	if len(s) > maxLabel {
		s = s[:maxLabel]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == utf8.RuneError {
			return '?'
		}
		return r
	}, strings.ToValidUTF8(s, "?"))
}

func hasDotDot(name string) bool {
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return true
		}
	}
	return false
}

// containerLimit is a limit that bounds one container: hitting it stops
// that container only.
type containerLimit struct{ *pipeline.LimitError }

// fileError is a failure to read one entry's bytes.
type fileError struct {
	e   *pipeline.Entry
	err error
}

func (f *fileError) Error() string { return fmt.Sprintf("reading %s: %v", f.e.Where(), f.err) }
func (f *fileError) Unwrap() error { return f.err }

var (
	bufPool  = sync.Pool{New: func() any { b := make([]byte, 128<<10); return &b }}
	headPool = sync.Pool{New: func() any { b := make([]byte, 0, pipeline.MatchSize); return &b }}
)

// hashAll hashes the pending files concurrently.
func (r *run) hashAll(ctx context.Context, files []pending, in input, chain []string) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(r.u.opts.Jobs)
	var produced atomic.Int64
	// Unreadable files are recorded after, in file order. They are few:
	// a slot for each of a large image's files would cost a pointer each.
	var (
		mu         sync.Mutex
		unreadable = map[int]*fileError{}
	)
	for i := range files {
		p := &files[i] // distinct elements: no two workers write one
		if p.skip || p.same >= 0 {
			continue
		}
		g.Go(func() error {
			// Nested containers hash at once; the run's slots keep the
			// files hashed at once to Jobs.
			select {
			case r.hashSlots <- struct{}{}:
			case <-gctx.Done():
				return gctx.Err()
			}
			defer func() { <-r.hashSlots }()
			err := r.hash(gctx, p, &produced, in)
			var fe *fileError
			if errors.As(err, &fe) && !in.top {
				mu.Lock()
				unreadable[i] = fe
				mu.Unlock()
				return nil
			}
			return err
		})
	}
	err := g.Wait()
	for _, i := range slices.Sorted(maps.Keys(unreadable)) {
		fe := unreadable[i]
		r.problem(pipeline.Problem{Kind: pipeline.ProblemCorrupt, Container: chain, Path: fe.e.Path, Reason: fe.Error()})
	}
	var cl *containerLimit
	if errors.As(err, &cl) {
		r.limitProblem(chain, "/", cl.LimitError)
		return nil
	}
	return err
}

// hashWriter hashes an entry's bytes (unless h is nil: Options.NoHash)
// while charging them to the limits and keeping the first bytes for format
// detection.
type hashWriter struct {
	r        *run
	e        *pipeline.Entry
	produced *atomic.Int64
	base     int64 // container input size, for the ratio limit; 0 disables it
	n        int64
	head     []byte
	h        interface {
		io.Writer
		Sum([]byte) []byte
	}
	// sigs watches a file that may be carved later; dropped for ELF.
	sigs *sigWatch
}

func (w *hashWriter) Write(b []byte) (int, error) {
	if len(w.head) < pipeline.MatchSize {
		k := min(len(b), pipeline.MatchSize-len(w.head))
		w.head = append(w.head, b[:k]...)
	}
	if w.sigs != nil {
		if len(w.head) >= len(elfMagic) && !w.r.mayHoldImage(w.e.Size, w.head) {
			w.sigs = nil
		} else {
			w.sigs.Write(b)
		}
	}
	w.n += int64(len(b))
	if w.n > w.e.Size {
		return 0, &fileError{w.e, fmt.Errorf("holds more than the %d bytes its header declares", w.e.Size)}
	}
	if err := w.r.addBytes(int64(len(b))); err != nil {
		return 0, err
	}
	lim := w.r.u.opts.Limits
	if p := w.produced.Add(int64(len(b))); w.base > 0 && p > lim.RatioMinBytes && float64(p) > lim.MaxRatio*float64(w.base) {
		return 0, &containerLimit{&pipeline.LimitError{Limit: "max-ratio", Value: int64(lim.MaxRatio),
			Msg: fmt.Sprintf("container of %d bytes yields more than %d bytes of files (over %.0f:1): a decompression bomb; the rest is not read", w.base, p, lim.MaxRatio)}}
	}
	if w.h == nil {
		return len(b), nil
	}
	return w.h.Write(b)
}

// hash reads the file p, records its digest in the index and whether it
// may hold a container.
func (r *run) hash(ctx context.Context, p *pending, produced *atomic.Int64, in input) error {
	e, open := r.index.ToHash(p.id)
	rc, err := open(ctx)
	if err != nil {
		if ctx.Err() != nil {
			// Stopped by another file's failure, not unreadable.
			return ctx.Err()
		}
		return &fileError{e, err}
	}
	defer rc.Close()
	base := in.size
	if in.ra == nil {
		base = 0
	}
	head := headPool.Get().(*[]byte)
	defer headPool.Put(head)
	w := &hashWriter{r: r, e: e, produced: produced, base: base, head: (*head)[:0]}
	if !r.u.opts.NoHash {
		w.h = sha256.New()
	}
	if e.Region == nil && r.mayHoldImage(e.Size, nil) {
		w.sigs = newSigWatch(r.u.sigs, r.u.sigReach)
	}
	buf := bufPool.Get().(*[]byte)
	defer bufPool.Put(buf)
	var dst io.Writer = w
	var out io.WriteCloser
	if r.u.opts.Sink != nil {
		if out, err = r.u.opts.Sink.Create(e); err != nil {
			return err
		}
		dst = io.MultiWriter(w, out)
	}
	_, err = io.CopyBuffer(dst, pipeline.ContextReader(ctx, rc), *buf)
	if out != nil {
		// A write the disk refused shows only at Close; it stops the
		// extraction like any other.
		if cerr := out.Close(); cerr != nil && err == nil {
			return cerr
		}
	}
	if err != nil {
		var fe *fileError
		var gl *globalLimit
		var cl *containerLimit
		if errors.As(err, &fe) || errors.As(err, &gl) || errors.As(err, &cl) || ctx.Err() != nil {
			return err
		}
		return &fileError{e, err}
	}
	if w.n != e.Size {
		return &fileError{e, fmt.Errorf("holds %d bytes, its header declares %d", w.n, e.Size)}
	}
	var sum []byte
	if w.h != nil {
		sum = w.h.Sum(nil)
	}
	r.index.Hashed(p.id, sum)
	noSignature := w.sigs != nil && !w.sigs.found
	p.nest = r.detect(w.head) != nil || e.Region == nil && !noSignature && r.mayHoldImage(e.Size, w.head)
	return nil
}

// nested unpacks a file that holds a container.
func (r *run) nested(ctx context.Context, e *pipeline.Entry, in input, chain []string) error {
	rc, err := e.Open(ctx)
	if err != nil {
		return err
	}
	var ra io.ReaderAt
	var size int64
	if s, ok := rc.(interface {
		io.ReaderAt
		Size() int64
	}); ok {
		ra, size = s, s.Size()
		r.mu.Lock()
		r.closers = append(r.closers, rc)
		r.mu.Unlock()
	} else {
		f, n, err := r.spill(ctx, rc, nil, append(chain, e.Path))
		rc.Close()
		if err != nil {
			return err
		}
		ra, size = f, n
	}
	next := input{
		ra: ra, size: size,
		chain:  append(chain, e.Path),
		keys:   append(in.keys[:len(in.keys):len(in.keys)], e.Path),
		depth:  in.depth + 1,
		carved: e.Region != nil,
	}
	err = r.container(ctx, next)
	if errors.Is(err, errNotContainer) {
		return nil
	}
	return err
}

// fatal picks out the failures of a nested container that stop the whole
// artifact: a cancelled context or a limit on the whole artifact. Any other
// stays with that container (nestedProblem).
func fatal(err error) error {
	var gl *globalLimit
	if errors.As(err, &gl) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

// nestedProblem records the failure of the nested container at p.
func (r *run) nestedProblem(err error, chain []string, p string) {
	var le *pipeline.LimitError
	if errors.As(err, &le) {
		r.limitProblem(chain, p, le)
		return
	}
	r.problem(pipeline.Problem{Kind: pipeline.ProblemCorrupt, Container: chain, Path: p, Reason: err.Error()})
}
