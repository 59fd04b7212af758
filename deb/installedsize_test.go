package deb_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/lampi-pkg/lampi-pkg/deb"
	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
)

// TestInstalledSizeMatchesDpkgGencontrol computes Installed-Size for the
// fixture trees with dpkg-gencontrol itself (over a copy of the payload
// without DEBIAN/, as debhelper runs it) and compares.
func TestInstalledSizeMatchesDpkgGencontrol(t *testing.T) {
	testutil.Heavy(t, "runs dpkg-gencontrol on the fixture trees")
	testutil.RequireTool(t, "dpkg-gencontrol")
	for _, fixture := range []string{"hi", "lampi-service"} {
		t.Run(fixture, func(t *testing.T) {
			src := filepath.Join("..", "fixtures", fixture)
			_, res := buildDir(t, src, deb.BuildOptions{})
			work := t.TempDir()
			pkg := filepath.Join(work, "pkg")
			mustRun(t, "cp", "-a", src, pkg)
			if err := os.RemoveAll(filepath.Join(pkg, "DEBIAN")); err != nil {
				t.Fatal(err)
			}
			os.MkdirAll(filepath.Join(work, "debian"), 0o755)
			os.WriteFile(filepath.Join(work, "debian/control"), []byte("Source: x\nMaintainer: A <a@example.org>\n\nPackage: "+
				res.Control.Get("Package")+"\nArchitecture: all\nDescription: x\n"), 0o644)
			os.WriteFile(filepath.Join(work, "debian/changelog"), []byte("x (1.0) unstable; urgency=low\n\n  * x\n\n -- A <a@example.org>  Mon, 01 Jan 2024 00:00:00 +0000\n"), 0o644)
			cmd := exec.Command("dpkg-gencontrol", "-p"+res.Control.Get("Package"), "-Ppkg", "-O")
			cmd.Dir = work
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("dpkg-gencontrol: %v\n%s", err, out)
			}
			m := regexp.MustCompile(`(?m)^Installed-Size: (\d+)$`).FindSubmatch(out)
			if m == nil {
				t.Fatalf("no Installed-Size in:\n%s", out)
			}
			if want, _ := strconv.ParseInt(string(m[1]), 10, 64); res.InstalledSize != want {
				t.Errorf("Installed-Size %d, dpkg-gencontrol says %d", res.InstalledSize, want)
			}
		})
	}
}
