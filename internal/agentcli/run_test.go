package agentcli_test

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	at "github.com/lampi-pkg/lampi-pkg/agent/agenttest"
	"github.com/lampi-pkg/lampi-pkg/agent/state"
	"github.com/lampi-pkg/lampi-pkg/internal/agentcli"
	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
)

// TestMain lets the test binary act as lampi-agent (for the daemon tests,
// which need a separate process to signal and kill).
func TestMain(m *testing.M) {
	if os.Getenv("LAMPI_AGENT_TEST_MAIN") == "1" {
		os.Exit(agentcli.Main(os.Args[1:], agentcli.StdIO()))
	}
	testutil.FastRaceExit()
	os.Exit(m.Run())
}

func startDaemon(t *testing.T, conf string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "run", "--config", conf)
	cmd.Env = append(os.Environ(), "LAMPI_AGENT_TEST_MAIN=1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd
}

// TestRunDaemon: "lampi-agent run" says online (retained), reports its
// state, says offline itself on SIGTERM and exits 0; killed, the broker
// publishes its Will ("offline"); seq keeps growing across restarts.
func TestRunDaemon(t *testing.T) {
	clock := at.NewClock(at.Start)
	r := at.NewRepo(t, clock, at.RepoOptions{})
	debs := t.TempDir()
	hi := at.BuildHi(t, debs, "0.1", at.HiOptions{})
	r.Publish(hi)
	mq := at.NewMosquitto(t)
	mq.Start()
	d := at.NewDevice(t, r, "lamp-daemon", "broker = "+mq.URL+"\npoll_interval = 1h\n")
	d.InstallDeb(hi)
	sub := at.Subscribe(t, mq.URL)

	cmd := startDaemon(t, d.Conf)
	sub.WaitStatus(t, d.ID, state.Online)
	first := sub.WaitState(t, d.ID, func(s state.State) bool { return s.Result == state.ResultUpToDate })
	if first.Packages["hi"] != "0.1" {
		t.Errorf("state %+v", first)
	}
	n := len(sub.Messages())
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("run after SIGTERM: %v", err)
	}
	// The process has exited after a clean DISCONNECT (which suppresses the
	// Will): an offline now is the agent's own.
	sub.WaitStatusSince(t, d.ID, state.Offline, n)

	// Restart, then kill -9: the Will says offline.
	restart := time.Now()
	cmd = startDaemon(t, d.Conf)
	second := sub.WaitState(t, d.ID, func(s state.State) bool { return s.Seq > first.Seq })
	if second.Seq < uint64(restart.UnixMicro()) {
		t.Errorf("seq after restart %d, below the clock at the restart (%d µs)", second.Seq, restart.UnixMicro())
	}
	sub.WaitStatusSince(t, d.ID, state.Online, n)
	before := len(sub.Messages())
	cmd.Process.Kill()
	cmd.Wait()
	sub.WaitStatusSince(t, d.ID, state.Offline, before) // the Will
}
