package release

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lampi-pkg/lampi-pkg/bump"
	"github.com/lampi-pkg/lampi-pkg/deb"
	"github.com/lampi-pkg/lampi-pkg/repo"
	"github.com/lampi-pkg/lampi-pkg/server/upload"
	"github.com/lampi-pkg/lampi-pkg/signing"
)

// Options say what to release where. Dirs, Repo and Now are needed.
type Options struct {
	// Dirs are the package trees, released together in one publish.
	Dirs []string
	// Repo is the repository; Codename its distribution ("" when it has
	// only one). Include refines where packages go (component…).
	Repo     *repo.Repo
	Codename string
	Include  repo.IncludeOptions
	// Server, instead of Repo, publishes through a lampi-pkg server's
	// upload API ("lampi-pkg release --to URL"): the check is the
	// server's dry run, include and publish are one upload of all the
	// new packages, which the server publishes all or nothing. Codename
	// "" takes the only distribution the token may upload to. SignDeb
	// needs DebSigner (the server's key stays on the server), and signs
	// before the check, as the server may require signed packages.
	Server *upload.Client

	// Part, when set, bumps every tree first (see bump.Options.Part).
	Part string
	// AllowDirty, Commit and Tag are passed to every bump.
	AllowDirty  bool
	Commit, Tag *bool
	// LookupEnv, Git and GitEnv are passed to every bump.
	LookupEnv func(string) (string, bool)
	Git       string
	GitEnv    []string

	// SignDeb adds a debsigs origin signature to every new package, made
	// by DebSigner, or by the repository's SignWith key when nil.
	SignDeb   bool
	DebSigner *signing.Signer

	// OutDir keeps the built packages; "" builds them in a temporary
	// directory (under TempDir) removed at the end. It must not be inside
	// a tree.
	OutDir  string
	TempDir string
	// Build tunes the builds (compression, Mtime clamp); TempDir is set
	// by Run.
	Build deb.BuildOptions

	// Phase, when set, publishes the new packages with this
	// Phased-Update-Percentage (a rollout's first step) in the same
	// all-or-nothing publish: they are never out unphased. Local
	// repositories only.
	Phase *int
	// PinPrevious, when set, keeps each new package's previous version
	// (the newest below it in the distribution; Package.Previous) with
	// the reason it returns, pinned in the same publish before the
	// include, so that Limit cannot push out what a rollout's revert
	// needs. Local repositories only.
	PinPrevious func(codename, pkg, version string) string
	// TargetCheckTimeout bounds the check of the repository's publish
	// targets before anything changes (0: 15 s).
	TargetCheckTimeout time.Duration

	// DryRun changes nothing: see the package documentation.
	DryRun bool
	// Now gives the time for bump templates and measures the steps.
	Now func() time.Time
	// Progress, if set, is told as each step begins for a tree ("" for
	// all trees).
	Progress func(step, dir string)
}

// Report is what a release did (or, for a dry run, would do).
type Report struct {
	Codename string `json:"codename"`
	// Server is the server's URL when published through one.
	Server string `json:"server,omitempty"`
	DryRun bool   `json:"dry_run"`
	// Published is false when there was nothing new to publish.
	Published bool      `json:"published"`
	Packages  []Package `json:"packages"`
	// Exported lists the distributions published; Deleted the pool files
	// removed because nothing needs them any more.
	Exported []string `json:"exported"`
	Deleted  []string `json:"deleted"`
	// Steps are the steps run, in order, with their duration.
	Steps []StepTime `json:"steps"`
}

