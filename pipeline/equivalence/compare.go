package equivalence

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/sirupsen/logrus"

	"github.com/fwvet/fwvet/pipeline"
	"github.com/fwvet/fwvet/pipeline/diff"
)

// Defaults of Options.
const (
	// DefaultMaxFileBytes bounds the bytes of one file the rules read; a
	// larger file is compared by its hash only.
	DefaultMaxFileBytes = 16 << 20
	// DefaultMaxRanges bounds the differing ranges reported per file.
	DefaultMaxRanges = 64
)

// Options say what to compare.
type Options struct {
	// Shipped and Rebuilt are the unpacked trees; Compare does not close them.
	Shipped, Rebuilt *pipeline.Tree
	// ShippedSubject and RebuiltSubject name both sides (reference, digest, size).
	ShippedSubject, RebuiltSubject pipeline.Subject
	// ShippedPath and RebuiltPath, when set, are the image files, whose
	// headers are read to describe a differing top-level container.
	ShippedPath, RebuiltPath string
	// Provenance is the path of the rebuild's provenance document, if any.
	Provenance string
	Tool       pipeline.Tool
	// Rules default to Rules().
	Rules []Rule
	// MaxFileBytes defaults to DefaultMaxFileBytes; MaxRanges to DefaultMaxRanges.
	MaxFileBytes int64
	MaxRanges    int
	Log          logrus.FieldLogger
}

// Compare classes every file of both trees and reaches a verdict.
func Compare(ctx context.Context, o Options) (*Report, error) {
	if o.Shipped == nil || o.Rebuilt == nil {
		return nil, errors.New("equivalence: both trees are needed")
	}
	if o.Rules == nil {
		o.Rules = Rules()
	}
	if o.MaxFileBytes <= 0 {
		o.MaxFileBytes = DefaultMaxFileBytes
	}
	if o.MaxRanges <= 0 {
		o.MaxRanges = DefaultMaxRanges
	}
	if o.Log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		o.Log = l
	}
	rep := &Report{
		Schema: Schema, Tool: o.Tool,
		Shipped:     side(o.ShippedSubject, o.Shipped),
		Rebuilt:     side(o.RebuiltSubject, o.Rebuilt),
		RulesDigest: RulesDigest(o.Rules), Rules: ruleInfos(o.Rules),
		Summary: map[Class]int{},
	}
	if o.Provenance != "" {
		pv, err := provenance(o.Provenance)
		if err != nil {
			return nil, &pipeline.InputError{Role: "provenance", Ref: o.Provenance, Err: err}
		}
		rep.Provenance = pv
	}
	c := &comparison{o: o, rep: rep, byShipped: map[string]*File{}, byRebuilt: map[string]*File{},
		sFormats: formats(o.Shipped), rFormats: formats(o.Rebuilt)}
	same := o.ShippedSubject.Digest != "" && o.ShippedSubject.Digest == o.RebuiltSubject.Digest
	if same {
		for e := range o.Rebuilt.All() {
			c.add(&File{Class: ClassIdentical, Container: e.Container, Path: e.Path, Type: string(e.Type),
				Shipped: facts(e), Rebuilt: facts(e), shippedKey: e.Key, rebuiltKey: e.Key})
		}
	} else if err := c.run(ctx); err != nil {
		return nil, err
	}
	c.finish()
	return rep, nil
}

type comparison struct {
	o   Options
	rep *Report
	// byShipped and byRebuilt index the records that are not identical by
	// their entry keys on each side.
	byShipped, byRebuilt map[string]*File
	sFormats, rFormats   map[string]string
	// pending are the paired entries that differ, to be classed.
	pending []pending
	// broken says why a side could not be read in full.
	broken []string
	// uids and gids map each shipped owner to the rebuilt owners of the
	// paired entries: a rebuild run by another user changes every owner
	// alike, while one file's new owner is a change of its own.
	uids, gids map[uint32]map[uint32]bool
}

func (c *comparison) owner(m map[uint32]map[uint32]bool, old, nw uint32) {
	if m[old] == nil {
		m[old] = map[uint32]bool{}
	}
	m[old][nw] = true
}

