package release

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/lampi-pkg/lampi-pkg/server/upload"
	"github.com/lampi-pkg/lampi-pkg/signing"
)

// StepUpload is the step of a release to a server that includes and
// publishes (the server does both in one transaction).
const StepUpload = "upload"

// target is where a release publishes: a local repository, or a
// lampi-pkg server through its upload API.
type target interface {
	// setup settles the codename and checks, before anything changes,
	// that publishing can work (a *StepError when not).
	setup(ctx context.Context) error
	// signsFirst: origin signatures are made before the check.
	signsFirst() bool
	// check sets each tree's Status (and Pool when unchanged), or
	// refuses (a *StepError).
	check(ctx context.Context) error
	// publish includes and publishes the new packages, all or none.
	publish(ctx context.Context, fresh []*tree) error
	// open reads a published pool file.
	open(ctx context.Context, name string) (io.ReadCloser, error)
}

// localTarget is Options.Repo.
type localTarget struct{ r *run }

func (l *localTarget) setup(ctx context.Context) error {
	r, o := l.r, l.r.o
	codename, err := pickCodename(o.Repo, o.Codename)
	if err != nil {
		return &StepError{Step: StepCheck, Err: err}
	}
	r.rep.Codename = codename
	r.signer, err = o.Repo.PublishSigner(ctx, codename)
	if err != nil {
		return &StepError{Step: StepPublish, Err: fmt.Errorf("%w (checked before anything changed)", err)}
	}
	timeout := o.TargetCheckTimeout
	if timeout <= 0 {
		timeout = 15 * time.Second
	}
	if err := o.Repo.CheckTargets(ctx, timeout); err != nil {
		return &StepError{Step: StepPublish, Err: fmt.Errorf("%w (checked before anything changed)", err)}
	}
	if o.SignDeb && o.DebSigner == nil {
		s, ok := r.signer.(*signing.Signer)
		if !ok {
			return &StepError{Step: StepSign, Err: fmt.Errorf("%w: no key to sign packages with: distribution %s has no local SignWith key; name one", ErrOptions, codename)}
		}
		r.o.DebSigner = s
	}
	return nil
}

func (l *localTarget) signsFirst() bool { return false }

func (l *localTarget) check(ctx context.Context) error {
	for _, t := range l.r.trees {
		status, err := l.r.compare(ctx, t)
		if err != nil {
			return &StepError{Step: StepCheck, Dir: t.dir, Err: err}
		}
		t.pkg.Status = status
	}
	return nil
}

func (l *localTarget) publish(ctx context.Context, fresh []*tree) error {
	return l.r.publish(ctx, fresh)
}

func (l *localTarget) open(ctx context.Context, name string) (io.ReadCloser, error) {
	return l.r.o.Repo.Storage().Open(ctx, name)
}

// remoteTarget is Options.Server.
type remoteTarget struct {
	r *run
	c *upload.Client
}

func (m *remoteTarget) setup(ctx context.Context) error {
	r, o := m.r, m.r.o
	if o.Phase != nil || o.PinPrevious != nil {
		return &StepError{Step: StepCheck, Err: fmt.Errorf("%w: a phased release that pins its previous version (a rollout) needs the repository itself, not a server's upload API", ErrOptions)}
	}
	if o.SignDeb && o.DebSigner == nil {
		return &StepError{Step: StepSign, Err: fmt.Errorf("%w: signing packages for a server needs a key (--key): the server's key stays on the server", ErrOptions)}
	}
	codename := o.Codename
	if codename == "" {
		ds, err := m.c.Distributions(ctx)
		if err != nil {
			return &StepError{Step: StepCheck, Err: fmt.Errorf("%w (checked before anything changed)", err)}
		}
		switch len(ds) {
		case 1:
			codename = ds[0].Codename
		case 0:
			return &StepError{Step: StepCheck, Err: fmt.Errorf("%w: the token may upload to no distribution of %s", ErrOptions, m.c.BaseURL)}
		default:
			var names []string
			for _, d := range ds {
				names = append(names, d.Codename)
			}
			return &StepError{Step: StepCheck, Err: fmt.Errorf("%w: the token may upload to %d distributions of %s (%s): say which one with --codename",
				ErrOptions, len(ds), m.c.BaseURL, strings.Join(names, ", "))}
		}
	}
	// The token, its scope and the distribution, before anything changes.
	res, err := m.c.UploadFiles(ctx, codename, nil, upload.Options{DryRun: true})
	if err != nil {
		return &StepError{Step: StepCheck, Err: fmt.Errorf("%w (checked before anything changed)", err)}
	}
	r.rep.Codename = res.Codename
	return nil
}

func (m *remoteTarget) signsFirst() bool { return true }

func (m *remoteTarget) files(trees []*tree) []upload.File {
	out := make([]upload.File, len(trees))
	for i, t := range trees {
		out[i] = upload.LocalFile(t.built)
	}
	return out
}

