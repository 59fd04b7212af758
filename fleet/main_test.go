package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
)

// childEnv makes the test binary act as a standalone collector process, so
// a test can SIGKILL it: a cancelled context in-process would still let
// deferred code run, which a real crash does not.
const childEnv = "LAMPI_FLEET_TEST_COLLECTOR"

type childConfig struct {
	DB       string
	Broker   string
	ClientID string
	User     string
	Pass     string
	AddrFile string // the child writes its API address here once subscribed
	// Listen, if set, makes the child a whole embedded fleet server: a
	// broker on Listen (anonymous unless Auth) handing reports to a
	// direct collector.
	Listen string
	// Auth makes the child's broker check logins against DB's credentials.
	Auth bool
}

func TestMain(m *testing.M) {
	if cfg := os.Getenv(childEnv); cfg != "" {
		if err := runChild(cfg); err != nil {
			fmt.Fprintln(os.Stderr, "child collector:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	testutil.FastRaceExit()
	os.Exit(m.Run())
}

func runChild(cfgJSON string) error {
	var cfg childConfig
	if err := json.Unmarshal([]byte(cfgJSON), &cfg); err != nil {
		return err
	}
	s, err := Open(cfg.DB, StoreOptions{Timeout: 10 * time.Second})
	if err != nil {
		return err
	}
	var c *Collector
	if cfg.Listen != "" {
		c = NewDirectCollector(s, CollectorOptions{})
		bo := BrokerOptions{Addr: cfg.Listen, AllowAnonymous: !cfg.Auth, Deliver: c.Deliver}
		if cfg.Auth {
			bo.Auth = s
		}
		if _, err := StartBroker(context.Background(), bo); err != nil {
			return err
		}
	} else if c, err = NewCollector(s, CollectorOptions{Broker: cfg.Broker, ClientID: cfg.ClientID, Username: cfg.User, Password: []byte(cfg.Pass)}); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go http.Serve(ln, APIHandler(s, nil))
	errc := make(chan error, 1)
	go func() { errc <- c.Run(context.Background()) }()
	select {
	case <-c.Ready():
	case err := <-errc:
		return err
	}
	tmp := cfg.AddrFile + ".tmp"
	if err := os.WriteFile(tmp, []byte(ln.Addr().String()), 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, cfg.AddrFile); err != nil {
		return err
	}
	return <-errc
}

// childCollector is a collector running in a child process.
type childCollector struct {
	cmd    *exec.Cmd
	exited chan struct{}
	api    *APIClient
}

func startChildCollector(t *testing.T, cfg childConfig) *childCollector {
	t.Helper()
	cfg.AddrFile = filepath.Join(t.TempDir(), "addr")
	b, _ := json.Marshal(cfg)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+string(b))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-exited })
	var addr []byte
	waitFor(t, "child collector to subscribe", func() bool {
		select {
		case <-exited:
			t.Fatalf("child collector exited: %v", cmd.ProcessState)
		default:
		}
		var err error
		addr, err = os.ReadFile(cfg.AddrFile)
		return err == nil
	})
	return &childCollector{cmd: cmd, exited: exited, api: &APIClient{Base: "http://" + string(addr)}}
}

// kill ends the child with SIGKILL: no deferred code, no DISCONNECT, no
// pending acknowledgements sent.
func (c *childCollector) kill(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-c.exited
}
