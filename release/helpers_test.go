package release_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
	"github.com/lampi-pkg/lampi-pkg/release"
	"github.com/lampi-pkg/lampi-pkg/repo"
)

// now is the fixed clock of the tests (after the fixture keys' creation).
func now() time.Time { return time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC) }

var keyFile, _ = filepath.Abs("../fixtures/keys/lampi-test.sec.asc")

// courseConfig is the course's .bumpversion.cfg for the hi package.
const courseConfig = `[bumpversion]
current_version = %s
parse = (?P<major>\d+)\.(?P<minor>\d+)
serialize = {major}.{minor}

[bumpversion:file:opt/%s/__VERSION__]
`

// newTree writes a package tree like the course's hi (with its
// .bumpversion.cfg) named name at version under dir.
func newTree(t *testing.T, dir, name, version string) string {
	t.Helper()
	tree := filepath.Join(dir, name)
	files := map[string]string{
		"DEBIAN/control":               fmt.Sprintf("Package: %s\nVersion: %s\nArchitecture: all\nMaintainer: LAMPi Course <lampi@example.org>\nSection: misc\nPriority: optional\nDescription: the course's hello-world package\n Installs /opt/%s/%s.\n", name, version, name, name),
		"opt/" + name + "/" + name:     "#!/bin/sh\nset -e\necho \"Hello Deb! Version $(cat \"$(dirname \"$0\")/__VERSION__\")\"\n",
		"opt/" + name + "/__VERSION__": version + "\n",
		".bumpversion.cfg":             fmt.Sprintf(courseConfig, version, name),
	}
	for p, data := range files {
		full := filepath.Join(tree, p)
		must(t, os.MkdirAll(filepath.Dir(full), 0o755))
		mode := fs.FileMode(0o644)
		if strings.HasPrefix(data, "#!") {
			mode = 0o755
		}
		must(t, os.WriteFile(full, []byte(data), mode))
	}
	// An old, fixed time for every file, as a checkout would leave them.
	old := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	filepath.WalkDir(tree, func(p string, d fs.DirEntry, err error) error {
		if err == nil {
			os.Chtimes(p, old, old)
		}
		return err
	})
	return tree
}

// newRepo makes a signed repository with one distribution, "stable".
func newRepo(t *testing.T, dir string, opts repo.Options) *repo.Repo {
	t.Helper()
	base := filepath.Join(dir, "srv")
	must(t, os.MkdirAll(filepath.Join(base, "conf"), 0o755))
	conf := "Origin: LAMPi\nLabel: LAMPi\nSuite: stable\nCodename: stable\nArchitectures: amd64 armhf\nComponents: main\nDescription: test\nSignWith: " + keyFile + "\nLog: stable.log\n"
	must(t, os.WriteFile(filepath.Join(base, "conf/distributions"), []byte(conf), 0o644))
	return openRepo(t, base, opts)
}

func openRepo(t *testing.T, base string, opts repo.Options) *repo.Repo {
	t.Helper()
	if opts.Now == nil {
		opts.Now = now
	}
	r, err := repo.Open(base, opts)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// options are the usual options of a test release.
func options(r *repo.Repo, dirs ...string) release.Options {
	return release.Options{Dirs: dirs, Repo: r, Now: now, GitEnv: gitEnv}
}

func run(t *testing.T, o release.Options) *release.Report {
	t.Helper()
	rep, err := release.Run(context.Background(), o)
	if err != nil {
		t.Fatalf("release: %v", err)
	}
	return rep
}

// state is every file and directory under some roots: content, mode and
// modification time of files, link targets, directory names.
func state(t *testing.T, roots ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, root := range roots {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.Name() == ".git" && d.IsDir() {
				return fs.SkipDir // compared through git itself: see gitState
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			switch {
			case d.IsDir():
				out[p] = "dir " + info.Mode().String()
			case info.Mode()&fs.ModeSymlink != 0:
				target, _ := os.Readlink(p)
				out[p] = "link " + target
			default:
				f, err := os.Open(p)
				if err != nil {
					return err
				}
				h := sha256.New()
				_, err = io.Copy(h, f)
				f.Close()
				if err != nil {
					return err
				}
				out[p] = fmt.Sprintf("file %s %s %s", info.Mode(), info.ModTime().UTC().Format(time.RFC3339Nano), hex.EncodeToString(h.Sum(nil)))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// sameState reports every difference between two states.
func sameState(t *testing.T, before, after map[string]string) {
	t.Helper()
	var diffs []string
	for p, b := range before {
		if a, ok := after[p]; !ok {
			diffs = append(diffs, "gone: "+p)
		} else if a != b {
			diffs = append(diffs, fmt.Sprintf("changed: %s\n    before %s\n    after  %s", p, b, a))
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			diffs = append(diffs, "new: "+p)
		}
	}
	sort.Strings(diffs)
	if len(diffs) > 0 {
		t.Errorf("not as before:\n  %s", strings.Join(diffs, "\n  "))
	}
}

var gitEnv = []string{"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
	"GIT_AUTHOR_NAME=Release", "GIT_AUTHOR_EMAIL=release@example.org",
	"GIT_COMMITTER_NAME=Release", "GIT_COMMITTER_EMAIL=release@example.org"}

func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	testutil.RequireTool(t, "git")
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), gitEnv...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// gitInit makes dir a git work tree with everything committed.
func gitInit(t *testing.T, dir string) {
	t.Helper()
	git(t, dir, "init", "-q", "-b", "main")
	git(t, dir, "add", "-A")
	git(t, dir, "commit", "-q", "-m", "initial")
}

// gitState is what git says about a work tree: every ref with its
// object, and the status.
func gitState(t *testing.T, dir string) string {
	t.Helper()
	return git(t, dir, "show-ref", "--head") + "status:\n" + git(t, dir, "status", "--porcelain")
}

func versions(t *testing.T, r *repo.Repo, name string) []string {
	t.Helper()
	es, err := r.List(context.Background(), "stable", repo.Selection{}, []string{name}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Target.Arch+":"+e.Version)
	}
	return out
}
