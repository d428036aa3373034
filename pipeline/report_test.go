package pipeline

import "testing"

func TestWorst(t *testing.T) {
	for _, tc := range []struct {
		in   []Verdict
		want Verdict
	}{
		{nil, VerdictPass},
		{[]Verdict{VerdictPass, VerdictPass}, VerdictPass},
		{[]Verdict{VerdictPass, VerdictReview}, VerdictReview},
		{[]Verdict{VerdictFail, VerdictReview}, VerdictFail},
		{[]Verdict{VerdictReview, VerdictFail, VerdictPass}, VerdictFail},
		// An unknown verdict is never better than a fail.
		{[]Verdict{VerdictPass, "pending"}, VerdictFail},
		{[]Verdict{""}, VerdictFail},
	} {
		if got := Worst(tc.in...); got != tc.want {
			t.Errorf("Worst(%v) = %s, want %s", tc.in, got, tc.want)
		}
	}
}
