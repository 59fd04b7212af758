// Package agenttest builds the world lampi-agent's tests run in: a signed
// repository (made with the repo package) served on 127.0.0.1, an isolated
// dpkg/apt root acting as the device, the fixtures' hi package at any
// version, and a real Mosquitto broker with a subscriber. Only tests import
// it; the agent library itself never imports repo.
package agenttest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lampi-pkg/lampi-pkg/deb"
	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
	"github.com/lampi-pkg/lampi-pkg/repo"
	"github.com/lampi-pkg/lampi-pkg/signing"
)

// Clock is a settable test clock.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock starts a clock at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Start is the tests' clock start.
var Start = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// Repo is a signed repository served over HTTP on 127.0.0.1.
type Repo struct {
	t        testing.TB
	R        *repo.Repo
	Key      *signing.Key
	Keyring  string // public keyring file (binary)
	KeyArmor string // public key, armored
	Clock    *Clock
	Server   *httptest.Server
	URL      string

	mu       sync.Mutex
	hook     func(w http.ResponseWriter, r *http.Request) bool
	requests []string
}

// RepoOptions tune NewRepo.
type RepoOptions struct {
	// ValidFor is reprepro's ValidFor (e.g. "1d"); "" for none.
	ValidFor string
	// Key signs the repository (nil: a new ed25519 key).
	Key *signing.Key
	// TLS serves it over HTTPS with httptest's certificate (agents then
	// need Repo.Server.Client() as their HTTP client).
	TLS bool
	// Limit is conf/distributions' Limit (0: the default, one version).
	Limit int
}

// NewKey makes a signing key valid from before Start.
func NewKey(t testing.TB, name string) *signing.Key {
	t.Helper()
	k, err := signing.GenerateKey(signing.GenerateOptions{Name: name, Email: "repo@example.org", Now: Start.Add(-24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// NewRepo makes a signed repository with distribution stable/bookworm,
// component main, architectures amd64 armhf arm64, and serves it.
func NewRepo(t testing.TB, clock *Clock, o RepoOptions) *Repo {
	t.Helper()
	base := t.TempDir()
	k := o.Key
	if k == nil {
		k = NewKey(t, "Lampi Test Repo")
	}
	var sec, pub, arm bytes.Buffer
	if err := k.WriteSecret(&sec, true); err != nil {
		t.Fatal(err)
	}
	if err := k.WritePublic(&pub, false); err != nil {
		t.Fatal(err)
	}
	if err := k.WritePublic(&arm, true); err != nil {
		t.Fatal(err)
	}
	keys := t.TempDir()
	secPath := filepath.Join(keys, "signing.asc")
	pubPath := filepath.Join(keys, "repo.gpg")
	mustWrite(t, secPath, sec.Bytes(), 0o600)
	mustWrite(t, pubPath, pub.Bytes(), 0o644)
	conf := "Origin: Lampi\nLabel: Lampi\nSuite: stable\nCodename: bookworm\nArchitectures: amd64 armhf arm64\nComponents: main\n" +
		"Description: agent test\nSignWith: " + secPath + "\nDebIndices: Packages Release . .gz .xz\n"
	if o.ValidFor != "" {
		conf += "ValidFor: " + o.ValidFor + "\n"
	}
	if o.Limit != 0 {
		conf += fmt.Sprintf("Limit: %d\n", o.Limit)
	}
	if err := os.MkdirAll(filepath.Join(base, "conf"), 0o755); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, filepath.Join(base, "conf", "distributions"), []byte(conf), 0o644)
	r, err := repo.Open(base, repo.Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Export(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.CreateSymlinks(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	tr := &Repo{t: t, R: r, Key: k, Keyring: pubPath, KeyArmor: arm.String(), Clock: clock}
	files := fileServer(r.Base)
	tr.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		tr.mu.Lock()
		tr.requests = append(tr.requests, req.Method+" "+req.URL.Path)
		hook := tr.hook
		tr.mu.Unlock()
		if hook != nil && hook(w, req) {
			return
		}
		files.ServeHTTP(w, req)
	}))
	if o.TLS {
		tr.Server.StartTLS()
	} else {
		tr.Server.Start()
	}
	t.Cleanup(tr.Server.Close)
	tr.URL = tr.Server.URL
	return tr
}

// fileServer serves dir like the real update server does: a strong
// content-hash ETag, conditional requests and ranges via http.ServeContent
// (Last-Modified alone has a one-second granularity).
func fileServer(dir string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		p := filepath.Join(dir, filepath.FromSlash(path.Clean("/"+req.URL.Path)))
		f, err := os.Open(p)
		if err != nil {
			http.NotFound(w, req)
			return
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil || fi.IsDir() {
			http.NotFound(w, req)
			return
		}
		h := sha256.New()
		if _, err := io.Copy(h, f); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		f.Seek(0, io.SeekStart)
		w.Header().Set("ETag", `"`+hex.EncodeToString(h.Sum(nil))[:32]+`"`)
		http.ServeContent(w, req, "", fi.ModTime(), f)
	})
}

// SetHook installs a handler that may answer a request itself (returning
// true) — the tests' attacker in the middle. nil removes it.
func (r *Repo) SetHook(h func(w http.ResponseWriter, req *http.Request) bool) {
	r.mu.Lock()
	r.hook = h
	r.mu.Unlock()
}

// Stall makes the repository answer the requests whose path match accepts
// with 200 and the file's headers, then no body at all — or, with every >
// 0, the genuine file one byte every every: a server, proxy or attacker
// holding the connection. Each such request is held until the client gives
// up or the test ends. The channel receives the path of each stalled
// request when its headers went out. SetHook(nil) ends it for new requests.
func (r *Repo) Stall(match func(path string) bool, every time.Duration) <-chan string {
	r.t.Helper()
	stop := make(chan struct{})
	r.t.Cleanup(func() { close(stop) }) // before the server's Close, which waits for handlers
	started := make(chan string, 1000)
	r.SetHook(func(w http.ResponseWriter, req *http.Request) bool {
		if !match(req.URL.Path) {
			return false
		}
		b, err := os.ReadFile(filepath.Join(r.R.Base, filepath.FromSlash(path.Clean("/"+req.URL.Path))))
		if err == nil {
			w.Header().Set("Content-Length", fmt.Sprint(len(b)))
		}
		w.WriteHeader(http.StatusOK)
		http.NewResponseController(w).Flush()
		select {
		case started <- req.URL.Path:
		default:
		}
		for i := 0; ; i++ {
			var next <-chan time.Time
			if every > 0 && i < len(b) {
				next = time.After(every)
			}
			select {
			case <-req.Context().Done():
				return true
			case <-stop:
				return true
			case <-next:
				w.Write(b[i : i+1])
				http.NewResponseController(w).Flush()
			}
		}
	})
	return started
}

// Requests returns and clears the request log ("GET /path").
func (r *Repo) Requests() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.requests
	r.requests = nil
	return out
}

// Publish includes the .deb files into bookworm, one clock minute later
// than the previous publish (so every Release has a newer Date).
func (r *Repo) Publish(files ...string) {
	r.t.Helper()
	r.Clock.Advance(time.Minute)
	if _, err := r.R.IncludeDeb(context.Background(), "bookworm", files, repo.IncludeOptions{}); err != nil {
		r.t.Fatalf("includedeb: %v", err)
	}
}

// Phase sets Phased-Update-Percentage on the newest version of name.
func (r *Repo) Phase(name string, percent int) {
	r.t.Helper()
	r.Clock.Advance(time.Minute)
	if _, err := r.R.Phase(context.Background(), "bookworm", repo.Selection{}, name, percent); err != nil {
		r.t.Fatalf("phase: %v", err)
	}
}

// File reads a published file (path relative to the repository base).
func (r *Repo) File(rel string) []byte {
	r.t.Helper()
	b, err := os.ReadFile(filepath.Join(r.R.Base, rel))
	if err != nil {
		r.t.Fatal(err)
	}
	return b
}

// FixturesDir is the module's fixtures/ directory.
func FixturesDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "fixtures")
}

