package analyze

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sort"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/fwvet/fwvet/pipeline"
)

// Bounds on the byte-level comparison of two same-size versions.
const (
	maxDiffRanges = 64
	// diffGap joins differing bytes closer than this into one range.
	diffGap = 8
)

// ScanChanges reads, once and concurrently, the bytes of every added,
// removed and modified regular file, on each side that has them, and
// returns what the analyzers need from them by change key.
func ScanChanges(ctx context.Context, changes []*pipeline.Change, jobs int) (map[string]*pipeline.Scan, error) {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(jobs, 1))
	var mu sync.Mutex
	scans := map[string]*pipeline.Scan{}
	type job struct {
		ch       *pipeline.Change
		old, cur *pipeline.Entry
		size     int64
	}
	var todo []job
	for _, ch := range changes {
		// A container's changes are those of what it holds; its own bytes
		// (compressed, packed) tell the analyzers nothing more.
		if ch.Kind == pipeline.ChangeMetadata || ch.Nested {
			continue
		}
		j := job{ch: ch, old: readable(ch.Old), cur: readable(ch.New)}
		for _, e := range []*pipeline.Entry{j.old, j.cur} {
			if e != nil {
				j.size += e.Size
			}
		}
		if j.old != nil || j.cur != nil {
			todo = append(todo, j)
		}
	}
	// Largest first, so that one big file does not finish last alone.
	sort.SliceStable(todo, func(a, b int) bool { return todo[a].size > todo[b].size })
	for _, j := range todo {
		ch, old, cur := j.ch, j.old, j.cur
		g.Go(func() error {
			s, err := scanChange(gctx, old, cur)
			if err != nil {
				return err
			}
			mu.Lock()
			scans[ch.Key] = s
			mu.Unlock()
			return nil
		})
	}
	return scans, g.Wait()
}

// readable is e if its bytes can be read, else nil.
func readable(e *pipeline.Entry) *pipeline.Entry {
	if e == nil || e.Type != pipeline.TypeFile || e.SHA256 == "" {
		return nil
	}
	return e
}

// scanChange profiles both sides in one pass, reading them in step so that
// two versions of the same size are compared as they are read.
func scanChange(ctx context.Context, old, cur *pipeline.Entry) (*pipeline.Scan, error) {
	s := &pipeline.Scan{}
	open := func(e *pipeline.Entry) (io.ReadCloser, *profiler, error) {
		if e == nil {
			return nil, nil, nil
		}
		rc, err := e.Open(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("reading %s: %w", e.Where(), err)
		}
		return rc, newProfiler(), nil
	}
	orc, op, err := open(old)
	if err != nil {
		return nil, err
	}
	if orc != nil {
		defer orc.Close()
	}
	nrc, np, err := open(cur)
	if err != nil {
		return nil, err
	}
	if nrc != nil {
		defer nrc.Close()
	}
	compare := old != nil && cur != nil && old.Size == cur.Size
	const chunk = 256 << 10
	var ob, nb []byte
	if op != nil {
		ob = make([]byte, chunk)
	}
	if np != nil {
		nb = make([]byte, chunk)
	}
	d := differ{}
	var off int64
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		on, oerr := fill(orc, ob)
		nn, nerr := fill(nrc, nb)
		if op != nil && on > 0 {
			op.Write(ob[:on])
		}
		if np != nil && nn > 0 {
			np.Write(nb[:nn])
		}
		if compare {
			d.compare(ob[:on], nb[:nn], off)
		}
		off += int64(max(on, nn))
		for _, e := range []struct {
			err error
			ent *pipeline.Entry
		}{{oerr, old}, {nerr, cur}} {
			if e.err != nil && e.err != io.EOF {
				return nil, fmt.Errorf("reading %s: %w", e.ent.Where(), e.err)
			}
		}
		if (orc == nil || oerr == io.EOF) && (nrc == nil || nerr == io.EOF) {
			break
		}
	}
	if op != nil {
		s.Old = op.finish()
	}
	if np != nil {
		s.New = np.finish()
	}
	if compare {
		s.Diff, s.DiffMany = d.ranges, d.many
	}
	return s, nil
}

// fill reads into b until it is full or the reader ends; a nil reader is at
// its end.
func fill(r io.Reader, b []byte) (int, error) {
	if r == nil {
		return 0, io.EOF
	}
	n, err := io.ReadFull(r, b)
	if err == io.ErrUnexpectedEOF {
		err = io.EOF
	}
	return n, err
}

// differ records the byte ranges where two same-size streams differ.
type differ struct {
	ranges []pipeline.Range
	many   bool
}

func (d *differ) compare(a, b []byte, off int64) {
	if d.many {
		return
	}
	n := min(len(a), len(b))
	for i := 0; i < n; {
		// Equal stretches are skipped a block at a time.
		if blk := min(i+512, n); bytes.Equal(a[i:blk], b[i:blk]) {
			i = blk
			continue
		}
		if a[i] == b[i] {
			i++
			continue
		}
		at := off + int64(i)
		if k := len(d.ranges) - 1; k >= 0 && at-(d.ranges[k].Off+d.ranges[k].Len) <= diffGap {
			d.ranges[k].Len = at - d.ranges[k].Off + 1
		} else {
			if len(d.ranges) == maxDiffRanges {
				d.ranges, d.many = nil, true
				return
			}
			d.ranges = append(d.ranges, pipeline.Range{Off: at, Len: 1})
		}
		i++
	}
}
