package uboot

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// A flattened device tree: a header, a structure block of tokens and a
// strings block of property names (devicetree specification, chapter 5).

var fdtMagic = []byte{0xd0, 0x0d, 0xfe, 0xed}

const (
	fdtHeaderLen = 40
	tokBeginNode = 1
	tokEndNode   = 2
	tokProp      = 3
	tokNop       = 4
	tokEnd       = 9

	// fdtMaxDepth bounds node nesting; libfdt's own bound is 64 and real
	// trees stay under 10.
	fdtMaxDepth = 32
	// fdtMaxName bounds a node name; the specification allows 31 characters
	// and a unit address.
	fdtMaxName = 256
	// fdtMaxStrings bounds the strings block read into memory.
	fdtMaxStrings = 1 << 20
	// fdtMaxKept bounds the image and hash nodes kept in memory.
	fdtMaxKept = 1 << 16
	// fdtMaxValue bounds a property value kept in memory; larger values
	// ("data") are kept as a region of the image.
	fdtMaxValue = 256
)

type fdtHeader struct {
	totalSize, offStruct, offStrings, version, lastComp, sizeStrings, sizeStruct uint32
}

// parseFDTHeader checks the header against itself: the blocks must lie in
// totalsize. Whether totalsize fits the input is the caller's business.
func parseFDTHeader(b []byte) (*fdtHeader, error) {
	if len(b) < fdtHeaderLen {
		return nil, fmt.Errorf("device tree header: %d bytes, want %d", len(b), fdtHeaderLen)
	}
	if !bytes.Equal(b[:4], fdtMagic) {
		return nil, fmt.Errorf("device tree header: bad magic % x", b[:4])
	}
	u := func(i int) uint32 { return binary.BigEndian.Uint32(b[4*i:]) }
	h := &fdtHeader{totalSize: u(1), offStruct: u(2), offStrings: u(3), version: u(5), lastComp: u(6), sizeStrings: u(8), sizeStruct: u(9)}
	switch {
	case h.version < 16:
		return nil, fmt.Errorf("device tree version %d predates 16", h.version)
	case h.lastComp > 17:
		return nil, fmt.Errorf("device tree is only compatible with version %d and later", h.lastComp)
	case h.totalSize < fdtHeaderLen:
		return nil, fmt.Errorf("device tree total size %d is smaller than its header", h.totalSize)
	case h.offStruct < fdtHeaderLen || h.offStruct%4 != 0 || h.offStruct >= h.totalSize:
		return nil, fmt.Errorf("device tree structure block offset %d is outside the %d byte tree", h.offStruct, h.totalSize)
	}
	if h.version < 17 {
		h.sizeStruct = h.totalSize - h.offStruct
	}
	if uint64(h.offStruct)+uint64(h.sizeStruct) > uint64(h.totalSize) {
		return nil, fmt.Errorf("device tree structure block of %d bytes at %d runs past the %d byte tree", h.sizeStruct, h.offStruct, h.totalSize)
	}
	if uint64(h.offStrings)+uint64(h.sizeStrings) > uint64(h.totalSize) || h.offStrings < fdtHeaderLen {
		return nil, fmt.Errorf("device tree strings block of %d bytes at %d is outside the %d byte tree", h.sizeStrings, h.offStrings, h.totalSize)
	}
	return h, nil
}

// fdtNode is a node kept from the tree: the root, /images, its image
// nodes and their hash nodes. Other nodes are checked and dropped.
type fdtNode struct {
	name     string
	props    map[string]fdtProp
	children []*fdtNode
}

// fdtProp is a kept property: its value when short, and where it lies.
type fdtProp struct {
	off, n int64
	val    []byte
}

// keep reports whether a node at the given depth under the kept parent is
// kept: /images at depth 1, its children, and their children.
func keep(parent *fdtNode, depth int, name string) bool {
	switch depth {
	case 1:
		return name == "images"
	case 2, 3:
		return parent != nil
	}
	return false
}

// errImages stops a head-only scan once /images is seen.
var errImages = errors.New("images node found")

// fdtParser walks the structure block.
type fdtParser struct {
	cur     cursor
	strings []byte
	// headOnly scans the bytes at hand for /images without names or values.
	headOnly bool
	kept     int
}

