package testutil

import "testing"

// Heavy marks a test that is slow because it runs real parts (dpkg-deb,
// apt-get, lintian, Mosquitto, MinIO, many processes or large inputs): under
// "go test -short", the fast edit loop, it skips t with a message naming what
// the test needs; without -short it does nothing, so the full suite runs every
// test exactly as before. why says what makes the test heavy, e.g. "builds
// real packages with dpkg-deb and runs lintian".
func Heavy(t testing.TB, why string) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: " + why)
	}
}