// unreadError says that a container differs because a part of it could
// not be read: it is opaque or limit-hit, not unexplained.
type unreadError struct {
	class  Class
	reason string
}

func (u *unreadError) Error() string { return u.reason }

type pending struct {
	f  *File
	ch *pipeline.Change
}

func side(s pipeline.Subject, t *pipeline.Tree) Side {
	return Side{Subject: s, Entries: t.Len(), Problems: len(t.Problems), Incomplete: t.Incomplete}
}

func provenance(path string) (*Provenance, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return nil, err
	}
	return &Provenance{Path: path, Digest: "sha256:" + hex.EncodeToString(h.Sum(nil)), Size: n}, nil
}

func facts(e *pipeline.Entry) *Facts {
	if e == nil {
		return nil
	}
	return &Facts{SHA256: e.SHA256, Size: e.Size, Mode: fmt.Sprintf("%04o", e.Mode), UID: e.UID, GID: e.GID, LinkTarget: e.LinkTarget}
}

// formats maps every nested container's key to the formats it was opened
// as; "" is the top-level image.
func formats(t *pipeline.Tree) map[string]string {
	out := map[string]string{}
	for e := range t.All() {
		parent := ""
		if i := strings.LastIndexByte(e.Key, 0); i >= 0 {
			parent = e.Key[:i]
		}
		if _, ok := out[parent]; ok {
			continue
		}
		i := len(e.Container)
		for i > 1 && !strings.HasPrefix(e.Container[i-1], "/") {
			i--
		}
		out[parent] = strings.Join(e.Container[i:], " ")
	}
	return out
}

func (c *comparison) add(f *File) {
	c.rep.Files = append(c.rep.Files, f)
	if f.Class == ClassIdentical {
		return
	}
	if f.shippedKey != "" {
		c.byShipped[f.shippedKey] = f
	}
	if f.rebuiltKey != "" {
		c.byRebuilt[f.rebuiltKey] = f
	}
}

func (c *comparison) run(ctx context.Context) error {
	o := c.o
	p := diff.Pair(o.Shipped, o.Rebuilt)
	changes := p.Changes()
	changedR := map[string]bool{}
	for _, ch := range changes {
		switch ch.Kind {
		case pipeline.ChangeRemoved:
			c.add(&File{Class: ClassOnlyShipped, Container: ch.Old.Container, Path: ch.Old.Path, Type: string(ch.Old.Type),
				Shipped: facts(ch.Old), shippedKey: ch.Old.Key, MovedTo: ch.MovedTo, nested: ch.Nested})
		case pipeline.ChangeAdded:
			changedR[ch.New.Key] = true
			c.add(&File{Class: ClassOnlyRebuilt, Container: ch.New.Container, Path: ch.New.Path, Type: string(ch.New.Type),
				Rebuilt: facts(ch.New), rebuiltKey: ch.New.Key, MovedFrom: ch.MovedFrom, nested: ch.Nested})
		default:
			changedR[ch.New.Key] = true
			f := &File{Class: ClassUnexplained, Container: ch.New.Container, Path: ch.New.Path, Type: string(ch.New.Type),
				Shipped: facts(ch.Old), Rebuilt: facts(ch.New), shippedKey: ch.Old.Key, rebuiltKey: ch.New.Key, nested: ch.Nested}
			c.add(f)
			c.pending = append(c.pending, pending{f, ch})
		}
	}
	for e := range o.Rebuilt.All() {
		if !changedR[e.Key] {
			c.add(&File{Class: ClassIdentical, Container: e.Container, Path: e.Path, Type: string(e.Type),
				Shipped: facts(e), Rebuilt: facts(e), rebuiltKey: e.Key})
		}
	}
	// Parts either side could not read.
	rp := diff.Pair(o.Rebuilt, o.Shipped)
	for _, pr := range o.Shipped.Problems {
		if !rp.Unchanged(pr) {
			c.problem(pr, true)
		}
	}
	for _, pr := range o.Rebuilt.Problems {
		if !p.Unchanged(pr) {
			c.problem(pr, false)
		}
	}
	if o.Shipped.Incomplete {
		c.broken = append(c.broken, "the shipped image was only partly unpacked")
	}
	if o.Rebuilt.Incomplete {
		c.broken = append(c.broken, "the rebuilt image was only partly unpacked")
	}
	c.uids, c.gids = map[uint32]map[uint32]bool{}, map[uint32]map[uint32]bool{}
	for _, f := range c.rep.Files {
		if f.Class == ClassIdentical {
			c.owner(c.uids, f.Rebuilt.UID, f.Rebuilt.UID)
			c.owner(c.gids, f.Rebuilt.GID, f.Rebuilt.GID)
		}
	}
	for _, pd := range c.pending {
		c.owner(c.uids, pd.ch.Old.UID, pd.ch.New.UID)
		c.owner(c.gids, pd.ch.Old.GID, pd.ch.New.GID)
	}
	// Children before the containers that hold them.
	depth := func(k string) int { return strings.Count(k, "\x00") }
	slices.SortStableFunc(c.pending, func(a, b pending) int { return depth(b.f.shippedKey) - depth(a.f.shippedKey) })
	for _, pd := range c.pending {
		if err := c.class(ctx, pd.f, pd.ch); err != nil {
			return err
		}
	}
	return c.top(ctx)
}

