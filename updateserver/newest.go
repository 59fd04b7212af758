package updateserver

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/lampi-pkg/lampi-pkg/repo"
)

// newestPublished returns a function giving the newest version of every
// package the repository publishes (Repo.Newest): the dashboard's
// "behind" is measured against it. The repository is read again
// whenever a distribution's InRelease (or Release) was replaced — one
// stat per distribution per call — so a release shows at once. A
// repository that cannot be read leaves the last answer in place.
func newestPublished(dir string, now func() time.Time, logger *slog.Logger) func() map[string]string {
	var (
		mu     sync.Mutex
		cached map[string]string
		seen   string
	)
	layout := repo.Layout{Base: dir}
	return func() map[string]string {
		mu.Lock()
		defer mu.Unlock()
		r, err := repo.Open(dir, repo.Options{Now: now})
		if err != nil {
			logger.Warn("newest published versions", "error", err)
			return cached
		}
		var sig strings.Builder
		for _, d := range r.Conf.Distributions {
			for _, name := range []string{"InRelease", "Release"} {
				if fi, err := os.Stat(layout.Release(d.Codename, name)); err == nil {
					fmt.Fprintf(&sig, "%s/%s %d %d;", d.Codename, name, fi.Size(), fi.ModTime().UnixNano())
				}
			}
		}
		if cached != nil && sig.String() == seen {
			return cached
		}
		out, err := r.Newest(context.Background())
		if err != nil {
			logger.Warn("newest published versions", "error", err)
		}
		cached, seen = out, sig.String()
		return out
	}
}
