package deb

import (
	"errors"
	"strings"
	"testing"
)

func TestParseVersionValid(t *testing.T) {
	tests := []struct {
		in   string
		want Version
		str  string // canonical String()
	}{
		{"1.0", Version{0, "1.0", ""}, "1.0"},
		{"1.0-1", Version{0, "1.0", "1"}, "1.0-1"},
		{"1:2.0~rc1-3", Version{1, "2.0~rc1", "3"}, "1:2.0~rc1-3"},
		{"0:1.0", Version{0, "1.0", ""}, "1.0"},
		{"00:1.0", Version{0, "1.0", ""}, "1.0"},
		{"2147483647:1", Version{2147483647, "1", ""}, "2147483647:1"},
		{"1.0-a-b", Version{0, "1.0-a", "b"}, "1.0-a-b"},
		{"1:2:3", Version{1, "2:3", ""}, "1:2:3"},
		{"0:2:3", Version{0, "2:3", ""}, "0:2:3"},
		{"1:1:-1", Version{1, "1:", "1"}, "1:1:-1"},
		{"1.0~", Version{0, "1.0~", ""}, "1.0~"},
		{"1.0-~", Version{0, "1.0", "~"}, "1.0-~"},
		{"2.0+dfsg-5+deb10u1", Version{0, "2.0+dfsg", "5+deb10u1"}, "2.0+dfsg-5+deb10u1"},
		{"1A.b-Z", Version{0, "1A.b", "Z"}, "1A.b-Z"},
		{"1.00000000000000000000000000001", Version{0, "1.00000000000000000000000000001", ""}, "1.00000000000000000000000000001"},
		// dpkg's leniencies, checked against dpkg --validate-version.
		{" 1.0", Version{0, "1.0", ""}, "1.0"},
		{"1.0 \t", Version{0, "1.0", ""}, "1.0"},
		{"\t1:1.0-1 ", Version{1, "1.0", "1"}, "1:1.0-1"},
		{"+1:1", Version{1, "1", ""}, "1:1"},
		{"-0:1", Version{0, "1", ""}, "1"},
		{"\n1:0", Version{1, "0", ""}, "1:0"},
		{"\v\f\r+2:0", Version{2, "0", ""}, "2:0"},
	}
	for _, tt := range tests {
		got, err := ParseVersion(tt.in)
		if err != nil {
			t.Errorf("ParseVersion(%q): %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseVersion(%q) = %#v, want %#v", tt.in, got, tt.want)
		}
		if s := got.String(); s != tt.str {
			t.Errorf("ParseVersion(%q).String() = %q, want %q", tt.in, s, tt.str)
		}
		if back := MustParseVersion(got.String()); back != got {
			t.Errorf("%q does not round-trip: %#v != %#v", tt.in, back, got)
		}
	}
}

func TestParseVersionInvalid(t *testing.T) {
	tests := []struct{ in, msg string }{
		{"", `version "": version string is empty`},
		{" \t ", "only blanks"},
		{"1 0", "embedded blank at byte 1"},
		{"1.0 -1", "embedded blank at byte 3"},
		{":1", "epoch is empty"},
		{"1.0:2", `epoch in "1.0" is not a number`},
		{"a:1", `epoch in "a" is not a number`},
		{"0x1:0", `epoch in "0x1" is not a number`},
		{"+-1:1", `epoch in "+-1" is not a number`},
		{"1.0-:", `epoch in "1.0-" is not a number`},
		{"-1:1", `epoch in "-1" is negative`},
		{"-99999999999999999999:1", "is negative"},
		{"2147483648:1", "too big"},
		{"99999999999999999999:1", "too big"},
		{"1:", "nothing after the epoch colon at byte 1"},
		{"1: ", "upstream version is empty"},
		{"1.0-", "revision is empty (nothing after the '-' at byte 3)"},
		{"1-", "revision is empty"},
		{"1.0-1-", "revision is empty"},
		{"-1", "upstream version is empty"},
		{"1:-1", "upstream version is empty"},
		{"a1", `upstream version "a1" does not start with a digit`},
		{"~1", "does not start with a digit"},
		{"1:a", "does not start with a digit"},
		{"1_0", `invalid character '_' at byte 1 in upstream version "1_0"`},
		{"1.0\n", `invalid character '\n' at byte 3`},
		{"1é", "invalid character 'é' at byte 1"},
		{"1\xe9", `invalid character '\xe9' at byte 1`},
		{"1.0-a_b", `invalid character '_' at byte 5 in revision "a_b"`},
		{"1:2-3:4", `invalid character ':' at byte 5 in revision "3:4"`},
		{"1.0-1:2", `epoch in "1.0-1" is not a number`},
	}
	for _, tt := range tests {
		_, err := ParseVersion(tt.in)
		if err == nil {
			t.Errorf("ParseVersion(%q) succeeded, want error containing %q", tt.in, tt.msg)
			continue
		}
		if !errors.Is(err, ErrInvalidVersion) {
			t.Errorf("ParseVersion(%q): %v does not wrap ErrInvalidVersion", tt.in, err)
		}
		if !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("ParseVersion(%q) = %q, want it to contain %q", tt.in, err, tt.msg)
		}
	}
}

func TestMustParseVersionPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("MustParseVersion(\"1.0-\") did not panic")
		}
	}()
	MustParseVersion("1.0-")
}

func TestVersionWithoutEpoch(t *testing.T) {
	for in, want := range map[string]string{
		"1:2.0-3": "2.0-3", "2.0": "2.0", "0:2:3": "2:3", "5:1.0~rc1": "1.0~rc1",
	} {
		if got := MustParseVersion(in).WithoutEpoch(); got != want {
			t.Errorf("%q.WithoutEpoch() = %q, want %q", in, got, want)
		}
	}
}

