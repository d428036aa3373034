package pipeline

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
)

// TestIndexRoundTrip: every field of an entry comes back as it went in,
// in key order, whatever is unusual about it, and the opener with it.
func TestIndexRoundTrip(t *testing.T) {
	outer := []string{"fw-1.0.1.bin", "squashfs"}
	inner := []string{"fw-1.0.1.bin", "squashfs", "/usr/lib/app-1.0.1.jar", "zip"}
	sum := strings.Repeat("ab", 32)
	opened := func(ctx context.Context) (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("x")), nil }
	in := []*Entry{
		{Key: "/usr/lib/app-1.0.1.jar\x00/META-INF/MANIFEST.MF", Path: "/META-INF/MANIFEST.MF", Container: inner,
			Type: TypeFile, Mode: 0o644, Size: 120, SHA256: sum},
		{Key: "/bin/busybox", Path: "/bin/busybox", Container: outer, Type: TypeFile, Mode: 0o4755, UID: 0, GID: 1000,
			Size: 1 << 40, SHA256: sum},
		{Key: "/bin/sh", Path: "/bin/sh", Container: outer, Type: TypeSymlink, Mode: 0o777, LinkTarget: "busybox"},
		{Key: "/bin/ash", Path: "/bin/ash", Container: outer, Type: TypeFile, Mode: 0o755, Size: 3, SHA256: sum,
			LinkTarget: "/bin/busybox", HardLink: true},
		{Key: "/dev/console", Path: "/dev/console", Container: outer, Type: TypeChar, Mode: 0o600, Major: 5, Minor: 1},
		{Key: "/kernel-1.0.1", Path: "/kernel-1.0.1", Container: outer, Type: TypeFile, Size: 4096,
			Region: &Region{Offset: 64, Size: 4096, Format: RegionBlob, Entropy: 7.99}, Label: "fw kernel 1.0.1"},
		// What only a test or a fixture makes: a digest that is not lowercase
		// hex, a path that is not the key's tail, a type no format knows.
		{Key: "/odd", Path: "/elsewhere", Container: nil, Type: "tar-type-'D'", SHA256: strings.ToUpper(sum)},
		{Key: "/unread", Path: "/unread", Container: outer, Type: TypeFile, Size: 10},
		{Key: "", Path: "", Container: outer, Type: TypeDir, Mode: 0o755},
	}
	in[1].SetOpen(opened)
	want := make(map[string]Entry, len(in))
	for _, e := range in {
		want[e.Key] = *e
	}
	tree := NewTree(in, nil)
	if tree.Len() != len(in) {
		t.Fatalf("Len = %d, want %d", tree.Len(), len(in))
	}
	prev := ""
	for i := range tree.Len() {
		got := tree.Entry(i)
		if i > 0 && got.Key <= prev {
			t.Errorf("entry %d key %q does not sort after %q", i, got.Key, prev)
		}
		prev = got.Key
		if tree.Key(i) != got.Key {
			t.Errorf("Key(%d) = %q, entry says %q", i, tree.Key(i), got.Key)
		}
		w := want[got.Key]
		if (got.open != nil) != (w.open != nil) {
			t.Errorf("%q: opener kept = %v, want %v", got.Key, got.open != nil, w.open != nil)
		}
		got.open, w.open = nil, nil
		if !reflect.DeepEqual(*got, w) {
			t.Errorf("entry %q:\n got %+v\nwant %+v", w.Key, *got, w)
		}
	}
	if e := tree.Lookup("/bin/busybox"); e == nil || !e.Readable() || e.Mode != 0o4755 {
		t.Errorf("Lookup(/bin/busybox) = %+v, want the readable setuid file", e)
	}
	if e := tree.Lookup("/bin/bus"); e != nil {
		t.Errorf("Lookup of a key that is only a prefix found %q", e.Key)
	}
	if got := tree.Find("/META-INF/MANIFEST.MF"); len(got) != 1 || !reflect.DeepEqual(got[0].Container, inner) {
		t.Errorf("Find(/META-INF/MANIFEST.MF) = %v, want the jar's one entry", got)
	}
	if got := tree.Find("/elsewhere"); len(got) != 1 || got[0].Key != "/odd" {
		t.Errorf("Find(/elsewhere) = %v, want the entry keyed /odd", got)
	}
}

