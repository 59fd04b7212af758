package repo

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/lampi-pkg/lampi-pkg/deb"
)

var (
	genBenchDir   = flag.String("gen-bench-debs", "", "write the benchmark packages into this directory (scripts/bench-repo.sh)")
	genBenchCount = flag.Int("gen-bench-count", 10000, "how many benchmark packages to write")
)

// benchDeb builds the i-th benchmark package: small, amd64, xz as
// dpkg-deb makes them by default.
func benchDeb(name string, i int) ([]byte, string, error) {
	ctl := fmt.Sprintf("Package: %s\nVersion: 1.0-%d\nArchitecture: amd64\nMaintainer: Bench <bench@example.org>\nSection: misc\nPriority: optional\nDepends: libc6 (>= 2.36)\nDescription: benchmark package %d\n A small package for comparing repository tools.\n", name, i%100, i)
	fsys := fstest.MapFS{
		"DEBIAN/control":                  {Data: []byte(ctl), Mode: 0o644, ModTime: testNow},
		"usr/share/" + name + "/README":   {Data: []byte("package " + name + "\n"), Mode: 0o644, ModTime: testNow},
		"usr/share/doc/" + name + "/copy": {Data: []byte("public domain\n"), Mode: 0o644, ModTime: testNow},
	}
	var buf bytes.Buffer
	res, err := deb.Build(context.Background(), fsys, &buf, deb.BuildOptions{Mtime: testNow, Workers: 1})
	if err != nil {
		return nil, "", err
	}
	return buf.Bytes(), res.Filename, nil
}

// TestGenerateBenchDebs writes -gen-bench-count packages named
// bench-NNNNN plus bench-extra into -gen-bench-debs/{all,extra}; without
// the flag it builds three to check the generator.
func TestGenerateBenchDebs(t *testing.T) {
	dir, n := *genBenchDir, *genBenchCount
	if dir == "" {
		dir, n = t.TempDir(), 3
	} else {
		t.Logf("writing %d packages to %s", n, dir)
	}
	for _, d := range []string{"all", "extra"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	jobs := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				name, sub := fmt.Sprintf("bench-%05d", i), "all"
				if i == n {
					name, sub = "bench-extra", "extra"
				}
				data, file, err := benchDeb(name, i)
				if err == nil {
					err = os.WriteFile(filepath.Join(dir, sub, file), data, 0o644)
				}
				if err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
				}
			}
		}()
	}
	for i := 0; i <= n; i++ {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	if firstErr != nil {
		t.Fatal(firstErr)
	}
}