// parseFDT reads the tree in r (size bytes) described by h and returns its
// root with the kept nodes.
func parseFDT(ctx context.Context, r io.ReaderAt, size int64, h *fdtHeader) (*fdtNode, error) {
	if int64(h.totalSize) > size {
		return nil, fmt.Errorf("device tree of %d bytes is cut short at %d", h.totalSize, size)
	}
	if h.sizeStrings > fdtMaxStrings {
		return nil, fmt.Errorf("device tree strings block of %d bytes exceeds %d", h.sizeStrings, fdtMaxStrings)
	}
	p := &fdtParser{cur: cursor{r: r, pos: int64(h.offStruct), end: int64(h.offStruct) + int64(h.sizeStruct)}}
	p.strings = make([]byte, h.sizeStrings)
	if _, err := r.ReadAt(p.strings, int64(h.offStrings)); err != nil {
		return nil, fmt.Errorf("device tree strings block: %w", err)
	}
	return p.parse(ctx)
}

// hasImages reports whether the structure block, as far as head holds it,
// has an /images node.
func hasImages(head []byte, h *fdtHeader) bool {
	end := min(int64(h.offStruct)+int64(h.sizeStruct), int64(len(head)))
	p := &fdtParser{cur: cursor{r: bytes.NewReader(head), pos: int64(h.offStruct), end: end}, headOnly: true}
	_, err := p.parse(context.Background())
	return err == errImages
}

func (p *fdtParser) parse(ctx context.Context) (*fdtNode, error) {
	var (
		root  *fdtNode
		stack []*fdtNode // kept node at each depth, or nil
	)
	for tokens := 0; ; tokens++ {
		if tokens%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		at := p.cur.pos
		tok, err := p.cur.u32()
		if err != nil {
			return nil, fmt.Errorf("device tree token at %d: %w", at, err)
		}
		depth := len(stack)
		switch tok {
		case tokBeginNode:
			name, err := p.cur.cstring(fdtMaxName)
			if err != nil {
				return nil, fmt.Errorf("device tree node name at %d: %w", at+4, err)
			}
			if err := p.cur.align(); err != nil {
				return nil, err
			}
			var parent, n *fdtNode
			switch {
			case depth == 0 && root != nil:
				return nil, fmt.Errorf("device tree has a second root node at %d", at)
			case depth == 0:
				root = &fdtNode{name: name}
				n = root
			case depth >= fdtMaxDepth:
				return nil, fmt.Errorf("device tree nodes nest deeper than %d at %d", fdtMaxDepth, at)
			default:
				parent = stack[depth-1]
			}
			if parent != nil && keep(parent, depth, name) {
				if p.headOnly && depth == 1 {
					return nil, errImages
				}
				if p.kept++; p.kept > fdtMaxKept {
					return nil, fmt.Errorf("device tree has more than %d image and hash nodes", fdtMaxKept)
				}
				n = &fdtNode{name: name}
				parent.children = append(parent.children, n)
			}
			stack = append(stack, n)
		case tokEndNode:
			if depth == 0 {
				return nil, fmt.Errorf("device tree closes a node it did not open at %d", at)
			}
			stack = stack[:depth-1]
		case tokProp:
			if err := p.prop(stack, at); err != nil {
				return nil, err
			}
		case tokNop:
		case tokEnd:
			if root == nil || depth != 0 {
				return nil, fmt.Errorf("device tree ends at %d inside a node or before the root", at)
			}
			return root, nil
		default:
			return nil, fmt.Errorf("device tree has unknown token %#x at %d", tok, at)
		}
	}
}

