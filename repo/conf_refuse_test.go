package repo

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfRefusesWhatItDoesNotHonour: every field of conf/distributions
// and every conf/options entry lampi-pkg does not implement stops
// LoadConfig with file:line, the name and what to do. They used to be
// read with a warning (or, DDebComponents before it worked, without a
// word) and ignored, so a repository lost its udebs or Contents files
// silently. A DDebComponents or UDebComponents naming a component the
// distribution lacks is refused too.
func TestConfRefusesWhatItDoesNotHonour(t *testing.T) {
	t.Parallel()
	const head = "Codename: buster\nArchitectures: amd64 source\nComponents: main non-free\n"
	for _, c := range []struct{ field, want string }{
		{"DDebComponents: main contrib", `distributions:1: repository configuration error: distribution "buster": DDebComponents names "contrib", which Components (main non-free) does not list`},
		{"UDebComponents: main contrib", `distributions:1: repository configuration error: distribution "buster": UDebComponents names "contrib", which Components (main non-free) does not list`},
		{"DDebIndices: Packages Release . .gz", "distributions:4: repository configuration error: DDebIndices: not implemented"},
		{"UDebIndices: Packages . .gz", "distributions:4: repository configuration error: UDebIndices: not implemented"},
		{"Contents: . .gz", "distributions:4: repository configuration error: Contents: not implemented by lampi-pkg: lampi-pkg writes no Contents files"},
		{"AlsoAcceptFor: unstable", "AlsoAcceptFor: not implemented by lampi-pkg"},
		{"DebOverride: override.buster", "DebOverride: not implemented by lampi-pkg: lampi-pkg reads no override files"},
		{"DscOverride: override.src", "DscOverride: not implemented"},
		{"FakeComponentPrefix: buster", "FakeComponentPrefix: not implemented"},
		{"ExportOptions: noexport", "ExportOptions: not implemented"},
		{"ByHandHooks: hook", "ByHandHooks: not implemented"},
		{"X-Custom: kept", "distributions:4: repository configuration error: X-Custom: unknown field (reprepro refuses it too)"},
		{"Limits: 3", "Limits: unknown field"},
		{"Log: buster.log\n --type=deb notify.sh", "distributions:4: repository configuration error: Log: lampi-pkg writes the log file but runs no notification scripts"},
		{"DebIndices: Packages Release . .gz .bz2", "DebIndices: .bz2 indices are not written"},
		{"DscIndices: Sources Release .gz hook.sh", "DscIndices: hook script \"hook.sh\" is not run"},
	} {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "distributions"), []byte(head+c.field+"\n"), 0o644)
		_, err := LoadConfig(dir)
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v, want %q", c.field, err, c.want)
		}
	}
	// What lampi-pkg honours (or, Archive, Update and Uploaders, the verbs
	// that read them) is not refused.
	for _, f := range []string{"Log: buster.log", "DebIndices: Packages Release . .gz .xz", "Tracking: all", "Limit: -1",
		"Archive: buster-archive", "Update: upstream", "Uploaders: uploaders", "ReadOnly: yes", "Signed-By: ABCD"} {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "distributions"), []byte(head+f+"\n"), 0o644)
		if _, err := LoadConfig(dir); err != nil && strings.Contains(err.Error(), "not implemented") || err != nil && strings.Contains(err.Error(), "unknown field") {
			t.Errorf("%q refused: %v", f, err)
		}
	}

	for _, c := range []struct{ options, want string }{
		{"verbose\nbogus-option x\n", `options:2: repository configuration error: option "bogus-option": not implemented by lampi-pkg (see the table in docs/repo.md); remove the line`},
		{"basedir .\n", `options:1: repository configuration error: option "basedir": not implemented by lampi-pkg: lampi-pkg finds conf/ through the base directory`},
		{"confdir /etc/repo\n", `option "confdir": not implemented by lampi-pkg: the configuration directory cannot be set from inside it; give --confdir`},
		{"distdir /srv/dists\n", `option "distdir": not implemented by lampi-pkg: lampi-pkg publishes dists/ under the output directory`},
		{"morguedir +b/morgue\n", `option "morguedir": not implemented`},
		{"gnupghome /root/.gnupg\n", `option "gnupghome": not implemented by lampi-pkg: lampi-pkg signs with key files`},
		{"ignore=forbiddenchar\n", `option "ignore": not implemented by lampi-pkg: lampi-pkg ignores no errors`},
		{"# comment\nnothingiserror\n", `options:2: repository configuration error: option "nothingiserror": not implemented`},
		{"list-format ${package}\n", `option "list-format": not implemented`},
		{"listdir +b/lists\n", `option "listdir": not implemented`},
		{"keepunusednewfiles\n", `option "keepunusednewfiles": not implemented by lampi-pkg: lampi-pkg checks every input`},
	} {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "distributions"), []byte(head), 0o644)
		os.WriteFile(filepath.Join(dir, "options"), []byte(c.options), 0o644)
		_, err := LoadConfig(dir)
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("options %q: got %v, want %q", c.options, err, c.want)
		}
	}
}
