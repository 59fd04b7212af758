package repo

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	conf := `# reprepro configuration
Origin: Lampi   # inline comment
Codename: bookworm
Suite: stable
Architectures: armhf
 arm64 source
Components: main contrib
SignWith: yes
ValidFor: 1m 11d
Limit: 3
DebIndices: Packages Release .gz .xz
Log: bookworm.log

!include: more.conf
`
	os.WriteFile(filepath.Join(dir, "distributions"), []byte(conf), 0o644)
	os.WriteFile(filepath.Join(dir, "more.conf"), []byte("Codename: trixie\nArchitectures: amd64\nComponents: main\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "options"), []byte("verbose\nwaitforlock 3\n"), 0o644)
	c, err := LoadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Distributions) != 2 || c.Distributions[1].Codename != "trixie" {
		t.Fatalf("distributions %+v", c.Distributions)
	}
	d := c.Distributions[0]
	switch {
	case d.Origin != "Lampi", strings.Join(d.Architectures, " ") != "armhf arm64", !d.HasSource,
		strings.Join(d.Components, " ") != "main contrib", d.SignWith != "yes",
		d.ValidFor != 42*24*time.Hour, d.Limit != 3, d.Log != "bookworm.log",
		d.DebIndices != (Indices{Name: "Packages", Release: "Release", Gzip: true, XZ: true}):
		t.Errorf("parsed %+v", d)
	}
	if len(c.Warnings) != 0 {
		t.Errorf("warnings about a configuration lampi-pkg honours: %q", c.Warnings)
	}
	if c.Options["waitforlock"] != "3" {
		t.Errorf("options %v", c.Options)
	}
	if _, err := c.Distribution("stable"); !errors.Is(err, ErrUnknownCodename) || !strings.Contains(err.Error(), "suite") {
		t.Errorf("by suite: %v", err)
	}
}

func TestLoadConfigDirectory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "distributions"), 0o755)
	os.WriteFile(filepath.Join(dir, "distributions", "b.conf"), []byte("Codename: b\nArchitectures: amd64\nComponents: main\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "distributions", "a.conf"), []byte("Codename: a\nArchitectures: amd64\nComponents: main\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "distributions", ".hidden.conf"), []byte("junk"), 0o644)
	os.WriteFile(filepath.Join(dir, "distributions", "README"), []byte("junk"), 0o644)
	c, err := LoadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.SortedCodenames(), " "); got != "a b" || c.Distributions[0].Codename != "a" {
		t.Errorf("codenames %s", got)
	}
}

func TestLoadConfigErrors(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ conf, want string }{
		{"Codename: a\nArchitectures amd64\n", "distributions:2: repository configuration error: \"Architectures amd64\" is not a field"},
		{" Codename: a\n", "distributions:1:"},
		{"Codename: a\nComponents: main\n", "Architectures is missing"},
		{"Codename: a\nArchitectures: amd64\n", "Components is missing"},
		{"Architectures: amd64\nComponents: main\n", "no Codename"},
		{"Codename: a\nArchitectures: amd64 all\nComponents: main\n", "distributions:2: repository configuration error: Architectures: \"all\" cannot be listed"},
		{"Codename: a\nArchitectures: AMD64\nComponents: main\n", "distributions:2:"},
		{"Codename: a/../b\nArchitectures: amd64\nComponents: main\n", "distributions:1:"},
		{"Codename: a\nArchitectures: amd64\nComponents: main\nValidFor: 7x\n", "distributions:4: repository configuration error: ValidFor: \"7x\": unknown unit"},
		{"Codename: a\nArchitectures: amd64\nComponents: main\nLimit: many\n", "distributions:4:"},
		{"Codename: a\nArchitectures: amd64\nComponents: main\nDebIndices: Packages Release .zst\n", "unknown compression"},
		{"Codename: a\nArchitectures: amd64\nComponents: main\n\nCodename: a\nArchitectures: amd64\nComponents: main\n", "distributions:5: repository configuration error: Codename \"a\" is defined twice"},
		{"# nothing\n", "no distribution defined"},
		{"!include: missing.conf\n", "distributions:1: repository configuration error: !include:"},
	} {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "distributions"), []byte(c.conf), 0o644)
		_, err := LoadConfig(dir)
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v, want %q", c.conf, err, c.want)
		}
	}
}

