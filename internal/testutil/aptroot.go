package testutil

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// AptRoot is an isolated apt + dpkg installation under a temporary
// directory (DESIGN.md, "Testing against real apt and dpkg without touching
// the machine"): the stock apt-get and dpkg act inside it as on a device,
// and the machine's own packages are never touched.
type AptRoot struct {
	t    testing.TB
	Root string
	// Arch is the dpkg architecture apt acts as (default amd64).
	Arch string
	// Extra are further apt-get arguments for every run (e.g. "-o",
	// "Acquire::https::CaInfo=ca.pem").
	Extra []string
}

// NewAptRoot makes the directory skeleton apt and dpkg need, copies the
// host's dpkg status (so dependencies such as dash count as installed), and
// writes sources as ROOT/etc/apt/sources.list ("" leaves it out). Under
// -short it skips the test (Heavy).
func NewAptRoot(t testing.TB, sources string) *AptRoot {
	t.Helper()
	Heavy(t, "runs the real apt-get and dpkg in an isolated root")
	RequireTool(t, "apt-get")
	RequireTool(t, "dpkg")
	root := t.TempDir()
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates", "var/lib/apt/lists/partial",
		"var/cache/apt/archives/partial", "var/log/apt", "etc/apt/preferences.d", "etc/apt/apt.conf.d"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	status, err := os.ReadFile("/var/lib/dpkg/status")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "var/lib/dpkg/status"), status, 0o644); err != nil {
		t.Fatal(err)
	}
	a := &AptRoot{t: t, Root: root, Arch: "amd64"}
	if sources != "" {
		a.SetSources(sources)
	}
	return a
}

// SetSources replaces ROOT/etc/apt/sources.list.
func (a *AptRoot) SetSources(sources string) {
	a.t.Helper()
	if err := os.WriteFile(filepath.Join(a.Root, "etc/apt/sources.list"), []byte(sources), 0o644); err != nil {
		a.t.Fatal(err)
	}
}

// AptOptions are the apt-get options that confine apt and dpkg to root.
func AptOptions(root, arch string) []string {
	return []string{"-o", "Dir=" + root, "-o", "Dir::State::status=" + root + "/var/lib/dpkg/status",
		"-o", "Dir::Etc::SourceParts=/dev/null", "-o", "APT::Sandbox::User=root", "-o", "Debug::NoLocking=1",
		"-o", "Dir::Bin::dpkg=/usr/bin/dpkg", "-o", "Dpkg::Options::=--instdir=" + root,
		"-o", "Dpkg::Options::=--admindir=" + root + "/var/lib/dpkg",
		"-o", "Dpkg::Options::=--force-script-chrootless", "-o", "Dpkg::Options::=--force-not-root",
		"-o", "Dpkg::Options::=--log=/dev/null", "-o", "APT::Architecture=" + arch,
		"-o", "Acquire::Languages=none", "-o", "Acquire::Retries=0", "-o", "Acquire::http::Proxy=false"}
}

// Run runs apt-get in the root and returns its combined output.
func (a *AptRoot) Run(args ...string) (string, error) {
	base := append(append(AptOptions(a.Root, a.Arch), "-q", "-y"), a.Extra...)
	cmd := exec.Command("apt-get", append(base, args...)...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive", "LC_ALL=C")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// MustRun is Run that fails the test on an error.
func (a *AptRoot) MustRun(args ...string) string {
	a.t.Helper()
	out, err := a.Run(args...)
	if err != nil {
		a.t.Fatalf("apt-get %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// Update runs apt-get update, fails the test on any warning or error, and
// returns apt's output.
func (a *AptRoot) Update() string {
	a.t.Helper()
	out := a.MustRun("update")
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "W:") || strings.HasPrefix(l, "E:") || strings.HasPrefix(l, "Err:") {
			a.t.Fatalf("apt-get update warned:\n%s", out)
		}
	}
	return out
}

// Dpkg runs dpkg against the root's admin directory (e.g. "-i", FILE or
// "-s", PKG) and returns its combined output.
func (a *AptRoot) Dpkg(args ...string) (string, error) {
	base := []string{"--root=" + a.Root, "--admindir=" + a.Root + "/var/lib/dpkg",
		"--force-script-chrootless", "--force-not-root", "--log=/dev/null"}
	cmd := exec.Command("dpkg", append(base, args...)...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	out, err := cmd.CombinedOutput()
	return string(out), err
}
