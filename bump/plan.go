package bump

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lampi-pkg/lampi-pkg/deb"
)

// ControlPath is where a package tree keeps its control file.
const ControlPath = "DEBIAN/control"

// Options says what to bump and how. Only Dir and one of Part or
// NewVersion are needed.
type Options struct {
	// Dir is the package tree; configured paths are relative to it.
	Dir string
	// Part is the part to bump: one of the parse pattern's groups with a
	// configuration, else one of DebianParts. Ignored with NewVersion.
	Part string
	// NewVersion, when set, is the new version itself.
	NewVersion string
	// AllowDirty lets the plan go ahead in a git work tree with
	// uncommitted changes to tracked files.
	AllowDirty bool
	// Commit and Tag override the configuration's commit and tag when
	// not nil.
	Commit, Tag *bool
	// Now is the time templates see as {now} and {utcnow}; nil means the
	// Unix epoch, so that output stays reproducible.
	Now func() time.Time
	// LookupEnv gives the environment variables templates see as
	// {$NAME}; nil means none.
	LookupEnv func(string) (string, bool)
	// Git is the git program ("git" when empty); GitEnv is added to the
	// environment git inherits (e.g. GIT_AUTHOR_NAME=…).
	Git    string
	GitEnv []string
}

// Plan is a computed bump: every change it would make, nothing done yet.
// Apply carries it out.
type Plan struct {
	// Part is the bumped part, or "" when a new version was given.
	Part string
	// Old and New are the package's version (DEBIAN/control) when the
	// tree has one, else the configuration's current_version.
	Old, New string
	// ConfigFile is the configuration read ("" for none); ConfigOld and
	// ConfigNew its current_version before and after.
	ConfigFile           string
	ConfigOld, ConfigNew string
	// Files are the files that change, in the order bump2version would
	// touch them, each once.
	Files []FileChange
	// Git is what Commit will do.
	Git GitPlan

	dir string
	git *gitRunner
}

// GitPlan is the commit and tag a plan makes, last.
type GitPlan struct {
	// Repo tells whether the tree is in a git work tree; without one
	// there is no commit and no tag, as with bump2version.
	Repo bool
	// Commit and Tag say whether to commit and tag.
	Commit, Tag bool
	// Message is the commit message; CommitArgs extra "git commit"
	// arguments.
	Message    string
	CommitArgs []string
	// TagName is the tag (with '~' and ':' made git-safe), TagMessage
	// its annotation (empty: a lightweight tag), SignTag whether to sign.
	TagName, TagMessage string
	SignTag             bool
	// Paths are the files "git add --update" stages before committing.
	Paths []string
}

// FileChange is one file a plan rewrites.
type FileChange struct {
	// Path is the file as the configuration names it (slash-separated,
	// relative to the tree unless absolute).
	Path string
	// Hunks are the changed lines, for showing.
	Hunks    []Hunk
	abs      string
	mode     fs.FileMode
	old, new []byte
}

// Old and New return the file's content before and after.
func (f *FileChange) Old() []byte { return f.old }
func (f *FileChange) New() []byte { return f.new }

// Prepare reads the tree and computes the bump without changing anything.
// With a configuration it does what bump2version 1.0.1 would do to the
// files (see the package documentation for the differences), and also
// updates the Version of DEBIAN/control unless the configuration lists that
// file itself. Without one it steps the Version of DEBIAN/control with
// Next. Either way the new version must sort after the old one in dpkg's
// order, and in a git work tree with changed tracked files it refuses
// unless AllowDirty is set (or allow_dirty in the configuration).
func Prepare(ctx context.Context, o Options) (*Plan, error) {
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, err
	}
	if st, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("package tree: %w", err)
	} else if !st.IsDir() {
		return nil, fmt.Errorf("package tree %s is not a directory", o.Dir)
	}
	if o.Part == "" && o.NewVersion == "" {
		return nil, fmt.Errorf("%w: say which part to bump or give the new version", ErrPart)
	}
	now := time.Unix(0, 0).UTC()
	if o.Now != nil {
		now = o.Now()
	}
	g := &gitRunner{bin: o.Git, dir: dir, env: o.GitEnv}
	if g.bin == "" {
		g.bin = "git"
	}
	p := &Plan{Part: o.Part, dir: dir, git: g}
	if o.NewVersion != "" {
		p.Part = ""
	}
	ws := newWorkspace(dir)
	cfg, control, err := p.loadInputs(ws)
	if err != nil {
		return nil, err
	}
	p.Git.Repo = g.isRepo(ctx)
	if p.Git.Repo && !o.AllowDirty && (cfg == nil || !cfg.AllowDirty) {
		if err := refuseDirty(ctx, g); err != nil {
			return nil, err
		}
	}
	var vcs func() map[string]any
	if p.Git.Repo {
		vcs = func() map[string]any { return g.describe(ctx) }
	}
	tctx := newContext(now, o.LookupEnv, vcs)
	msgCtx := newContext(now, o.LookupEnv, nil)

	if cfg != nil {
		err = p.prepareConfigured(o, cfg, ws, control, tctx, msgCtx)
	} else {
		err = p.prepareDebian(o, ws, control, msgCtx)
		p.Git.Paths = append(p.Git.Paths, ControlPath)
	}
	if err != nil {
		return nil, err
	}
	if err := p.prepareGit(o, cfg, msgCtx); err != nil {
		return nil, err
	}
	for _, f := range ws.order {
		if string(f.cur) != string(f.orig) {
			p.Files = append(p.Files, FileChange{Path: f.rel, Hunks: diffLines(f.orig, f.cur), abs: f.abs, mode: f.mode, old: f.orig, new: f.cur})
		}
	}
	return p, nil
}

