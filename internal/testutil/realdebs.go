package testutil

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// RealDebsDir is where scripts/deps.sh downloads real Debian packages
// (apt-get download): $LAMPI_REAL_DEBS, else CacheDir()/debs.
func RealDebsDir() string {
	if d := os.Getenv("LAMPI_REAL_DEBS"); d != "" {
		return d
	}
	if cache := CacheDir(); cache != "" {
		return filepath.Join(cache, "debs")
	}
	return ""
}

// CacheDir is where tests keep what outlives one run (the real packages,
// verdicts of the real tools on them): ${XDG_CACHE_HOME:-~/.cache}/lampi-pkg,
// or "" when there is no home directory.
func CacheDir() string {
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return ""
		}
		cache = filepath.Join(home, ".cache")
	}
	return filepath.Join(cache, "lampi-pkg")
}

// RealDebs returns every real Debian package in RealDebsDir, by package
// name (the file name up to its first '_'). It fails the test when the
// directory holds none or lacks one of the packages named in want. Under
// -short it skips the test (Heavy).
func RealDebs(t testing.TB, want ...string) map[string]string {
	t.Helper()
	Heavy(t, "works on the real Debian packages scripts/deps.sh downloads (megabytes each)")
	dir := RealDebsDir()
	files, _ := filepath.Glob(filepath.Join(dir, "*.deb"))
	debs := map[string]string{}
	for _, f := range files {
		name, _, _ := strings.Cut(filepath.Base(f), "_")
		debs[name] = f
	}
	var missing []string
	for _, w := range want {
		if debs[w] == "" {
			missing = append(missing, w)
		}
	}
	sort.Strings(missing)
	if len(debs) == 0 || len(missing) > 0 {
		t.Fatalf("real Debian packages missing from %s (%v): run scripts/deps.sh (make test), which fetches them once with apt-get download, or set LAMPI_REAL_DEBS to a directory of .debs", dir, missing)
	}
	return debs
}