// TestKeyOrder: keys held as directory and name sort, compare and are
// found as the whole strings would be, whatever '/' and NUL they hold.
func TestKeyOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const alphabet = "/a\x00b-"
	keys := map[string]bool{}
	for len(keys) < 2000 {
		b := make([]byte, rng.IntN(8))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		keys[string(b)] = true
	}
	var in []*Entry
	var want []string
	for k := range keys {
		in = append(in, &Entry{Key: k, Path: k, Type: TypeDir})
		want = append(want, k)
	}
	slices.Sort(want)
	tree := NewTree(in, nil)
	for i, k := range want {
		if got := tree.Key(i); got != k {
			t.Fatalf("key %d = %q, want %q", i, got, k)
		}
		if j, ok := tree.Search(k); !ok || j != i {
			t.Errorf("Search(%q) = %d, %v, want %d, true", k, j, ok, i)
		}
		d, name := tree.KeyParts(i)
		if tree.Dir(d)+name != k || strings.Contains(name, "/") {
			t.Errorf("KeyParts(%d) = %q, %q for %q", i, tree.Dir(d), name, k)
		}
	}
	for range 5000 {
		a, b := want[rng.IntN(len(want))], want[rng.IntN(len(want))]
		i, j := rng.IntN(len(a)+1), rng.IntN(len(b)+1)
		if got, w := CompareSplit(a[:i], a[i:], b[:j], b[j:]), strings.Compare(a, b); got != w {
			t.Fatalf("CompareSplit(%q, %q, %q, %q) = %d, want %d", a[:i], a[i:], b[:j], b[j:], got, w)
		}
	}
}

// TestSameAttrs: equal records are equal entries whatever their names and
// containers; any compared field that differs, or a file not read, is not.
func TestSameAttrs(t *testing.T) {
	sum := strings.Repeat("0f", 32)
	file := func(key string, change func(*Entry)) *Tree {
		e := &Entry{Key: key, Path: key, Container: []string{key + ".bin", "squashfs"}, Type: TypeFile, Mode: 0o755, Size: 9, SHA256: sum}
		if change != nil {
			change(e)
		}
		return NewTree([]*Entry{e}, nil)
	}
	base := file("/bin/httpd", nil)
	for _, tt := range []struct {
		name   string
		change func(*Entry)
		same   bool
	}{
		{"renamed, other container", nil, true},
		{"mode", func(e *Entry) { e.Mode |= 0o4000 }, false},
		{"owner", func(e *Entry) { e.UID = 1 }, false},
		{"bytes", func(e *Entry) { e.SHA256 = strings.Repeat("1f", 32) }, false},
		{"size", func(e *Entry) { e.Size++ }, false},
		{"label", func(e *Entry) { e.Label = "httpd 1.0.1" }, false},
		{"type", func(e *Entry) { e.Type = TypeSymlink; e.SHA256 = "" }, false},
	} {
		if got := base.SameAttrs(0, file("/sbin/httpd-1.0.1", tt.change), 0); got != tt.same {
			t.Errorf("%s: SameAttrs = %v, want %v", tt.name, got, tt.same)
		}
	}
	unread := func(e *Entry) { e.SHA256 = "" }
	if file("/a", unread).SameAttrs(0, file("/a", unread), 0) {
		t.Error("two unread files are the same; neither can be shown to be")
	}
}

// TestIndexCompact: a packed tree costs a fraction of its entries as
// values. The /usr bench pair holds 775,000 entries; at the 400 bytes an
// *Entry with its key and hex digest took, both trees alone were past the
// 256 MiB that DESIGN.md bounds a run by.
func TestIndexCompact(t *testing.T) {
	const n = 100_000
	chain := []string{"usr-1.0.1.sqfs", "squashfs", "/share/java/app-1.0.1.jar", "zip"}
	prefix := "/share/java/app-1.0.1.jar\x00"
	open := func(ctx context.Context) (io.ReadCloser, error) { return nil, io.EOF }
	live := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	before := live()
	var x Index
	for i := range n {
		p := fmt.Sprintf("/org/example/app/v1_0_1/internal/Class%06d.class", i)
		e := &Entry{Key: prefix + p, Container: chain, Type: TypeFile, Mode: 0o644, Size: int64(i),
			SHA256: fmt.Sprintf("%064x", i*7919)}
		e.Path = e.Key[len(prefix):]
		e.SetOpen(open)
		x.Add(e)
	}
	tree := x.Tree(nil)
	per := float64(live()-before) / n
	nameLen := len("Class000000.class")
	t.Logf("%.0f bytes an entry, %d of them its name", per, nameLen)
	// The name (its directory is held once), raw digest, a few bytes of
	// numbers, a reference and an opener slot, with room for the slices'
	// growth.
	if limit := float64(nameLen + 32 + 16 + 16 + 48); per > limit {
		t.Errorf("%.0f bytes an entry, want at most %.0f", per, limit)
	}
	if tree.Len() != n || !tree.Entry(n-1).Readable() {
		t.Fatalf("tree of %d entries, last readable %v", tree.Len(), tree.Entry(n-1).Readable())
	}
	runtime.KeepAlive(tree)
}

