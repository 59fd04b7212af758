//go:build !race

// Compute-heavy tests, left out of the race detector's build (it slows
// the encoder 25-40 times): "make test" runs them in a second pass
// without -race. The encoder's concurrency is checked under the race
// detector by TestParallelCompressionDeterministic here and
// internal/xzenc's TestWorkersDoNotChangeOutput.

package deb_test

import (
	"bytes"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/lampi-pkg/lampi-pkg/deb"
	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
)

// TestXZSizeNearXZ6OnRealPackages rebuilds every real package of the
// cache (xz, level 6, the default) and compresses our data.tar again with
// the real "xz -6": our data.tar.xz may be at most 3 % larger. (The greedy
// encoder used before was 14–22 % larger on sudo, perl-base and tzdata.)
func TestXZSizeNearXZ6OnRealPackages(t *testing.T) {
	testutil.RequireTool(t, "xz")
	testutil.RequireTool(t, "ar")
	debs := testutil.RealDebs(t, issuePackages...)
	for _, name := range slices.Sorted(maps.Keys(debs)) {
		data, res := buildWith(t, rawExtract(t, debs[name]), deb.BuildOptions{})
		p := filepath.Join(t.TempDir(), res.Filename)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		member := mustRun(t, "ar", "p", p, "data.tar.xz")
		ref := mustRun(t, "sh", "-c", `ar p "$1" data.tar.xz | xz -d | xz -6 | wc -c`, "sh", p)
		n, err := strconv.Atoi(strings.TrimSpace(ref))
		if err != nil {
			t.Fatal(err)
		}
		ratio := float64(len(member)) / float64(n)
		t.Logf("%s: data.tar.xz %d bytes, xz -6 %d (%.3f)", name, len(member), n, ratio)
		if ratio > 1.03 {
			t.Errorf("%s: data.tar.xz is %d bytes, xz -6 of the same tar %d: %.1f %% larger (at most 3 %%)", name, len(member), n, 100*(ratio-1))
		}
	}
}

// TestMultiBlockXZAcceptedByDpkg: a data member made of several xz blocks
// is one valid stream for xz and for dpkg-deb, and extracts to the tree.
func TestMultiBlockXZAcceptedByDpkg(t *testing.T) {
	testutil.Heavy(t, "compresses a multi-block xz data member and unpacks it with dpkg-deb")
	t.Parallel()
	testutil.RequireTool(t, "xz")
	testutil.RequireTool(t, "dpkg-deb")
	// Level 1 cuts blocks of 3 MiB (three dictionaries, as xz -T).
	fsys := bigTree()
	rng := rand.New(rand.NewPCG(3, 4))
	more := make([]byte, 3<<20)
	for j := range more {
		more[j] = "lamp light on "[rng.IntN(14)]
	}
	fsys["usr/share/big/d"] = &fstest.MapFile{Data: more, Mode: 0o644, ModTime: time.Unix(1600000000, 0)}
	pkg, _, err := buildMap(t, fsys, deb.BuildOptions{Compression: deb.CompressXZ, Level: 1, Workers: 3})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "big.deb")
	if err := os.WriteFile(path, pkg, 0o644); err != nil {
		t.Fatal(err)
	}
	member := filepath.Join(dir, "data.tar.xz")
	data, err := exec.Command("ar", "p", path, "data.tar.xz").Output()
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(member, data, 0o644)
	list := mustRun(t, "xz", "--robot", "--list", member)
	var streams, blocks string
	for _, line := range strings.Split(list, "\n") {
		if f := strings.Split(line, "\t"); f[0] == "file" {
			streams, blocks = f[1], f[2]
		}
	}
	if n, _ := strconv.Atoi(blocks); streams != "1" || n < 2 {
		t.Errorf("xz --list: %s streams, %s blocks; want 1 stream of ≥ 2 blocks\n%s", streams, blocks, list)
	}
	mustRun(t, "xz", "--test", member)
	out := filepath.Join(dir, "x")
	mustRun(t, "dpkg-deb", "--extract", path, out)
	for name, f := range fsys {
		if !strings.HasPrefix(name, "usr/share/big/") {
			continue
		}
		got, err := os.ReadFile(filepath.Join(out, name))
		if err != nil || !bytes.Equal(got, f.Data) {
			t.Errorf("%s differs after dpkg-deb --extract (%v)", name, err)
		}
	}
}