func TestParseValidFor(t *testing.T) {
	t.Parallel()
	day := 24 * time.Hour
	for in, want := range map[string]time.Duration{"7d": 7 * day, "1m 11 d": 42 * day, "1y": 365 * day, "12h": 12 * time.Hour, "2w": 14 * day} {
		if got, err := parseValidFor(in); err != nil || got != want {
			t.Errorf("%q: %v %v, want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "d", "7", "7x", "-1d"} {
		if _, err := parseValidFor(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

func FuzzParseConf(f *testing.F) {
	f.Add([]byte(testDistributions))
	f.Add([]byte("Codename: a # c\n\tmore\n#x\n\n!include: y\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ps, err := parseConf(strings.NewReader(string(data)), "distributions")
		if err != nil {
			if !errors.Is(err, ErrConfig) && !strings.Contains(err.Error(), "read") {
				t.Fatalf("error without ErrConfig: %v", err)
			}
			return
		}
		for _, p := range ps {
			newDistribution(p)
		}
	})
}

// TestFixtureConf reads the sample reprepro configuration in
// fixtures/repo unchanged.
func TestFixtureConf(t *testing.T) {
	t.Parallel()
	c, err := LoadConfig(filepath.Join("..", "fixtures", "repo", "conf"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.SortedCodenames(), " "); got != "bookworm trixie" {
		t.Errorf("codenames %s", got)
	}
	tr, _ := c.Distribution("trixie")
	if !tr.HasSource || tr.ValidFor != 42*24*time.Hour || tr.NotAutomatic != "yes" || strings.Join(tr.Architectures, " ") != "armhf arm64 amd64" {
		t.Errorf("trixie %+v", tr)
	}
	w := strings.Join(c.Warnings, "\n")
	// Update names conf/updates rules, which "update" applies.
	if strings.Contains(w, "Update:") || strings.Join(tr.Update, " ") != "debian" {
		t.Errorf("Update: warned about or not read (%q):\n%s", tr.Update, w)
	}
	// Source packages are supported: no warning, and a source target
	// after each component's architectures.
	if strings.Contains(w, "source") {
		t.Errorf("warning about source packages:\n%s", w)
	}
	if ts := tr.Targets(); len(ts) != 4 || ts[3] != (Target{Codename: "trixie", Component: "main", Arch: SourceArch}) || ts[3].Dir() != "dists/trixie/main/source" {
		t.Errorf("trixie targets %v", ts)
	}
	if c.Options["waitforlock"] != "6" {
		t.Errorf("options %v", c.Options)
	}
}

// TestConfOptionsValues: a conf/options value that does not parse is an
// error naming file:line, the option and what to write (it used to be
// ignored silently); good values are parsed into Settings.
func TestConfOptionsValues(t *testing.T) {
	t.Parallel()
	const dists = "Codename: a\nArchitectures: amd64\nComponents: main\n"
	for _, c := range []struct{ options, want string }{
		{"verbose\nwaitforlock ten\n", "options:2: repository configuration error: option waitforlock: \"ten\" is not a number of 10-second retries; write e.g. 'waitforlock 6'"},
		{"waitforlock -1\n", "options:1: repository configuration error: option waitforlock:"},
		{"# keep\nbyhash-keep 2 days\n", "options:2: repository configuration error: option byhash-keep: \"2 days\" is not a duration; write e.g. 'byhash-keep 24h'"},
		{"export sometimes\n", "options:1: repository configuration error: option export: \"sometimes\" is not a mode; write 'export changed' or 'export never'"},
		{"keepunreferencedfiles yes\n", "options:1: repository configuration error: option keepunreferencedfiles: takes no value (got \"yes\"); write 'keepunreferencedfiles' alone"},
		{"--plain-file-io=no\n", "options:1: repository configuration error: option plain-file-io: takes no value"},
	} {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "distributions"), []byte(dists), 0o644)
		os.WriteFile(filepath.Join(dir, "options"), []byte(c.options), 0o644)
		_, err := LoadConfig(dir)
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v, want %q", c.options, err, c.want)
		}
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "distributions"), []byte(dists), 0o644)
	os.WriteFile(filepath.Join(dir, "options"), []byte("waitforlock 6\nbyhash-keep=36h\nexport never\nkeepunreferencedfiles\nplain-file-io\noutdir /srv/out\n"), 0o644)
	c, err := LoadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	s := c.Settings
	if s.WaitForLock == nil || *s.WaitForLock != 6 || s.ByHashKeep == nil || *s.ByHashKeep != 36*time.Hour ||
		s.Export != "never" || !s.KeepUnreferenced || !s.PlainFileIO || c.Options["outdir"] != "/srv/out" {
		t.Fatalf("settings %+v, options %v", s, c.Options)
	}
}
