package bump

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
)

// gitRunner runs git in the tree's directory, never in the process's
// current directory.
type gitRunner struct {
	bin string
	dir string
	env []string // added to the inherited environment
}

// run runs git with args and returns its standard output; stdin, when not
// nil, is fed to it. Errors wrap ErrGit and carry git's own message.
func (g *gitRunner) run(ctx context.Context, stdin []byte, extraEnv []string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, g.bin, args...)
	cmd.Dir = g.dir
	cmd.Env = append(append(cmd.Environ(), g.env...), extraEnv...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = strings.TrimSpace(string(out))
		}
		return out, fmt.Errorf("%w: git %s: %v: %s", ErrGit, strings.Join(args, " "), err, msg)
	}
	return out, nil
}

// isRepo reports whether the directory is inside a git work tree, as
// bump2version's "git rev-parse --git-dir" test does.
func (g *gitRunner) isRepo(ctx context.Context) bool {
	if _, err := exec.LookPath(g.bin); err != nil {
		return false
	}
	_, err := g.run(ctx, nil, nil, "rev-parse", "--git-dir")
	return err == nil
}

// dirty returns the changed tracked files ("git status --porcelain" minus
// the untracked "??" lines, as bump2version counts them).
func (g *gitRunner) dirty(ctx context.Context) ([]string, error) {
	out, err := g.run(ctx, nil, nil, "status", "--porcelain")
	if err != nil {
		return nil, err
	}
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "??") {
			lines = append(lines, l)
		}
	}
	return lines, nil
}

// describe returns what bump2version learns from the latest v* tag:
// commit_sha, distance_to_latest_tag, current_version and dirty.
func (g *gitRunner) describe(ctx context.Context) map[string]any {
	info := map[string]any{}
	_, _ = g.run(ctx, nil, nil, "update-index", "--refresh")
	out, err := g.run(ctx, nil, nil, "describe", "--dirty", "--tags", "--long", "--abbrev=40", "--match=v*")
	if err != nil {
		return info
	}
	parts := strings.Split(strings.TrimSpace(string(out)), "-")
	if parts[len(parts)-1] == "dirty" {
		info["dirty"] = "True"
		parts = parts[:len(parts)-1]
	}
	if len(parts) < 3 {
		return info
	}
	info["commit_sha"] = strings.TrimPrefix(parts[len(parts)-1], "g")
	if n, err := strconv.Atoi(parts[len(parts)-2]); err == nil {
		info["distance_to_latest_tag"] = n
	}
	info["current_version"] = strings.TrimPrefix(strings.Join(parts[:len(parts)-2], "-"), "v")
	return info
}

// head returns the commit HEAD names, "" on an unborn branch.
func (g *gitRunner) head(ctx context.Context) string {
	out, err := g.run(ctx, nil, nil, "rev-parse", "-q", "--verify", "HEAD^{commit}")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// tagRef makes a tag name git accepts the way DEP-14 does for Debian
// versions: '~' becomes '_' and ':' becomes '%' (git refuses both in ref
// names, so "git tag v1.2~rc1" fails).
func tagRef(name string) string {
	return strings.NewReplacer("~", "_", ":", "%").Replace(name)
}