// check asks the server for its verdict on every package (a dry run). A
// clash — the same version with other bytes — is looked at closer: the
// published file is downloaded, and if it holds the same content (an
// origin signature, timestamps aside) the package is unchanged.
func (m *remoteTarget) check(ctx context.Context) error {
	r := m.r
	res, err := m.c.UploadFiles(ctx, r.rep.Codename, m.files(r.trees), upload.Options{DryRun: true})
	if err != nil {
		return &StepError{Step: StepCheck, Err: err}
	}
	if len(res.Packages) != len(r.trees) {
		return &StepError{Step: StepCheck, Err: fmt.Errorf("the server answered for %d packages, %d were sent", len(res.Packages), len(r.trees))}
	}
	for i, t := range r.trees {
		v, p := res.Packages[i], t.pkg
		switch v.Action {
		case upload.ActionAdd, upload.ActionReplace:
			p.Status = StatusNew
		case upload.ActionUnchanged:
			p.Status, p.Pool = StatusUnchanged, v.Filename
		case upload.ActionOlder:
			return &StepError{Step: StepCheck, Dir: t.dir, Err: fmt.Errorf("%s already has %s %s, newer than %s: bump the version past it (--bump), or remove %s %s from the repository first",
				r.rep.Codename, p.Package, v.Existing, p.Version, p.Package, v.Existing)}
		case upload.ActionClash:
			d, err := poolDigest(ctx, m.open, v.Filename)
			if err != nil {
				return &StepError{Step: StepCheck, Dir: t.dir, Err: fmt.Errorf("read %s from %s: %w", v.Filename, m.c.BaseURL, err)}
			}
			same := d == t.digest
			if !same {
				if same, err = r.sameFiles(ctx, t, v.Filename); err != nil {
					return &StepError{Step: StepCheck, Dir: t.dir, Err: err}
				}
			}
			if !same {
				return &StepError{Step: StepCheck, Dir: t.dir, Err: fmt.Errorf("%w: %s has %s %s as %s, and this build of %s differs from it: apt never reinstalls a version it has, so give the tree a new version (--bump patch, or --bump revision)",
					ErrVersionClash, r.rep.Codename, p.Package, p.Version, v.Filename, t.dir)}
			}
			p.Status, p.Pool = StatusUnchanged, v.Filename
		default:
			return &StepError{Step: StepCheck, Dir: t.dir, Err: fmt.Errorf("the server's verdict on %s is %q, not one this client knows", v.File, v.Action)}
		}
	}
	return nil
}

// publish uploads the new packages in one request. Should the answer
// get lost (the connection dropped after the upload), the server is
// asked again: if it now has every package, the release is out.
func (m *remoteTarget) publish(ctx context.Context, fresh []*tree) error {
	r := m.r
	r.beginStep(StepUpload, "")
	files := m.files(fresh)
	res, err := m.c.UploadFiles(ctx, r.rep.Codename, files, upload.Options{})
	var apiErr *upload.APIError
	if err != nil && !errors.As(err, &apiErr) {
		// No answer: the server may or may not have published.
		ask := context.WithoutCancel(ctx)
		again, cerr := m.c.UploadFiles(ask, r.rep.Codename, files, upload.Options{DryRun: true})
		switch {
		case cerr == nil && allUnchanged(again, len(fresh)):
			res, err = again, nil
			res.Published = true
		case cerr != nil:
			return &StepError{Step: StepUpload, Err: err, Unsure: fmt.Sprintf(
				"the server's answer was lost and asking it again failed (%v): it may have published the packages; check the repository at %s before releasing again", cerr, m.c.BaseURL)}
		}
	}
	if err != nil {
		return &StepError{Step: StepUpload, Err: err}
	}
	if len(res.Packages) != len(fresh) {
		return &StepError{Step: StepUpload, Err: fmt.Errorf("the server answered for %d packages, %d were sent; check the repository at %s", len(res.Packages), len(fresh), m.c.BaseURL)}
	}
	for i, t := range fresh {
		v := res.Packages[i]
		t.pkg.Status = StatusPublished
		if v.Action == upload.ActionUnchanged && !res.DryRun {
			t.pkg.Status = StatusUnchanged
		}
		t.pkg.Pool, t.pkg.SHA256, t.pkg.Size = v.Filename, v.SHA256, v.Size
	}
	r.rep.Published = res.Published
	r.rep.Exported = append(r.rep.Exported, res.Exported...)
	r.rep.Deleted = append(r.rep.Deleted, res.Deleted...)
	return nil
}

func allUnchanged(res *upload.Result, n int) bool {
	if len(res.Packages) != n {
		return false
	}
	for _, p := range res.Packages {
		if p.Action != upload.ActionUnchanged {
			return false
		}
	}
	return true
}

func (m *remoteTarget) open(ctx context.Context, name string) (io.ReadCloser, error) {
	return m.c.Open(ctx, name)
}