// HiOptions change the hi package.
type HiOptions struct {
	// Postinst, if set, becomes DEBIAN/postinst.
	Postinst string
	// Name replaces the package name (default hi).
	Name string
	// Arch replaces Architecture (default all).
	Arch string
}

// BuildHi copies fixtures/hi, sets its version (control and
// opt/hi/__VERSION__) and builds it into dir; it returns the .deb's path.
func BuildHi(t testing.TB, dir, version string, o HiOptions) string {
	t.Helper()
	tree := t.TempDir()
	src := filepath.Join(FixturesDir(), "hi")
	err := filepath.WalkDir(src, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		dst := filepath.Join(tree, rel)
		if e.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, info.Mode().Perm())
	})
	if err != nil {
		t.Fatal(err)
	}
	ctl, err := os.ReadFile(filepath.Join(tree, "DEBIAN/control"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := deb.ParseControl(bytes.NewReader(ctl), "control")
	if err != nil {
		t.Fatal(err)
	}
	p.Set("Version", version)
	if o.Name != "" {
		p.Set("Package", o.Name)
	}
	if o.Arch != "" {
		p.Set("Architecture", o.Arch)
	}
	mustWrite(t, filepath.Join(tree, "DEBIAN/control"), []byte(p.String()), 0o644)
	mustWrite(t, filepath.Join(tree, "opt/hi/__VERSION__"), []byte(version+"\n"), 0o644)
	if o.Postinst != "" {
		mustWrite(t, filepath.Join(tree, "DEBIAN/postinst"), []byte(o.Postinst), 0o755)
	}
	var buf bytes.Buffer
	res, err := deb.Build(context.Background(), os.DirFS(tree), &buf, deb.BuildOptions{Mtime: Start, Compression: deb.CompressGzip})
	if err != nil {
		t.Fatalf("build hi %s: %v", version, err)
	}
	out := filepath.Join(dir, res.Filename)
	mustWrite(t, out, buf.Bytes(), 0o644)
	return out
}

// Device is an isolated apt/dpkg root with an agent configuration.
type Device struct {
	t        testing.TB
	Apt      *testutil.AptRoot
	Root     string
	Conf     string // agent.conf path
	StateDir string
	CacheDir string
	Sources  string
	ID       string
	// MachineIDFile is the device's machine id (its phasing draw): the
	// same for every Device unless SetMachineID gives it its own.
	MachineIDFile string
}

// NewDevice makes an isolated root whose apt source points at r, and an
// agent.conf for it with extra appended ("key = value" lines).
func NewDevice(t testing.TB, r *Repo, id, extra string) *Device {
	t.Helper()
	apt := testutil.NewAptRoot(t, "")
	d := &Device{t: t, Apt: apt, Root: apt.Root, ID: id}
	dir := t.TempDir()
	d.StateDir, d.CacheDir = filepath.Join(dir, "state"), filepath.Join(dir, "cache")
	d.Sources = filepath.Join(d.Root, "etc/apt/sources.list.d/lampi.list")
	if err := os.MkdirAll(filepath.Dir(d.Sources), 0o755); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, d.Sources, []byte(fmt.Sprintf("deb [signed-by=%s] %s/ stable main\n", r.Keyring, r.URL)), 0o644)
	mid := filepath.Join(dir, "machine-id")
	mustWrite(t, mid, []byte(strings.Repeat("0123456789abcdef", 2)+"\n"), 0o444)
	d.MachineIDFile = mid
	d.Conf = filepath.Join(dir, "agent.conf")
	if !strings.Contains(extra, "lock_timeout") {
		extra = "lock_timeout = 20s\n" + extra
	}
	conf := fmt.Sprintf("device_id = %s\nsources = %s\nroot = %s\nstate_dir = %s\ncache_dir = %s\nmachine_id_file = %s\narchitecture = amd64\n%s",
		id, d.Sources, d.Root, d.StateDir, d.CacheDir, mid, extra)
	mustWrite(t, d.Conf, []byte(conf), 0o644)
	return d
}

