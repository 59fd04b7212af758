package repo

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"
	"time"

	"github.com/lampi-pkg/lampi-pkg/deb"
	"github.com/lampi-pkg/lampi-pkg/signing"
)

// testNow is the fixed clock of the tests.
var testNow = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func fixedNow() time.Time { return testNow }

// pkgSpec describes a test package.
type pkgSpec struct {
	name, version, arch string
	extra               string // more control lines, "Field: value\n"
	payload             string // content of /usr/share/<name>/data
	gzip                bool
	plain               bool   // uncompressed members: fast to build (many packages)
	control             string // the whole control file, instead of the above
}

// buildDeb writes a .deb for spec into dir and returns its path.
func buildDeb(t testing.TB, dir string, p pkgSpec) string {
	t.Helper()
	if p.arch == "" {
		p.arch = "all"
	}
	ctl := fmt.Sprintf("Package: %s\nVersion: %s\nArchitecture: %s\nMaintainer: Test <test@example.org>\nSection: misc\nPriority: optional\n%sDescription: test package %s\n This is %s.\n",
		p.name, p.version, p.arch, p.extra, p.name, p.name)
	if p.control != "" {
		ctl = p.control
	}
	payload := p.payload
	if payload == "" {
		payload = p.name + " " + p.version + "\n"
	}
	fsys := fstest.MapFS{
		"DEBIAN/control":                {Data: []byte(ctl), Mode: 0o644, ModTime: testNow},
		"usr/share/" + p.name + "/data": {Data: []byte(payload), Mode: 0o644, ModTime: testNow},
	}
	opts := deb.BuildOptions{Mtime: testNow}
	if p.gzip {
		opts.Compression = deb.CompressGzip
	}
	if p.plain {
		opts.Compression, opts.Workers = deb.CompressNone, 1
	}
	var buf bytes.Buffer
	res, err := deb.Build(context.Background(), fsys, &buf, opts)
	if err != nil {
		t.Fatalf("build %s: %v", p.name, err)
	}
	out := filepath.Join(dir, res.Filename)
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

const testDistributions = `Origin: Lampi
Label: Lampi
Suite: stable
Codename: bookworm
Version: 12.0
Architectures: armhf arm64 amd64
Components: main contrib
Description: lampi test repository

Origin: Lampi
Label: Lampi
Suite: testing
Codename: trixie
Architectures: armhf amd64
Components: main
Description: lampi testing
Limit: 2
DebIndices: Packages Release . .gz .xz
`

// newTestRepo makes a repository with conf/distributions set to conf.
func newTestRepo(t testing.TB, conf string, opts Options) *Repo {
	t.Helper()
	base := t.TempDir()
	writeConf(t, base, conf)
	if opts.Now == nil {
		opts.Now = fixedNow
	}
	r, err := Open(base, opts)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func writeConf(t testing.TB, base, conf string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(base, "conf"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(base, "conf", "distributions"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
}

// testKey generates a signing key and its public keyring file.
func testKey(t testing.TB, dir string) (*signing.Key, string) {
	t.Helper()
	k, err := signing.GenerateKey(signing.GenerateOptions{Name: "Repo Test", Email: "repo@example.org", Now: testNow.Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	var pub bytes.Buffer
	if err := k.WritePublic(&pub, false); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "repo-key.gpg")
	if err := os.WriteFile(p, pub.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return k, p
}

func readFile(t testing.TB, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func mustInclude(t testing.TB, r *Repo, codename string, files ...string) *Result {
	t.Helper()
	res, err := r.IncludeDeb(context.Background(), codename, files, IncludeOptions{})
	if err != nil {
		t.Fatalf("includedeb %s: %v", codename, err)
	}
	return res
}
