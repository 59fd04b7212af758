package deb

import (
	"slices"
	"testing"
)

func TestCompareLoose(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want int
	}{
		{"1.0", "1.0", 0},
		{"1.0", "0:1.0", 0},
		{"1.2.3~rc1", "1.2.3", -1},
		{"1.2.3-rc1", "1.2.3", 1},
		{"1:0.1", "9.9", 1},
		// invalid below every valid version, whatever the text says
		{"not a version", "0~", -1},
		{"0.1", "", 1},
		{"", "0.1", -1},
		{"1.0-", "0.1", -1},
		// two invalid ones: bytewise
		{"", "", 0},
		{"a b", "a c", -1},
		{"x y", "a b", 1},
	} {
		if got := CompareLoose(tt.a, tt.b); got != tt.want {
			t.Errorf("CompareLoose(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := CompareLoose(tt.b, tt.a); got != -tt.want {
			t.Errorf("CompareLoose(%q, %q) = %d, want %d (not antisymmetric)", tt.b, tt.a, got, -tt.want)
		}
	}
	// A total order: sorting newest first puts the invalid strings last,
	// whatever the input order.
	want := []string{"2.0", "1.0", "1.0~rc1", "zz z", "bad version", ""}
	for _, in := range [][]string{
		{"", "bad version", "1.0~rc1", "zz z", "2.0", "1.0"},
		{"zz z", "1.0", "", "2.0", "bad version", "1.0~rc1"},
	} {
		slices.SortFunc(in, func(a, b string) int { return CompareLoose(b, a) })
		if !slices.Equal(in, want) {
			t.Errorf("sorted %q, want %q", in, want)
		}
	}
}
