package cli

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lampi-pkg/lampi-pkg/repo"
)

// TestRepoConfOptionsErrors: a conf/options value that does not parse
// stops the command with the file, line, option and what to write,
// instead of being ignored; good values (and --plain-file-io) work.
func TestRepoConfOptionsErrors(t *testing.T) {
	base := filepath.Join(t.TempDir(), "srv")
	if _, errs, code := runEnv(t, nil, "repo", "init", base, "--codename", "bookworm", "--architectures", "amd64"); code != 0 {
		t.Fatalf("init: %s", errs)
	}
	opts := filepath.Join(base, "conf", "options")
	os.WriteFile(opts, []byte("verbose\nwaitforlock soon\n"), 0o644)
	_, errs, code := runEnv(t, nil, "repo", "-b", base, "list", "bookworm")
	if code == 0 || !strings.Contains(errs, "options:2:") || !strings.Contains(errs, "option waitforlock") || !strings.Contains(errs, "'waitforlock 6'") {
		t.Fatalf("bad waitforlock: exit %d\n%s", code, errs)
	}
	os.WriteFile(opts, []byte("waitforlock 1\nbyhash-keep 1h\nplain-file-io\n"), 0o644)
	if out, errs, code := runEnv(t, nil, "repo", "-b", base, "--plain-file-io", "export"); code != 0 {
		t.Fatalf("good options: exit %d\n%s%s", code, out, errs)
	}
}

// TestRepoFlagsOverConfOptions: a conf/options entry applies where the
// command line says nothing, and a flag given on the command line wins
// over it, through each verb's options (repoOptions.set).
func TestRepoFlagsOverConfOptions(t *testing.T) {
	base := filepath.Join(t.TempDir(), "srv")
	if _, errs, code := runEnv(t, nil, "repo", "init", base, "--codename", "bookworm", "--architectures", "amd64"); code != 0 {
		t.Fatalf("init: %s", errs)
	}
	if err := os.WriteFile(filepath.Join(base, "conf", "options"), []byte("outdir +b/pub\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	elsewhere := filepath.Join(t.TempDir(), "out")
	if out, errs, code := runEnv(t, nil, "repo", "-b", base, "--outdir", elsewhere, "export"); code != 0 {
		t.Fatalf("export --outdir: exit %d\n%s%s", code, out, errs)
	}
	if _, err := os.Stat(filepath.Join(elsewhere, "dists", "bookworm", "Release")); err != nil {
		t.Errorf("--outdir %s: the command line lost to conf/options: %v", elsewhere, err)
	}
	if _, err := os.Stat(filepath.Join(base, "pub")); err == nil {
		t.Errorf("--outdir given, but conf/options' outdir %s was published to", filepath.Join(base, "pub"))
	}
	if out, errs, code := runEnv(t, nil, "repo", "-b", base, "export"); code != 0 {
		t.Fatalf("export: exit %d\n%s%s", code, out, errs)
	}
	if _, err := os.Stat(filepath.Join(base, "pub", "dists", "bookworm", "Release")); err != nil {
		t.Errorf("conf/options outdir +b/pub not applied: %v", err)
	}
}

// TestOnlyRepoVerbsFollowReprepro: the repo verbs skip an older version as
// reprepro does, but release and rollout, which open the repository with
// repoOptions of their own, keep lampi-pkg's strict rules.
func TestOnlyRepoVerbsFollowReprepro(t *testing.T) {
	base, hi1, hi2 := targetRepo(t)
	if _, errs, code := runEnv(t, nil, "repo", "-b", base, "includedeb", "bookworm", hi2); code != 0 {
		t.Fatalf("includedeb 0.2: %s", errs)
	}
	if _, errs, code := runEnv(t, nil, "repo", "-b", base, "includedeb", "bookworm", hi1); code != 0 || !strings.Contains(errs, "Skipping inclusion of 'hi' '0.1'") {
		t.Fatalf("repo includedeb 0.1: exit %d\n%s", code, errs)
	}
	// As release and rollout open it.
	env := &Env{Out: io.Discard, Err: io.Discard, Getenv: func(string) string { return "" }, Now: time.Now}
	ro := &repoOptions{basedir: base, lockTimeout: time.Minute, waitForLock: -1, export: "changed", byHashKeep: time.Hour}
	r, err := ro.open(context.Background(), env, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.IncludeDeb(context.Background(), "bookworm", []string{hi1}, repo.IncludeOptions{}); !errors.Is(err, repo.ErrOlderVersion) {
		t.Errorf("release's repository took an older version: %v", err)
	}
}
