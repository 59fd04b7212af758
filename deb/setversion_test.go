package deb_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lampi-pkg/lampi-pkg/deb"
	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
)

// setVersion repacks path under version and writes the result next to it.
func setVersion(t *testing.T, path, version string) (string, *deb.SetVersionResult) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	res, err := deb.SetVersion(f, st.Size(), &out, version)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), res.Filename)
	if err := os.WriteFile(p, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p, res
}

// TestSetVersionKeepsThePayload: the forward-only revert's repack, judged
// by the real dpkg-deb and dpkg: only the Version line differs; the data
// member, md5sums, maintainer scripts and the control tarball's entries
// are as they were, for every compression; dpkg installs the result as an
// upgrade and runs its scripts.
func TestSetVersionKeepsThePayload(t *testing.T) {
	testutil.Heavy(t, "builds, repacks and installs packages with the real dpkg-deb and dpkg in every compression")
	t.Parallel()
	testutil.RequireTool(t, "dpkg-deb")
	testutil.RequireTool(t, "dpkg")
	for _, comp := range allCompressions {
		t.Run(string(comp), func(t *testing.T) {
			t.Parallel()
			old, _ := buildDir(t, "../fixtures/lampi-service", deb.BuildOptions{Compression: comp, Mtime: time.Unix(1700000000, 0)})
			repacked, res := setVersion(t, old, "1:2.4.0~rc1-1+revert1")
			if res.Filename != "lampi-service_2.4.0~rc1-1+revert1_all.deb" || res.DroppedSignature {
				t.Errorf("result %+v", res)
			}
			if v := strings.TrimSpace(mustRun(t, "dpkg-deb", "-f", repacked, "Version")); v != "1:2.4.0~rc1-1+revert1" {
				t.Fatalf("dpkg-deb sees version %q", v)
			}
			if members := mustRun(t, "ar", "t", repacked); members != mustRun(t, "ar", "t", old) {
				t.Errorf("members %q", members)
			}
			if a, b := mustRun(t, "dpkg-deb", "--fsys-tarfile", old), mustRun(t, "dpkg-deb", "--fsys-tarfile", repacked); a != b {
				t.Error("the data differs")
			}
			// The control tarballs list the same entries with the same
			// metadata; only control's size may differ.
			ctl := func(p string) string {
				cmd := exec.Command("sh", "-c", "dpkg-deb --ctrl-tarfile \"$1\" | tar -tv --numeric-owner", "sh", p)
				out, err := cmd.Output()
				if err != nil {
					t.Fatal(err)
				}
				var lines []string
				for _, l := range strings.Split(string(out), "\n") {
					if strings.HasSuffix(l, "./control") {
						f := strings.Fields(l)
						l = strings.Join(append(f[:2], f[3:]...), " ")
					}
					lines = append(lines, l)
				}
				return strings.Join(lines, "\n")
			}
			if a, b := ctl(old), ctl(repacked); a != b || !strings.Contains(a, "./postinst") || !strings.Contains(a, "./md5sums") {
				t.Errorf("control tarball entries differ:\n%s\n---\n%s", a, b)
			}
			oldDir, newDir := t.TempDir(), t.TempDir()
			mustRun(t, "dpkg-deb", "-e", old, oldDir)
			mustRun(t, "dpkg-deb", "-e", repacked, newDir)
			entries, _ := os.ReadDir(oldDir)
			for _, e := range entries {
				a, _ := os.ReadFile(filepath.Join(oldDir, e.Name()))
				b, err := os.ReadFile(filepath.Join(newDir, e.Name()))
				if err != nil {
					t.Fatal(err)
				}
				if e.Name() == "control" {
					a = bytes.Replace(a, []byte("Version: 1:2.4.0~rc1-1\n"), []byte("Version: 1:2.4.0~rc1-1+revert1\n"), 1)
				}
				if !bytes.Equal(a, b) {
					t.Errorf("%s differs:\n%s\n---\n%s", e.Name(), a, b)
				}
			}
			root := isolatedRoot(t, "dash")
			dpkgIn(t, root, "-i", old)
			dpkgIn(t, root, "-i", repacked)
			status := dpkgIn(t, root, "-s", "lampi-service")
			log, _ := os.ReadFile(filepath.Join(root, "var/lib/lampi-service/scripts.log"))
			if !strings.Contains(status, "Version: 1:2.4.0~rc1-1+revert1") || !strings.Contains(string(log), "postinst configure 1:2.4.0~rc1-1") {
				t.Errorf("after the upgrade: %s\nscripts: %s", status, log)
			}
		})
	}
}

// TestSetVersionDropsTheOriginSignature: a _gpgorigin member signed the
// old bytes; the repack leaves it out and says so. A bad version is
// refused before anything is written.
func TestSetVersionDropsTheOriginSignature(t *testing.T) {
	t.Parallel()
	testutil.RequireTool(t, "dpkg-deb")
	old, _ := buildDir(t, "../fixtures/hi", deb.BuildOptions{Compression: deb.CompressGzip, Mtime: time.Unix(1700000000, 0)})
	data, err := os.ReadFile(old)
	if err != nil {
		t.Fatal(err)
	}
	sig := []byte("-----BEGIN PGP SIGNATURE-----\n\nnot checked here\n-----END PGP SIGNATURE-----\n")
	data = append(data, fmt.Sprintf("%-16s%-12d%-6d%-6d%-8s%-10d`\n", "_gpgorigin", 1700000000, 0, 0, "100644", len(sig))...)
	data = append(data, sig...)
	if len(sig)%2 == 1 {
		data = append(data, '\n')
	}
	signed := filepath.Join(t.TempDir(), "hi_signed.deb")
	if err := os.WriteFile(signed, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if members := mustRun(t, "ar", "t", signed); !strings.Contains(members, "_gpgorigin") {
		t.Fatalf("the test's signed package lacks its member: %q", members)
	}
	repacked, res := setVersion(t, signed, "0.1+revert1")
	if !res.DroppedSignature {
		t.Error("DroppedSignature not set")
	}
	if members := mustRun(t, "ar", "t", repacked); strings.Contains(members, "_gpg") {
		t.Errorf("members %q", members)
	}
	var out bytes.Buffer
	if _, err := deb.SetVersion(bytes.NewReader(data), int64(len(data)), &out, "not a version!"); err == nil || out.Len() != 0 {
		t.Errorf("bad version: %v, wrote %d bytes", err, out.Len())
	}
}
