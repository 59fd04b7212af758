package repo

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
	"github.com/lampi-pkg/lampi-pkg/signing"
)

// upstreamKey reads the public keyring file of a test key and returns
// it with the key's fingerprint.
func upstreamKey(t testing.TB, pub string) (*signing.Keyring, string) {
	t.Helper()
	f, err := os.Open(pub)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	kr, err := signing.ReadPublicKeyring(f)
	if err != nil {
		t.Fatal(err)
	}
	return kr, kr.Keys()[0].Fingerprint()
}

// mirrorRepo makes the repository that mirrors: codename "mirror",
// amd64, main, "Update: base", conf/updates as given, signed with a key
// of its own (whose public keyring it returns).
func updateMirror(t testing.TB, updates, extra string) (*Repo, string) {
	t.Helper()
	sec, pub := testKeyFile(t)
	conf := fmt.Sprintf("Origin: Mirror\nLabel: Mirror\nCodename: mirror\nArchitectures: amd64\nComponents: main\nDescription: a mirror\nSignWith: %s\nUpdate: base\n%s", sec, extra)
	r := newTestRepo(t, conf, Options{})
	if err := os.WriteFile(filepath.Join(r.Base, "conf", "updates"), []byte(updates), 0o644); err != nil {
		t.Fatal(err)
	}
	return r, pub
}

// repoState is everything a failed update must leave as it was.
func repoState(t testing.TB, r *Repo) string {
	t.Helper()
	return testutil.TreeSum(t, r.Base, "db", "pool", "dists", "logs")
}

func listed(t testing.TB, r *Repo, codename string) string {
	t.Helper()
	es, err := r.List(context.Background(), codename, Selection{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Target.String()+": "+e.Package+" "+e.Version)
	}
	return strings.Join(out, "\n")
}

// TestUpdateMirrorsSignedUpstream mirrors a signed upstream made by our
// own repo, over HTTP on 127.0.0.1 and through file://, and installs from
// the mirror with the real apt-get: the signature is checked against the
// key VerifyRelease names, only the newest upstream version is taken, a
// newer local version is not downgraded, and a second update after the
// upstream moved on takes the new version.
func TestUpdateMirrorsSignedUpstream(t *testing.T) {
	t.Parallel()
	for _, via := range []string{"http", "file"} {
		t.Run(via, func(t *testing.T) {
			t.Parallel()
			up, upPub := signedRepo(t, nil)
			kr, fpr := upstreamKey(t, upPub)
			debs := t.TempDir()
			mustInclude(t, up, "bookworm",
				buildDeb(t, debs, pkgSpec{name: "hi", version: "0.1"}),
				buildDeb(t, debs, pkgSpec{name: "tool", version: "1.0", arch: "amd64"}),
				buildDeb(t, debs, pkgSpec{name: "armonly", version: "1.0", arch: "armhf"}))
			mustInclude(t, up, "bookworm", buildDeb(t, debs, pkgSpec{name: "hi", version: "0.2"}))
			method := "file://" + up.Base
			if via == "http" {
				srv := httptest.NewServer(http.FileServer(http.Dir(up.Base)))
				defer srv.Close()
				method = srv.URL
			}
			updates := fmt.Sprintf("Name: base\nMethod: %s\nSuite: stable\nComponents: main\nArchitectures: amd64\nVerifyRelease: %s\n", method, fpr[24:])
			m, mPub := updateMirror(t, updates, "Limit: 2\n")
			mustInclude(t, m, "mirror", buildDeb(t, debs, pkgSpec{name: "tool", version: "2.0", arch: "amd64"}))

			ctx := context.Background()
			res, err := m.Update(ctx, nil, UpdateOptions{Keyring: kr})
			if err != nil {
				t.Fatalf("update: %v", err)
			}
			if len(res.Items) != 1 || res.Items[0].Package != "hi" || res.Items[0].Version != "0.2" {
				t.Fatalf("update installed %+v, want hi 0.2 only (tool 2.0 is newer locally, armonly is armhf)", res.Items)
			}
			want := "mirror|main|amd64: hi 0.2\nmirror|main|amd64: tool 2.0"
			if got := listed(t, m, "mirror"); got != want {
				t.Fatalf("mirror lists\n%s\nwant\n%s", got, want)
			}
			if _, err := os.Stat(filepath.Join(m.Base, "pool/main/h/hi/hi_0.2_all.deb")); err != nil {
				t.Fatalf("pool file: %v", err)
			}

			// Again: nothing to do.
			res, err = m.Update(ctx, []string{"mirror"}, UpdateOptions{Keyring: kr})
			if err != nil || len(res.Items) != 0 || len(res.Changes) != 0 {
				t.Fatalf("second update: %+v, %v; want nothing", res, err)
			}

			srv := httptest.NewServer(http.FileServer(http.Dir(m.Base)))
			defer srv.Close()
			apt := newAptRoot(t, fmt.Sprintf("deb [signed-by=%s] %s/ mirror main\n", mPub, srv.URL))
			apt.Update()
			apt.MustRun("install", "hi", "tool")
			if got := readFile(t, filepath.Join(apt.Root, "usr/share/hi/data")); got != "hi 0.2\n" {
				t.Fatalf("installed hi data %q", got)
			}

			mustInclude(t, up, "bookworm", buildDeb(t, debs, pkgSpec{name: "hi", version: "0.3"}))
			check, err := m.Update(ctx, nil, UpdateOptions{Keyring: kr, Check: true})
			if err != nil || len(check.Items) != 1 || check.Items[0].OldVersion != "0.2" || check.Items[0].Version != "0.3" {
				t.Fatalf("checkupdate: %+v, %v; want hi 0.2 → 0.3", check, err)
			}
			if _, err := m.Update(ctx, nil, UpdateOptions{Keyring: kr}); err != nil {
				t.Fatal(err)
			}
			apt.Update()
			apt.MustRun("install", "--only-upgrade", "hi")
			if got := readFile(t, filepath.Join(apt.Root, "usr/share/hi/data")); got != "hi 0.3\n" {
				t.Fatalf("upgraded hi data %q", got)
			}
		})
	}
}

