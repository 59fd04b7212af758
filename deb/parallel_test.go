package deb_test

import (
	"bytes"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/lampi-pkg/lampi-pkg/deb"
	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
)

// bigTree has a payload of several MiB, enough for several compression
// chunks even at the smallest chunk size (1 MiB).
func bigTree() fstest.MapFS {
	fsys := tree(map[string]string{"DEBIAN/control": goodControl})
	rng := rand.New(rand.NewPCG(1, 2))
	for i, size := range []int{450 << 10, 200 << 10, 450 << 10} {
		b := make([]byte, size)
		for j := range b {
			if i == 1 {
				b[j] = byte(rng.Uint32())
			} else {
				b[j] = "lamp light "[rng.IntN(11)]
			}
		}
		fsys[filepath.Join("usr/share/big", string(rune('a'+i)))] = &fstest.MapFile{Data: b, Mode: 0o644, ModTime: time.Unix(1600000000, 0)}
	}
	fsys["usr/share/big"] = &fstest.MapFile{Mode: 0o755 | 1<<31, ModTime: time.Unix(1600000000, 0)}
	return fsys
}

// TestParallelCompressionDeterministic: the bytes of a package do not
// depend on how many goroutines compressed it.
func TestParallelCompressionDeterministic(t *testing.T) {
	t.Parallel()
	fsys := bigTree()
	for _, comp := range []deb.Compression{deb.CompressXZ, deb.CompressGzip} {
		one, _, err := buildMap(t, fsys, deb.BuildOptions{Compression: comp, Level: 1, Workers: 1})
		if err != nil {
			t.Fatal(err)
		}
		four, _, err := buildMap(t, fsys, deb.BuildOptions{Compression: comp, Level: 1, Workers: 4})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(one, four) {
			t.Errorf("%s: 1 and 4 workers gave different packages", comp)
		}
	}
}

// TestMultiBlockXZAcceptedByDpkg: a data member made of several xz blocks
// is one valid stream for xz and for dpkg-deb, and extracts to the tree.
func TestMultiBlockXZAcceptedByDpkg(t *testing.T) {
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