// TestIndexSpill: an index that spills packs a file as it is walked,
// takes its digest once hashed and keeps in memory only the keys: with a
// million entries a side at the entry limit, both trees of a diff fit the
// 256 MiB bound. Every entry reads back as it went in, from memory or
// from the file, a file opens only once hashed, through its locator, and
// the work directory holds nothing afterwards.
func TestIndexSpill(t *testing.T) {
	const n = 200_000
	dir := t.TempDir()
	chain := []string{"fw-2.4.1.sqfs", "squashfs"}
	live := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	sumOf := func(i int) []byte {
		s := make([]byte, 32)
		for k := range s {
			s[k] = byte(i >> (k % 3 * 8))
		}
		return s
	}
	pathOf := func(i int) string { return fmt.Sprintf("/usr/share/pkg-%04d/data/file-%04d.txt", i/1000, i%1000) }
	ids := make([]uint32, n)
	before := live()
	x := new(Index)
	x.SpillTo(dir)
	at := x.AddOpenAt(func(_ context.Context, loc uint64, size int64) (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader(fmt.Sprint(loc, size))), nil
	})
	for i := range n {
		p := pathOf(i)
		e := &Entry{Key: p, Path: p, Container: chain, Type: TypeFile, Mode: 0o644, Size: int64(i)}
		switch i % 4 {
		case 3:
			e.Type, e.Size, e.Mode, e.LinkTarget = TypeSymlink, 0, 0o777, fmt.Sprintf("../target-%d", i)
			ids[i] = x.Add(e)
		default:
			ids[i] = x.AddFileAt(e, at, uint64(i))
		}
	}
	// Hashed as workers would, out of order; every fourth file stays
	// unread, and one name is added again and replaces the first.
	for i := n - 1; i >= 0; i-- {
		if i%4 == 1 || i%4 == 2 {
			x.Hashed(ids[i], sumOf(i))
		}
	}
	if !x.CopyHashed(ids[0], ids[1]) || x.CopyHashed(ids[4], ids[8]) {
		t.Fatal("CopyHashed: a hashed source did not copy, or an unread one did")
	}
	x.Drop(ids[5])
	if x.cold.f == nil {
		t.Fatal("the index never spilled")
	}
	tree := x.Tree(nil)
	// The chunks a store keeps, whatever its size, are not the entries'.
	per := float64(live()-before-coldBudget-coldCache*coldChunk) / n
	nameLen := len("file-0000.txt")
	t.Logf("%.0f bytes an entry held in memory, %d of them its name", per, nameLen)
	// The name, varints of its directory and where the rest lies, and the
	// reference, with room for the slices' growth: no digest, no opener.
	if limit := float64(nameLen + 8 + 8 + 12); per > limit {
		t.Errorf("%.0f bytes an entry, want at most %.0f", per, limit)
	}
	if tree.Len() != n-1 {
		t.Fatalf("tree of %d entries, want %d", tree.Len(), n-1)
	}
	for i := range n {
		if i == 5 {
			if _, ok := tree.Search(pathOf(i)); ok {
				t.Errorf("%s was dropped but is in the tree", pathOf(i))
			}
			continue
		}
		j, ok := tree.Search(pathOf(i))
		if !ok {
			t.Fatalf("%s is not in the tree", pathOf(i))
		}
		e := tree.Entry(j)
		hashed := i%4 == 1 || i%4 == 2 || i == 0
		switch {
		case e.Path != pathOf(i) || !slices.Equal(e.Container, chain):
			t.Fatalf("entry %d reads back as %q in %v", i, e.Path, e.Container)
		case i%4 == 3:
			if e.Type != TypeSymlink || e.LinkTarget != fmt.Sprintf("../target-%d", i) || e.Readable() {
				t.Fatalf("symlink %d reads back as %+v", i, e)
			}
		case e.Readable() != hashed || e.Size != int64(i):
			t.Fatalf("file %d: readable %v, size %d; want %v, %d", i, e.Readable(), e.Size, hashed, i)
		case !hashed && e.SHA256 != "":
			t.Fatalf("unread file %d has digest %s", i, e.SHA256)
		case hashed:
			want := sumOf(i)
			if i == 0 {
				want = sumOf(1)
			}
			if e.SHA256 != fmt.Sprintf("%x", want) {
				t.Fatalf("file %d has digest %s, want %x", i, e.SHA256, want)
			}
			if i%997 == 1 {
				rc, err := e.Open(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(rc)
				if string(b) != fmt.Sprint(i, i) {
					t.Fatalf("file %d opens at locator and size %s", i, b)
				}
			}
		}
	}
	// Analyzers read one tree from several goroutines: chunks read back
	// are shared through the cache, each read whole.
	var wg sync.WaitGroup
	errs := make(chan string, 4)
	for g := range 4 {
		wg.Go(func() {
			for j := g; j < tree.Len(); j += 4 * 97 {
				if e := tree.Entry(j); e.Path != tree.Key(j) || e.Container == nil {
					errs <- fmt.Sprintf("goroutine %d: entry %d reads back as %q, key %q", g, j, e.Path, tree.Key(j))
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if !tree.SameAttrs(1, tree, 1) || tree.SameAttrs(1, tree, 2) {
		t.Error("SameAttrs of spilled records: an entry differs from itself, or two digests are the same")
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("the work directory holds %d files", len(left))
	}
	runtime.KeepAlive(tree)
}
