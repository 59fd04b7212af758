package deb_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/lampi-pkg/lampi-pkg/deb"
)

func TestParseRelations(t *testing.T) {
	rs, warns, err := deb.ParseRelations("Depends", "python3:any (>= 3.9),\n libc6 (>> 2.36) | musl, foo (< 1)")
	if err != nil {
		t.Fatal(err)
	}
	if got := rs.String(); got != "python3:any (>= 3.9), libc6 (>> 2.36) | musl, foo (< 1)" {
		t.Errorf("String() = %q", got)
	}
	if len(warns) != 1 || !strings.Contains(warns[0], "obsolete") {
		t.Errorf("warnings %q", warns)
	}
	for _, c := range []struct{ field, value, want string }{
		{"Depends", "foo (>> 1", "missing ')'"},
		{"Depends", "foo (~ 1)", "must start with one of"},
		{"Depends", "foo (>= )", "missing version"},
		{"Depends", "foo (>= 1:)", `version "1:"`},
		{"Depends", "foo bar", "unexpected"},
		{"Depends", "foo, ", "empty entry"},
		{"Depends", "foo | ", "empty alternative"},
		{"Depends", "Foo", "not a valid package name"},
		{"Depends", "foo:", "empty architecture qualifier"},
		{"Depends", "foo <!nocheck>", "build profiles"},
		{"Provides", "foo (>= 1)", "only exact versions"},
		{"Breaks", "a | b", "alternatives"},
	} {
		_, _, err := deb.ParseRelations(c.field, c.value)
		if err == nil || !errors.Is(err, deb.ErrInvalidField) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %q: err = %v, want %q", c.field, c.value, err, c.want)
		}
	}
}

// FuzzParseRelations: no panic; an accepted field prints to a canonical
// form that parses back to itself.
func FuzzParseRelations(f *testing.F) {
	for _, s := range []string{"a (>= 1), b | c:any", "x (= 1:2-3~4)", "a,,b", "a (<< ", "a [amd64]"} {
		f.Add("Depends", s)
	}
	f.Add("Provides", "a (= 1)")
	f.Fuzz(func(t *testing.T, field, value string) {
		rs, _, err := deb.ParseRelations(field, value)
		if err != nil {
			return
		}
		again, _, err := deb.ParseRelations(field, rs.String())
		if err != nil || again.String() != rs.String() {
			t.Fatalf("%q -> %q -> %v %q", value, rs.String(), err, again.String())
		}
	})
}