// Package is one tree's part of a release.
type Package struct {
	Dir          string `json:"dir"`
	Package      string `json:"package"`
	Architecture string `json:"architecture"`
	// OldVersion is the tree's version before the bump (= Version without
	// one).
	OldVersion string `json:"old_version"`
	Version    string `json:"version"`
	// BumpedFiles are the files the bump changed, Changes their changed
	// lines.
	BumpedFiles []string     `json:"bumped_files"`
	Changes     []FileChange `json:"changes"`
	// File is the built package ("" once its temporary directory is
	// gone); Size and SHA256 are those of the package published.
	File   string `json:"file,omitempty"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	// Pool is the package's pool path in the repository.
	Pool string `json:"pool,omitempty"`
	// Previous is the version Options.PinPrevious pinned ("" when none
	// was published below Version).
	Previous string `json:"previous,omitempty"`
	// Status is "published", "unchanged" (already in the repository with
	// the same content) or, for a dry run, "new".
	Status string `json:"status"`
	// Signed is the fingerprint of the origin signature's key.
	Signed string `json:"signed,omitempty"`
	// Commit and Tag are what git got.
	Commit string `json:"commit,omitempty"`
	Tag    string `json:"tag,omitempty"`
	// Warnings are the build's (what lintian would flag, files left out).
	Warnings []string `json:"warnings"`
}

// FileChange is a file a bump changed, with its changed lines.
type FileChange struct {
	Path  string      `json:"path"`
	Hunks []bump.Hunk `json:"hunks"`
}

// StepTime is the duration of a step.
type StepTime struct {
	Step     string        `json:"step"`
	Duration time.Duration `json:"duration_ns"`
}

// Package statuses.
const (
	StatusPublished = "published"
	StatusUnchanged = "unchanged"
	StatusNew       = "new"
)

// tree is the state of one package tree during a release.
type tree struct {
	dir     string // as given
	abs     string
	plan    *bump.Plan
	applied *bump.Applied
	mtimes  map[string]time.Time // files of the bump, before it
	built   string               // the built .deb
	created bool                 // built into OutDir by this run
	pkg     *Package
	digest  string // content digest (origin signatures left out)
	// warnings of the bump, for the report
	warnings []string
}

// run is one Run in progress.
type run struct {
	o       Options
	rep     *Report
	trees   []*tree
	work    string
	tempDir bool
	signer  repo.Signer
	target  target
	clock   func() time.Time
	step    string
	started time.Time
}

// Run releases o.Dirs into o.Repo. On failure it returns a *StepError
// after putting everything back (see the package documentation); the
// Report is nil then.
func Run(ctx context.Context, o Options) (*Report, error) {
	r := &run{o: o, rep: &Report{DryRun: o.DryRun, Packages: []Package{}, Exported: []string{}, Deleted: []string{}, Steps: []StepTime{}}}
	r.clock = o.Now
	if r.clock == nil {
		r.clock = func() time.Time { return time.Time{} }
	}
	if err := r.setup(ctx); err != nil {
		return nil, err
	}
	defer r.cleanup()
	err := r.steps(ctx)
	r.endStep()
	if err != nil {
		var se *StepError
		if !errors.As(err, &se) {
			se = &StepError{Step: r.step, Err: err}
		}
		if !o.DryRun {
			se.Restored, se.RestoreErr = r.undo(ctx)
		}
		return nil, se
	}
	for _, t := range r.trees {
		if r.tempDir {
			t.pkg.File = ""
		}
		r.rep.Packages = append(r.rep.Packages, *t.pkg)
	}
	return r.rep, nil
}

// setup checks the options and the repository before anything changes.
func (r *run) setup(ctx context.Context) error {
	o := r.o
	fail := func(step string, err error) error { return &StepError{Step: step, Err: err} }
	switch {
	case o.Repo != nil && o.Server != nil:
		return fail(StepCheck, fmt.Errorf("%w: both a repository and a server: release to one", ErrOptions))
	case o.Repo != nil:
		r.target = &localTarget{r: r}
	case o.Server != nil:
		if o.Include.Component != "" || o.Include.Section != "" || o.Include.Priority != "" || len(o.Include.Architectures) > 0 {
			return fail(StepCheck, fmt.Errorf("%w: include options are for a local repository: the server places packages by their control fields", ErrOptions))
		}
		r.target = &remoteTarget{r: r, c: o.Server}
		r.rep.Server = o.Server.BaseURL
	default:
		return fail(StepCheck, fmt.Errorf("%w: no repository", ErrOptions))
	}
	if len(o.Dirs) == 0 {
		return fail(StepCheck, fmt.Errorf("%w: no package tree to release", ErrOptions))
	}
	seen := map[string]string{}
	for _, d := range o.Dirs {
		abs, err := filepath.Abs(d)
		if err != nil {
			return fail(StepCheck, err)
		}
		if st, err := os.Stat(abs); err != nil || !st.IsDir() {
			return fail(StepCheck, fmt.Errorf("%w: %s is not a directory", ErrOptions, d))
		}
		if real, err := filepath.EvalSymlinks(abs); err == nil {
			abs = real
		}
		if prev, ok := seen[abs]; ok {
			return fail(StepCheck, fmt.Errorf("%w: %s and %s are the same tree", ErrOptions, prev, d))
		}
		seen[abs] = d
		r.trees = append(r.trees, &tree{dir: d, abs: abs})
	}
	// Publishing must be possible before anything changes: the
	// distribution is writable, its signing key loads (or the server
	// takes the token).
	if err := r.target.setup(ctx); err != nil {
		return err
	}
	var err error
	if o.OutDir != "" && !o.DryRun {
		if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
			return fail(StepBuild, fmt.Errorf("create output directory: %w", err))
		}
		for _, t := range r.trees {
			if inside(o.OutDir, t.abs) {
				return fail(StepBuild, fmt.Errorf("%w: the output directory %s is inside the package tree %s: the package would pack itself", ErrOptions, o.OutDir, t.dir))
			}
		}
		r.work = o.OutDir
	} else {
		r.work, err = os.MkdirTemp(o.TempDir, "lampi-release-*")
		if err != nil {
			return fail(StepBuild, err)
		}
		r.tempDir = true
	}
	return nil
}

func (r *run) cleanup() {
	if r.tempDir {
		os.RemoveAll(r.work)
	}
}

// pickCodename returns codename, or the only distribution.
func pickCodename(rp *repo.Repo, codename string) (string, error) {
	if codename != "" {
		d, err := rp.Conf.Distribution(codename)
		if err != nil {
			return "", err
		}
		return d.Codename, nil
	}
	names := rp.Conf.SortedCodenames()
	if len(names) == 1 {
		return names[0], nil
	}
	return "", fmt.Errorf("%w: the repository has %d distributions (%s): say which one with --codename", ErrOptions, len(names), strings.Join(names, ", "))
}

// beginStep starts timing a step and tells Progress.
func (r *run) beginStep(step, dir string) {
	if step != r.step {
		r.endStep()
		r.step, r.started = step, r.clock()
	}
	if r.o.Progress != nil {
		r.o.Progress(step, dir)
	}
}

func (r *run) endStep() {
	if r.step == "" {
		return
	}
	d := r.clock().Sub(r.started)
	if n := len(r.rep.Steps); n > 0 && r.rep.Steps[n-1].Step == r.step {
		r.rep.Steps[n-1].Duration += d
	} else {
		r.rep.Steps = append(r.rep.Steps, StepTime{Step: r.step, Duration: d})
	}
}

// steps runs the release proper.
func (r *run) steps(ctx context.Context) error {
	if r.o.Part != "" {
		if err := r.bump(ctx); err != nil {
			return err
		}
	}
	for _, t := range r.trees {
		r.beginStep(StepBuild, t.dir)
		if err := r.build(ctx, t); err != nil {
			return &StepError{Step: StepBuild, Dir: t.dir, Err: err}
		}
	}
	if err := uniqueNames(r.trees); err != nil {
		return &StepError{Step: StepBuild, Err: err}
	}
	signFirst := r.target.signsFirst()
	if r.o.SignDeb && signFirst {
		for _, t := range r.trees {
			r.beginStep(StepSign, t.dir)
			if err := r.sign(ctx, t); err != nil {
				return &StepError{Step: StepSign, Dir: t.dir, Err: err}
			}
		}
	}
	r.beginStep(StepCheck, "")
	if err := r.target.check(ctx); err != nil {
		return err
	}
	var fresh []*tree
	for _, t := range r.trees {
		if t.pkg.Status == StatusNew {
			fresh = append(fresh, t)
		}
	}
	if r.o.DryRun {
		r.rep.Published = false
		return nil
	}
	if r.o.SignDeb && !signFirst {
		for _, t := range fresh {
			r.beginStep(StepSign, t.dir)
			if err := r.sign(ctx, t); err != nil {
				return &StepError{Step: StepSign, Dir: t.dir, Err: err}
			}
		}
	}
	for _, t := range r.trees {
		if g := t.plan; t.applied == nil || !g.Git.Repo || !g.Git.Commit && !g.Git.Tag {
			continue
		}
		r.beginStep(StepCommit, t.dir)
		res, err := t.applied.Commit(ctx)
		if err != nil {
			return &StepError{Step: StepCommit, Dir: t.dir, Err: err}
		}
		t.pkg.Commit, t.pkg.Tag = res.Commit, res.Tag
	}
	if len(fresh) == 0 {
		return nil
	}
	return r.target.publish(ctx, fresh)
}

// publish includes and publishes the new packages in one step.
func (r *run) publish(ctx context.Context, fresh []*tree) error {
	files := make([]string, len(fresh))
	for i, t := range fresh {
		files[i] = t.built
	}
	r.beginStep(StepInclude, "")
	step := StepInclude
	pins, err := r.previousPins(ctx, fresh)
	if err != nil {
		return &StepError{Step: step, Err: err}
	}
	res, err := r.o.Repo.IncludePublish(ctx, r.rep.Codename, files, repo.PublishOptions{
		Include: r.o.Include,
		Signer:  r.signer,
		Pins:    pins,
		Phase:   r.o.Phase,
		Step: func(s string) {
			if s == repo.StepPublish {
				step = StepPublish
				r.beginStep(StepPublish, "")
			}
		},
	})
	if err != nil {
		return &StepError{Step: step, Err: err}
	}
	for _, t := range fresh {
		t.pkg.Status = StatusPublished
		for _, c := range res.Changes {
			if c.Package == t.pkg.Package && c.Version == t.pkg.Version && c.File != "" {
				t.pkg.Pool = c.File
			}
		}
	}
	r.rep.Published = true
	r.rep.Exported = append(r.rep.Exported, res.Exported...)
	r.rep.Deleted = append(r.rep.Deleted, res.Deleted...)
	return nil
}

// previousPins are the pins of Options.PinPrevious: for each new
// package, the newest version below it in the distribution.
func (r *run) previousPins(ctx context.Context, fresh []*tree) ([]repo.Pin, error) {
	if r.o.PinPrevious == nil {
		return nil, nil
	}
	var pins []repo.Pin
	for _, t := range fresh {
		es, err := r.o.Repo.List(ctx, r.rep.Codename, repo.Selection{}, []string{t.pkg.Package}, nil)
		if err != nil {
			return nil, fmt.Errorf("previous version of %s: %w", t.pkg.Package, err)
		}
		prev := ""
		for _, e := range es {
			if deb.CompareLoose(e.Version, t.pkg.Version) < 0 && (prev == "" || deb.CompareLoose(e.Version, prev) > 0) {
				prev = e.Version
			}
		}
		t.pkg.Previous = prev
		if prev != "" {
			pins = append(pins, repo.Pin{Codename: r.rep.Codename, Package: t.pkg.Package, Version: prev,
				Reason: r.o.PinPrevious(r.rep.Codename, t.pkg.Package, t.pkg.Version)})
		}
	}
	return pins, nil
}

// uniqueNames refuses two trees that build the same package.
func uniqueNames(trees []*tree) error {
	seen := map[string]string{}
	for _, t := range trees {
		key := t.pkg.Package + "_" + t.pkg.Architecture
		if prev, ok := seen[key]; ok {
			return fmt.Errorf("%w: %s and %s both build %s (%s)", ErrOptions, prev, t.dir, t.pkg.Package, t.pkg.Architecture)
		}
		seen[key] = t.dir
	}
	return nil
}

// inside reports whether dir is tree or below it (symbolic links
// resolved).
func inside(dir, tree string) bool {
	d, err := filepath.Abs(dir)
	if err != nil {
		return false
	}
	if real, err := filepath.EvalSymlinks(d); err == nil {
		d = real
	}
	rel, err := filepath.Rel(tree, d)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}
