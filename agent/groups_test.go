package agent_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lampi-pkg/lampi-pkg/agent"
	at "github.com/lampi-pkg/lampi-pkg/agent/agenttest"
	"github.com/lampi-pkg/lampi-pkg/agent/state"
	"github.com/lampi-pkg/lampi-pkg/fleet"
	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
	"github.com/lampi-pkg/lampi-pkg/repo"
	"github.com/lampi-pkg/lampi-pkg/rollout"
)

// TestCanaryGroup: a rollout that begins with the canary group publishes
// hi 0.2 at 0 % with the group named in the signed Packages stanza. The
// real agent of a device with "groups = canary" takes it although its
// phasing draw (57) is above 0; the same draw without the group waits,
// and so does a plain apt-get client with that machine id. Once the
// canary's report says it runs 0.2 the controller advances to 100 %, the
// group field goes, and the other agent and apt-get take it too.
func TestCanaryGroup(t *testing.T) {
	t.Parallel()
	const machineID = "0123456789abcdef0123456789abcdef" // NewDevice's: draws 57 for hi 0.2
	if d := agent.PhaseDraw("hi", "0.2", machineID); d != 57 {
		t.Fatalf("draw %d", d)
	}
	clock := at.NewClock(at.Start)
	r := at.NewRepo(t, clock, at.RepoOptions{})
	debs := t.TempDir()
	hi01 := at.BuildHi(t, debs, "0.1", at.HiOptions{})
	r.Publish(hi01)
	canary := at.NewDevice(t, r, "lamp-canary", "groups = canary, building-3\n")
	other := at.NewDevice(t, r, "lamp-other", "")
	plain := testutil.NewAptRoot(t, fmt.Sprintf("deb [signed-by=%s] %s/ stable main\n", r.Keyring, r.URL))
	for _, d := range []*at.Device{canary, other} {
		d.InstallDeb(hi01)
	}
	if out, err := plain.Dpkg("-i", hi01); err != nil {
		t.Fatalf("dpkg -i: %v\n%s", err, out)
	}
	aptUpgrade := func() string {
		t.Helper()
		plain.Update()
		plain.MustRun("-o", "APT::Machine-ID="+machineID, "upgrade")
		out, _ := plain.Dpkg("-s", "hi")
		for _, l := range strings.Split(out, "\n") {
			if v, ok := strings.CutPrefix(l, "Version: "); ok {
				return v
			}
		}
		t.Fatalf("dpkg -s hi:\n%s", out)
		return ""
	}
	ca, oa := newAgent(t, canary, clock, agent.Options{}), newAgent(t, other, clock, agent.Options{})

	fs, err := fleet.Open(filepath.Join(t.TempDir(), "fleet.db"), fleet.StoreOptions{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fs.Close() })
	c := &rollout.Controller{Store: &rollout.BoltStore{Path: filepath.Join(t.TempDir(), "rollouts.db")}, Fleet: fs,
		Publisher: rollout.RepoPublisher{Repo: r.R}, Holder: "test", Now: clock.Now}
	plan, err := rollout.ParsePlan("@canary:1m/1,100%")
	if err != nil {
		t.Fatal(err)
	}
	r.Publish(at.BuildHi(t, debs, "0.2", at.HiOptions{}))
	clock.Advance(time.Minute)
	if _, err := c.Start(context.Background(), rollout.Rollout{Distribution: "bookworm", Package: "hi", Version: "0.2", Plan: plan}); err != nil {
		t.Fatal(err)
	}
	stanza := string(r.File("dists/bookworm/main/binary-amd64/Packages"))
	if !strings.Contains(stanza, "Version: 0.2\n") || !strings.Contains(stanza, "Phased-Update-Percentage: 0\n") ||
		!strings.Contains(stanza, state.PhasedGroupsField+": canary\n") || state.PhasedGroupsField != repo.PhasedGroupsField {
		t.Fatalf("published Packages:\n%s", stanza)
	}

	if o := oa.Once(context.Background()); o.Result != state.ResultDeferred || other.Version("hi") != "0.1" {
		t.Fatalf("a device outside the group at 0 %%: %s %v, hi %s", o.Result, o.Err, other.Version("hi"))
	}
	if s, _ := oa.NewState(""); s.Candidates["hi"] != (state.Candidate{Version: "0.2", Phased: 0}) || s.Groups != nil {
		t.Errorf("the other device reports %+v, groups %v", s.Candidates, s.Groups)
	}
	if v := aptUpgrade(); v != "0.1" {
		t.Fatalf("plain apt-get took hi %s at 0 %% (it must ignore the group field)", v)
	}
	if o := ca.Once(context.Background()); o.Result != state.ResultUpdated || canary.Version("hi") != "0.2" {
		t.Fatalf("the canary at 0 %%: %s %v, hi %s", o.Result, o.Err, canary.Version("hi"))
	}
	s, err := ca.NewState("")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(s.Groups, ",") != "canary,building-3" || s.Attempts["hi"].Result != state.ResultUpdated {
		t.Errorf("the canary reports groups %v, attempts %+v", s.Groups, s.Attempts)
	}
	b, err := state.Encode(s)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Apply(state.DefaultPrefix, []fleet.Message{{Topic: state.StateTopic(state.DefaultPrefix, s.Device), Payload: b}}); err != nil {
		t.Fatal(err)
	}
	if d, err := fs.Device(context.Background(), "lamp-canary"); err != nil || strings.Join(d.State.Groups, ",") != "canary,building-3" {
		t.Errorf("the fleet shows the canary with groups %v (%v)", d.State.Groups, err)
	}

	clock.Advance(2 * time.Minute)
	ds, _, err := c.Tick(context.Background())
	if err != nil || len(ds) != 1 || ds[0].Action != rollout.Advance || ds[0].To != 100 {
		t.Fatalf("tick after the canary updated: %+v %v", ds, err)
	}
	t.Logf("decision: %s", ds[0].Reason)
	if p := string(r.File("dists/bookworm/main/binary-amd64/Packages")); strings.Contains(p, state.PhasedGroupsField) || strings.Contains(p, "Phased-Update-Percentage") {
		t.Fatalf("at 100 %% the stanza keeps phasing fields:\n%s", p)
	}
	if o := oa.Once(context.Background()); o.Result != state.ResultUpdated || other.Version("hi") != "0.2" {
		t.Fatalf("the other device at 100 %%: %s %v", o.Result, o.Err)
	}
	if v := aptUpgrade(); v != "0.2" {
		t.Fatalf("plain apt-get at 100 %%: hi %s", v)
	}
}
