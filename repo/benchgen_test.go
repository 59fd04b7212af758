package repo

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
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

var benchDebs = flag.String("bench-debs", "", "BenchmarkIncludeDebs: import DIR/all/*.deb (from -gen-bench-debs) instead of 300 generated packages")

// BenchmarkIncludeDebs imports a batch of small packages into an empty
// repository and publishes it signed, as scripts/bench-repo.sh does with
// the command (profile it with -cpuprofile, -memprofile).
func BenchmarkIncludeDebs(b *testing.B) {
	var files []string
	if *benchDebs != "" {
		var err error
		if files, err = filepath.Glob(filepath.Join(*benchDebs, "all", "*.deb")); err != nil || len(files) == 0 {
			b.Fatalf("no packages in %s/all (%v)", *benchDebs, err)
		}
	} else {
		dir := b.TempDir()
		for i := range 300 {
			name := fmt.Sprintf("bench-%05d", i)
			data, file, err := benchDeb(name, i)
			if err != nil {
				b.Fatal(err)
			}
			p := filepath.Join(dir, file)
			if err := os.WriteFile(p, data, 0o644); err != nil {
				b.Fatal(err)
			}
			files = append(files, p)
		}
	}
	conf := "Codename: bench\nSuite: stable\nArchitectures: amd64\nComponents: main\nDescription: benchmark\nSignWith: " +
		filepath.Join("..", "fixtures", "keys", "lampi-test.sec.asc") + "\n"
	abs, err := filepath.Abs(filepath.Join("..", "fixtures", "keys", "lampi-test.sec.asc"))
	if err != nil {
		b.Fatal(err)
	}
	conf = strings.Replace(conf, filepath.Join("..", "fixtures", "keys", "lampi-test.sec.asc"), abs, 1)
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		r := newTestRepo(b, conf, Options{})
		b.StartTimer()
		res, err := r.IncludeDeb(context.Background(), "bench", files, IncludeOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if len(res.Changes) != len(files) || len(res.Exported) != 1 {
			b.Fatalf("%d changes, exported %v; want %d and bench", len(res.Changes), res.Exported, len(files))
		}
	}
}
