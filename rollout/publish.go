package rollout

import (
	"context"

	"github.com/lampi-pkg/lampi-pkg/repo"
)

// RepoPublisher publishes percentages through a repository: the version's
// Phased-Update-Percentage changes in the database and the distribution
// is exported, signed and renamed into place as every publish is.
type RepoPublisher struct {
	Repo *repo.Repo
}

// Phase implements Publisher.
func (p RepoPublisher) Phase(ctx context.Context, distribution, pkg, version string, percent int) error {
	_, err := p.Repo.PhaseVersion(ctx, distribution, pkg, version, percent)
	return err
}