func (p *fdtParser) prop(stack []*fdtNode, at int64) error {
	n, err := p.cur.u32()
	if err != nil {
		return fmt.Errorf("device tree property at %d: %w", at, err)
	}
	nameOff, err := p.cur.u32()
	if err != nil {
		return fmt.Errorf("device tree property at %d: %w", at, err)
	}
	if len(stack) == 0 {
		return fmt.Errorf("device tree property at %d is outside any node", at)
	}
	if int64(n) > p.cur.end-p.cur.pos {
		return fmt.Errorf("device tree property at %d of %d bytes runs past the structure block", at, n)
	}
	valOff := p.cur.pos
	node := stack[len(stack)-1]
	if p.headOnly || node == nil {
		return p.cur.skipAligned(int64(n))
	}
	if int(nameOff) >= len(p.strings) {
		return fmt.Errorf("device tree property at %d names string %d of a %d byte block", at, nameOff, len(p.strings))
	}
	name := p.strings[nameOff:]
	end := bytes.IndexByte(name, 0)
	if end < 0 {
		return fmt.Errorf("device tree property name at string %d is not terminated", nameOff)
	}
	key := string(name[:end])
	if _, dup := node.props[key]; dup {
		return fmt.Errorf("device tree node %q has property %q twice", node.name, key)
	}
	pr := fdtProp{off: valOff, n: int64(n)}
	switch key {
	case "data", "compression", "data-offset", "data-size", "data-position", "algo", "value", "type", "description":
	default:
		return p.cur.skipAligned(int64(n))
	}
	if n <= fdtMaxValue {
		if pr.val, err = p.cur.read(int(n)); err != nil {
			return err
		}
		pr.val = bytes.Clone(pr.val)
		if err := p.cur.align(); err != nil {
			return err
		}
	} else if err := p.cur.skipAligned(int64(n)); err != nil {
		return err
	}
	if node.props == nil {
		node.props = map[string]fdtProp{}
	}
	node.props[key] = pr
	return nil
}

// str is a string property's value, without its terminating NUL.
func (n *fdtNode) str(key string) (string, bool) {
	p, ok := n.props[key]
	if !ok || p.val == nil {
		return "", false
	}
	return string(bytes.TrimRight(p.val, "\x00")), true
}

// u32 is a one-cell property's value.
func (n *fdtNode) u32(key string) (uint32, bool, error) {
	p, ok := n.props[key]
	if !ok {
		return 0, false, nil
	}
	if len(p.val) != 4 {
		return 0, true, fmt.Errorf("property %q of node %q is %d bytes, not one cell", key, n.name, p.n)
	}
	return binary.BigEndian.Uint32(p.val), true, nil
}

func (n *fdtNode) child(name string) *fdtNode {
	for _, c := range n.children {
		if c.name == name {
			return c
		}
	}
	return nil
}

// cursor reads the structure block through a small window of r.
type cursor struct {
	r        io.ReaderAt
	pos, end int64
	buf      []byte
	bufOff   int64
}

// read returns the next n bytes (n at most 4096), valid until the next call.
func (c *cursor) read(n int) ([]byte, error) {
	if int64(n) > c.end-c.pos {
		return nil, fmt.Errorf("device tree structure block ends at %d, inside a %d byte field at %d", c.end, n, c.pos)
	}
	if c.pos < c.bufOff || c.pos+int64(n) > c.bufOff+int64(len(c.buf)) {
		want := min(int64(max(n, 4096)), c.end-c.pos)
		if cap(c.buf) < int(want) {
			c.buf = make([]byte, want)
		}
		c.buf = c.buf[:want]
		m, err := c.r.ReadAt(c.buf, c.pos)
		if m < n {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			c.buf = c.buf[:0]
			return nil, err
		}
		c.buf, c.bufOff = c.buf[:m], c.pos
	}
	b := c.buf[c.pos-c.bufOff : c.pos-c.bufOff+int64(n)]
	c.pos += int64(n)
	return b, nil
}

func (c *cursor) u32() (uint32, error) {
	b, err := c.read(4)
	if err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint32(b), nil
}

// cstring reads a NUL-terminated string of at most max bytes.
func (c *cursor) cstring(max int) (string, error) {
	var s []byte
	for len(s) <= max {
		b, err := c.read(1)
		if err != nil {
			return "", err
		}
		if b[0] == 0 {
			return string(s), nil
		}
		s = append(s, b[0])
	}
	return "", fmt.Errorf("longer than %d bytes", max)
}

func (c *cursor) align() error { return c.skip((4 - c.pos%4) % 4) }

func (c *cursor) skip(n int64) error {
	if n > c.end-c.pos {
		return fmt.Errorf("device tree structure block ends at %d, inside a %d byte value at %d", c.end, n, c.pos)
	}
	c.pos += n
	return nil
}

func (c *cursor) skipAligned(n int64) error {
	if err := c.skip(n); err != nil {
		return err
	}
	return c.align()
}
