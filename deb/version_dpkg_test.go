package deb

// Differential tests: the real dpkg on this machine judges our version
// parsing and ordering. A dpkg process costs about 3 ms to start here and
// parallel starts barely help, so the tests spend their calls where they
// tell the most: the ordering test sorts a pool of versions with our
// Compare and asks dpkg only about neighbours, which (dpkg's order being
// transitive) settles every pair of the pool.

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
)

var (
	dpkgSeed  = flag.Uint64("dpkg.seed", 1, "seed of the random versions in the tests against dpkg (0: time-based)")
	dpkgScale = flag.Float64("dpkg.scale", 1, "multiplies the number of dpkg calls in the tests against dpkg")
)

// dpkgRand returns the seeded generator of a differential test and logs
// the seed, so that a failure can be replayed with -dpkg.seed.
func dpkgRand(t *testing.T) *rand.Rand {
	seed := *dpkgSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (replay with -dpkg.seed=%d)", seed, seed)
	return rand.New(rand.NewPCG(seed, 0x1a3b5))
}

// dpkgCalls scales a number of dpkg calls by -dpkg.scale and -short.
func dpkgCalls(n int) int {
	f := *dpkgScale
	if testing.Short() {
		f /= 10
	}
	return max(10, int(float64(n)*f))
}

// dpkgResult is the outcome of one dpkg run.
type dpkgResult struct {
	code   int
	stderr string
}

// runDpkg runs dpkg once per argument list, on a few workers, and returns
// the results in order.
func runDpkg(t *testing.T, calls [][]string) []dpkgResult {
	t.Helper()
	dpkg := testutil.RequireTool(t, "dpkg")
	start := time.Now()
	results := make([]dpkgResult, len(calls))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(runtime.NumCPU(), 4) {
		wg.Go(func() {
			for i := range next {
				var stderr strings.Builder
				cmd := exec.Command(dpkg, calls[i]...)
				cmd.Stderr = &stderr
				err := cmd.Run()
				code := 0
				if ee, ok := err.(*exec.ExitError); ok {
					code = ee.ExitCode()
				} else if err != nil {
					code = -1
					stderr.WriteString(err.Error())
				}
				results[i] = dpkgResult{code, stderr.String()}
			}
		})
	}
	for i := range calls {
		next <- i
	}
	close(next)
	wg.Wait()
	if n := len(calls); n > 0 {
		el := time.Since(start)
		t.Logf("%d dpkg runs in %v (%v each)", n, el.Round(time.Millisecond), (el / time.Duration(n)).Round(time.Microsecond))
	}
	return results
}

// relationFor is the dpkg relation that must hold when our Compare says c.
func relationFor(c int) string {
	return [3]string{"lt", "eq", "gt"}[c+1]
}

// dpkgOrder asks dpkg how a and b compare, for failure messages.
func dpkgOrder(t *testing.T, a, b string) string {
	res := runDpkg(t, [][]string{
		{"--compare-versions", "--", a, "lt", b},
		{"--compare-versions", "--", a, "eq", b},
		{"--compare-versions", "--", a, "gt", b},
	})
	for i, r := range res {
		if r.code == 0 {
			return relationFor(i - 1)
		}
	}
	return fmt.Sprintf("no answer (%q)", res[0].stderr)
}

func TestCompareTableAgainstDpkg(t *testing.T) {
	var calls [][]string
	for _, tt := range versionCompareTests {
		calls = append(calls, []string{"--compare-versions", "--", tt.a, relationFor(tt.want), tt.b})
	}
	for i, r := range runDpkg(t, calls) {
		if r.code != 0 || r.stderr != "" {
			tt := versionCompareTests[i]
			t.Errorf("we say %q %s %q; dpkg says %s (exit %d, %q)", tt.a, relationFor(tt.want), tt.b, dpkgOrder(t, tt.a, tt.b), r.code, r.stderr)
		}
	}
}

