package repo

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lampi-pkg/lampi-pkg/signing"
)

const incomingDistributions = `Codename: buster
Architectures: amd64
Components: main
`

// incomingRepo makes a repository with conf/distributions dists,
// conf/incoming rule and an empty incoming directory (returned).
func incomingRepo(t *testing.T, dists, rule string) (*Repo, string) {
	t.Helper()
	r := newTestRepo(t, dists, Options{RepreproRules: true})
	if err := os.WriteFile(filepath.Join(r.Base, "conf", "incoming"), []byte(rule), 0o644); err != nil {
		t.Fatal(err)
	}
	in := filepath.Join(r.Base, "incoming")
	if err := os.MkdirAll(in, 0o755); err != nil {
		t.Fatal(err)
	}
	return r, in
}

// changesFor writes a .changes (Distribution dist) listing the files
// (paths; listed under their base names, or under names[i] when given)
// into dir and returns its name.
func changesFor(t *testing.T, dir, name, version, dist string, files []string, names ...string) string {
	t.Helper()
	var sums, md5s strings.Builder
	for i, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		n := filepath.Base(f)
		if i < len(names) {
			n = names[i]
		}
		s, m := sha256.Sum256(data), md5.Sum(data)
		fmt.Fprintf(&sums, " %s %d %s\n", hex.EncodeToString(s[:]), len(data), n)
		fmt.Fprintf(&md5s, " %s %d misc optional %s\n", hex.EncodeToString(m[:]), len(data), n)
	}
	text := fmt.Sprintf("Format: 1.8\nDate: Mon, 07 Dec 2026 10:00:00 +0000\nSource: %s\nBinary: %s\nArchitecture: all\nVersion: %s\nDistribution: %s\nMaintainer: Test <test@example.org>\nChanges:\n %s (%s) %s; urgency=medium\nChecksums-Sha256:\n%sFiles:\n%s",
		name, name, version, dist, name, version, dist, sums.String(), md5s.String())
	cn := fmt.Sprintf("%s_%s_all.changes", name, version)
	if err := os.WriteFile(filepath.Join(dir, cn), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return cn
}

// queueUpload puts hi VERSION (a .deb and its .changes) into the incoming
// directory and returns the .changes' name.
func queueUpload(t *testing.T, in, version, dist string) string {
	t.Helper()
	deb := buildDeb(t, in, pkgSpec{name: "hi", version: version})
	return changesFor(t, in, "hi", version, dist, []string{deb})
}

func listVersions(t *testing.T, r *Repo, codename string) string {
	t.Helper()
	es, err := r.List(context.Background(), codename, Selection{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Package+" "+e.Version)
	}
	return strings.Join(out, ", ")
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

// An older upload is refused without Permit: older_version; with it, it
// is added under Limit 3 and skipped (exit status success) under Limit
// 1. Processed uploads leave the incoming directory empty; a refused one
// stays.
func TestProcessIncomingVersions(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		limit, rule string
		want        string
		refused     bool
	}{
		{"3", "Permit: older_version\n", "hi 2, hi 1", false},
		{"1", "Permit: older_version\n", "hi 2", false},
		{"3", "", "hi 2", true},
	} {
		t.Run(tc.limit+"/"+strings.TrimSpace(tc.rule), func(t *testing.T) {
			r, in := incomingRepo(t, incomingDistributions+"Limit: "+tc.limit+"\n",
				"Name: up\nIncomingDir: incoming\nTempDir: tmp\nAllow: buster\n"+tc.rule)
			c2 := queueUpload(t, in, "2", "buster")
			if _, err := r.ProcessIncoming(ctx, "up", c2); err != nil {
				t.Fatal(err)
			}
			if got := dirNames(t, in); len(got) != 0 {
				t.Fatalf("incoming after the upload of 2: %v", got)
			}
			c1 := queueUpload(t, in, "1", "buster")
			res, err := r.ProcessIncoming(ctx, "up", "")
			if tc.refused {
				if !errors.Is(err, ErrUpload) || !errors.Is(res.Uploads[0].Err, ErrOlderVersion) {
					t.Fatalf("older upload: %v / %v, want ErrUpload and ErrOlderVersion", err, res.Uploads[0].Err)
				}
				if got := dirNames(t, in); len(got) != 2 {
					t.Errorf("a refused upload must stay in incoming: %v", got)
				}
			} else if err != nil {
				t.Fatal(err)
			} else if len(res.Uploads) != 1 || res.Uploads[0].Changes != c1 {
				t.Fatalf("uploads %+v", res.Uploads)
			}
			if got := listVersions(t, r, "buster"); got != tc.want {
				t.Errorf("buster: %s, want %s", got, tc.want)
			}
			if tc.limit == "1" && !tc.refused {
				if a := res.Uploads[0].Result.Changes[0]; a.Action != "skip" || a.OldVersion != "2" {
					t.Errorf("change %+v, want a skip because of 2", a)
				}
				if _, err := os.Stat(filepath.Join(r.Base, "pool/main/h/hi/hi_1_all.deb")); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("the skipped package is in the pool: %v", err)
				}
			}
		})
	}
}

