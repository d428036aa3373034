package pipeline

import (
	"math"
	"testing"
)

func TestEntropy(t *testing.T) {
	var none, one, two, all [256]uint64
	one['a'] = 100
	two['a'], two['b'] = 5, 5
	for i := range all {
		all[i] = 3
	}
	for _, tt := range []struct {
		name   string
		counts *[256]uint64
		want   float64
	}{{"empty", &none, 0}, {"one value", &one, 0}, {"two values evenly", &two, 1}, {"every value evenly", &all, 8}} {
		if got := Entropy(tt.counts); math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("%s: Entropy = %v, want %v", tt.name, got, tt.want)
		}
	}
}
