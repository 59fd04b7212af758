package repo

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
	"github.com/lampi-pkg/lampi-pkg/repo/storage"
)

// testClock is a clock the test sets.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// freshConf is a signed distribution "c" with ValidFor, and "d" without;
// it returns the configuration and the public keyring.
func freshConf(t *testing.T, validFor string) (string, string) {
	t.Helper()
	secPath, pub := testKeyFile(t)
	return fmt.Sprintf("Origin: Lampi\nSuite: stable\nCodename: c\nArchitectures: amd64\nComponents: main\nSignWith: %s\nValidFor: %s\n\n"+
		"Codename: d\nArchitectures: amd64\nComponents: main\nSignWith: %s\n", secPath, validFor, secPath), pub
}

// withoutTimes blanks the Date and Valid-Until lines of a Release file.
var releaseTimesRE = regexp.MustCompile(`(?m)^(Date|Valid-Until): .*$`)

func withoutTimes(s string) string { return releaseTimesRE.ReplaceAllString(s, "$1: …") }

// TestRenewBeforeExpiry moves an injected clock through the validity of a
// Release (ValidFor: 1d): Renew leaves it alone while more than half is
// left, then re-signs it — a new Date and Valid-Until, verified by gpgv,
// and nothing else changed in dists/ and pool/ — and the publish target
// gets it. An expired Release is a check problem; a distribution without
// ValidFor is never renewed until ValidFor is added.
func TestRenewBeforeExpiry(t *testing.T) {
	t.Parallel()
	gpgv := testutil.RequireTool(t, "gpgv")
	ctx := context.Background()
	clock := &testClock{t: testNow}
	conf, pub := freshConf(t, "1d")
	r := newTestRepo(t, conf, Options{Now: clock.Now})
	mirror := t.TempDir()
	mt, err := storage.OpenTarget(storage.TargetConfig{Name: "m", URL: "file://" + mirror}, storage.S3Credentials{})
	if err != nil {
		t.Fatal(err)
	}
	r.opts.Mirror = &MirrorOptions{Targets: []*storage.PublishTarget{mt}}
	debs := t.TempDir()
	mustInclude(t, r, "c", buildDeb(t, debs, pkgSpec{name: "hi", version: "0.1"}))
	if _, err := r.Export(ctx, "d"); err != nil {
		t.Fatal(err)
	}
	release := func() string { return readFile(t, filepath.Join(r.Base, "dists/c/Release")) }
	indices := func() string { return testutil.TreeSum(t, r.Base, "pool", "dists/c/main", "dists/d/main") }
	renew := func(o RenewOptions) map[string]Renewal {
		t.Helper()
		rs, err := r.Renew(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]Renewal{}
		for _, n := range rs {
			out[n.Codename] = n
		}
		return out
	}
	rel0, ix0 := release(), indices()

	// 11 hours in: 13 of 24 left, not due.
	clock.set(testNow.Add(11 * time.Hour))
	rs := renew(RenewOptions{})
	if c := rs["c"]; c.Renewed || !c.Due.Equal(testNow.Add(12*time.Hour)) || !c.ValidUntil.Equal(testNow.Add(24*time.Hour)) {
		t.Fatalf("at 11 h: %+v", c)
	}
	if d := rs["d"]; d.Renewed || !d.Due.IsZero() || !d.ValidUntil.IsZero() || !d.Date.Equal(testNow) {
		t.Fatalf("d at 11 h: %+v", d)
	}
	if release() != rel0 {
		t.Fatal("a Release not due was rewritten")
	}

	// 13 hours in: renewed, Date and Valid-Until only.
	at := testNow.Add(13 * time.Hour)
	clock.set(at)
	rs = renew(RenewOptions{})
	if c := rs["c"]; !c.Renewed || !c.Date.Equal(at) || !c.ValidUntil.Equal(at.Add(24*time.Hour)) || !c.Due.Equal(at.Add(12*time.Hour)) {
		t.Fatalf("at 13 h: %+v", rs["c"])
	}
	if rs["d"].Renewed {
		t.Fatalf("d without ValidFor renewed: %+v", rs["d"])
	}
	rel1 := release()
	if !strings.Contains(rel1, "Date: "+releaseDate(at)+"\n") || !strings.Contains(rel1, "Valid-Until: "+releaseDate(at.Add(24*time.Hour))+"\n") {
		t.Fatalf("renewed Release:\n%s", rel1)
	}
	if withoutTimes(rel1) != withoutTimes(rel0) {
		t.Fatalf("more than the times changed:\n%s\nwas\n%s", rel1, rel0)
	}
	if indices() != ix0 {
		t.Fatal("renewing changed an index or pool file")
	}
	in := filepath.Join(r.Base, "dists/c/InRelease")
	if out, err := exec.Command(gpgv, "--keyring", pub, in).CombinedOutput(); err != nil {
		t.Fatalf("gpgv InRelease: %v\n%s", err, out)
	}
	if !strings.Contains(readFile(t, in), "Date: "+releaseDate(at)+"\n") {
		t.Fatal("InRelease not renewed")
	}
	if out, err := exec.Command(gpgv, "--keyring", pub, filepath.Join(r.Base, "dists/c/Release.gpg"), filepath.Join(r.Base, "dists/c/Release")).CombinedOutput(); err != nil {
		t.Fatalf("gpgv Release.gpg: %v\n%s", err, out)
	}
	if readFile(t, filepath.Join(mirror, "dists/c/InRelease")) != readFile(t, in) {
		t.Fatal("the publish target did not get the renewed InRelease")
	}
	// Due again only later; Force renews anyway.
	if rs := renew(RenewOptions{}); rs["c"].Renewed {
		t.Fatal("renewed twice at the same time")
	}
	clock.set(at.Add(time.Minute))
	if rs := renew(RenewOptions{Force: true}); !rs["c"].Renewed || !rs["d"].Renewed {
		t.Fatalf("forced: %+v", rs)
	}

	// Expired: check says so; renewing mends it.
	clock.set(at.Add(25 * time.Hour))
	if problems, err := r.Check(ctx); err == nil || !strings.Contains(strings.Join(problems, "\n"), "dists/c/Release: expired") {
		t.Fatalf("check of an expired Release: %v %v", problems, err)
	}
	if rs := renew(RenewOptions{}); !rs["c"].Renewed {
		t.Fatalf("expired Release not renewed: %+v", rs["c"])
	}
	if problems, err := r.Check(ctx); err != nil {
		t.Fatalf("check after renewing: %v %v", problems, err)
	}

	// ValidFor added to d: due at once.
	writeConf(t, r.Base, strings.Replace(conf, "Codename: d\n", "Codename: d\nValidFor: 2d\n", 1))
	r2, err := Open(r.Base, Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	rs2, err := r2.Renew(ctx, RenewOptions{}, "d")
	if err != nil || len(rs2) != 1 || !rs2[0].Renewed || !rs2[0].ValidUntil.Equal(clock.Now().Add(48*time.Hour)) {
		t.Fatalf("d with ValidFor added: %+v %v", rs2, err)
	}
}

// TestRenewWithApt: a real apt refuses a repository whose Valid-Until has
// passed; after Renew (at the real time; it was published with a clock two
// hours back) it updates and installs from it again.
func TestRenewWithApt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := &testClock{t: time.Now().Add(-2 * time.Hour)}
	conf, pub := freshConf(t, "1h")
	r := newTestRepo(t, conf, Options{Now: clock.Now})
	mustInclude(t, r, "c", buildDeb(t, t.TempDir(), pkgSpec{name: "hi", version: "0.1"}))
	srv := httptest.NewServer(http.FileServer(http.Dir(r.Base)))
	defer srv.Close()
	apt := newAptRoot(t, fmt.Sprintf("deb [signed-by=%s] %s/ c main\n", pub, srv.URL))
	// As on a device: this machine's own apt configuration may turn the
	// time checks off (/etc/apt/apt.conf.d is read despite -o Dir=).
	apt.Extra = append(apt.Extra, "-o", "Acquire::Check-Date=true", "-o", "Acquire::Check-Valid-Until=true")

	clock.set(time.Now())
	out, err := apt.Run("update")
	if err == nil || !strings.Contains(out, "is expired") {
		t.Fatalf("apt-get update accepted an expired Release: %v\n%s", err, out)
	}
	if out, err := apt.Run("install", "hi"); err == nil {
		t.Fatalf("installed from an expired repository:\n%s", out)
	}
	rs, err := r.Renew(ctx, RenewOptions{}, "c")
	if err != nil || !rs[0].Renewed {
		t.Fatalf("renew: %+v %v", rs, err)
	}
	apt.Update()
	apt.MustRun("install", "hi")
	if got := readFile(t, filepath.Join(apt.Root, "usr/share/hi/data")); got != "hi 0.1\n" {
		t.Fatalf("installed data %q", got)
	}
}

