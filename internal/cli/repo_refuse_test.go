package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRepoRefusesRepreproOptions: every reprepro option lampi-pkg does not
// implement stops the command with exit 2, naming the option and what to
// do instead, before anything is opened; an option nobody knows says
// where the table is. (Before, --distdir and the like were "unknown
// flag" with no word of what to do, and conf/options entries such as
// gnupghome, ignore or basedir were read and ignored.)
func TestRepoRefusesRepreproOptions(t *testing.T) {
	base := filepath.Join(t.TempDir(), "srv")
	if _, errs, code := runEnv(t, nil, "repo", "init", base, "--codename", "bookworm", "--architectures", "amd64"); code != 0 {
		t.Fatalf("init: %s", errs)
	}
	for _, r := range refusedRepoFlags {
		args := []string{"repo", "-b", base, "--" + r.name}
		if r.value {
			args[len(args)-1] += "=x"
		}
		args = append(args, "list", "bookworm")
		_, errs, code := runEnv(t, nil, args...)
		want := "repo list: --" + r.name + " is not implemented by lampi-pkg: " + r.why
		if code != ExitUsage || !strings.Contains(errs, want) {
			t.Errorf("%s: exit %d\n%s\nwant %q", strings.Join(args, " "), code, errs, want)
		}
	}
	_, errs, code := runEnv(t, nil, "repo", "-b", base, "-i", "forbiddenchar", "export")
	if code != ExitUsage || !strings.Contains(errs, "--ignore is not implemented") {
		t.Errorf("-i: exit %d\n%s", code, errs)
	}
	_, errs, code = runEnv(t, nil, "repo", "-b", base, "list", "--no-such-option", "bookworm")
	if code != ExitUsage || !strings.Contains(errs, "repo list: unknown flag: --no-such-option (not an option of lampi-pkg repo; docs/repo.md lists") {
		t.Errorf("unknown option: exit %d\n%s", code, errs)
	}
	_, errs, code = runEnv(t, nil, "repo", "--confdir", filepath.Join(base, "conf"), "init", filepath.Join(t.TempDir(), "x"), "--codename", "a")
	if code != ExitUsage || !strings.Contains(errs, "repo init: --confdir: init writes BASEDIR/conf") {
		t.Errorf("init --confdir: exit %d\n%s", code, errs)
	}
}

// TestRepoConfdir: --confdir, else $REPREPRO_CONFIG_DIR, is where
// conf/distributions, conf/options and the key directory are read from
// (relative to the base directory; "+b/" names it); they used to be
// refused as unknown and BASEDIR/conf was always read.
func TestRepoConfdir(t *testing.T) {
	base, hi1, _ := targetRepo(t)
	elsewhere := filepath.Join(filepath.Dir(base), "etc-repo")
	if err := os.Rename(filepath.Join(base, "conf"), elsewhere); err != nil {
		t.Fatal(err)
	}
	if _, errs, code := runEnv(t, nil, "repo", "-b", base, "list", "bookworm"); code == 0 || !strings.Contains(errs, "conf/distributions does not exist") {
		t.Fatalf("without confdir: exit %d\n%s", code, errs)
	}
	if _, errs, code := runEnv(t, nil, "repo", "-b", base, "--confdir", elsewhere, "includedeb", "bookworm", hi1); code != 0 {
		t.Fatalf("--confdir: exit %d\n%s", code, errs)
	}
	if out, errs, code := runEnv(t, map[string]string{"REPREPRO_CONFIG_DIR": "+b/../etc-repo"}, "repo", "-b", base, "list", "bookworm"); code != 0 || out != "bookworm|main|amd64: hi 0.1\n" {
		t.Fatalf("$REPREPRO_CONFIG_DIR: exit %d\n%s%s", code, out, errs)
	}
	// Still signed as conf/distributions there says; conf/options is
	// read from there too.
	if _, err := os.Stat(filepath.Join(base, "dists", "bookworm", "InRelease")); err != nil {
		t.Errorf("not signed: %v", err)
	}
	os.WriteFile(filepath.Join(elsewhere, "options"), []byte("gnupghome /root/.gnupg\n"), 0o644)
	if _, errs, code := runEnv(t, nil, "repo", "-b", base, "--confdir", elsewhere, "list", "bookworm"); code == 0 || !strings.Contains(errs, "etc-repo/options:1:") || !strings.Contains(errs, `option "gnupghome": not implemented`) {
		t.Errorf("conf/options in --confdir: exit %d\n%s", code, errs)
	}
}