// problem records a part of one side that could not be read.
func (c *comparison) problem(pr pipeline.Problem, shipped bool) {
	key := pr.Path
	if ck := pipeline.ChainKey(pr.Container); ck != "" {
		key = ck + "\x00" + pr.Path
	}
	class := ClassOpaque
	if pr.Kind == pipeline.ProblemLimit {
		class = ClassLimitHit
	}
	name := "rebuilt"
	index := c.byRebuilt
	if shipped {
		name, index = "shipped", c.byShipped
	}
	reason := fmt.Sprintf("%s: %s: %s", name, pr.Kind, pr.Reason)
	if pr.Limit != "" {
		reason = fmt.Sprintf("%s: limit %s: %s", name, pr.Limit, pr.Reason)
	}
	if f := index[key]; f != nil {
		f.Class = class
		f.Reason = joinReason(f.Reason, reason)
		return
	}
	f := &File{Class: class, Container: pr.Container, Path: pr.Path, Reason: reason}
	if shipped {
		f.shippedKey = key
	} else {
		f.rebuiltKey = key
	}
	c.add(f)
}

func joinReason(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// class classes a paired entry that differs.
func (c *comparison) class(ctx context.Context, f *File, ch *pipeline.Change) error {
	old, nw := ch.Old, ch.New
	diffs := &Differences{}
	var applied []Applied
	content := false
	for _, fl := range ch.Fields {
		switch fl {
		case "content":
			content = true
		case "uid":
			if len(c.uids[old.UID]) > 1 {
				diffs.Fields = append(diffs.Fields, fl)
				diffs.NotExplained = append(diffs.NotExplained, fmt.Sprintf("owner uid %d → %d: other entries owned by %d keep their owner", old.UID, nw.UID, old.UID))
			}
		case "gid":
			if len(c.gids[old.GID]) > 1 {
				diffs.Fields = append(diffs.Fields, fl)
				diffs.NotExplained = append(diffs.NotExplained, fmt.Sprintf("group gid %d → %d: other entries of group %d keep their group", old.GID, nw.GID, old.GID))
			}
		case "label":
			// Header names are container metadata; owners changed alike are too.
		default:
			diffs.Fields = append(diffs.Fields, fl)
		}
	}
	if old.UID != nw.UID || old.GID != nw.GID || old.Label != nw.Label {
		ap := Applied{ID: "container-metadata", Ranges: [][2]int64{}}
		ap.Before = append(ap.Before, fmt.Sprintf("owner %d:%d", old.UID, old.GID))
		ap.After = append(ap.After, fmt.Sprintf("owner %d:%d", nw.UID, nw.GID))
		if old.Label != nw.Label {
			ap.Before[0] += fmt.Sprintf(" label %q", old.Label)
			ap.After[0] += fmt.Sprintf(" label %q", nw.Label)
		}
		applied = append(applied, ap)
	}
	if old.Mode != nw.Mode {
		diffs.NotExplained = append(diffs.NotExplained, fmt.Sprintf("permission bits %04o → %04o are never explained", old.Mode, nw.Mode))
	}
	explained := len(diffs.Fields) == 0
	bytesExplained := false
	if content && old.Type == pipeline.TypeFile && nw.Type == pipeline.TypeFile {
		if old.SHA256 == "" || nw.SHA256 == "" {
			f.Class, f.Reason = ClassLimitHit, "its bytes were not read in full on both sides (see the unpack problems)"
			return nil
		}
		res, limit, err := c.explainContent(ctx, f, old, nw, diffs)
		var ue *unreadError
		if errors.As(err, &ue) {
			f.Class, f.Reason = ue.class, "a container that could not be read in full: "+ue.reason
			return nil
		}
		if err != nil {
			return err
		}
		if limit != "" {
			f.Class, f.Reason = ClassLimitHit, limit
			return nil
		}
		if res.Explained {
			applied = append(applied, res.Applied...)
			f.NormalizedShipped, f.NormalizedRebuilt = res.NormalizedShipped, res.NormalizedRebuilt
			bytesExplained = true
		} else {
			explained = false
		}
	} else if content {
		explained = false
	}
	if explained {
		f.Class, f.Rules = ClassExplained, applied
		if f.NormalizedShipped == "" && old.SHA256 != "" {
			f.NormalizedShipped, f.NormalizedRebuilt = "sha256:"+old.SHA256, "sha256:"+nw.SHA256
		}
		return nil
	}
	f.Class = ClassUnexplained
	f.Differences = diffs
	f.HoldsDifferences = f.nested && len(diffs.Fields) == 0 && c.holdsDifferences(old, nw)
	if bytesExplained {
		// The rules' evidence for the bytes, though the file stays unexplained.
		f.Rules = applied
	}
	var parts []string
	if len(diffs.Fields) > 0 {
		parts = append(parts, "differs in "+strings.Join(diffs.Fields, ", "))
	}
	if content && !bytesExplained {
		parts = append(parts, "no rule explains its bytes")
	}
	f.Reason = strings.Join(parts, "; ")
	if f.HoldsDifferences {
		// Its bytes differ because its entries do: they say what and where.
		st := c.children(old.Key, c.byShipped)
		if st.match {
			st = c.children(nw.Key, c.byRebuilt)
		}
		f.Reason = "a container that differs because entries in it do: " + st.reason
		f.Differences = &Differences{NotExplained: diffs.NotExplained}
	}
	return nil
}

// explainContent runs the rules over two differing regular files. limit,
// when set, says why the file is limit-hit.
func (c *comparison) explainContent(ctx context.Context, f *File, old, nw *pipeline.Entry, diffs *Differences) (Result, string, error) {
	sIn, err := c.input(ctx, old, c.sFormats, c.byShipped, f.nested)
	if err != nil {
		return Result{}, "", err
	}
	rIn, err := c.input(ctx, nw, c.rFormats, c.byRebuilt, f.nested)
	if err != nil {
		return Result{}, "", err
	}
	if sIn == nil || rIn == nil {
		return Result{}, "its bytes could not be read again", nil
	}
	if sIn.Data == nil && rIn.Data == nil && !f.nested && sIn.Size == rIn.Size && isELF(sIn.Head) && isELF(rIn.Head) {
		// Too large to hold: the ELF rule streams it.
		res, d, err := largeELF(ctx, sIn, rIn)
		switch {
		case errors.Is(err, ErrLimit):
			return Result{}, "elf-build-id: the differing bytes are too many to keep", nil
		case err != nil:
			return Result{}, "", err
		case res.Explained:
			return res, "", nil
		case d != nil:
			*diffs = Differences{Fields: diffs.Fields, NotExplained: append(diffs.NotExplained, res.Reason),
				Ranges: d.Ranges, Truncated: d.Truncated, DifferingBytes: d.DifferingBytes, Sections: d.Sections, Functions: d.Functions}
			return Result{}, "", nil
		}
		diffs.NotExplained = append(diffs.NotExplained, res.Reason)
	}
	for _, r := range c.o.Rules {
		res, err := r.Explain(ctx, sIn, rIn)
		if errors.Is(err, ErrLimit) {
			return Result{}, fmt.Sprintf("rule %s stopped at its work limit", r.ID()), nil
		}
		if err != nil {
			return Result{}, "", err
		}
		if res.Explained {
			return res, "", nil
		}
		if res.Reason != "" {
			diffs.NotExplained = append(diffs.NotExplained, res.Reason)
		}
	}
	if res, ok := compose(c.o.Rules, sIn, rIn); ok {
		return res, "", nil
	}
	if u := cmp.Or(sIn.unread, rIn.unread); u != "" {
		return Result{}, "", &unreadError{u, cmp.Or(sIn.ChildrenReason, rIn.ChildrenReason)}
	}
	if sIn.Data == nil || rIn.Data == nil {
		if !f.nested {
			return Result{}, fmt.Sprintf("larger than %d bytes: compared by hash only, and the hashes differ", c.o.MaxFileBytes), nil
		}
		return Result{}, "", nil
	}
	diffs.Ranges, diffs.Truncated, diffs.DifferingBytes = diffRanges(sIn.Data, rIn.Data, c.o.MaxRanges)
	if isELF(sIn.Data) {
		all, _, _ := diffRanges(sIn.Data, rIn.Data, 1<<20)
		diffs.Sections, diffs.Functions = elfWhere(sIn.Data, all)
	}
	return Result{}, "", nil
}

// input reads one side of a differing file for the rules. It returns nil
// when the bytes could not be read.
func (c *comparison) input(ctx context.Context, e *pipeline.Entry, fm map[string]string, index map[string]*File, nested bool) (*Input, error) {
	in := &Input{Path: e.Path, Size: e.Size, SHA256: e.SHA256, Mode: e.Mode & pipeline.ModePerm, Open: e.Open, Region: e.Region}
	if nested {
		in.Container = fm[e.Key]
		st := c.children(e.Key, index)
		in.ChildrenMatch, in.ChildrenReason, in.ChildrenDigest = st.match, st.reason, st.digest
		if st.unread {
			in.unread = st.class
		}
	}
	if !e.Readable() {
		return nil, nil
	}
	rc, err := e.Open(ctx)
	if err != nil {
		c.o.Log.WithError(err).WithField("path", e.Where()).Warn("reading a file again")
		return nil, nil
	}
	defer rc.Close()
	r := pipeline.ContextReader(ctx, rc)
	if e.Size > c.o.MaxFileBytes {
		head := make([]byte, HeadSize)
		n, err := io.ReadFull(r, head)
		if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, nil
		}
		in.Head = head[:n]
		return in, nil
	}
	data, err := io.ReadAll(io.LimitReader(r, c.o.MaxFileBytes+1))
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, nil
	}
	if int64(len(data)) > c.o.MaxFileBytes {
		in.Head = data[:HeadSize]
		return in, nil
	}
	in.Data = data
	in.Head = data[:min(len(data), HeadSize)]
	return in, nil
}

