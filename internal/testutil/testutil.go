// Package testutil holds helpers shared by the module's tests: finding the
// real Debian tools that judge our output.
package testutil

import (
	"os/exec"
	"testing"
)

// RequireTool returns the path of a real tool (dpkg-deb, gpgv, …). A
// missing tool fails the test rather than skipping it: "make test" installs
// every tool the tests need, so a missing one is a broken setup.
func RequireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not installed: run 'make test', which installs the tools the tests need", name)
	}
	return p
}
