package agent_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lampi-pkg/lampi-pkg/agent"
	at "github.com/lampi-pkg/lampi-pkg/agent/agenttest"
	"github.com/lampi-pkg/lampi-pkg/agent/state"
	"github.com/lampi-pkg/lampi-pkg/signing"
)

// world is a device with hi 0.1 installed and checked once against a
// repository publishing hi 0.1.
type world struct {
	clock *at.Clock
	r     *at.Repo
	d     *at.Device
	a     *agent.Agent
	debs  string
}

func newWorld(t testing.TB, ro at.RepoOptions, conf string, opts agent.Options) *world {
	t.Helper()
	w := &world{clock: at.NewClock(at.Start), debs: t.TempDir()}
	w.r = at.NewRepo(t, w.clock, ro)
	// The device first: under -short its apt root skips the test before
	// a package is built and published.
	id := sha256.Sum256([]byte(t.Name()))
	w.d = at.NewDevice(t, w.r, "lamp-"+hex.EncodeToString(id[:6]), conf)
	hi01 := at.BuildHi(t, w.debs, "0.1", at.HiOptions{})
	w.r.Publish(hi01)
	w.d.InstallDeb(hi01)
	w.a = newAgent(t, w.d, w.clock, opts)
	if o := w.a.Once(context.Background()); o.Result != state.ResultUpToDate {
		t.Fatalf("first check: %s %v", o.Result, o.Err)
	}
	return w
}

// refused checks a failed outcome with the wanted error, the reason in the
// persisted status and the report, and hi still at want.
func (w *world) refused(t *testing.T, o *agent.Outcome, wantErr error, want string) {
	t.Helper()
	if o.Result != state.ResultFailed || !errors.Is(o.Err, wantErr) {
		t.Fatalf("outcome %s %v, want failed with %v", o.Result, o.Err, wantErr)
	}
	if v := w.d.Version("hi"); v != want {
		t.Fatalf("hi is %q after a refused update, want %s", v, want)
	}
	st := w.a.Status()
	if st.Result != state.ResultFailed || st.Error == "" || st.Error != o.Err.Error() {
		t.Errorf("status %+v", st)
	}
	s, err := w.a.NewState("")
	if err != nil || s.Result != state.ResultFailed || s.Error != o.Err.Error() || s.Packages["hi"] != want {
		t.Errorf("report %+v %v", s, err)
	}
	t.Logf("refused: %v", o.Err)
}

func tamper(b []byte) []byte {
	c := bytes.Clone(b)
	c[len(c)/2] ^= 0x20
	return c
}

// serveFile answers with b when the request path matches.
func serveBytes(match func(string) bool, b func(path string) []byte) func(http.ResponseWriter, *http.Request) bool {
	return func(w http.ResponseWriter, r *http.Request) bool {
		if !match(r.URL.Path) {
			return false
		}
		w.Write(b(r.URL.Path))
		return true
	}
}

func TestAttackTamperedPackages(t *testing.T) {
	t.Parallel()
	w := newWorld(t, at.RepoOptions{}, "", agent.Options{})
	w.r.Publish(at.BuildHi(t, w.debs, "0.2", at.HiOptions{}))
	w.r.SetHook(serveBytes(func(p string) bool { return strings.Contains(p, "/binary-amd64/") }, func(p string) []byte {
		// the genuine file with one byte flipped, whatever was asked
		rel := strings.TrimPrefix(p, "/")
		b, err := os.ReadFile(filepath.Join(w.r.R.Base, rel))
		if err != nil {
			return []byte("Package: hi\n")
		}
		return tamper(b)
	}))
	w.refused(t, w.a.Once(context.Background()), agent.ErrHashMismatch, "0.1")
}

func TestAttackTamperedDeb(t *testing.T) {
	t.Parallel()
	w := newWorld(t, at.RepoOptions{}, "", agent.Options{})
	w.r.Publish(at.BuildHi(t, w.debs, "0.2", at.HiOptions{}))
	w.r.SetHook(serveBytes(func(p string) bool { return strings.HasSuffix(p, "hi_0.2_all.deb") }, func(p string) []byte {
		return tamper(w.r.File(strings.TrimPrefix(p, "/")))
	}))
	w.refused(t, w.a.Once(context.Background()), agent.ErrHashMismatch, "0.1")
	entries, _ := filepath.Glob(filepath.Join(w.d.CacheDir, "*0.2*"))
	parts, _ := filepath.Glob(filepath.Join(w.d.CacheDir, "partial", "*"))
	if len(entries)+len(parts) != 0 {
		t.Errorf("tampered file kept: %v %v", entries, parts)
	}
}

