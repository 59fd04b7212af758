package repo

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
	"github.com/lampi-pkg/lampi-pkg/repo/storage"
)

// includes returns a publish function for testutil.SeesEveryPublish:
// each call includes a newer hi.
func includes(t *testing.T, r *Repo) func(bool) string {
	debs := t.TempDir()
	n := 0
	return func(bool) string {
		n++
		v := fmt.Sprintf("0.%d", n)
		mustInclude(t, r, "bookworm", buildDeb(t, debs, pkgSpec{name: "hi", version: v}))
		return v
	}
}

// TestAptSeesEveryPublish: publishes made back to back (six, ten), with a
// device's apt-get update (lists kept) between each two, are all seen —
// through a plain third-party static server on the directory (Python's
// http.server), and through MinIO (a publish target: S3 dates an object
// itself, at its upload).
func TestAptSeesEveryPublish(t *testing.T) {
	t.Parallel()
	t.Run("static server", func(t *testing.T) {
		t.Parallel()
		r, pub := signedRepo(t, nil)
		gate := testutil.NewGate(t, testutil.StartStaticServer(t, r.Base).URL)
		apt := newAptRoot(t, fmt.Sprintf("deb [signed-by=%s] %s/ stable main\n", pub, gate.URL))
		apt.Update()
		testutil.SeesEveryPublish(t, apt, gate, 3, "hi", includes(t, r))
	})
	t.Run("minio", func(t *testing.T) {
		t.Parallel()
		pt, base, m := s3Target(t)
		r, pub := signedRepo(t, time.Now)
		r.opts.Mirror = &MirrorOptions{Targets: []*storage.PublishTarget{pt}}
		if err := r.syncTargets(t.Context(), nil); err != nil {
			t.Fatal(err)
		}
		gate := testutil.NewGate(t, m.URL)
		apt := newAptRoot(t, fmt.Sprintf("deb [signed-by=%s] %s/ stable main\n", pub, gate.URL+strings.TrimPrefix(base, m.URL)))
		apt.Update()
		// More pairs: with the upload after each publish, the two of a
		// pair land in one second less often.
		testutil.SeesEveryPublish(t, apt, gate, 5, "hi", includes(t, r))
	})
}
