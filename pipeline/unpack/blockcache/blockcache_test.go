package blockcache

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
)

func TestBound(t *testing.T) {
	for _, tc := range []struct {
		name               string
		maxBytes, minItems int
		blocks, size       int
		wantLen, wantBytes int
	}{
		{"bytes bound", 4096, 1, 100, 1024, 4, 4096},
		{"few large blocks", 4096, 3, 10, 8192, 3, 3 * 8192},
		{"all fit", 1 << 20, 1, 5, 1000, 5, 5000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := New[int](tc.maxBytes, tc.minItems)
			for i := range tc.blocks {
				b, err := c.Get(i, func() ([]byte, error) { return make([]byte, tc.size), nil })
				if err != nil || len(b) != tc.size {
					t.Fatalf("Get(%d) = %d bytes, %v", i, len(b), err)
				}
			}
			if c.Len() != tc.wantLen || c.Bytes() != tc.wantBytes {
				t.Errorf("cache holds %d blocks of %d bytes, want %d of %d", c.Len(), c.Bytes(), tc.wantLen, tc.wantBytes)
			}
		})
	}
}

func TestRecentStays(t *testing.T) {
	c := New[int](3*100, 1)
	loads := map[int]int{}
	get := func(k int) {
		t.Helper()
		if _, err := c.Get(k, func() ([]byte, error) { loads[k]++; return make([]byte, 100), nil }); err != nil {
			t.Fatal(err)
		}
	}
	get(1)
	get(2)
	get(3)
	get(1) // 1 is now the most recent; 2 goes first
	get(4)
	get(1)
	get(2)
	if loads[1] != 1 || loads[2] != 2 {
		t.Errorf("loads = %v: the recently used block 1 should have stayed and 2 gone", loads)
	}
}

func TestFailedLoadIsNotKept(t *testing.T) {
	c := New[string](1<<10, 1)
	boom := errors.New("boom")
	if _, err := c.Get("a", func() ([]byte, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	if c.Len() != 0 {
		t.Errorf("a failed load is kept: %d blocks", c.Len())
	}
	b, err := c.Get("a", func() ([]byte, error) { return []byte("ok"), nil })
	if err != nil || string(b) != "ok" {
		t.Errorf("retry = %q, %v", b, err)
	}
}

func TestSharedLoad(t *testing.T) {
	c := New[int](1<<20, 1)
	var loads atomic.Int32
	release := make(chan struct{})
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			b, err := c.Get(7, func() ([]byte, error) {
				loads.Add(1)
				<-release
				return []byte("block"), nil
			})
			if err != nil || string(b) != "block" {
				t.Errorf("Get = %q, %v", b, err)
			}
		})
	}
	close(release)
	wg.Wait()
	if n := loads.Load(); n != 1 {
		t.Errorf("%d loads for one block asked for together, want 1", n)
	}
}
