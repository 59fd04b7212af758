package bump

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
)

// gitEnv isolates git from the user's configuration and names the author.
var gitEnv = []string{
	"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
	"GIT_AUTHOR_NAME=Bump Test", "GIT_AUTHOR_EMAIL=bump@example.org",
	"GIT_COMMITTER_NAME=Bump Test", "GIT_COMMITTER_EMAIL=bump@example.org",
}

func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command(testutil.RequireTool(t, "git"), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), gitEnv...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// gitTree is hiTree committed in a new repository.
func gitTree(t *testing.T, archive string) string {
	dir := tree(t, archive)
	git(t, dir, "init", "-q", "-b", "main")
	git(t, dir, "add", "-A")
	git(t, dir, "commit", "-q", "-m", "initial")
	return dir
}

func bumpAll(t *testing.T, o Options) (*Plan, *Applied, GitResult) {
	t.Helper()
	ctx := context.Background()
	o.GitEnv = gitEnv
	p, err := Prepare(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	a, err := p.Apply(ctx)
	if err != nil {
		t.Fatal(err)
	}
	res, err := a.Commit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return p, a, res
}

func TestCommitAndTagLikeBumpversion(t *testing.T) {
	tool := testutil.RequireTool(t, "bumpversion")
	archive := strings.Replace(hiTree, "Version: 1:0.1-3", "Version: 0.1", 1) +
		"[bumpversion:file:DEBIAN/control]\n"
	ours, theirs := gitTree(t, archive), gitTree(t, archive)
	yes := true
	_, _, res := bumpAll(t, Options{Dir: ours, Part: Minor, Commit: &yes, Tag: &yes})
	if res.Commit == "" || res.Tag != "v0.2" {
		t.Fatalf("Commit = %+v", res)
	}
	cmd := exec.Command(tool, "--commit", "--tag", "minor")
	cmd.Dir = theirs
	cmd.Env = append(os.Environ(), gitEnv...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("bumpversion: %v\n%s", err, out)
	}
	for _, args := range [][]string{
		{"log", "-1", "--format=%B"},
		{"show", "--stat", "--format=", "HEAD"},
		{"tag", "-n9", "-l"},
		{"cat-file", "-t", "v0.2"},
		{"status", "--porcelain"},
	} {
		if o, th := git(t, ours, args...), git(t, theirs, args...); o != th {
			t.Errorf("git %s:\nours:\n%s\nbumpversion:\n%s", strings.Join(args, " "), o, th)
		}
	}
}

func TestDirtyTree(t *testing.T) {
	dir := gitTree(t, hiTree)
	ctx := context.Background()
	os.WriteFile(filepath.Join(dir, "untracked"), []byte("x"), 0o644)
	if _, err := Prepare(ctx, Options{Dir: dir, Part: Minor}); err != nil {
		t.Errorf("an untracked file makes the tree dirty: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "opt/hi/__VERSION__"), []byte("0.1\n\n"), 0o644)
	_, err := Prepare(ctx, Options{Dir: dir, Part: Minor})
	if !errors.Is(err, ErrDirty) || !strings.Contains(err.Error(), "M opt/hi/__VERSION__") {
		t.Errorf("Prepare on a dirty tree = %v, want ErrDirty naming the file", err)
	}
	if _, err := Prepare(ctx, Options{Dir: dir, Part: Minor, AllowDirty: true}); err != nil {
		t.Errorf("AllowDirty: %v", err)
	}
}

func TestRollbackAfterCommit(t *testing.T) {
	// Without parse and serialize, so that the configuration reads the
	// pre-release (the course's parse would refuse it).
	dir := gitTree(t, strings.Replace(hiTree, "parse = (?P<major>\\d+)\\.(?P<minor>\\d+)\nserialize = {major}.{minor}\n", "", 1))
	head := git(t, dir, "rev-parse", "HEAD")
	before := snapshot(t, dir)
	yes := true
	_, a, res := bumpAll(t, Options{Dir: dir, NewVersion: "0.2~rc1", Commit: &yes, Tag: &yes})
	if got := readFile(t, dir, "opt/hi/__VERSION__"); got != "0.2~rc1\n" {
		t.Errorf("__VERSION__ = %q, want the version asked for", got)
	}
	// 0.1 → 0.2~rc1 in the configuration: git refuses '~' in a tag.
	if res.Tag != "v0.2_rc1" {
		t.Errorf("tag %q, want v0.2_rc1", res.Tag)
	}
	if err := a.Rollback(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := git(t, dir, "rev-parse", "HEAD"); got != head {
		t.Errorf("HEAD %s after rollback, want %s", got, head)
	}
	if tags := git(t, dir, "tag", "-l"); tags != "" {
		t.Errorf("tags left: %s", tags)
	}
	if st := git(t, dir, "status", "--porcelain"); st != "" {
		t.Errorf("status after rollback:\n%s", st)
	}
	if after := withoutGit(snapshot(t, dir)); !equalTrees(withoutGit(before), after) {
		t.Errorf("files not restored")
	}
}

func TestTagFailureUndoesCommit(t *testing.T) {
	dir := gitTree(t, hiTree)
	git(t, dir, "tag", "v0.2")
	head := git(t, dir, "rev-parse", "HEAD")
	ctx := context.Background()
	yes := true
	p, err := Prepare(ctx, Options{Dir: dir, Part: Minor, Commit: &yes, Tag: &yes, GitEnv: gitEnv})
	if err != nil {
		t.Fatal(err)
	}
	a, err := p.Apply(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Commit(ctx); !errors.Is(err, ErrGit) || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("Commit with an existing tag = %v, want ErrGit", err)
	}
	if got := git(t, dir, "rev-parse", "HEAD"); got != head {
		t.Errorf("the commit was not undone")
	}
	if err := a.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if st := git(t, dir, "status", "--porcelain"); st != "" {
		t.Errorf("status after rollback:\n%s", st)
	}
}

func TestCommitOutsideGit(t *testing.T) {
	dir := tree(t, hiTree)
	yes := true
	_, _, res := bumpAll(t, Options{Dir: dir, Part: Minor, Commit: &yes})
	if res.Skipped == "" || res.Commit != "" {
		t.Errorf("Commit outside git = %+v, want skipped", res)
	}
}

// withoutGit drops the repository's own files from a snapshot.
func withoutGit(files map[string]string) map[string]string {
	for k := range files {
		if strings.HasPrefix(k, ".git/") {
			delete(files, k)
		}
	}
	return files
}
