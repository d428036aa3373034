package jffs2

import (
	"cmp"
	"container/heap"
	"slices"
)

// frag is a range of a file's bytes and the node that holds them, or -1
// for a hole that reads as zeros.
type frag struct {
	start, end int64
	node       int
}

// layout decides which node owns each byte of a file, replaying its nodes
// in version order: each writes its range, then sets the size to its isize,
// so a truncation hides the older data past it even if the file later
// grows again. nodes must be sorted by version.
//
// It returns the file size and the fragments covering it in order; a
// stretch no node covers is a hole on a healthy image, lost nodes on a
// damaged one.
func layout(nodes []dnode) (size int64, frags []frag) {
	if len(nodes) == 0 {
		return 0, nil
	}
	// cut[i] is the smallest size any node from version i on has set.
	cut := make([]int64, len(nodes))
	m := int64(nodes[len(nodes)-1].isize)
	for i := len(nodes) - 1; i >= 0; i-- {
		m = min(m, int64(nodes[i].isize))
		cut[i] = m
	}
	size = int64(nodes[len(nodes)-1].isize)

	type span struct {
		a, b int64
		n    int
	}
	var spans []span
	for i, n := range nodes {
		if n.badData {
			continue
		}
		a := int64(n.offset)
		b := min(a+int64(n.dsize), cut[i])
		if b > a {
			spans = append(spans, span{a, b, i})
		}
	}
	slices.SortFunc(spans, func(x, y span) int { return cmp.Compare(x.a, y.a) })
	points := make([]int64, 0, 2*len(spans)+2)
	points = append(points, 0, size)
	for _, s := range spans {
		points = append(points, s.a, s.b)
	}
	slices.Sort(points)
	points = slices.Compact(points)

	// Sweep the boundaries; the live span of the highest version owns each
	// stretch between two of them. Spans that ended stay in the heap until
	// they reach its top.
	h := &spanHeap{}
	next := 0
	for k := 0; k+1 < len(points) && points[k] < size; k++ {
		p, q := points[k], min(points[k+1], size)
		for next < len(spans) && spans[next].a <= p {
			heap.Push(h, spanRef{n: spans[next].n, end: spans[next].b})
			next++
		}
		for h.Len() > 0 && (*h)[0].end <= p {
			heap.Pop(h)
		}
		owner := -1
		if h.Len() > 0 {
			owner = (*h)[0].n
		}
		if l := len(frags); l > 0 && frags[l-1].node == owner && frags[l-1].end == p {
			frags[l-1].end = q
		} else {
			frags = append(frags, frag{start: p, end: q, node: owner})
		}
	}
	return size, frags
}

type spanRef struct {
	n   int // index of the node, so also its rank in version order
	end int64
}

// spanHeap is a max-heap on the node's rank.
type spanHeap []spanRef

func (h spanHeap) Len() int           { return len(h) }
func (h spanHeap) Less(i, j int) bool { return h[i].n > h[j].n }
func (h spanHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *spanHeap) Push(x any)        { *h = append(*h, x.(spanRef)) }
func (h *spanHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
