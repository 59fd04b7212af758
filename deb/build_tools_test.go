package deb_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lampi-pkg/lampi-pkg/deb"
	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
)

// buildTree builds the package tree at dir into a file in a temp dir.
func buildDir(t *testing.T, dir string, opts deb.BuildOptions) (string, *deb.BuildResult) {
	t.Helper()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	var buf bytes.Buffer
	res, err := deb.Build(context.Background(), root.FS(), &buf, opts)
	if err != nil {
		t.Fatalf("build %s: %v", dir, err)
	}
	out := filepath.Join(t.TempDir(), res.Filename)
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if int64(buf.Len()) != res.Size {
		t.Fatalf("result says %d bytes, wrote %d", res.Size, buf.Len())
	}
	return out, res
}

func mustRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out)
}

// isolatedRoot makes a dpkg admin dir in a temp root, with the host's
// record of the packages named in deps so that dependencies count as
// installed.
func isolatedRoot(t *testing.T, deps ...string) string {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var status bytes.Buffer
	for _, d := range deps {
		status.WriteString(mustRun(t, "dpkg-query", "-s", d))
		status.WriteString("\n")
	}
	if err := os.WriteFile(filepath.Join(root, "var/lib/dpkg/status"), status.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

func dpkgIn(t *testing.T, root string, args ...string) string {
	t.Helper()
	base := []string{"--root=" + root, "--instdir=" + root, "--admindir=" + filepath.Join(root, "var/lib/dpkg"),
		"--force-script-chrootless", "--force-not-root", "--log=/dev/null"}
	return mustRun(t, "dpkg", append(base, args...)...)
}

var allCompressions = []deb.Compression{deb.CompressXZ, deb.CompressGzip, deb.CompressZstd, deb.CompressNone}

// TestBuildJudgedByDpkg builds the fixtures with every compression and
// lets the real dpkg-deb and dpkg judge them.
func TestBuildJudgedByDpkg(t *testing.T) {
	testutil.Heavy(t, "builds the fixtures in every compression and runs dpkg-deb and dpkg on them")
	t.Parallel()
	testutil.RequireTool(t, "dpkg-deb")
	testutil.RequireTool(t, "dpkg")
	mtime := time.Unix(1700000000, 0)
	for _, comp := range allCompressions {
		t.Run(string(comp), func(t *testing.T) {
			path, res := buildDir(t, "../fixtures/lampi-service", deb.BuildOptions{Compression: comp, Mtime: mtime})
			if res.Filename != "lampi-service_2.4.0~rc1-1_all.deb" {
				t.Errorf("file name %q", res.Filename)
			}
			members := mustRun(t, "ar", "t", path)
			want := "debian-binary\ncontrol.tar" + comp.Ext() + "\ndata.tar" + comp.Ext() + "\n"
			if members != want {
				t.Errorf("ar members:\n%s\nwant:\n%s", members, want)
			}
			if got := mustRun(t, "dpkg-deb", "--field", path, "Package", "Version", "Installed-Size"); got !=
				"Package: lampi-service\nVersion: 1:2.4.0~rc1-1\nInstalled-Size: 11\n" {
				t.Errorf("dpkg-deb --field:\n%s", got)
			}
			wantContents := `drwxr-xr-x root/root         0 2023-11-14 22:13 ./
drwxr-xr-x root/root         0 2023-11-14 22:13 ./etc/
drwxr-xr-x root/root         0 2023-11-14 22:13 ./etc/lampi/
-rw-r--r-- root/root        59 2023-11-14 22:13 ./etc/lampi/lampi.conf
drwxr-xr-x root/root         0 2023-11-14 22:13 ./usr/
drwxr-xr-x root/root         0 2023-11-14 22:13 ./usr/bin/
-rwxr-xr-x root/root       106 2023-11-14 22:13 ./usr/bin/lampi-service
drwxr-xr-x root/root         0 2023-11-14 22:13 ./usr/share/
drwxr-xr-x root/root         0 2023-11-14 22:13 ./usr/share/doc/
drwxr-xr-x root/root         0 2023-11-14 22:13 ./usr/share/doc/lampi-service/
-rw-r--r-- root/root       264 2023-11-14 22:13 ./usr/share/doc/lampi-service/copyright
`
			if got := mustRun(t, "env", "TZ=UTC", "dpkg-deb", "--contents", path); got != wantContents {
				t.Errorf("dpkg-deb --contents:\n%s\nwant:\n%s", got, wantContents)
			}
			ctl := t.TempDir()
			mustRun(t, "dpkg-deb", "--control", path, ctl)
			md5sums, _ := os.ReadFile(filepath.Join(ctl, "md5sums"))
			if !strings.Contains(string(md5sums), "  usr/bin/lampi-service\n") || strings.Contains(string(md5sums), "etc/") {
				t.Errorf("md5sums should list the payload but not the conffile:\n%s", md5sums)
			}
			conffiles, _ := os.ReadFile(filepath.Join(ctl, "conffiles"))
			if string(conffiles) != "/etc/lampi/lampi.conf\n" {
				t.Errorf("conffiles: %q", conffiles)
			}
			for _, s := range []string{"preinst", "postinst", "prerm", "postrm"} {
				st, err := os.Stat(filepath.Join(ctl, s))
				if err != nil || st.Mode().Perm() != 0o755 {
					t.Errorf("%s: %v %v", s, err, st)
				}
			}
			// md5sums agree with the extracted payload.
			ex := t.TempDir()
			mustRun(t, "dpkg-deb", "--extract", path, ex)
			cmd := exec.Command("md5sum", "--check", "--quiet", filepath.Join(ctl, "md5sums"))
			cmd.Dir = ex
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("md5sum --check: %v\n%s", err, out)
			}

			root := isolatedRoot(t, "dash")
			dpkgIn(t, root, "-i", path)
			status := mustRun(t, "dpkg", "--admindir="+filepath.Join(root, "var/lib/dpkg"), "-s", "lampi-service")
			for _, want := range []string{"Status: install ok installed", "Version: 1:2.4.0~rc1-1", "/etc/lampi/lampi.conf "} {
				if !strings.Contains(status, want) {
					t.Errorf("dpkg -s lacks %q:\n%s", want, status)
				}
			}
			dpkgIn(t, root, "--purge", "lampi-service")
			log, _ := os.ReadFile(filepath.Join(root, "var/lib/lampi-service/scripts.log"))
			if got := string(log); got != "preinst install\npostinst configure \nprerm remove\npostrm remove\npostrm purge\n" {
				t.Errorf("maintainer scripts ran as:\n%s", got)
			}
			if _, err := os.Stat(filepath.Join(root, "etc/lampi/lampi.conf")); !os.IsNotExist(err) {
				t.Errorf("purge left the conffile: %v", err)
			}
		})
	}
}

// TestHiRuns installs the course's package and runs its script.
func TestHiRuns(t *testing.T) {
	testutil.RequireTool(t, "dpkg")
	path, res := buildDir(t, "../fixtures/hi", deb.BuildOptions{})
	if res.Filename != "hi_0.1_all.deb" {
		t.Fatalf("file name %q", res.Filename)
	}
	root := isolatedRoot(t)
	dpkgIn(t, root, "-i", path)
	if out := mustRun(t, filepath.Join(root, "opt/hi/hi")); out != "Hello Deb! Version 0.1\n" {
		t.Errorf("hi printed %q", out)
	}
}

// TestBuildLinksFromDisk: symlinks in a real tree (even ones pointing out
// of it) are stored as links and never followed; hard links are stored
// once plus a link entry, as dpkg-deb does.
func TestBuildLinksFromDisk(t *testing.T) {
	testutil.RequireTool(t, "dpkg-deb")
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "DEBIAN"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "DEBIAN/control"), []byte(strings.Replace(goodControl, "hi", "links", 1)), 0o644))
	must(os.MkdirAll(filepath.Join(dir, "usr/lib/links"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "usr/lib/links/data"), []byte("payload\n"), 0o644))
	must(os.Link(filepath.Join(dir, "usr/lib/links/data"), filepath.Join(dir, "usr/lib/links/hard")))
	must(os.Symlink("../../../../../../etc/shadow", filepath.Join(dir, "usr/lib/links/escape")))
	must(os.Symlink("/etc/passwd", filepath.Join(dir, "usr/lib/links/abs")))
	path, res := buildDir(t, dir, deb.BuildOptions{Mtime: time.Unix(1700000000, 0)})
	got := mustRun(t, "env", "TZ=UTC", "dpkg-deb", "--contents", path)
	for _, want := range []string{
		"lrwxrwxrwx root/root         0 2023-11-14 22:13 ./usr/lib/links/abs -> /etc/passwd\n",
		"-rw-r--r-- root/root         8 2023-11-14 22:13 ./usr/lib/links/data\n",
		"lrwxrwxrwx root/root         0 2023-11-14 22:13 ./usr/lib/links/escape -> ../../../../../../etc/shadow\n",
		"hrw-r--r-- root/root         0 2023-11-14 22:13 ./usr/lib/links/hard link to ./usr/lib/links/data\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("dpkg-deb --contents lacks %q:\n%s", want, got)
		}
	}
	// 4 dirs + data (1) + two links (1 each); the hard link counts once.
	if res.InstalledSize != 7 {
		t.Errorf("Installed-Size %d, want 7", res.InstalledSize)
	}
}