// loadInputs reads the tree's bumpversion configuration, if it has one,
// and DEBIAN/control (nil when absent) into ws.
func (p *Plan) loadInputs(ws *workspace) (*Config, *workFile, error) {
	var cfg *Config
	if name, ok, err := FindConfig(p.dir); err != nil {
		return nil, nil, err
	} else if ok {
		f, err := ws.load(name)
		if err != nil {
			return nil, nil, err
		}
		if cfg, err = ParseConfig(name, f.orig); err != nil {
			return nil, nil, err
		}
		p.ConfigFile = name
	}
	control, err := ws.load(ControlPath)
	if errors.Is(err, fs.ErrNotExist) {
		return cfg, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	return cfg, control, nil
}

// refuseDirty fails when the git work tree has uncommitted changes,
// listing them.
func refuseDirty(ctx context.Context, g *gitRunner) error {
	lines, err := g.dirty(ctx)
	if err != nil {
		return err
	}
	if len(lines) > 0 {
		return fmt.Errorf("%w: commit or stash these changes first, or use --allow-dirty:\n  %s", ErrDirty, strings.Join(lines, "\n  "))
	}
	return nil
}

// prepareDebian is the plan without a configuration: DEBIAN/control alone.
func (p *Plan) prepareDebian(o Options, ws *workspace, control *workFile, msgCtx *tmplContext) error {
	if control == nil {
		return fmt.Errorf("%w: %s has no .bumpversion.cfg, no setup.cfg with [bumpversion] and no %s: write a .bumpversion.cfg with current_version = …", ErrNoVersion, o.Dir, ControlPath)
	}
	old, line, err := controlVersion(control.orig, ControlPath)
	if err != nil {
		return err
	}
	var nv deb.Version
	if o.NewVersion != "" {
		nv, err = givenVersion(old, o.NewVersion)
	} else {
		nv, err = Next(old, o.Part)
	}
	if err != nil {
		return fmt.Errorf("%s:%d: %w", ControlPath, line, err)
	}
	ws.update(control, setControlVersion(control.cur, line, nv.String()))
	p.Old, p.New = old.String(), nv.String()
	msgCtx.set("current_version", p.Old)
	msgCtx.set("new_version", p.New)
	return nil
}

// givenVersion reads a --new-version for a package at old: the epoch is
// kept unless the new version names one, and a revision reset to 1 is
// added when old had a revision and the upstream version changes.
func givenVersion(old deb.Version, s string) (deb.Version, error) {
	nv, err := deb.ParseVersion(s)
	if err != nil {
		return deb.Version{}, fmt.Errorf("%w: %w", ErrVersion, err)
	}
	if !strings.Contains(s, ":") {
		nv.Epoch = old.Epoch
	}
	if !strings.Contains(s, "-") && old.Revision != "" && nv.Upstream != old.Upstream {
		nv.Revision = "1"
	}
	return checkOrder(old, nv)
}

// prepareGit fills in the commit and the tag.
func (p *Plan) prepareGit(o Options, cfg *Config, msgCtx *tmplContext) error {
	gp := &p.Git
	gp.Message, gp.TagName, gp.TagMessage = DefaultMessage, DefaultTagName, DefaultMessage
	var commitArgs string
	if cfg != nil {
		gp.Commit, gp.Tag, gp.SignTag = cfg.Commit, cfg.Tag, cfg.SignTags
		gp.Message, gp.TagName, gp.TagMessage, commitArgs = cfg.Message, cfg.TagName, cfg.TagMessage, cfg.CommitArgs
	}
	if o.Commit != nil {
		gp.Commit = *o.Commit
	}
	if o.Tag != nil {
		gp.Tag = *o.Tag
	}
	for _, a := range pySplitlines(commitArgs) {
		gp.CommitArgs = append(gp.CommitArgs, pyStrip(a))
	}
	var err error
	if gp.Message, err = pyFormat(gp.Message, msgCtx.lookup); err != nil {
		return fmt.Errorf("%w: commit message: %w", ErrConfig, err)
	}
	if gp.TagMessage, err = pyFormat(gp.TagMessage, msgCtx.lookup); err != nil {
		return fmt.Errorf("%w: tag message: %w", ErrConfig, err)
	}
	name, err := pyFormat(gp.TagName, msgCtx.lookup)
	if err != nil {
		return fmt.Errorf("%w: tag name: %w", ErrConfig, err)
	}
	gp.TagName = tagRef(name)
	return nil
}