// childState is what the records inside a container of one side say.
type childState struct {
	match  bool
	reason string
	digest string
	// unread reports that every entry that does not match is opaque or
	// limit-hit: the container could not be read in full, rather than differ.
	unread bool
	class  Class
}

// children checks the records inside a container of one side: every one
// must be identical or explained.
func (c *comparison) children(key string, index map[string]*File) childState {
	prefix := key + "\x00"
	if key == "" {
		prefix = ""
	}
	var bad []*File
	var keys []string
	for k, f := range index {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
			if f.Class != ClassIdentical && f.Class != ClassExplained {
				bad = append(bad, f)
			}
		}
	}
	slices.Sort(keys)
	h := sha256.New()
	for _, k := range keys {
		f := index[k]
		fmt.Fprintf(h, "%q %s %s %s\n", strings.TrimPrefix(k, prefix), f.Class, f.NormalizedShipped, f.NormalizedRebuilt)
	}
	st := childState{match: len(bad) == 0, digest: "sha256:" + hex.EncodeToString(h.Sum(nil))}
	if st.match {
		return st
	}
	slices.SortFunc(bad, func(a, b *File) int {
		if d := classRank(a.Class) - classRank(b.Class); d != 0 {
			return d
		}
		return strings.Compare(a.Where(), b.Where())
	})
	st.class = bad[0].Class
	st.unread = st.class == ClassOpaque || st.class == ClassLimitHit
	st.reason = fmt.Sprintf("%d %s in it %s not identical or explained (%s: %s)", len(bad), plural(len(bad), "entry", "entries"),
		plural(len(bad), "is", "are"), bad[0].Where(), bad[0].Class)
	return st
}