// No file name in a .changes, and no argument, reaches outside the
// incoming directory: "../x", absolute names and symbolic links (even to
// a valid package) are refused, the file outside is neither read into
// the pool nor deleted — not even by Cleanup: on_error.
func TestProcessIncomingStaysInside(t *testing.T) {
	ctx := context.Background()
	rule := "Name: up\nIncomingDir: incoming\nTempDir: tmp\nAllow: buster\nCleanup: on_error on_deny\n"
	for _, tc := range []struct {
		name string
		// put places the outside package (at outside) into the upload
		// and returns the .changes' name.
		put  func(t *testing.T, in, outside string) string
		want string
	}{
		{"dotdot", func(t *testing.T, in, outside string) string {
			return changesFor(t, in, "hi", "1", "buster", []string{outside}, "../"+filepath.Base(outside))
		}, "plain file name"},
		{"absolute", func(t *testing.T, in, outside string) string {
			return changesFor(t, in, "hi", "1", "buster", []string{outside}, outside)
		}, "plain file name"},
		{"symlink", func(t *testing.T, in, outside string) string {
			if err := os.Symlink(outside, filepath.Join(in, filepath.Base(outside))); err != nil {
				t.Fatal(err)
			}
			return changesFor(t, in, "hi", "1", "buster", []string{outside})
		}, "symbolic link"},
		{"symlinked changes", func(t *testing.T, in, outside string) string {
			c := changesFor(t, filepath.Dir(outside), "hi", "1", "buster", []string{outside})
			if err := os.Symlink(filepath.Join(filepath.Dir(outside), c), filepath.Join(in, c)); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(outside, filepath.Join(in, filepath.Base(outside))); err != nil {
				t.Fatal(err)
			}
			return c
		}, "symbolic link"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, in := incomingRepo(t, incomingDistributions, rule)
			elsewhere := t.TempDir()
			outside := buildDeb(t, elsewhere, pkgSpec{name: "hi", version: "1"})
			c := tc.put(t, in, outside)
			res, err := r.ProcessIncoming(ctx, "up", c)
			if !errors.Is(err, ErrUpload) || len(res.Uploads) != 1 || !strings.Contains(res.Uploads[0].Error, tc.want) {
				t.Fatalf("got %v / %+v, want a refusal saying %q", err, res, tc.want)
			}
			if _, err := os.Stat(outside); err != nil {
				t.Errorf("the file outside the queue was deleted: %v", err)
			}
			if got := listVersions(t, r, "buster"); got != "" {
				t.Errorf("buster holds %s", got)
			}
			if _, err := os.Stat(filepath.Join(r.Base, "pool")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("pool exists: %v", err)
			}
		})
	}
	r, _ := incomingRepo(t, incomingDistributions, rule)
	for _, arg := range []string{"../x.changes", "/etc/x.changes", "x.deb"} {
		if _, err := r.ProcessIncoming(ctx, "up", arg); !errors.Is(err, ErrArgument) {
			t.Errorf("processincoming up %s: %v, want ErrArgument", arg, err)
		}
	}
}

