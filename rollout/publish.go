package rollout

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/lampi-pkg/lampi-pkg/deb"
	"github.com/lampi-pkg/lampi-pkg/repo"
)

// RepoPublisher publishes through a repository: percentages change the
// version's Phased-Update-Percentage in the database, and the
// distribution is exported, signed and renamed into place as every
// publish is; pins keep the last good version whatever Limit says.
type RepoPublisher struct {
	Repo *repo.Repo
	// TempDir holds the repacked packages of a revert while they are
	// included ("" is the system's).
	TempDir string
}

// Phase implements Publisher: the percentage and the groups
// (repo.PhasedGroupsField) change in one signed publish.
func (p RepoPublisher) Phase(ctx context.Context, distribution, pkg, version string, percent int, groups []string) error {
	_, err := p.Repo.PhaseVersionGroups(ctx, distribution, pkg, version, percent, groups)
	return err
}

// Pin implements Publisher.
func (p RepoPublisher) Pin(ctx context.Context, distribution, pkg, version, reason string) error {
	return p.Repo.Pin(ctx, repo.Pin{Codename: distribution, Package: pkg, Version: version, Reason: reason})
}

// Unpin implements Publisher.
func (p RepoPublisher) Unpin(ctx context.Context, distribution, pkg, version string) error {
	return p.Repo.Unpin(ctx, distribution, pkg, version)
}

// Versions implements Publisher.
func (p RepoPublisher) Versions(ctx context.Context, distribution, pkg string) ([]string, error) {
	es, err := p.Repo.List(ctx, distribution, repo.Selection{}, []string{pkg}, nil)
	if err != nil {
		return nil, err
	}
	var out []string
	seen := map[string]bool{}
	for _, e := range es {
		if !seen[e.Version] {
			seen[e.Version] = true
			out = append(out, e.Version)
		}
	}
	return out, nil
}

// Republish implements Publisher: every architecture's package of pkg at
// good is repacked as version (payload untouched, deb.SetVersion) and
// included in its component.
func (p RepoPublisher) Republish(ctx context.Context, distribution, pkg, good, version string) error {
	es, err := p.Repo.List(ctx, distribution, repo.Selection{}, []string{pkg}, func(e *repo.Entry) bool { return e.Version == good })
	if err != nil {
		return err
	}
	if len(es) == 0 {
		return fmt.Errorf("%w: %s has no %s %s to revert to", repo.ErrNotFound, distribution, pkg, good)
	}
	dir, err := os.MkdirTemp(p.TempDir, "lampi-revert-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	byComponent := map[string][]string{}
	done := map[string]bool{}
	for _, e := range es {
		if done[e.File] {
			continue
		}
		done[e.File] = true
		out, err := p.repack(ctx, dir, e.File, version)
		if err != nil {
			return err
		}
		byComponent[e.Target.Component] = append(byComponent[e.Target.Component], out)
	}
	for comp, files := range byComponent {
		if _, err := p.Repo.IncludeDeb(ctx, distribution, files, repo.IncludeOptions{Component: comp}); err != nil {
			return fmt.Errorf("include the revert of %s %s as %s: %w", pkg, good, version, err)
		}
	}
	return nil
}

// repack copies the pool file out of the storage and writes it again
// under version into dir.
func (p RepoPublisher) repack(ctx context.Context, dir, poolFile, version string) (string, error) {
	in, err := p.Repo.Storage().Open(ctx, poolFile)
	if err != nil {
		return "", err
	}
	defer in.Close()
	src, err := os.CreateTemp(dir, "good-*.deb")
	if err != nil {
		return "", err
	}
	defer src.Close()
	size, err := io.Copy(src, in)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", poolFile, err)
	}
	sub, err := os.MkdirTemp(dir, "out-*")
	if err != nil {
		return "", err
	}
	tmp := filepath.Join(sub, "repacked.deb")
	out, err := os.Create(tmp)
	if err != nil {
		return "", err
	}
	res, err := deb.SetVersion(src, size, out, version)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("repack %s as %s: %w", poolFile, version, err)
	}
	final := filepath.Join(sub, res.Filename)
	return final, os.Rename(tmp, final)
}