// holdsDifferences reports whether a container of both sides holds an
// entry that is not identical or explained.
func (c *comparison) holdsDifferences(old, nw *pipeline.Entry) bool {
	return !c.children(old.Key, c.byShipped).match || !c.children(nw.Key, c.byRebuilt).match
}

// top classes the two images themselves when their bytes differ.
func (c *comparison) top(ctx context.Context) error {
	o := c.o
	name := o.RebuiltSubject.Ref
	if name == "" {
		name = o.ShippedSubject.Ref
	}
	f := &File{Path: filepath.Base(name), Container: []string{}, Type: string(pipeline.TypeFile),
		Shipped: &Facts{SHA256: strings.TrimPrefix(o.ShippedSubject.Digest, "sha256:"), Size: o.ShippedSubject.Size},
		Rebuilt: &Facts{SHA256: strings.TrimPrefix(o.RebuiltSubject.Digest, "sha256:"), Size: o.RebuiltSubject.Size}}
	sf, rf := c.sFormats[""], c.rFormats[""]
	mk := func(fm string, sub pipeline.Subject, path string, index map[string]*File) *Input {
		in := &Input{Path: f.Path, Size: sub.Size, SHA256: sub.Digest, Container: fm}
		st := c.children("", index)
		in.ChildrenMatch, in.ChildrenReason, in.ChildrenDigest = st.match, st.reason, st.digest
		if st.unread {
			in.unread = st.class
		}
		if len(c.broken) > 0 {
			in.ChildrenMatch, in.ChildrenReason = false, c.broken[0]
		}
		if path != "" {
			in.Open = func(context.Context) (io.ReadCloser, error) { return os.Open(path) }
			if fh, err := os.Open(path); err == nil {
				// An image within the per-file limit is held whole, as a
				// nested file is: the rules that read records in place
				// (zip, ext4) need it.
				if sub.Size > 0 && sub.Size <= c.o.MaxFileBytes {
					b := make([]byte, sub.Size)
					n, _ := io.ReadFull(fh, b)
					if n == len(b) {
						in.Data = b
					}
					in.Head = b[:min(n, HeadSize)]
				} else {
					head := make([]byte, HeadSize)
					n, _ := io.ReadFull(fh, head)
					in.Head = head[:n]
				}
				fh.Close()
			}
		}
		return in
	}
	sIn := mk(sf, o.ShippedSubject, o.ShippedPath, c.byShipped)
	rIn := mk(rf, o.RebuiltSubject, o.RebuiltPath, c.byRebuilt)
	if sf == "" || rf == "" {
		// Not a container fwvet opened: the entries were the whole story.
		if len(c.rep.Files) > 0 {
			return nil
		}
		f.Class, f.Reason = ClassUnexplained, "the images differ and could not be unpacked"
		c.add(f)
		return nil
	}
	diffs := &Differences{}
	limited := ""
	for _, r := range o.Rules {
		res, err := r.Explain(ctx, sIn, rIn)
		if errors.Is(err, ErrLimit) {
			limited = cmp.Or(limited, fmt.Sprintf("rule %s stopped at its work limit (the image is over %d bytes)", r.ID(), c.o.MaxFileBytes))
			continue
		}
		if err != nil {
			return err
		}
		if res.Explained {
			f.Class, f.Rules = ClassExplained, res.Applied
			f.NormalizedShipped, f.NormalizedRebuilt = res.NormalizedShipped, res.NormalizedRebuilt
			c.add(f)
			return nil
		}
		if res.Reason != "" {
			diffs.NotExplained = append(diffs.NotExplained, res.Reason)
		}
	}
	// What differs inside is reported by the entries; the image itself
	// follows from them.
	f.Class = ClassUnexplained
	switch {
	case len(c.broken) > 0:
		f.Class = ClassOpaque
		f.Reason = strings.Join(c.broken, "; ")
	case cmp.Or(sIn.unread, rIn.unread) != "":
		f.Class = cmp.Or(sIn.unread, rIn.unread)
		f.Reason = "an image that could not be read in full: " + cmp.Or(sIn.ChildrenReason, rIn.ChildrenReason)
	case !sIn.ChildrenMatch:
		f.Reason, f.HoldsDifferences = "the images differ: "+sIn.ChildrenReason, true
	case !rIn.ChildrenMatch:
		f.Reason, f.HoldsDifferences = "the images differ: "+rIn.ChildrenReason, true
	case limited != "":
		// Every entry matches, and the rule that could tell whether the
		// rest is only metadata could not run: neither a pass nor a
		// difference.
		f.Class, f.Reason = ClassLimitHit, limited
	default:
		f.Reason = "the images differ"
	}
	f.Differences = diffs
	c.add(f)
	return nil
}

