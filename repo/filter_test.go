package repo

import (
	"errors"
	"testing"
)

func TestFilter(t *testing.T) {
	t.Parallel()
	hi := &Entry{Target: Target{Codename: "bookworm", Component: "main", Arch: "armhf"}, Package: "hi", Version: "0.10",
		Stanza: []byte("Package: hi\nVersion: 0.10\nArchitecture: all\nSection: admin\nDescription: x\n")}
	lib := &Entry{Target: Target{Codename: "bookworm", Component: "contrib", Arch: "armhf"}, Package: "libfoo1", Version: "1:1.0-1",
		Stanza: []byte("Package: libfoo1\nSource: libfoo (1.0-1)\nVersion: 1:1.0-1\nArchitecture: armhf\nSection: libs\nDescription: x\n")}
	for _, c := range []struct {
		formula string
		hi, lib bool
	}{
		{"Package (= hi)", true, false},
		{"Package (== hi), Version (>= 0.2)", true, false}, // dpkg order: 0.10 > 0.2
		{"Version (<< 1:0)", true, false},
		{"$Version (>> 0.9)", true, true},
		{"Package", true, true},
		{"!Source", true, false},
		{"Source", false, true},
		{"$Source (== libfoo)", false, true},
		{"$SourceVersion (= 1.0-1)", false, true},
		{"$Component (== contrib)", false, true},
		{"$Architecture (== armhf), $PackageType (== deb)", true, true},
		{"Package (% lib*)", false, true},
		{"Package (!% lib*)", true, false},
		{"Package (% ?i)", true, false},
		{"Section (== admin) | Section (== libs)", true, true},
		{"!(Section (== admin) | Section (== libs))", false, false},
		{"Package (= hi), !Section (!= admin)", true, false},
		{"Package (% [hx]*)", true, false},
		{"Section (< b)", true, false},
		{"section (= libs)", false, true},
	} {
		f, err := ParseFilter(c.formula)
		if err != nil {
			t.Errorf("%s: %v", c.formula, err)
			continue
		}
		if got := f.Match(hi); got != c.hi {
			t.Errorf("%s on hi: %v", c.formula, got)
		}
		if got := f.Match(lib); got != c.lib {
			t.Errorf("%s on libfoo1: %v", c.formula, got)
		}
	}
	for _, bad := range []string{"", "Package (hi)", "Package (>= hi", "(Package", "Package (= hi) extra", "Package (= )", ",", "Package |"} {
		if _, err := ParseFilter(bad); !errors.Is(err, ErrFilter) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{"Package (= hi), Version (>= 0.2)", "!(A|B),C (% x*)", "$Source (==a)"} {
		f.Add(s)
	}
	e := &Entry{Package: "hi", Version: "1.0", Stanza: []byte("Package: hi\nVersion: 1.0\n")}
	f.Fuzz(func(t *testing.T, s string) {
		flt, err := ParseFilter(s)
		if err != nil {
			if !errors.Is(err, ErrFilter) {
				t.Fatalf("error without ErrFilter: %v", err)
			}
			return
		}
		flt.Match(e)
	})
}