func TestAttackOtherKey(t *testing.T) {
	t.Parallel()
	w := newWorld(t, at.RepoOptions{}, "", agent.Options{})
	// Another repository, same layout, hi 0.2, signed by another key:
	// the attacker serves all of it.
	evil := at.NewRepo(t, w.clock, at.RepoOptions{Key: at.NewKey(t, "Mallory")})
	evil.Publish(at.BuildHi(t, w.debs, "0.2", at.HiOptions{}))
	w.r.SetHook(func(rw http.ResponseWriter, req *http.Request) bool {
		b, err := os.ReadFile(filepath.Join(evil.R.Base, strings.TrimPrefix(req.URL.Path, "/")))
		if err != nil {
			http.NotFound(rw, req)
		} else {
			rw.Write(b)
		}
		return true
	})
	o := w.a.Once(context.Background())
	w.refused(t, o, agent.ErrSignature, "0.1")
	if !errors.Is(o.Err, signing.ErrUnknownKey) {
		t.Errorf("error %v does not say the key is unknown", o.Err)
	}
}

func TestAttackReplayedRelease(t *testing.T) {
	t.Parallel()
	w := newWorld(t, at.RepoOptions{}, "", agent.Options{})
	old := w.r.File("dists/stable/InRelease")
	w.r.Publish(at.BuildHi(t, w.debs, "0.2", at.HiOptions{}))
	if o := w.a.Once(context.Background()); o.Result != state.ResultUpdated {
		t.Fatalf("update: %s %v", o.Result, o.Err)
	}
	// The attacker replays the older, genuinely signed InRelease (to freeze
	// the device or hide a fix); Packages by hash would still be there.
	w.r.SetHook(serveBytes(func(p string) bool { return strings.HasSuffix(p, "/InRelease") }, func(string) []byte { return old }))
	w.clock.Advance(time.Minute)
	w.refused(t, w.a.Once(context.Background()), agent.ErrReplay, "0.2")

	// The refusal survives a restart: the accepted Date is persisted.
	a2 := newAgent(t, w.d, w.clock, agent.Options{})
	w.a = a2
	w.refused(t, a2.Once(context.Background()), agent.ErrReplay, "0.2")
}

func TestAttackExpiredRelease(t *testing.T) {
	t.Parallel()
	w := newWorld(t, at.RepoOptions{ValidFor: "1d"}, "", agent.Options{})
	w.r.Publish(at.BuildHi(t, w.debs, "0.2", at.HiOptions{}))
	w.clock.Advance(49 * time.Hour) // the repository was not re-exported
	w.refused(t, w.a.Once(context.Background()), agent.ErrExpired, "0.1")
}

func TestAttackEndlessFiles(t *testing.T) {
	t.Parallel()
	endless := func(rw http.ResponseWriter, _ *http.Request) {
		chunk := bytes.Repeat([]byte("A"), 64<<10)
		for i := 0; i < 1<<16; i++ { // 4 GiB at most, if nothing stopped reading
			if _, err := rw.Write(chunk); err != nil {
				return
			}
		}
	}
	t.Run("InRelease", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t, at.RepoOptions{}, "max_index_size = 1M\n", agent.Options{})
		w.r.SetHook(func(rw http.ResponseWriter, req *http.Request) bool {
			if !strings.HasSuffix(req.URL.Path, "/InRelease") {
				return false
			}
			endless(rw, req)
			return true
		})
		w.refused(t, w.a.Once(context.Background()), agent.ErrTooLarge, "0.1")
	})
	t.Run("deb", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t, at.RepoOptions{}, "", agent.Options{})
		w.r.Publish(at.BuildHi(t, w.debs, "0.2", at.HiOptions{}))
		w.r.SetHook(func(rw http.ResponseWriter, req *http.Request) bool {
			if !strings.HasSuffix(req.URL.Path, ".deb") {
				return false
			}
			endless(rw, req)
			return true
		})
		w.refused(t, w.a.Once(context.Background()), agent.ErrTooLarge, "0.1")
		parts, _ := filepath.Glob(filepath.Join(w.d.CacheDir, "partial", "*"))
		for _, p := range parts {
			if fi, err := os.Stat(p); err == nil && fi.Size() > 1<<20 {
				t.Errorf("%s grew to %d bytes", p, fi.Size())
			}
		}
	})
}