// TestInitValidFor: repo init gives a new distribution ValidFor: 7d (its
// Release then carries Valid-Until), or what is asked, or none.
func TestInitValidFor(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ arg, field, until string }{
		{"", "ValidFor: 7d\n", "Valid-Until: Sat, 08 Mar 2025 12:00:00 UTC\n"},
		{"1m", "ValidFor: 1m\n", "Valid-Until: Tue, 01 Apr 2025 12:00:00 UTC\n"},
		{"none", "", ""},
	} {
		dir := t.TempDir()
		if err := Init(dir, InitOptions{Codename: "bookworm", Architectures: []string{"amd64"}, ValidFor: c.arg}); err != nil {
			t.Fatal(err)
		}
		conf := readFile(t, filepath.Join(dir, "conf/distributions"))
		if c.field != "" && !strings.Contains(conf, "\n"+c.field) || c.field == "" && strings.Contains(conf, "ValidFor") {
			t.Errorf("ValidFor %q: conf/distributions\n%s", c.arg, conf)
		}
		r, err := Open(dir, Options{Now: fixedNow})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Export(context.Background()); err != nil {
			t.Fatal(err)
		}
		rel := readFile(t, filepath.Join(dir, "dists/bookworm/Release"))
		if c.until != "" && !strings.Contains(rel, c.until) || c.until == "" && strings.Contains(rel, "Valid-Until") {
			t.Errorf("ValidFor %q: Release\n%s", c.arg, rel)
		}
	}
	if err := Init(t.TempDir(), InitOptions{Codename: "x", ValidFor: "7x"}); err == nil {
		t.Error("ValidFor 7x accepted")
	}
}
