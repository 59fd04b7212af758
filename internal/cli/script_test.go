package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/lampi-pkg/lampi-pkg/internal/agentcli"
	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
)

// TestMain lets the test binary act as the lampi-pkg command inside
// testscript scenarios: "exec lampi-pkg …" runs the real program in a child
// process, with real files, real exit codes and real standard streams.
func TestMain(m *testing.M) {
	testutil.FastRaceExit()
	commands := map[string]func(){
		"lampi-pkg": func() { os.Exit(Main(os.Args[1:], StdIO())) },
		// The device side and a real broker, for the end-to-end scenarios
		// (e2e-*.txtar).
		"lampi-agent":    func() { os.Exit(agentcli.Main(os.Args[1:], agentcli.StdIO())) },
		"test-mosquitto": testMosquittoMain,
	}
	if commands[filepath.Base(os.Args[0])] == nil {
		// Scenarios mostly wait on the processes they run and on the
		// publish rule's whole seconds.
		testutil.WaitBoundParallel()
	}
	testscript.Main(m, commands)
}

// TestScripts runs every scenario under testdata/script at the top of the
// module. Scenarios may use the conditions [exec:dpkg-deb] etc. to say which
// real tools they need; FIXTURES points at the fixtures directory and
// REAL_DEBS at the real Debian packages scripts/deps.sh downloads.
func TestScripts(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "testdata", "script")
	params := testscript.Params{
		Dir: dir,
		Setup: func(e *testscript.Env) error {
			e.Setenv("FIXTURES", filepath.Join(root, "fixtures"))
			e.Setenv("REAL_DEBS", testutil.RealDebsDir())
			e.Setenv("SOURCE_DATE_EPOCH", "")
			return nil
		},
		Condition: func(cond string) (bool, error) {
			switch cond {
			case "root":
				return os.Geteuid() == 0, nil
			}
			return false, nil
		},
		RequireExplicitExec: true,
	}
	if testing.Short() {
		params.Dir, params.Files = "", shortScripts(t, dir)
	}
	testscript.Run(t, params)
}

// heavyScripts are the scenarios "go test -short" leaves out, with what
// makes each slow; every other scenario runs under -short too.
var heavyScripts = map[string]string{
	"e2e-embedded":  "runs the whole system: serve, apt-get and dpkg on a device root, lampi-agent",
	"e2e-mosquitto": "runs the whole system with a real Mosquitto: serve, apt-get and dpkg on a device root, lampi-agent",
	"release":       "releases into a repository that apt-get and dpkg install from in an isolated root",
	"real-debs":     "works on the real Debian packages scripts/deps.sh downloads (megabytes each)",
	// The repo verbs beyond the first: "repo" (init, include, list,
	// remove, export, one real apt-get) stays in -short; these judge the
	// rest with dpkg's source tools, reprepro and apt-get in isolated roots.
	"repo-incoming":  "builds uploads with dpkg-source and dpkg-genchanges, signs them with gpg, installs with apt-get",
	"repo-source":    "builds source packages with dpkg-source and dpkg-genchanges, reads them with apt-get source",
	"repo-movesrc":   "builds source packages with dpkg-source, installs and fetches them with apt-get",
	"repo-matched":   "runs the real reprepro on the same operations and apt-cache on the result",
	"repo-archive":   "judges two distributions with dpkg-deb, gpgv, apt-get and apt-cache",
	"repo-reprepro":  "judges several versions of a package with apt-get and apt-cache in isolated roots",
	"repo-ddeb-udeb": "runs the real reprepro and apt-get on debug and installer packages",
	"repo-update":    "mirrors a signed upstream and installs from the mirror with apt-get",
	"repo-options":   "installs with apt-get from repositories configured by reprepro's options",
}

// shortScripts lists the scenarios in dir except heavyScripts, which it
// reports as skipped subtests (TestScripts/NAME) so "go test -short -v"
// names what it left out.
func shortScripts(t *testing.T, dir string) []string {
	t.Helper()
	all, err := filepath.Glob(filepath.Join(dir, "*.txtar"))
	if err != nil || len(all) == 0 {
		t.Fatalf("no scenarios in %s: %v", dir, err)
	}
	var files []string
	left := 0
	for _, f := range all {
		name := strings.TrimSuffix(filepath.Base(f), ".txtar")
		if why, heavy := heavyScripts[name]; heavy {
			t.Run(name, func(t *testing.T) { testutil.Heavy(t, why) })
			left++
			continue
		}
		files = append(files, f)
	}
	if left != len(heavyScripts) {
		t.Errorf("heavyScripts names %d scenarios, %d of them are in %s: update the list", len(heavyScripts), left, dir)
	}
	return files
}