// finish sorts the files, counts them and reaches the verdict.
func (c *comparison) finish() {
	rep := c.rep
	slices.SortStableFunc(rep.Files, func(a, b *File) int {
		if d := classRank(a.Class) - classRank(b.Class); d != 0 {
			return d
		}
		if a.HoldsDifferences != b.HoldsDifferences {
			if b.HoldsDifferences {
				return -1 // the differences themselves before what holds them
			}
			return 1
		}
		if d := strings.Compare(strings.Join(a.Container, "\x00"), strings.Join(b.Container, "\x00")); d != 0 {
			return d
		}
		return strings.Compare(a.Path, b.Path)
	})
	for _, f := range rep.Files {
		rep.Summary[f.Class]++
	}
	n := rep.Summary
	unreadable := n[ClassOpaque] + n[ClassLimitHit]
	held := 0
	for _, f := range rep.Files {
		if f.HoldsDifferences {
			held++
		}
	}
	switch {
	case n[ClassUnexplained]-held > 0:
		rep.Verdict = VerdictNotEquivalent
	case unreadable > 0 || len(c.broken) > 0:
		rep.Verdict = VerdictInconclusive
	case n[ClassOnlyShipped]+n[ClassOnlyRebuilt]+n[ClassUnexplained] > 0:
		rep.Verdict = VerdictNotEquivalent
	case n[ClassExplained] > 0:
		rep.Verdict = VerdictEquivalent
	default:
		rep.Verdict = VerdictBitIdentical
	}
	add := func(k Class, what string) {
		if n[k] > 0 {
			rep.Reasons = append(rep.Reasons, fmt.Sprintf("%d %s %s", n[k], plural(n[k], "file", "files"), what))
		}
	}
	if k := n[ClassUnexplained] - held; k > 0 {
		rep.Reasons = append(rep.Reasons, fmt.Sprintf("%d %s in ways no rule explains", k, plural(k, "file differs", "files differ")))
	}
	if held > 0 {
		rep.Reasons = append(rep.Reasons, fmt.Sprintf("%d %s only because of the entries in %s", held,
			plural(held, "container differs", "containers differ"), plural(held, "it", "them")))
	}
	add(ClassOnlyShipped, "only in the shipped image")
	add(ClassOnlyRebuilt, "only in the rebuilt image")

	if n[ClassOpaque] > 0 {
		rep.Reasons = append(rep.Reasons, fmt.Sprintf("%d %s could not be unpacked or read", n[ClassOpaque], plural(n[ClassOpaque], "part", "parts")))
	}
	if k := n[ClassLimitHit]; k > 0 {
		rep.Reasons = append(rep.Reasons, fmt.Sprintf("%d %s a limit and could not be compared", k, plural(k, "file hit", "files hit")))
	}
	rep.Reasons = append(rep.Reasons, c.broken...)
	if k := n[ClassExplained]; k > 0 {
		rep.Reasons = append(rep.Reasons, fmt.Sprintf("%d %s only as the named rules explain", k, plural(k, "file differs", "files differ")))
	}
	if rep.Verdict == VerdictBitIdentical {
		rep.Reasons = append(rep.Reasons, "both images hold the same bytes")
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
