package bump

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestPyFormat(t *testing.T) {
	now := time.Date(2024, 3, 5, 7, 8, 9, 120000000, time.FixedZone("X", 3600))
	ctx := newContext(now, func(k string) (string, bool) { return map[string]string{"USER": "ci"}[k], k == "USER" }, nil)
	ctx.set("new_version", "1.2")
	for _, tc := range []struct{ tmpl, want string }{
		{"v{new_version}", "v1.2"},
		{"{{literal}} {new_version}", "{literal} 1.2"},
		{"{now:%Y-%m-%d %H:%M:%S.%f %j %a %b %p%%}", "2024-03-05 07:08:09.120000 065 Tue Mar AM%"},
		{"{utcnow:%H}", "06"},
		{"{now}", "2024-03-05 07:08:09.120000"},
		{"{#} by {$USER}{;}", "# by ci;"},
	} {
		got, err := pyFormat(tc.tmpl, ctx.lookup)
		if err != nil || got != tc.want {
			t.Errorf("pyFormat(%q) = %q, %v; want %q", tc.tmpl, got, err, tc.want)
		}
	}
	for _, tmpl := range []string{"{missing}", "{$HOME}", "{", "}", "{0}", "{a.b}", "{new_version!r}", "{now:%Q}"} {
		if _, err := pyFormat(tmpl, ctx.lookup); err == nil {
			t.Errorf("pyFormat(%q) did not fail", tmpl)
		}
	}
	if _, err := pyFormat("{missing}", ctx.lookup); !errors.Is(err, errMissingKey) {
		t.Errorf("missing key: %v", err)
	}
}

func TestPySplitlines(t *testing.T) {
	for in, want := range map[string][]string{
		"":           nil,
		"a":          {"a"},
		"a\n":        {"a"},
		"\n":         {""},
		"a\r\nb\rc":  {"a", "b", "c"},
		"a\n\nb\x0c": {"a", "", "b"},
	} {
		if got := pySplitlines(in); !reflect.DeepEqual(got, want) {
			t.Errorf("pySplitlines(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestStripVerbose(t *testing.T) {
	for in, want := range map[string]string{
		"(?P<major>\\d+) \\. (?P<minor>\\d+)  # two numbers\n  (\\.(?P<patch>\\d+))?": `(?P<major>\d+)\.(?P<minor>\d+)(\.(?P<patch>\d+))?`,
		`[ #] \  \#`: `[ #]\ \#`,
		`[]# ]x`:     `[]# ]x`,
	} {
		if got := stripVerbose(in); got != want {
			t.Errorf("stripVerbose(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPyGlob(t *testing.T) {
	dir := tree(t, "-- a/x.txt --\n-- a/.h.txt --\n-- a/b/y.txt --\n-- a/b/c/z.txt --\n-- a/.hid/w.txt --\n-- top.txt --\n-- [x].txt --\n")
	for pattern, want := range map[string][]string{
		"a/*.txt":      {"a/x.txt"},
		"a/.*.txt":     {"a/.h.txt"},
		"a/**/*.txt":   {"a/b/c/z.txt", "a/b/y.txt", "a/x.txt"},
		"**/z.txt":     {"a/b/c/z.txt"},
		"*.txt":        {"[x].txt", "top.txt"},
		"[[]x].txt":    {"[x].txt"},
		"[!t]*.txt":    {"[x].txt"},
		"top.txt":      {"top.txt"},
		"missing.txt":  nil,
		"a/?/*.txt":    {"a/b/y.txt"},
		"a/[a-c]/*.tx": nil,
	} {
		if got := pyGlob(dir, pattern); !reflect.DeepEqual(got, want) {
			t.Errorf("pyGlob(%q) = %q, want %q", pattern, got, want)
		}
	}
}

func TestTemplatesSeeNow(t *testing.T) {
	dir := tree(t, `-- .bumpversion.cfg --
[bumpversion]
current_version = 1.0.0
[bumpversion:file:CHANGES]
search = ## next
replace = ## next
	
	{#}{#} {new_version} ({now:%Y-%m-%d})
-- CHANGES --
## next
`)
	now := func() time.Time { return time.Date(2024, 2, 29, 12, 0, 0, 0, time.UTC) }
	p, err := Prepare(context.Background(), Options{Dir: dir, Part: Minor, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(p.Files[0].New()); got != "## next\n\n## 1.1.0 (2024-02-29)\n" {
		t.Errorf("CHANGES = %q", got)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "CHANGES")); !strings.HasPrefix(string(b), "## next\n") {
		t.Errorf("Prepare wrote")
	}
}