// craftedUpstream writes an upstream repository by hand — dists/x with
// one Packages index listing stanza (FILENAME replaced by filename, the
// size and SHA256 by those of deb) — whose InRelease is clearsigned by
// key, so that the test can make it say what a hostile upstream says.
func craftedUpstream(t testing.TB, key *signing.Key, deb, filename string, releaseFields ...string) string {
	t.Helper()
	dir := t.TempDir()
	data, err := os.ReadFile(deb)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if !strings.HasPrefix(filename, "/") && !strings.Contains(filename, "..") {
		p := filepath.Join(dir, filename)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	pkgs := fmt.Sprintf("Package: hi\nVersion: 0.1\nArchitecture: all\nMaintainer: T <t@example.org>\nSection: misc\nPriority: optional\nFilename: %s\nSize: %d\nSHA256: %s\nDescription: hi\n", filename, len(data), hex.EncodeToString(sum[:]))
	idx := filepath.Join(dir, "dists/x/main/binary-amd64/Packages")
	os.MkdirAll(filepath.Dir(idx), 0o755)
	if err := os.WriteFile(idx, []byte(pkgs), 0o644); err != nil {
		t.Fatal(err)
	}
	isum := sha256.Sum256([]byte(pkgs))
	rel := fmt.Sprintf("Codename: x\n%sComponents: main\nArchitectures: amd64\nSHA256:\n %s %d main/binary-amd64/Packages\n", strings.Join(releaseFields, ""), hex.EncodeToString(isum[:]), len(pkgs))
	s, err := signing.NewSigner(key, signing.SignOptions{Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	in, err := s.Clearsign(context.Background(), strings.NewReader(rel))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "dists/x/InRelease"), in, 0o644); err != nil {
		t.Fatal(err)
	}
	det, err := s.SignDetachedArmored(context.Background(), strings.NewReader(rel))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "dists/x/Release"), []byte(rel), 0o644)
	os.WriteFile(filepath.Join(dir, "dists/x/Release.gpg"), det, 0o644)
	return dir
}

