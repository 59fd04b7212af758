package bump

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/txtar"

	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
)

// compatEnv is the environment both tools see in the comparison.
var compatEnv = map[string]string{"BUMP_TEST_BUILDER": "ci"}

// TestBumpversionCompat runs every testdata/compat/*.txtar case with the
// real bumpversion (Debian's bump2version 1.0.1) and with this package, on
// two copies of the same tree, and requires the same files after every
// step. A case's comment lists the steps, one a line:
//
//	bump ARGS…       both succeed with the same result
//	bump! ARGS…      both fail and leave every file as it was
//	crlf FILE        FILE gets CRLF line endings (before the next step)
//	chomp FILE       FILE loses its last newline
//
// ARGS are bumpversion's: a part, optionally preceded by --new-version V.
func TestBumpversionCompat(t *testing.T) {
	testutil.Heavy(t, "runs the real bumpversion (Python), one process per bump, beside ours")
	tool := testutil.RequireTool(t, "bumpversion")
	cases, err := filepath.Glob("testdata/compat/*.txtar")
	if err != nil || len(cases) == 0 {
		t.Fatalf("no cases: %v", err)
	}
	for _, c := range cases {
		t.Run(strings.TrimSuffix(filepath.Base(c), ".txtar"), func(t *testing.T) {
			t.Parallel()
			ar, err := txtar.ParseFile(c)
			if err != nil {
				t.Fatal(err)
			}
			theirs, ours := t.TempDir(), t.TempDir()
			for _, dir := range []string{theirs, ours} {
				writeArchive(t, dir, ar)
			}
			for _, line := range strings.Split(string(ar.Comment), "\n") {
				fields := strings.Fields(line)
				if len(fields) < 2 {
					continue
				}
				switch fields[0] {
				case "crlf":
					for _, dir := range []string{theirs, ours} {
						p := filepath.Join(dir, fields[1])
						b, _ := os.ReadFile(p)
						os.WriteFile(p, bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n")), 0o644)
					}
				case "chomp":
					for _, dir := range []string{theirs, ours} {
						p := filepath.Join(dir, fields[1])
						b, _ := os.ReadFile(p)
						os.WriteFile(p, bytes.TrimSuffix(b, []byte("\n")), 0o644)
					}
				case "bump", "bump!":
					args := fields[1:]
					before := snapshot(t, ours)
					theirErr := runBumpversion(tool, theirs, args)
					ourErr := runOurs(ours, args)
					if fields[0] == "bump!" {
						if theirErr == nil || ourErr == nil {
							t.Fatalf("%s: want both to fail; bumpversion: %v; ours: %v", line, theirErr, ourErr)
						}
						if got := snapshot(t, ours); !equalTrees(before, got) {
							t.Errorf("%s: ours changed files although it failed", line)
						}
						t.Logf("%s: ours fails with: %v", line, ourErr)
					} else if theirErr != nil || ourErr != nil {
						t.Fatalf("%s: bumpversion: %v; ours: %v", line, theirErr, ourErr)
					}
					after := snapshot(t, ours)
					if fields[0] == "bump" && equalTrees(before, after) {
						t.Errorf("%s: nothing changed", line)
					}
					compareTrees(t, line, snapshot(t, theirs), after)
				}
			}
		})
	}
}

func writeArchive(t *testing.T, dir string, ar *txtar.Archive) {
	t.Helper()
	for _, f := range ar.Files {
		p := filepath.Join(dir, f.Name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, f.Data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func runBumpversion(tool, dir string, args []string) error {
	cmd := exec.Command(tool, args...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "LANG=C.UTF-8"}
	for k, v := range compatEnv {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return &exec.ExitError{ProcessState: cmd.ProcessState, Stderr: out}
	}
	return nil
}

func runOurs(dir string, args []string) error {
	o := Options{Dir: dir, Now: time.Now, LookupEnv: func(k string) (string, bool) {
		v, ok := compatEnv[k]
		return v, ok
	}}
	for i := 0; i < len(args); i++ {
		if args[i] == "--new-version" && i+1 < len(args) {
			o.NewVersion = args[i+1]
			i++
			continue
		}
		o.Part = args[i]
	}
	ctx := context.Background()
	p, err := Prepare(ctx, o)
	if err != nil {
		return err
	}
	a, err := p.Apply(ctx)
	if err != nil {
		return err
	}
	_, err = a.Commit(ctx)
	return err
}

// snapshot reads every regular file under dir.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		files[filepath.ToSlash(rel)] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func equalTrees(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func compareTrees(t *testing.T, step string, theirs, ours map[string]string) {
	t.Helper()
	var names []string
	for k := range theirs {
		names = append(names, k)
	}
	for k := range ours {
		if _, ok := theirs[k]; !ok {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		if theirs[n] != ours[n] {
			t.Errorf("%s: %s differs\n--- bumpversion:\n%q\n--- ours:\n%q", step, n, theirs[n], ours[n])
		}
	}
}
