package agent_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/lampi-pkg/lampi-pkg/agent"
	at "github.com/lampi-pkg/lampi-pkg/agent/agenttest"
	"github.com/lampi-pkg/lampi-pkg/agent/state"
	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
)

// newAgent builds the library agent for a device on the test clock.
func newAgent(t testing.TB, d *at.Device, clock *at.Clock, opts agent.Options) *agent.Agent {
	t.Helper()
	cfg, err := agent.LoadConfig(d.Conf)
	if err != nil {
		t.Fatal(err)
	}
	opts.Now = clock.Now
	if opts.Env == nil {
		opts.Env = os.Environ()
	}
	if opts.Logf == nil {
		opts.Logf = t.Logf
	}
	a, err := agent.New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestDeb822InlineKey: the device's source is a deb822 .sources file with
// the repository key inline in Signed-By; install with dpkg.
func TestDeb822InlineKey(t *testing.T) {
	// The package's end to end under -short: poll, verify, install with dpkg.
	testutil.KeepInShort(t)
	t.Parallel()
	clock := at.NewClock(at.Start)
	r := at.NewRepo(t, clock, at.RepoOptions{})
	debs := t.TempDir()
	hi01 := at.BuildHi(t, debs, "0.1", at.HiOptions{})
	r.Publish(hi01)
	d := at.NewDevice(t, r, "lamp-deb822", "install_method = dpkg\n")
	d.InstallDeb(hi01)
	var key strings.Builder
	for _, l := range strings.Split(strings.TrimSpace(r.KeyArmor), "\n") {
		if l == "" {
			l = "."
		}
		key.WriteString(" " + l + "\n")
	}
	src := strings.TrimSuffix(d.Sources, ".list") + ".sources"
	body := "# lampi updates\nTypes: deb\nURIs: " + r.URL + "\nSuites: stable\nComponents: main\nSigned-By:\n" + key.String()
	if err := os.WriteFile(src, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	conf, _ := os.ReadFile(d.Conf)
	if err := os.WriteFile(d.Conf, []byte(strings.Replace(string(conf), d.Sources, src, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	r.Publish(at.BuildHi(t, debs, "0.2", at.HiOptions{}))
	a := newAgent(t, d, clock, agent.Options{})
	if o := a.Once(context.Background()); o.Result != state.ResultUpdated {
		t.Fatalf("%s %v", o.Result, o.Err)
	}
	if got := d.Hi(); got != "Hello Deb! Version 0.2" {
		t.Fatalf("hi says %q", got)
	}
}