// TestUpdateRefusesTamperedUpstream attacks the mirror from its upstream:
// a Release signed by another key, a forged InRelease, an index or a
// .deb that does not match the signed hashes, a Filename leaving the
// upstream. Each is refused with the right error and the mirror's db/,
// pool/, dists/ and logs/ stay byte for byte as they were; nothing is
// written outside the repository.
func TestUpdateRefusesTamperedUpstream(t *testing.T) {
	t.Parallel()
	keys := t.TempDir()
	key, pub := testKey(t, keys)
	kr, fpr := upstreamKey(t, pub)
	other, _ := testKey(t, t.TempDir())
	debs := t.TempDir()
	hi := buildDeb(t, debs, pkgSpec{name: "hi", version: "0.1"})
	evil := buildDeb(t, t.TempDir(), pkgSpec{name: "hi", version: "0.1", payload: "evil\n"})
	good := "pool/main/h/hi/hi_0.1_all.deb"

	cases := []struct {
		name    string
		up      func(t *testing.T) string // the upstream directory
		verify  string
		wantErr error
		rule    string // more fields of the rule
	}{
		{"good", func(t *testing.T) string { return craftedUpstream(t, key, hi, good) }, fpr, nil, ""},
		{"Release.gpg", func(t *testing.T) string { return craftedUpstream(t, key, hi, good) }, fpr, nil, "GetInRelease: no\n"},
		{"Release not as signed by Release.gpg", func(t *testing.T) string {
			dir := craftedUpstream(t, key, hi, good)
			p := filepath.Join(dir, "dists/x/Release")
			os.WriteFile(p, []byte(strings.Replace(readFile(t, p), "Codename: x", "Codename: y", 1)), 0o644)
			return dir
		}, fpr, signing.ErrBadSignature, "GetInRelease: no\n"},
		{"no Release.gpg", func(t *testing.T) string {
			dir := craftedUpstream(t, key, hi, good)
			os.Remove(filepath.Join(dir, "dists/x/Release.gpg"))
			return dir
		}, fpr, ErrUpdateSignature, "GetInRelease: no\n"},
		{"signed by another key", func(t *testing.T) string { return craftedUpstream(t, other, hi, good) }, fpr, signing.ErrUnknownKey, ""},
		{"key not named by VerifyRelease", func(t *testing.T) string { return craftedUpstream(t, key, hi, good) }, other.Fingerprint(), ErrUpdateSignature, ""},
		{"forged InRelease", func(t *testing.T) string {
			dir := craftedUpstream(t, key, hi, good)
			p := filepath.Join(dir, "dists/x/InRelease")
			data := readFile(t, p)
			os.WriteFile(p, []byte(strings.Replace(data, "Codename: x", "Codename: y", 1)), 0o644)
			return dir
		}, fpr, signing.ErrBadSignature, ""},
		{"index not as signed", func(t *testing.T) string {
			dir := craftedUpstream(t, key, hi, good)
			p := filepath.Join(dir, "dists/x/main/binary-amd64/Packages")
			data := readFile(t, p)
			os.WriteFile(p, []byte(strings.Replace(data, "Priority: optional", "Priority: required", 1)), 0o644)
			return dir
		}, fpr, ErrUpdate, ""},
		{"deb not as indexed", func(t *testing.T) string {
			dir := craftedUpstream(t, key, hi, good)
			data, _ := os.ReadFile(evil)
			os.WriteFile(filepath.Join(dir, good), data, 0o644)
			return dir
		}, fpr, ErrUpdate, ""},
		{"valid", func(t *testing.T) string {
			return craftedUpstream(t, key, hi, good, "Valid-Until: "+releaseDate(testNow.Add(time.Minute))+"\n")
		}, fpr, nil, ""},
		{"expired Release", func(t *testing.T) string {
			return craftedUpstream(t, key, hi, good, "Valid-Until: "+releaseDate(testNow)+"\n")
		}, fpr, ErrUpdate, ""},
		{"deb is another package", func(t *testing.T) string {
			return craftedUpstream(t, key, buildDeb(t, t.TempDir(), pkgSpec{name: "ho", version: "0.1"}), good)
		}, fpr, ErrUpdate, ""},
		{"Filename with ..", func(t *testing.T) string {
			dir := craftedUpstream(t, key, hi, "../../outside/hi.deb")
			return dir
		}, fpr, ErrUpdate, ""},
		{"absolute Filename", func(t *testing.T) string { return craftedUpstream(t, key, hi, hi) }, fpr, ErrUpdate, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			upDir := c.up(t)
			updates := fmt.Sprintf("Name: base\nMethod: file://%s\nSuite: x\nVerifyRelease: %s\n%s", upDir, c.verify, c.rule)
			m, _ := updateMirror(t, updates, "Log: mirror.log\n")
			ctx := context.Background()
			if _, err := m.Export(ctx); err != nil {
				t.Fatal(err)
			}
			before := repoState(t, m)
			outside := testutil.TreeSum(t, filepath.Dir(upDir), filepath.Base(upDir))
			res, err := m.Update(ctx, nil, UpdateOptions{Keyring: kr})
			if c.wantErr == nil {
				if err != nil || len(res.Items) != 1 {
					t.Fatalf("update: %+v, %v", res, err)
				}
				if got := listed(t, m, "mirror"); got != "mirror|main|amd64: hi 0.1" {
					t.Fatalf("mirror lists %q", got)
				}
				return
			}
			if !errors.Is(err, c.wantErr) {
				t.Fatalf("update: %v; want %v", err, c.wantErr)
			}
			if after := repoState(t, m); after != before {
				t.Fatalf("a refused update changed the mirror:\nbefore\n%s\nafter\n%s", before, after)
			}
			if after := testutil.TreeSum(t, filepath.Dir(upDir), filepath.Base(upDir)); after != outside {
				t.Fatalf("update wrote into the upstream's directory")
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(m.Base), "outside")); err == nil {
				t.Fatalf("update wrote outside the repository")
			}
		})
	}
}

