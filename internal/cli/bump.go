package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lampi-pkg/lampi-pkg/bump"
)

type bumpOptions struct {
	env *Env
	// args are PART and DIR as given; bumpArgs sorts them out.
	args             []string
	newVersion       string
	dryRun           bool
	allowDirty       bool
	commit, noCommit bool
	tag, noTag       bool
	json             bool
}

// bumpReport is the --json output of bump.
type bumpReport struct {
	Part       string           `json:"part,omitempty"`
	Old        string           `json:"old"`
	New        string           `json:"new"`
	ConfigFile string           `json:"config_file,omitempty"`
	CurrentV   string           `json:"current_version,omitempty"`
	NewV       string           `json:"new_version,omitempty"`
	DryRun     bool             `json:"dry_run"`
	Files      []bumpFileReport `json:"files"`
	Commit     string           `json:"commit,omitempty"`
	Tag        string           `json:"tag,omitempty"`
}

type bumpFileReport struct {
	Path  string      `json:"path"`
	Hunks []bump.Hunk `json:"changes"`
}

func newBumpCmd(env *Env, runF runFunc[bumpOptions]) *cobra.Command {
	o := &bumpOptions{env: env}
	cmd := &cobra.Command{
		Use:   "bump PART [DIR]",
		Short: "Bump the version in DEBIAN/control and the files bumpversion lists",
		Long: `Bump the version of the package tree DIR (default: the current directory).

PART is major, minor, patch, revision, pre or final, or any part of the
configuration's parse pattern. --new-version V sets the version instead.

Without a configuration, the Version of DIR/DEBIAN/control is stepped the
Debian way: the epoch stays; the revision goes back to 1 when the upstream
version changes (1:1.2-3 → minor → 1:1.3-1; a native 0.1 stays native);
"revision" counts it up (1.2-1 → 1.2-2); pre-releases use '~', which dpkg
sorts first (1.2.3~rc1 < 1.2.3): "pre" goes 1.2.3 → 1.2.4~rc1 → 1.2.4~rc2,
"final" (or "patch") then gives 1.2.4. A step that would release a
pre-release releases it: patch, minor or final from 1.5.0~rc1 give 1.5.0,
major gives 2.0.0. Only the Version value changes in DEBIAN/control; every
other byte stays.

With a bumpversion/bump2version configuration (.bumpversion.cfg, or setup.cfg
with [bumpversion]) the files it lists change exactly as bump2version 1.0.1
changes them (current_version, parse, serialize, search, replace,
[bumpversion:file:PATH], [bumpversion:glob:PATTERN], [bumpversion:part:NAME]
with values, first_value, optional_value; commit, tag, tag_name, message),
current_version is written back, and DEBIAN/control follows: its epoch is
kept and its revision reset. For example, for the course's hi package:

  [bumpversion]
  current_version = 0.1
  parse = (?P<major>\d+)\.(?P<minor>\d+)
  serialize = {major}.{minor}
  [bumpversion:file:opt/hi/__VERSION__]

A configuration without parse reads its versions as whole Debian versions
(epoch, ~pre-release, +build, -revision) and steps them as above; the files
it lists get the version as it is (bump2version would read only 1.5.0 of
1.5.0~rc1 and write that), or, with a serialize of their own, a form built
from {major}, {minor}, {patch}, {epoch}, {pre}, {build}, {revision}.

Either way the new version must sort after the old one in dpkg's order, or
nothing is changed. Every file must contain the current version before any
is written. The version lands exactly or not at all: when parse reads only
part of it, when serialize would write --new-version otherwise, or when a
file would get a form that sorts after it (1.5.0 for 1.5.0~rc1), bump
refuses and names the parse or serialize that would write it.

--commit and --tag (or commit = True, tag = True in the configuration) commit
the changed files and tag the commit (v{new_version}; '~' and ':' become '_'
and '%', which git accepts). In a git work tree with uncommitted changes to
tracked files, bump refuses unless --allow-dirty.`,
		Example: `  lampi-pkg bump minor hi --dry-run
  lampi-pkg bump pre
  lampi-pkg bump patch --commit --tag
  lampi-pkg bump --new-version 1:2.0-1 hi --json`,
		Args: cobra.RangeArgs(0, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.args = args
			return runVerb(cmd, runF, runBump, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.newVersion, "new-version", "", "set this version instead of bumping a part")
	f.BoolVarP(&o.dryRun, "dry-run", "n", false, "show every file and line that would change; change nothing")
	f.BoolVar(&o.allowDirty, "allow-dirty", false, "go ahead although the git work tree has uncommitted changes")
	f.BoolVar(&o.commit, "commit", false, "commit the changed files (default: commit from the configuration)")
	f.BoolVar(&o.noCommit, "no-commit", false, "do not commit, whatever the configuration says")
	f.BoolVar(&o.tag, "tag", false, "tag the commit (default: tag from the configuration)")
	f.BoolVar(&o.noTag, "no-tag", false, "do not tag, whatever the configuration says")
	f.BoolVar(&o.json, "json", false, "print the result as JSON: old, new, files and lines changed, commit, tag")
	cmd.MarkFlagsMutuallyExclusive("commit", "no-commit")
	cmd.MarkFlagsMutuallyExclusive("tag", "no-tag")
	return cmd
}

// bumpArgs sorts out PART and DIR: with --new-version the part may be left
// out, and a single argument naming a directory is DIR.
func bumpArgs(o *bumpOptions, args []string) (part, dir string, err error) {
	dir = "."
	switch {
	case len(args) == 2:
		part, dir = args[0], args[1]
	case len(args) == 1 && o.newVersion != "":
		if st, err := os.Stat(args[0]); err == nil && st.IsDir() {
			dir = args[0]
		} else {
			part = args[0]
		}
	case len(args) == 1:
		part = args[0]
	case o.newVersion == "":
		return "", "", usageErrorf("bump: say which part to bump (%s) or give --new-version", strings.Join(bump.DebianParts, ", "))
	}
	return part, dir, nil
}

func runBump(ctx context.Context, o *bumpOptions) error {
	env := o.env
	part, dir, err := bumpArgs(o, o.args)
	if err != nil {
		return err
	}
	opts := bump.Options{
		Dir: dir, Part: part, NewVersion: o.newVersion, AllowDirty: o.allowDirty,
		Now:       env.Now,
		LookupEnv: env.lookupEnv,
	}
	opts.Commit, opts.Tag = gitChoice(o.commit, o.noCommit), gitChoice(o.tag, o.noTag)
	plan, err := bump.Prepare(ctx, opts)
	if err != nil {
		return bumpHint(err)
	}
	rep := bumpReport{Part: plan.Part, Old: plan.Old, New: plan.New, ConfigFile: plan.ConfigFile, CurrentV: plan.ConfigOld, NewV: plan.ConfigNew, DryRun: o.dryRun, Files: []bumpFileReport{}}
	for _, f := range plan.Files {
		rep.Files = append(rep.Files, bumpFileReport{Path: f.Path, Hunks: f.Hunks})
	}
	out := env.Out
	if o.dryRun {
		if o.json {
			return writeJSON(out, rep)
		}
		fmt.Fprintf(out, "would bump %s\n", describeBump(plan))
		if err := plan.WriteDiff(out); err != nil {
			return err
		}
		if plan.Git.Commit && plan.Git.Repo {
			fmt.Fprintf(out, "would commit: %s\n", firstLine(plan.Git.Message))
		}
		if plan.Git.Tag && plan.Git.Repo {
			fmt.Fprintf(out, "would tag: %s\n", plan.Git.TagName)
		}
		return nil
	}
	applied, err := plan.Apply(ctx)
	if err != nil {
		return fmt.Errorf("bump: %w (no file was left changed)", err)
	}
	res, err := applied.Commit(ctx)
	if err != nil {
		if rerr := applied.Rollback(ctx); rerr != nil {
			return fmt.Errorf("bump: %w; restoring the files also failed: %v", err, rerr)
		}
		return withHint(fmt.Errorf("bump: %w (the files were restored)", err), "fix git (user.name and user.email set? the tag already there?), then run bump again")
	}
	if res.Skipped != "" {
		fmt.Fprintf(env.Err, "lampi-pkg: warning: %s: %s, so no commit and no tag\n", dir, res.Skipped)
	}
	rep.Commit, rep.Tag = res.Commit, res.Tag
	if o.json {
		return writeJSON(out, rep)
	}
	fmt.Fprintf(out, "bumped %s\n", describeBump(plan))
	for _, f := range plan.Files {
		fmt.Fprintf(out, "  %s\n", f.Path)
	}
	if res.Commit != "" {
		fmt.Fprintf(out, "committed %.12s: %s\n", res.Commit, firstLine(plan.Git.Message))
	}
	if res.Tag != "" {
		fmt.Fprintf(out, "tagged %s\n", res.Tag)
	}
	return nil
}

// describeBump says "0.1 → 0.2 (minor)", with the configuration's own
// versions when they differ from the package's.
func describeBump(p *bump.Plan) string {
	s := p.Old + " → " + p.New
	if p.Part != "" {
		s += " (" + p.Part + ")"
	}
	if p.ConfigFile != "" && (p.ConfigOld != p.Old || p.ConfigNew != p.New) && p.ConfigOld != p.ConfigNew {
		s += fmt.Sprintf("; %s: %s → %s", p.ConfigFile, p.ConfigOld, p.ConfigNew)
	}
	return s
}

func firstLine(s string) string {
	first, _, _ := strings.Cut(s, "\n")
	return first
}

// bumpHint adds what to do to the errors a user can fix.
func bumpHint(err error) error {
	switch {
	case errors.Is(err, bump.ErrDirty):
		return withHint(err, "commit or stash the changes, or run bump with --allow-dirty")
	case errors.Is(err, bump.ErrOrder):
		return withHint(err, "pick a later version with --new-version; lampi-pkg version compare NEW gt OLD checks one")
	case errors.Is(err, bump.ErrPart):
		return withHint(err, "lampi-pkg bump --help lists the parts")
	case errors.Is(err, bump.ErrSerialize):
		return withHint(err, "fix parse or serialize in the configuration as the message says, or ask for a version it can write; lampi-pkg bump --help explains the default without parse")
	case errors.Is(err, bump.ErrNoVersion):
		return withHint(err, "lampi-pkg bump --help shows a .bumpversion.cfg")
	}
	return err
}

// gitChoice is a --commit/--no-commit (or --tag/--no-tag) pair: nil when
// neither is given, so the configuration decides.
func gitChoice(yes, no bool) *bool {
	switch {
	case yes:
		return &yes
	case no:
		v := false
		return &v
	}
	return nil
}
