package cli

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/lampi-pkg/lampi-pkg/internal/agentcli"
	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
)

// TestMain lets the test binary act as the lampi-pkg command inside
// testscript scenarios: "exec lampi-pkg …" runs the real program in a child
// process, with real files, real exit codes and real standard streams.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"lampi-pkg": func() { os.Exit(Main(os.Args[1:], StdIO())) },
		// The device side and a real broker, for the end-to-end scenarios
		// (e2e-*.txtar).
		"lampi-agent":    func() { os.Exit(agentcli.Main(os.Args[1:], agentcli.StdIO())) },
		"test-mosquitto": testMosquittoMain,
	})
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
	testscript.Run(t, testscript.Params{
		Dir: filepath.Join(root, "testdata", "script"),
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
	})
}
