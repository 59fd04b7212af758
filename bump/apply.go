package bump

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/lampi-pkg/lampi-pkg/internal/atomicfile"
)

// Applied is a bump whose files are written. It can still be undone with
// Rollback; Commit makes the git commit and tag, as the last step.
type Applied struct {
	plan    *Plan
	written []*FileChange
	// git state for undoing Commit
	prevHead  string
	commit    string
	tag       string
	tagObject string
}

// GitResult is what Commit did.
type GitResult struct {
	// Commit is the new commit's hash, "" when none was made.
	Commit string
	// Tag is the tag made, "" when none.
	Tag string
	// Skipped says why nothing was done although asked ("not a git work
	// tree"), "" otherwise.
	Skipped string
}

// Apply writes every changed file. Each file is written whole to a
// temporary file beside it and renamed over it (its permissions kept,
// symbolic links followed), after checking that it still holds what
// Prepare read; when any write fails, the files already written are
// restored and the error says which failed. Apply does not commit or tag:
// call Commit on the result for that.
func (p *Plan) Apply(ctx context.Context) (*Applied, error) {
	a := &Applied{plan: p}
	for i := range p.Files {
		f := &p.Files[i]
		if err := ctx.Err(); err != nil {
			return nil, errors.Join(err, a.restoreFiles())
		}
		if err := replaceFile(f, f.old, f.new); err != nil {
			return nil, errors.Join(err, a.restoreFiles())
		}
		a.written = append(a.written, f)
	}
	return a, nil
}

// Files returns the files Apply changed.
func (a *Applied) Files() []FileChange {
	out := make([]FileChange, len(a.written))
	for i, f := range a.written {
		out[i] = *f
	}
	return out
}

// Rollback undoes everything: the tag and the commit if Commit made them
// (only while they are still where Commit left them), then every file,
// restored byte for byte. A file changed since Apply is left alone and
// reported with ErrConflict; the others are still restored.
func (a *Applied) Rollback(ctx context.Context) error {
	var errs []error
	if err := a.undoGit(ctx); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, a.restoreFiles())
	return errors.Join(errs...)
}

func (a *Applied) restoreFiles() error {
	var errs []error
	for i := len(a.written) - 1; i >= 0; i-- {
		f := a.written[i]
		if err := replaceFile(f, f.new, f.old); err != nil {
			errs = append(errs, fmt.Errorf("restore %s: %w", f.Path, err))
			continue
		}
		a.written = a.written[:i]
	}
	return errors.Join(errs...)
}

// replaceFile writes content to f if it still holds expect.
func replaceFile(f *FileChange, expect, content []byte) error {
	cur, err := os.ReadFile(f.abs)
	if err != nil {
		return fmt.Errorf("%s: %w", f.Path, err)
	}
	if !bytes.Equal(cur, expect) {
		return fmt.Errorf("%s: %w: it no longer holds what bump read; look at it and run bump again", f.Path, ErrConflict)
	}
	if err := atomicfile.WriteFile(f.abs, content, f.mode); err != nil {
		return fmt.Errorf("%s: %w", f.Path, err)
	}
	return nil
}

// Commit makes the plan's commit and tag, as bump2version does: "git add
// --update" on the configured files, the configuration and DEBIAN/control,
// "git commit" with the message (BUMPVERSION_CURRENT_VERSION and
// BUMPVERSION_NEW_VERSION set for hooks), then "git tag" (annotated when
// there is a tag message). If tagging fails, the commit is undone. Outside
// a git work tree it does nothing and says so in Skipped.
func (a *Applied) Commit(ctx context.Context) (GitResult, error) {
	p := a.plan
	gp := p.Git
	if !gp.Commit && !gp.Tag {
		return GitResult{}, nil
	}
	if !gp.Repo {
		return GitResult{Skipped: "not a git work tree"}, nil
	}
	if a.commit != "" || a.tag != "" {
		return GitResult{Commit: a.commit, Tag: a.tag}, nil
	}
	g := p.git
	a.prevHead = g.head(ctx)
	if gp.Commit {
		if len(gp.Paths) > 0 {
			if _, err := g.run(ctx, nil, nil, append([]string{"add", "--update", "--"}, gp.Paths...)...); err != nil {
				return GitResult{}, err
			}
		}
		env := []string{"BUMPVERSION_CURRENT_VERSION=" + p.ConfigOld, "BUMPVERSION_NEW_VERSION=" + p.ConfigNew}
		if p.ConfigFile == "" {
			env = []string{"BUMPVERSION_CURRENT_VERSION=" + p.Old, "BUMPVERSION_NEW_VERSION=" + p.New}
		}
		if _, err := g.run(ctx, []byte(gp.Message), env, append([]string{"commit", "-F", "-"}, gp.CommitArgs...)...); err != nil {
			return GitResult{}, err
		}
		a.commit = g.head(ctx)
	}
	if gp.Tag {
		args := []string{"tag", gp.TagName}
		if gp.SignTag {
			args = append(args, "--sign")
		}
		if gp.TagMessage != "" {
			args = append(args, "--message", gp.TagMessage)
		}
		if _, err := g.run(ctx, nil, nil, args...); err != nil {
			return GitResult{}, errors.Join(err, a.undoGit(ctx))
		}
		a.tag = gp.TagName
		out, _ := g.run(ctx, nil, nil, "rev-parse", "refs/tags/"+gp.TagName)
		a.tagObject = strings.TrimSpace(string(out))
	}
	return GitResult{Commit: a.commit, Tag: a.tag}, nil
}

// undoGit deletes the tag and the commit Commit made, if they are still
// where Commit left them.
func (a *Applied) undoGit(ctx context.Context) error {
	g := a.plan.git
	var errs []error
	if a.tag != "" {
		out, _ := g.run(ctx, nil, nil, "rev-parse", "refs/tags/"+a.tag)
		if strings.TrimSpace(string(out)) != a.tagObject {
			errs = append(errs, fmt.Errorf("tag %s: %w: it was moved since bump made it; delete it yourself if needed", a.tag, ErrConflict))
		} else if _, err := g.run(ctx, nil, nil, "tag", "-d", a.tag); err != nil {
			errs = append(errs, err)
		}
		a.tag = ""
	}
	if a.commit != "" {
		if head := g.head(ctx); head != a.commit {
			errs = append(errs, fmt.Errorf("commit %s: %w: HEAD is %s now, so the bump commit is left in place", a.commit, ErrConflict, head))
		} else if a.prevHead == "" {
			if _, err := g.run(ctx, nil, nil, "update-ref", "-d", "HEAD"); err != nil {
				errs = append(errs, err)
			}
		} else {
			if _, err := g.run(ctx, nil, nil, "reset", "-q", "--soft", a.prevHead); err != nil {
				errs = append(errs, err)
			} else if _, err := g.run(ctx, nil, nil, append([]string{"reset", "-q", a.prevHead, "--"}, a.plan.Git.Paths...)...); err != nil {
				errs = append(errs, err)
			}
		}
		a.commit = ""
	}
	return errors.Join(errs...)
}