// craftedRelease signs a Release listing packages with the repository's
// own key: everything is genuinely signed, only the content is hostile.
func craftedRelease(t *testing.T, w *world, packages []byte) []byte {
	t.Helper()
	sum := sha256.Sum256(packages)
	rel := fmt.Sprintf("Origin: Lampi\nSuite: stable\nCodename: bookworm\nDate: %s\nArchitectures: amd64\nComponents: main\nSHA256:\n %s %d main/binary-amd64/Packages\n",
		w.clock.Now().UTC().Format(time.RFC1123), hex.EncodeToString(sum[:]), len(packages))
	s, err := signing.NewSigner(w.r.Key, signing.SignOptions{Now: w.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Clearsign(context.Background(), strings.NewReader(rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAttackFilenameEscape(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"pool/main/h/hi/../../../../../outside/hi_0.2_all.deb", "/etc/hi_0.2_all.deb", "../hi_0.2_all.deb", "pool//hi_0.2_all.deb"} {
		t.Run(strings.NewReplacer("/", "_").Replace(name), func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, at.RepoOptions{}, "", agent.Options{})
			deb := at.BuildHi(t, w.debs, "0.2", at.HiOptions{})
			b, _ := os.ReadFile(deb)
			sum := sha256.Sum256(b)
			pk := []byte(fmt.Sprintf("Package: hi\nVersion: 0.2\nArchitecture: all\nMaintainer: X <x@example.org>\nFilename: %s\nSize: %d\nSHA256: %s\nDescription: evil\n",
				name, len(b), hex.EncodeToString(sum[:])))
			w.clock.Advance(time.Minute)
			inRelease := craftedRelease(t, w, pk)
			var asked []string
			w.r.SetHook(func(rw http.ResponseWriter, req *http.Request) bool {
				switch {
				case strings.HasSuffix(req.URL.Path, "/InRelease"):
					rw.Write(inRelease)
				case strings.HasSuffix(req.URL.Path, "/Packages"):
					rw.Write(pk)
				default:
					asked = append(asked, req.URL.Path)
					rw.Write(b)
				}
				return true
			})
			w.refused(t, w.a.Once(context.Background()), agent.ErrUnsafePath, "0.1")
			if len(asked) > 0 {
				t.Errorf("the agent fetched %v", asked)
			}
		})
	}
}

// TestDetachedRelease: a repository without InRelease is read through
// Release + Release.gpg (as apt falls back); a Release that does not match
// its detached signature is refused.
func TestDetachedRelease(t *testing.T) {
	t.Parallel()
	w := newWorld(t, at.RepoOptions{}, "", agent.Options{})
	w.r.Publish(at.BuildHi(t, w.debs, "0.2", at.HiOptions{}))
	tamperRelease := false
	w.r.SetHook(func(rw http.ResponseWriter, req *http.Request) bool {
		switch {
		case strings.HasSuffix(req.URL.Path, "/InRelease"):
			http.NotFound(rw, req)
			return true
		case tamperRelease && strings.HasSuffix(req.URL.Path, "/Release"):
			rw.Write(bytes.Replace(w.r.File("dists/stable/Release"), []byte("Lampi"), []byte("Evil!"), 1))
			return true
		}
		return false
	})
	tamperRelease = true
	w.refused(t, w.a.Once(context.Background()), agent.ErrSignature, "0.1")
	tamperRelease = false
	if o := w.a.Once(context.Background()); o.Result != state.ResultUpdated || w.d.Version("hi") != "0.2" {
		t.Fatalf("%s %v", o.Result, o.Err)
	}
}
