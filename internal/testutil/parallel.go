package testutil

import (
	"flag"
	"runtime"
	"strconv"
)

// WaitBoundParallel raises the number of parallel tests (t.Parallel) from
// GOMAXPROCS to four times that, unless -test.parallel was given. It is
// for packages whose tests mostly wait rather than compute: on the child
// processes they run, and on the publish rule that dates each replaced
// index a whole second after the one before (repo/storage.DateAfter), so
// a test of fifteen publishes sleeps for fifteen seconds while using
// little CPU. With only GOMAXPROCS of them at a time such a package takes
// the sum of those sleeps as wall time on a 2-core machine. Call it from
// TestMain before m.Run; it parses the command line (m.Run would).
func WaitBoundParallel() {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		_ = flag.Set("test.parallel", strconv.Itoa(4*runtime.GOMAXPROCS(0)))
	}
}
