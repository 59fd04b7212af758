package bump

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseConfig(t *testing.T) {
	c, err := ParseConfig(".bumpversion.cfg", []byte(`# comment
[bumpversion]
current_version = 1.2.3~rc1
commit = yes
tag: On
tag_name = debian/{new_version}
parse = (?P<major>\d+)\.(?P<minor>\d+)\.(?P<patch>\d+)  # numbers
	(~(?P<release>rc)(?P<rc>\d+))?
serialize =
	{major}.{minor}.{patch}~{release}{rc}

	{major}.{minor}.{patch}

[bumpversion:part:release]
optional_value = final
values =
	rc
	final

[bumpversion:file:VERSION]
[bumpversion:file ( second ):VERSION]
serialize = {major}\n{minor}
[bumpversion:glob:conf/*.ini]
[unrelated]
x = 1
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.CurrentVersion != "1.2.3~rc1" || c.CurrentLine != 3 || !c.Commit || !c.Tag || !c.CommitSet || c.TagName != "debian/{new_version}" {
		t.Errorf("config = %+v", c)
	}
	if want := []string{"{major}.{minor}.{patch}~{release}{rc}", "{major}.{minor}.{patch}"}; !reflect.DeepEqual(c.main.serialize, want) {
		t.Errorf("serialize = %q, want %q", c.main.serialize, want)
	}
	if v := c.main.parseVersion("1.2.3~rc1"); v == nil || v.parts["rc"].raw != "1" {
		t.Errorf("parse of 1.2.3~rc1 = %+v", v)
	}
	if pc := c.main.parts["release"]; pc == nil || pc.optional != "final" || pc.first != "rc" {
		t.Errorf("part release = %+v", pc)
	}
	if len(c.files) != 3 || c.files[1].vc.serialize[0] != "{major}\n{minor}" || !c.files[2].glob {
		t.Errorf("files = %+v", c.files)
	}
}

func TestParseConfigErrors(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"current_version = 1\n", `.bumpversion.cfg:1: bad bump configuration: "current_version = 1" comes before any [section] header`},
		{"[x]\na = 1\n", "no [bumpversion] section"},
		{"[bumpversion]\na = 1\n[bumpversion]\n", ".bumpversion.cfg:3: bad bump configuration: section [bumpversion] appears twice"},
		{"[bumpversion]\na = 1\na = 2\n", `.bumpversion.cfg:3: bad bump configuration: option "a" appears twice`},
		{"[bumpversion]\nnot an option\n", `.bumpversion.cfg:2: "not an option"`},
		{"[bumpversion]\ncommit = sure\n", `.bumpversion.cfg:2: bad bump configuration: commit = "sure" is not a boolean`},
		{"[bumpversion]\nparse = (?<=x)\\d\n", ".bumpversion.cfg:2: bad bump configuration: parse pattern"},
		{"[bumpversion]\nserialize = {major\n", "'{' without its '}'"},
		{"[bumpversion]\n[bumpversion:file:x]\nsearch_for = 1\n", `.bumpversion.cfg:3: bad bump configuration: [bumpversion:file:x]: unknown option "search_for" (a file section takes parse, serialize, search and replace)`},
		{"[bumpversion]\n[bumpversion:part:p]\nvalues =\n", "values is empty"},
		{"[bumpversion]\n[bumpversion:part:p]\nvalues = a\n\tb\noptional_value = c\n", `optional_value "c" is not one of the values a, b`},
		{"[bumpversion]\n[bumpversion:part:p]\noptional_value = 1\n", `option "optional_value" needs a values list`},
		{"[bumpversion]\n[bumpversion:part:p]\nfirst_value = x\n", `first_value "x" has no digit`},
		{"[DEFAULT]\n", "[DEFAULT] section is not supported"},
		{"[bumpversion]\nx = \xff\n", "not UTF-8"},
	} {
		_, err := ParseConfig(".bumpversion.cfg", []byte(tc.text))
		if err == nil || !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseConfig(%q) = %v, want ErrConfig containing %q", tc.text, err, tc.want)
		}
	}
}

func TestSetupCfgInterpolation(t *testing.T) {
	c, err := ParseConfig("setup.cfg", []byte("[bumpversion]\nbase = 1.0\ncurrent_version = %(base)s.0\nmessage = 100%% {new_version}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.CurrentVersion != "1.0.0" || c.Message != "100% {new_version}" {
		t.Errorf("interpolated: current_version %q, message %q", c.CurrentVersion, c.Message)
	}
	if _, err := ParseConfig("setup.cfg", []byte("[bumpversion]\nmessage = 100% sure\n")); !errors.Is(err, ErrConfig) {
		t.Errorf("lone %% in setup.cfg: %v, want ErrConfig", err)
	}
	// .bumpversion.cfg is read raw, as RawConfigParser does.
	c, err = ParseConfig(".bumpversion.cfg", []byte("[bumpversion]\nmessage = 100% {new_version}\n"))
	if err != nil || c.Message != "100% {new_version}" {
		t.Errorf("raw: %v, %q", err, c.Message)
	}
}

func TestFindConfig(t *testing.T) {
	dir := t.TempDir()
	if _, ok, err := FindConfig(dir); ok || err != nil {
		t.Errorf("empty dir: %v %v", ok, err)
	}
	os.WriteFile(filepath.Join(dir, "setup.cfg"), []byte("[metadata]\nname = x\n"), 0o644)
	if _, ok, _ := FindConfig(dir); ok {
		t.Errorf("setup.cfg without [bumpversion] counts as a configuration")
	}
	os.WriteFile(filepath.Join(dir, "setup.cfg"), []byte("[metadata]\n[bumpversion]\n"), 0o644)
	if name, ok, _ := FindConfig(dir); !ok || name != "setup.cfg" {
		t.Errorf("setup.cfg: %q %v", name, ok)
	}
	os.WriteFile(filepath.Join(dir, ".bumpversion.cfg"), []byte("[bumpversion]\n"), 0o644)
	if name, ok, _ := FindConfig(dir); !ok || name != ".bumpversion.cfg" {
		t.Errorf(".bumpversion.cfg: %q %v", name, ok)
	}
}

// FuzzParseConfig checks that ParseConfig never panics and that what the
// INI layer writes back reads back to the same sections and values.
func FuzzParseConfig(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/compat/*.txtar")
	for _, s := range seeds {
		b, _ := os.ReadFile(s)
		if i := strings.Index(string(b), "-- .bumpversion.cfg --\n"); i >= 0 {
			rest := string(b[i+len("-- .bumpversion.cfg --\n"):])
			if j := strings.Index(rest, "\n-- "); j >= 0 {
				rest = rest[:j+1]
			}
			f.Add(rest, false)
		}
	}
	f.Add("[bumpversion]\ncurrent_version = %(x)s\nx = %%1\n", true)
	f.Add("[a]b]\n k : v\n\n\t w\n;c\n#d\n", false)
	f.Fuzz(func(t *testing.T, text string, setup bool) {
		name := ".bumpversion.cfg"
		if setup {
			name = "setup.cfg"
		}
		_, _ = ParseConfig(name, []byte(text))
		ini, err := parseINI(name, strings.ReplaceAll(text, "\r", "\n"), setup)
		if err != nil {
			return
		}
		out := ini.write("")
		back, err := parseINI(name, out, setup)
		if err != nil {
			t.Fatalf("written configuration does not parse: %v\n%q", err, out)
		}
		if len(back.sections) != len(ini.sections) {
			t.Fatalf("sections: %d, read back %d\n%q", len(ini.sections), len(back.sections), out)
		}
		for i, s := range ini.sections {
			b := back.sections[i]
			if b.name != s.name || len(b.opts) != len(s.opts) {
				t.Fatalf("section %q read back as %q with %d options (had %d)\n%q", s.name, b.name, len(b.opts), len(s.opts), out)
			}
			for j, o := range s.opts {
				if b.opts[j].key != o.key || b.opts[j].raw != o.raw {
					t.Fatalf("option %q = %q read back as %q = %q\n%q", o.key, o.raw, b.opts[j].key, b.opts[j].raw, out)
				}
			}
		}
	})
}