// TestUpdateRefusesBadHTTPUpstream is the hash check over HTTP: an
// upstream whose server answers with other bytes than its signed Release
// lists (a tampering proxy) is refused and changes nothing.
func TestUpdateRefusesBadHTTPUpstream(t *testing.T) {
	t.Parallel()
	key, pub := testKey(t, t.TempDir())
	kr, fpr := upstreamKey(t, pub)
	debs := t.TempDir()
	hi := buildDeb(t, debs, pkgSpec{name: "hi", version: "0.1"})
	dir := craftedUpstream(t, key, hi, "pool/main/h/hi/hi_0.1_all.deb")
	files := http.FileServer(http.Dir(dir))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if strings.HasSuffix(req.URL.Path, ".deb") {
			data, _ := os.ReadFile(filepath.Join(dir, req.URL.Path))
			data[len(data)-1] ^= 1
			w.Write(data)
			return
		}
		files.ServeHTTP(w, req)
	}))
	defer srv.Close()
	m, _ := updateMirror(t, fmt.Sprintf("Name: base\nMethod: %s/\nSuite: x\nVerifyRelease: %s\n", srv.URL, fpr), "")
	if _, err := m.Export(context.Background()); err != nil {
		t.Fatal(err)
	}
	before := repoState(t, m)
	_, err := m.Update(context.Background(), nil, UpdateOptions{Keyring: kr})
	if !errors.Is(err, ErrUpdate) || !strings.Contains(err.Error(), "SHA256") {
		t.Fatalf("update: %v; want a SHA256 mismatch", err)
	}
	if after := repoState(t, m); after != before {
		t.Fatalf("a refused update changed the mirror:\n%s\n---\n%s", before, after)
	}
}

