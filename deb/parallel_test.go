package deb_test

import (
	"bytes"
	"math/rand/v2"
	"path/filepath"
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
	testutil.Heavy(t, "compresses a large tree with xz and gzip at several worker counts")
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