// TestCompareAgainstDpkgChain checks our order on every pair of a pool of
// random versions. It sorts the pool with Compare and has dpkg confirm
// each neighbour relation (lt or eq); dpkg's order is transitive, so that
// fixes dpkg's verdict on all pairs, which must then match Compare.
func TestCompareAgainstDpkgChain(t *testing.T) {
	g := versionGen{dpkgRand(t)}
	pool := g.pool(dpkgCalls(1000))
	vs := make([]Version, len(pool))
	for i, s := range pool {
		vs[i] = MustParseVersion(s)
	}
	idx := make([]int, len(pool))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return vs[a].Compare(vs[b]) })

	calls := make([][]string, len(idx)-1)
	for k := range calls {
		a, b := idx[k], idx[k+1]
		calls[k] = []string{"--compare-versions", "--", pool[a], relationFor(vs[a].Compare(vs[b])), pool[b]}
	}
	// class[k] numbers the run of dpkg-equal versions at sorted place k.
	class := make([]int, len(idx))
	for k, r := range runDpkg(t, calls) {
		a, b := idx[k], idx[k+1]
		if r.code != 0 || r.stderr != "" {
			t.Errorf("we say %q %s %q; dpkg says %s (exit %d, %q)", pool[a], calls[k][3], pool[b], dpkgOrder(t, pool[a], pool[b]), r.code, r.stderr)
		}
		class[k+1] = class[k]
		if calls[k][3] != "eq" {
			class[k+1]++
		}
	}
	if t.Failed() {
		return
	}
	pairs := 0
	for k := range idx {
		for l := k + 1; l < len(idx); l++ {
			want := -1
			if class[k] == class[l] {
				want = 0
			}
			if got := vs[idx[k]].Compare(vs[idx[l]]); got != want {
				t.Fatalf("Compare(%q, %q) = %d, but dpkg's order says %d", pool[idx[k]], pool[idx[l]], got, want)
			}
			pairs++
		}
	}
	t.Logf("%d versions in %d equal classes: %d pairs agree with dpkg", len(pool), class[len(class)-1]+1, pairs)
}

// TestCompareAgainstDpkgPairs asks dpkg directly about random pairs, most
// of them near-misses (a version and a small change of it).
func TestCompareAgainstDpkgPairs(t *testing.T) {
	g := versionGen{dpkgRand(t)}
	var calls [][]string
	for len(calls) < dpkgCalls(300) {
		a := g.version()
		b := g.version()
		if g.r.IntN(10) < 7 {
			b = g.mutate(a)
		}
		va, errA := ParseVersion(a)
		vb, errB := ParseVersion(b)
		if errA != nil || errB != nil {
			continue
		}
		calls = append(calls, []string{"--compare-versions", "--", a, relationFor(va.Compare(vb)), b})
	}
	for k, r := range runDpkg(t, calls) {
		if r.code != 0 || r.stderr != "" {
			a, op, b := calls[k][2], calls[k][3], calls[k][4]
			t.Errorf("we say %q %s %q; dpkg says %s (exit %d, %q)", a, op, b, dpkgOrder(t, a, b), r.code, r.stderr)
		}
	}
}

// TestParseVersionAgainstDpkg checks that we reject exactly the strings
// "dpkg --validate-version" rejects, over random strings built to hit
// every rule: blanks, epochs, colons, hyphens, junk characters.
func TestParseVersionAgainstDpkg(t *testing.T) {
	g := versionGen{dpkgRand(t)}
	seen := map[string]bool{}
	var inputs []string
	for len(inputs) < dpkgCalls(2000) {
		s := g.junk()
		if seen[s] || strings.IndexByte(s, 0) >= 0 {
			continue
		}
		seen[s] = true
		inputs = append(inputs, s)
	}
	calls := make([][]string, len(inputs))
	for i, s := range inputs {
		calls[i] = []string{"--validate-version", "--", s}
	}
	valid := 0
	for i, r := range runDpkg(t, calls) {
		_, err := ParseVersion(inputs[i])
		if r.code != 0 && r.code != 1 && r.code != 2 {
			t.Fatalf("dpkg --validate-version %q: exit %d: %s", inputs[i], r.code, r.stderr)
		}
		switch {
		case r.code == 0 && err != nil:
			t.Errorf("dpkg accepts %q, we reject it: %v", inputs[i], err)
		case r.code != 0 && err == nil:
			t.Errorf("dpkg rejects %q (%s), we accept it", inputs[i], strings.TrimSpace(r.stderr))
		case r.code == 0:
			valid++
		}
	}
	t.Logf("%d strings, %d valid", len(inputs), valid)
}