// TestUpdateConfig checks conf/updates: fields that are not implemented
// are refused with file:line, blindtrust only when written, the Update
// field's rules must exist, From inherits.
func TestUpdateConfig(t *testing.T) {
	t.Parallel()
	key, pub := testKey(t, t.TempDir())
	kr, fpr := upstreamKey(t, pub)
	debs := t.TempDir()
	hi := buildDeb(t, debs, pkgSpec{name: "hi", version: "0.1"})
	up := craftedUpstream(t, key, hi, "pool/main/h/hi/hi_0.1_all.deb")
	cases := []struct {
		name, updates, extra, want string
	}{
		{"unknown field", "Name: base\nMethod: file://" + up + "\nVerifyRelease: blindtrust\nListHook: /bin/true\n", "", "updates:4: repository configuration error: ListHook: not implemented"},
		{"IgnoreHashes", "Name: base\nMethod: file://" + up + "\nIgnoreHashes: sha256\nVerifyRelease: blindtrust\n", "", "updates:3: repository configuration error: IgnoreHashes"},
		{"no VerifyRelease", "Name: base\nMethod: file://" + up + "\nSuite: x\n", "", "has no VerifyRelease"},
		{"ignore release", "Name: base\nMethod: file://" + up + "\nVerifyRelease: blindtrust\nIgnoreRelease: yes\n", "", "IgnoreRelease: yes"},
		{"revoked keys", "Name: base\nMethod: file://" + up + "\nVerifyRelease: " + fpr + "!\n", "", "revoked or expired"},
		{"scheme", "Name: base\nMethod: ftp://example.org/debian\nVerifyRelease: blindtrust\n", "", "scheme \"ftp\" is not implemented"},
		{"missing rule", "Name: other\nMethod: file://" + up + "\nVerifyRelease: blindtrust\n", "", "Update: no rule \"base\""},
		{"delete rule", "Name: base\nMethod: file://" + up + "\nSuite: x\nVerifyRelease: blindtrust\n", "", ""},
		{"WithDependencies", "Name: base\nMethod: file://" + up + "\nVerifyRelease: blindtrust\nWithDependencies: always\n", "", "updates:4: repository configuration error: WithDependencies: \"always\": write yes"},
		{"From without Method", "Name: parent\nMethod: file://" + up + "\nVerifyRelease: " + fpr + "\n\nName: base\nFrom: parent\nSuite: x\n", "", ""},
		{"From with Method", "Name: parent\nMethod: file://" + up + "\nVerifyRelease: blindtrust\n\nName: base\nFrom: parent\nMethod: file:///x\n", "", "a rule with From takes its Method"},
		{"blindtrust", "Name: base\nMethod: file://" + up + "\nSuite: x\nVerifyRelease: blindtrust\n", "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			m, _ := updateMirror(t, c.updates, c.extra)
			if c.name == "delete rule" {
				writeConf(t, m.Base, "Codename: mirror\nArchitectures: amd64\nComponents: main\nUpdate: - base\n")
				var err error
				if m, err = Open(m.Base, Options{Now: fixedNow}); err != nil {
					t.Fatal(err)
				}
			}
			res, err := m.Update(context.Background(), nil, UpdateOptions{Keyring: kr})
			if c.want == "" {
				if err != nil || len(res.Items) != 1 {
					t.Fatalf("update: %+v, %v", res, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("update: %v; want an error saying %q", err, c.want)
			}
		})
	}
}

// TestUpdateFilters mirrors a filtered upstream: FilterFormula and
// FilterList decide which packages come, and components map upstream
// names to local ones.
func TestUpdateFilters(t *testing.T) {
	t.Parallel()
	up, upPub := signedRepo(t, nil)
	kr, fpr := upstreamKey(t, upPub)
	debs := t.TempDir()
	mustInclude(t, up, "bookworm",
		buildDeb(t, debs, pkgSpec{name: "hi", version: "0.1"}),
		buildDeb(t, debs, pkgSpec{name: "tool", version: "1.0", arch: "amd64"}),
		buildDeb(t, debs, pkgSpec{name: "held", version: "1.0"}),
		buildDeb(t, debs, pkgSpec{name: "pinned", version: "2.0"}))
	list := "held hold\npinned = 1.0\nhi install\ntool install\n"
	updates := fmt.Sprintf("Name: base\nMethod: file://%s\nSuite: bookworm\nComponents: main>extra\nVerifyRelease: %s\nFilterFormula: Architecture (== all)\nFilterList: install base.list\n", up.Base, fpr)
	sec, _ := testKeyFile(t)
	conf := fmt.Sprintf("Codename: mirror\nArchitectures: amd64\nComponents: main extra\nSignWith: %s\nUpdate: base\n", sec)
	m := newTestRepo(t, conf, Options{})
	os.WriteFile(filepath.Join(m.Base, "conf", "updates"), []byte(updates), 0o644)
	os.WriteFile(filepath.Join(m.Base, "conf", "base.list"), []byte(list), 0o644)
	if _, err := m.Update(context.Background(), nil, UpdateOptions{Keyring: kr}); err != nil {
		t.Fatal(err)
	}
	// tool: not Architecture all; held: hold; pinned: 2.0 is not the
	// listed 1.0, so the fallback (install) applies.
	want := "mirror|extra|amd64: hi 0.1\nmirror|extra|amd64: pinned 2.0"
	if got := listed(t, m, "mirror"); got != want {
		t.Fatalf("mirror lists\n%s\nwant\n%s", got, want)
	}
	if !bytes.Contains([]byte(readFile(t, filepath.Join(m.Base, "dists/mirror/extra/binary-amd64/Packages"))), []byte("Filename: pool/extra/h/hi/hi_0.1_all.deb")) {
		t.Fatal("hi is not in the extra component's pool")
	}
}
