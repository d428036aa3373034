package audit

import (
	"fmt"
	"testing"
)

func TestParseShard(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Shard
		ok   bool
	}{
		{"0/1", Shard{0, 1}, true},
		{"2/3", Shard{2, 3}, true},
		{"3/3", Shard{}, false},
		{"-1/3", Shard{}, false},
		{"1/0", Shard{}, false},
		{"1", Shard{}, false},
		{"a/b", Shard{}, false},
		{"", Shard{}, false},
	} {
		got, err := ParseShard(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseShard(%q) = %+v, %v; want %+v, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

// TestShardsPartition: every reference falls to exactly one shard, the
// same whatever the order of the list, and the shards share the work.
func TestShardsPartition(t *testing.T) {
	const n = 3
	var refs []string
	for i := 0; i < 600; i++ {
		refs = append(refs, fmt.Sprintf("registry.example/acme/rt3200:1.0.%d", i))
	}
	counts := make([]int, n)
	for _, ref := range refs {
		owners := 0
		for i := 0; i < n; i++ {
			if (Shard{i, n}).Has(ref) {
				owners++
				counts[i]++
			}
		}
		if owners != 1 {
			t.Fatalf("%s falls to %d shards", ref, owners)
		}
	}
	for i, c := range counts {
		if c < 150 || c > 250 {
			t.Errorf("shard %d/%d holds %d of %d references", i, n, c, len(refs))
		}
	}
	if !(Shard{}).Has(refs[0]) || !(Shard{0, 1}).Has(refs[0]) {
		t.Error("an unsharded audit skips a reference")
	}
}