// SetMachineID gives the device its own machine id (32 hex digits, as
// /etc/machine-id), as a fleet of devices has: each its own phasing draw.
func (d *Device) SetMachineID(id string) {
	d.t.Helper()
	os.Remove(d.MachineIDFile)
	mustWrite(d.t, d.MachineIDFile, []byte(id+"\n"), 0o444)
}

// Hi01 is a repository publishing hi 0.1 and a device (NewDevice with
// id and extra) that has it installed: the usual start of a test.
type Hi01 struct {
	Clock  *Clock
	Repo   *Repo
	Device *Device
	Debs   string // where BuildHi puts the test's packages
}

// NewHi01 sets up Hi01 on a clock at Start.
func NewHi01(t testing.TB, ro RepoOptions, id, extra string) *Hi01 {
	t.Helper()
	h := &Hi01{Clock: NewClock(Start), Debs: t.TempDir()}
	h.Repo = NewRepo(t, h.Clock, ro)
	hi01 := BuildHi(t, h.Debs, "0.1", HiOptions{})
	h.Repo.Publish(hi01)
	h.Device = NewDevice(t, h.Repo, id, extra)
	h.Device.InstallDeb(hi01)
	return h
}

// InstallDeb installs a .deb with dpkg into the root.
func (d *Device) InstallDeb(path string) {
	d.t.Helper()
	if out, err := d.Apt.Dpkg("-i", path); err != nil {
		d.t.Fatalf("dpkg -i %s: %v\n%s", path, err, out)
	}
}

// Hi runs ROOT/opt/hi/hi and returns its output.
func (d *Device) Hi() string {
	d.t.Helper()
	out, err := exec.Command(filepath.Join(d.Root, "opt/hi/hi")).CombinedOutput()
	if err != nil {
		d.t.Fatalf("opt/hi/hi: %v\n%s", err, out)
	}
	return strings.TrimSpace(string(out))
}

// Version returns the installed version of pkg per dpkg-query ("" when
// not installed).
func (d *Device) Version(pkg string) string {
	d.t.Helper()
	out, err := exec.Command("dpkg-query", "--admindir="+filepath.Join(d.Root, "var/lib/dpkg"), "-W", "-f=${Status} ${Version}", pkg).Output()
	if err != nil {
		return ""
	}
	f := strings.Fields(string(out))
	if len(f) != 4 || f[2] != "installed" {
		return "state:" + string(out)
	}
	return f[3]
}

func mustWrite(t testing.TB, p string, b []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(p, b, mode); err != nil {
		t.Fatal(err)
	}
}