// Every conf/incoming field and word lampi-pkg does not implement is an
// error naming file:line, never ignored.
func TestProcessIncomingConfRefused(t *testing.T) {
	base := "Name: up\nIncomingDir: incoming\nTempDir: tmp\nAllow: buster\n"
	for _, tc := range []struct{ extra, want string }{
		{"MorgueDir: m\n", "incoming:5: repository configuration error: MorgueDir: not implemented"},
		{"Frobnicate: yes\n", `incoming:5: repository configuration error: unknown field "Frobnicate"`},
		{"Permit: unlisted_binaries\n", "unlisted_binaries is not implemented"},
		{"Permit: older_versions\n", `unknown word "older_versions"`},
		{"Cleanup: on_success\n", `unknown word "on_success"`},
		{"Options: limit_arch_all\n", "limit_arch_all is not implemented"},
		{"Default: sid\n", `"sid" is neither a Codename nor a Suite`},
		{"Multiple: maybe\n", `"maybe": write yes or no`},
	} {
		r, _ := incomingRepo(t, incomingDistributions, base+tc.extra)
		_, err := r.ProcessIncoming(context.Background(), "up", "")
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want ErrConfig with %q", tc.extra, err, tc.want)
		}
	}
	r, _ := incomingRepo(t, incomingDistributions, base)
	if _, err := r.ProcessIncoming(context.Background(), "other", ""); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), `no rule named "other"`) {
		t.Errorf("unknown rule: %v", err)
	}
}

// Allow FROM>INTO and Default pick the distribution; Multiple puts an
// upload naming two into both; nothing that takes it denies it.
func TestProcessIncomingAllow(t *testing.T) {
	ctx := context.Background()
	dists := incomingDistributions + "\nCodename: sid\nArchitectures: amd64\nComponents: main\n"
	r, in := incomingRepo(t, dists, "Name: up\nIncomingDir: incoming\nTempDir: tmp\nAllow: unstable>sid\n\nName: all\nIncomingDir: incoming\nTempDir: tmp\nAllow: buster unstable>sid\nMultiple: yes\n\nName: def\nIncomingDir: incoming\nTempDir: tmp\nDefault: buster\n")
	if _, err := r.ProcessIncoming(ctx, "up", queueUpload(t, in, "1", "unstable")); err != nil {
		t.Fatal(err)
	}
	if got := listVersions(t, r, "sid"); got != "hi 1" {
		t.Errorf("sid: %q", got)
	}
	c := queueUpload(t, in, "2", "stable")
	res, err := r.ProcessIncoming(ctx, "up", c)
	if !errors.Is(err, ErrUpload) || !res.Uploads[0].Denied || !strings.Contains(res.Uploads[0].Error, "takes no distribution for Distribution: stable") {
		t.Fatalf("denied upload: %v %+v", err, res)
	}
	if _, err := os.Stat(filepath.Join(in, c)); err != nil {
		t.Errorf("a denied upload must stay without Cleanup: on_deny: %v", err)
	}
	if _, err := r.ProcessIncoming(ctx, "def", c); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ProcessIncoming(ctx, "all", queueUpload(t, in, "3", "buster unstable")); err != nil {
		t.Fatal(err)
	}
	if b, s := listVersions(t, r, "buster"), listVersions(t, r, "sid"); b != "hi 3" || s != "hi 3" {
		t.Errorf("Multiple: buster %q, sid %q", b, s)
	}
}

