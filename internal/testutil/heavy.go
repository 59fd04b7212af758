package testutil

import (
	"strings"
	"sync"
	"testing"
)

// Heavy marks a test that is slow because it runs real parts (dpkg-deb,
// apt-get, lintian, Mosquitto, MinIO, many processes or large inputs): under
// "go test -short", the fast edit loop, it skips t with a message naming what
// the test needs; without -short it does nothing, so the full suite runs every
// test exactly as before. why says what makes the test heavy, e.g. "builds
// real packages with dpkg-deb and runs lintian". A test marked with
// KeepInShort (or a subtest of one) is not skipped.
func Heavy(t testing.TB, why string) {
	t.Helper()
	if testing.Short() && !keptInShort(t.Name()) {
		t.Skip("-short: " + why)
	}
}

// kept holds the names of the tests KeepInShort marked. It is state of the
// test binary only, written once per marked test.
var kept sync.Map

// KeepInShort marks t as its package's end-to-end test for the fast edit
// loop: the Heavy calls it and its subtests make (directly, or through
// helpers such as NewAptRoot) do not skip it under -short, so "go test
// -short" still judges the package's main path with the real tools. Mark
// one test per package, the cheapest that runs the real apt-get or dpkg
// end to end; call it first in the test.
func KeepInShort(t testing.TB) {
	t.Helper()
	kept.Store(t.Name(), true)
	t.Cleanup(func() { kept.Delete(t.Name()) })
}

// keptInShort tells whether the test name, or a test it is a subtest of,
// was marked with KeepInShort.
func keptInShort(name string) bool {
	for {
		if _, ok := kept.Load(name); ok {
			return true
		}
		i := strings.LastIndexByte(name, '/')
		if i < 0 {
			return false
		}
		name = name[:i]
	}
}