// versionCompareTests are checked against dpkg by TestCompareTableAgainstDpkg.
var versionCompareTests = []struct {
	a, b string
	want int
}{
	{"1.0", "1.0", 0},
	{"1.0", "1.00", 0},
	{"1.0", "01.0", 0},
	{"0:1.0", "1.0", 0},
	{"1.0", "1.0-0", 0},
	{"1.0-0", "1.0-00", 0},
	{"1.0", "1.1", -1},
	{"1.9", "1.10", -1},
	{"1.2.3~rc1", "1.2.3", -1},
	{"1.2.3-rc1", "1.2.3", 1},
	{"1.2.3~rc1", "1.2.3~rc2", -1},
	{"1.0~~", "1.0~", -1},
	{"1.0~~a", "1.0~~", 1},
	{"1.0~", "1.0", -1},
	{"1.0~", "1.0-0", -1},
	{"1.0-1~bpo1", "1.0-1", -1},
	{"1.0a", "1.0", 1},
	{"1.0a", "1.0+", -1},
	{"1.0a", "1.0.", -1},
	{"1.0+", "1.0.", -1},
	{"1.0.", "1.0", 1},
	{"1.0Z", "1.0a", -1},
	{"1.0a", "1.0.1", -1},
	{"1.0+b1", "1.0.1", -1},
	{"1:1.0", "2.0", 1},
	{"1:1.0", "2:0.1", -1},
	{"10:1", "9:1", 1},
	{"2147483647:1", "2147483646:9", 1},
	{"1.00000000000000000000000000001", "1.1", 0},
	{"1.00000000000000000000000000002", "1.1", 1},
	{"1.99999999999999999999999999999", "1.100000000000000000000000000000", -1},
	{"1.18446744073709551616", "1.18446744073709551615", 1},
	{"1.0-1", "1.0-2", -1},
	{"1.0-10", "1.0-9", 1},
	{"1.0-1ubuntu1", "1.0-1", 1},
	{"1.0-a", "1.0-1", 1},
	{"1.0-a-b", "1.0-b", 1},
	{"2:3", "0:2:3", 1},
	{"0:2:3", "0:2.3", 1},
}

func TestVersionCompare(t *testing.T) {
	for _, tt := range versionCompareTests {
		a, b := MustParseVersion(tt.a), MustParseVersion(tt.b)
		if got := a.Compare(b); got != tt.want {
			t.Errorf("Compare(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := b.Compare(a); got != -tt.want {
			t.Errorf("Compare(%q, %q) = %d, want %d", tt.b, tt.a, got, -tt.want)
		}
		if got, err := CompareVersions(tt.a, tt.b); err != nil || got != tt.want {
			t.Errorf("CompareVersions(%q, %q) = %d, %v; want %d", tt.a, tt.b, got, err, tt.want)
		}
	}
	if _, err := CompareVersions("1.0", "1.0-"); !errors.Is(err, ErrInvalidVersion) {
		t.Errorf("CompareVersions with an invalid version: err = %v", err)
	}
	if _, err := CompareVersions("", "1.0"); !errors.Is(err, ErrInvalidVersion) {
		t.Errorf("CompareVersions with an empty version: err = %v", err)
	}
}

func TestVersionRelation(t *testing.T) {
	// want: results for (1 op 2), (2 op 1), (1 op 1), ("" op 1), (1 op ""), ("" op ""),
	// as printed by dpkg --compare-versions (true = exit 0).
	tests := map[string][6]bool{
		"lt":    {true, false, false, true, false, false},
		"le":    {true, false, true, true, false, true},
		"eq":    {false, false, true, false, false, true},
		"ne":    {true, true, false, true, true, false},
		"ge":    {false, true, true, false, true, true},
		"gt":    {false, true, false, false, true, false},
		"<<":    {true, false, false, true, false, false},
		"<=":    {true, false, true, true, false, true},
		"=":     {false, false, true, false, false, true},
		">=":    {false, true, true, false, true, true},
		">>":    {false, true, false, false, true, false},
		"<":     {true, false, true, true, false, true},
		">":     {false, true, true, false, true, true},
		"lt-nl": {true, false, false, false, true, false},
		"le-nl": {true, false, true, false, true, true},
		"ge-nl": {false, true, true, true, false, true},
		"gt-nl": {false, true, false, true, false, false},
	}
	one, two, none := MustParseVersion("1"), MustParseVersion("2"), Version{}
	pairs := [6][2]Version{{one, two}, {two, one}, {one, one}, {none, one}, {one, none}, {none, none}}
	for op, want := range tests {
		r, err := ParseVersionRelation(op)
		if err != nil {
			t.Fatalf("ParseVersionRelation(%q): %v", op, err)
		}
		if r.String() != op || r.Obsolete() != (op == "<" || op == ">") {
			t.Errorf("%q: String() = %q, Obsolete() = %v", op, r.String(), r.Obsolete())
		}
		for i, p := range pairs {
			if got := r.Holds(p[0], p[1]); got != want[i] {
				t.Errorf("%q %s %q = %v, want %v", p[0], op, p[1], got, want[i])
			}
		}
	}
	for _, op := range []string{"", "==", "!=", "LT", "eq-nl", "ne-nl", "lt ", "=<"} {
		if _, err := ParseVersionRelation(op); !errors.Is(err, ErrInvalidField) {
			t.Errorf("ParseVersionRelation(%q): err = %v, want ErrInvalidField", op, err)
		}
	}
}