// A distribution's Uploaders file decides who may upload: "by key" takes
// only a good signature by that key (from conf/keys), "by unsigned" only
// unsigned uploads; a bad signature is refused; syntax lampi-pkg does
// not implement is an error.
func TestProcessIncomingUploaders(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	good, goodPub := testKey(t, dir)
	other, _ := testKey(t, t.TempDir())
	sign := func(t *testing.T, k *signing.Key, file string) {
		t.Helper()
		s, err := signing.NewSigner(k, signing.SignOptions{Now: fixedNow})
		if err != nil {
			t.Fatal(err)
		}
		out, err := s.Clearsign(ctx, strings.NewReader(readFile(t, file)))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	setup := func(t *testing.T, uploaders string) (*Repo, string) {
		r, in := incomingRepo(t, incomingDistributions+"Uploaders: uploaders\n", "Name: up\nIncomingDir: incoming\nTempDir: tmp\nAllow: buster\n")
		keys := filepath.Join(r.Base, "conf", "keys")
		if err := os.MkdirAll(keys, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(keys, "uploader.gpg"), []byte(readFile(t, goodPub)), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(r.Base, "conf", "uploaders"), []byte(uploaders), 0o644); err != nil {
			t.Fatal(err)
		}
		return r, in
	}
	t.Run("by key", func(t *testing.T) {
		r, in := setup(t, "# who may upload\nallow * by key "+good.Fingerprint()[24:]+"\n")
		for _, k := range []*signing.Key{nil, other} {
			c := queueUpload(t, in, "1", "buster")
			if k != nil {
				sign(t, k, filepath.Join(in, c))
			}
			res, err := r.ProcessIncoming(ctx, "up", c)
			if !errors.Is(err, ErrUpload) || !res.Uploads[0].Denied || !strings.Contains(res.Uploads[0].Error, "allows no upload of hi") {
				t.Fatalf("signed by %v: %v %+v, want denied", k, err, res)
			}
			os.Remove(filepath.Join(in, c))
		}
		// include checks the same file, as reprepro's include does.
		c := queueUpload(t, in, "1", "buster")
		if _, err := r.IncludeChanges(ctx, "buster", filepath.Join(in, c), IncludeOptions{}); !errors.Is(err, ErrUpload) {
			t.Fatalf("include of an unsigned upload: %v, want ErrUpload", err)
		}
		sign(t, good, filepath.Join(in, c))
		tampered := bytes.Replace([]byte(readFile(t, filepath.Join(in, c))), []byte("urgency=medium"), []byte("urgency=high"), 1)
		if err := os.WriteFile(filepath.Join(in, "bad.changes"), tampered, 0o644); err != nil {
			t.Fatal(err)
		}
		res, err := r.ProcessIncoming(ctx, "up", "bad.changes")
		if !errors.Is(err, ErrUpload) || !strings.Contains(res.Uploads[0].Error, "bad signature") {
			t.Fatalf("tampered: %v %+v", err, res)
		}
		os.Remove(filepath.Join(in, "bad.changes"))
		if _, err := r.ProcessIncoming(ctx, "up", c); err != nil {
			t.Fatal(err)
		}
		if got := listVersions(t, r, "buster"); got != "hi 1" {
			t.Errorf("buster: %q", got)
		}

		// A .dsc whose own signature is bad, in an upload whose .changes
		// is signed well and lists it with the right checksums: refused.
		deb := buildDeb(t, in, pkgSpec{name: "hi", version: "2"})
		dsc := filepath.Join(in, "hi_2.dsc")
		if err := os.WriteFile(dsc, []byte("Format: 3.0 (native)\nSource: hi\nVersion: 2\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		sign(t, good, dsc)
		if err := os.WriteFile(dsc, bytes.Replace([]byte(readFile(t, dsc)), []byte("Version: 2"), []byte("Version: 3"), 1), 0o644); err != nil {
			t.Fatal(err)
		}
		c = changesFor(t, in, "hi", "2", "buster", []string{deb, dsc})
		sign(t, good, filepath.Join(in, c))
		res, err = r.ProcessIncoming(ctx, "up", c)
		if !errors.Is(err, ErrUpload) || !strings.Contains(res.Uploads[0].Error, "signature of hi_2.dsc: bad signature") {
			t.Fatalf("bad .dsc signature: %v %+v", err, res)
		}
	})
	t.Run("by unsigned", func(t *testing.T) {
		r, in := setup(t, "allow source 'h*' by unsigned\n")
		c := queueUpload(t, in, "1", "buster")
		sign(t, good, filepath.Join(in, c))
		if _, err := r.ProcessIncoming(ctx, "up", c); !errors.Is(err, ErrUpload) {
			t.Fatalf("a signed upload by unsigned: %v", err)
		}
		os.Remove(filepath.Join(in, c))
		if _, err := r.ProcessIncoming(ctx, "up", queueUpload(t, in, "1", "buster")); err != nil {
			t.Fatal(err)
		}
	})
	for _, bad := range []struct{ line, want string }{
		{"allow * by group devs\n", `"by group" is not implemented`},
		{"group devs add 12345678\n", `"group" lines are not implemented`},
		{"allow sections 'main' by anybody\n", "condition \"sections 'main'\" is not implemented"},
		{"allow * by key 12\n", "at least the last 8 hex digits"},
		{"permit * by anybody\n", "a line must read"},
	} {
		r, in := setup(t, "# ok\n"+bad.line)
		_, err := r.ProcessIncoming(ctx, "up", queueUpload(t, in, "1", "buster"))
		if !errors.Is(err, ErrUpload) || !strings.Contains(err.Error(), "") {
			t.Fatalf("%q: %v", bad.line, err)
		}
		res, _ := r.ProcessIncoming(ctx, "up", "")
		if msg := res.Uploads[0].Error; !strings.Contains(msg, "uploaders:2: repository configuration error") || !strings.Contains(msg, bad.want) {
			t.Errorf("%q: %s, want uploaders:2 and %q", bad.line, msg, bad.want)
		}
	}
}

// Files no package uses: a .buildinfo is tolerated and left in the queue
// (Cleanup: unused_buildinfo_files deletes it); a build log refuses the
// upload unless Permit: unused_files; with LogDir both are kept, with
// the .changes, in LOGDIR/SOURCE_VERSION_ARCHS.0000000.
func TestProcessIncomingUnusedAndLogDir(t *testing.T) {
	ctx := context.Background()
	put := func(t *testing.T, in string, extra ...string) string {
		deb := buildDeb(t, in, pkgSpec{name: "hi", version: "1"})
		files := []string{deb}
		for _, e := range extra {
			p := filepath.Join(in, e)
			if err := os.WriteFile(p, []byte(e+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			files = append(files, p)
		}
		return changesFor(t, in, "hi", "1", "buster", files)
	}
	rule := "Name: up\nIncomingDir: incoming\nTempDir: tmp\nAllow: buster\n"

	r, in := incomingRepo(t, incomingDistributions, rule)
	c := put(t, in, "hi_1_amd64.buildinfo")
	if _, err := r.ProcessIncoming(ctx, "up", c); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(dirNames(t, in), " "); got != "hi_1_amd64.buildinfo" {
		t.Errorf("incoming: %q, want the .buildinfo left", got)
	}

	r, in = incomingRepo(t, incomingDistributions, rule)
	c = put(t, in, "hi_1_amd64.log")
	res, err := r.ProcessIncoming(ctx, "up", c)
	if !errors.Is(err, ErrUpload) || !strings.Contains(res.Uploads[0].Error, `hi_1_amd64.log is listed but is no package or source part: add "Permit: unused_files"`) {
		t.Fatalf("a build log: %v %+v", err, res)
	}

	r, in = incomingRepo(t, incomingDistributions, rule+"LogDir: logs\n")
	c = put(t, in, "hi_1_amd64.buildinfo", "hi_1_amd64.log")
	if _, err := r.ProcessIncoming(ctx, "up", c); err != nil {
		t.Fatal(err)
	}
	if got := dirNames(t, in); len(got) != 0 {
		t.Errorf("incoming: %v, want empty", got)
	}
	kept := filepath.Join(r.Base, "logs", "hi_1_all.0000000")
	if got := strings.Join(dirNames(t, kept), " "); got != "hi_1_all.changes hi_1_amd64.buildinfo hi_1_amd64.log" {
		t.Errorf("%s: %q", kept, got)
	}
	if got := listVersions(t, r, "buster"); got != "hi 1" {
		t.Errorf("buster: %q", got)
	}
}
