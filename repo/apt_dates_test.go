package repo

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
)

// publishesSeen makes publishes back to back in pairs: the device's apt
// (its lists kept between runs, as on every device) starts apt-get update,
// its request for InRelease reaches the server (through gate) right after
// the first publish of the pair, and the second publish follows the
// answer at once — within the same second, most of the time. Each publish
// includes a newer hi; after each update apt must offer the version
// published last. apt revalidates InRelease with If-Modified-Since only,
// so a publish dated within the second of the one apt holds looks
// unchanged to it.
func publishesSeen(t *testing.T, r *Repo, apt *testutil.AptRoot, gate *testutil.Gate, pairs int) {
	t.Helper()
	debs := t.TempDir()
	n := 0
	publish := func() string {
		n++
		v := fmt.Sprintf("0.%d", n)
		mustInclude(t, r, "bookworm", buildDeb(t, debs, pkgSpec{name: "hi", version: v}))
		return v
	}
	var stale []string
	offers := func(v, update string) {
		t.Helper()
		out := apt.MustRun("-s", "install", "hi")
		if !strings.Contains(out, "Inst hi ("+v+" ") {
			stale = append(stale, fmt.Sprintf("hi %s unseen; apt-get update:\n%s\nsimulated install:\n%s", v, update, out))
		}
	}
	for range pairs {
		hold := gate.HoldNext()
		updated := make(chan string, 1)
		go func() {
			out, err := apt.Run("update")
			if err != nil {
				out += "\n" + err.Error()
			}
			updated <- out
		}()
		hold.Arrived(t)
		first := publish()
		start := time.Now()
		hold.Pass(t)
		second := publish()
		t.Logf("publishes %s and %s %v apart", first, second, time.Since(start))
		out := <-updated
		if strings.Contains(out, "\nW:") || strings.Contains(out, "\nE:") || strings.Contains(out, "\nErr:") {
			t.Fatalf("apt-get update failed:\n%s", out)
		}
		offers(first, out)
		offers(second, apt.Update())
	}
	if len(stale) > 0 {
		t.Fatalf("%d of %d publishes unseen:\n%s", len(stale), n, strings.Join(stale, "\n\n"))
	}
}

// TestAptSeesEveryPublish: six publishes made back to back, with a
// device's apt-get update between each two, are all seen — through a
// plain third-party static server on the directory (Python's
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
		publishesSeen(t, r, apt, gate, 3)
	})
	t.Run("minio", func(t *testing.T) {
		t.Parallel()
		pt, base, m := s3Target(t)
		r, pub := signedRepo(t, time.Now)
		r.opts.Mirror = &MirrorOptions{Targets: []*PublishTarget{pt}}
		if err := r.syncTargets(t.Context(), nil); err != nil {
			t.Fatal(err)
		}
		gate := testutil.NewGate(t, m.URL)
		apt := newAptRoot(t, fmt.Sprintf("deb [signed-by=%s] %s/ stable main\n", pub, gate.URL+strings.TrimPrefix(base, m.URL)))
		apt.Update()
		publishesSeen(t, r, apt, gate, 3)
	})
}
