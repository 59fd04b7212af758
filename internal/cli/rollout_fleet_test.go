//go:build !race

// The fleet's processes are this test binary itself (TestMain); under
// the race detector 30 of them take three times as long, so make test
// runs this file in its second pass, without -race (HEAVY_TESTS).

package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lampi-pkg/lampi-pkg/agent"
	at "github.com/lampi-pkg/lampi-pkg/agent/agenttest"
	"github.com/lampi-pkg/lampi-pkg/fleet"
	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
	"github.com/lampi-pkg/lampi-pkg/repo"
	"github.com/lampi-pkg/lampi-pkg/rollout"
	"github.com/lampi-pkg/lampi-pkg/server"
)

// fleetSize is the number of lampi-agent processes of TestRolloutFleet.
const fleetSize = 30

// TestRolloutFleet is issue 17's judgement: a fleet of real lampi-agent
// processes, each in its own apt/dpkg root with its own machine id,
// against a real "lampi-pkg serve" (both brokers), with soak times of
// seconds:
//
//   - a release (release --rollout) whose health check fails on a fifth
//     of the devices halts at its first step and does not spread;
//   - "rollout revert --server" brings every device, and a plain apt-get
//     client without the agent, to the reverted version;
//   - a healthy release walks every step to 100 %, while a second server
//     on the same repository does not act (the lease), and a server
//     killed mid-rollout (SIGKILL) resumes at the same step once started
//     again.
func TestRolloutFleet(t *testing.T) {
	testutil.Heavy(t, "runs 30 lampi-agent processes with apt-get and dpkg in isolated roots against a real serve")
	for _, broker := range []string{"embedded", "mosquitto"} {
		t.Run(broker, func(t *testing.T) {
			t.Parallel() // the two fleets share nothing: own ports, roots, repositories
			runRolloutFleet(t, broker)
		})
	}
}

// fleetWorld is the repository, the server and the devices of one run.
type fleetWorld struct {
	t                     *testing.T
	base, keyring, tokenF string
	httpAddr, mqttAddr    string
	brokerURL             string
	mosquitto             bool
	devices               []*at.Device
	machineIDs            []string
	serve                 *serveProc
	client                *rollout.Client
	fleetAPI              *fleet.APIClient
	packagesURL           string
	healthDir             string // the devices' health checks
	ctx                   context.Context
}

// serveProc is a running "lampi-pkg serve".
type serveProc struct {
	cmd  *exec.Cmd
	log  *testutil.SyncBuffer
	done chan struct{}
}

func (p *serveProc) stop(sig syscall.Signal) {
	p.cmd.Process.Signal(sig)
	<-p.done
}

// wait polls cond until it holds, failing the test with its last
// explanation after a generous deadline (never a fixed sleep: the machine
// is loaded).
func waitFor(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(6 * time.Minute)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 6 minutes: %s", what, why)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func runRolloutFleet(t *testing.T, broker string) {
	w := &fleetWorld{t: t, ctx: context.Background(), mosquitto: broker == "mosquitto", healthDir: t.TempDir()}
	w.setupRepo()
	w.httpAddr = fmt.Sprintf("127.0.0.1:%d", at.FreePort(t))
	if w.mosquitto {
		mq := at.NewMosquitto(t)
		mq.Start()
		w.brokerURL = mq.URL
	} else {
		w.mqttAddr = fmt.Sprintf("127.0.0.1:%d", at.FreePort(t))
		w.brokerURL = "mqtt://" + w.mqttAddr
	}
	w.serve = w.startServe("")
	url := "http://" + w.httpAddr
	w.client = &rollout.Client{Base: url, Token: w.token(), HTTP: &http.Client{Timeout: 2 * time.Minute}}
	w.fleetAPI = &fleet.APIClient{Base: url, HTTP: &http.Client{Timeout: 2 * time.Minute}}
	w.packagesURL = url + "/dists/bookworm/main/binary-amd64/Packages"
	w.startDevices()

	// 1. A bad release: its health check fails on a fifth of the devices,
	// some of which its first step admits. It halts at that step.
	first := 40
	admitted := w.admitted("0.2", first)
	bad := w.pickBad(admitted)
	w.writeHealthChecks(bad, "0.2")
	w.release("0.2", fmt.Sprintf("%d%%:1h/1,100%%", first))
	r := w.waitRollout("bookworm/hi/0.2", func(r *rollout.Status) bool { return r.State == rollout.Halted })
	if r.Step != 0 {
		t.Fatalf("the bad release halted at step %d, not its first: %s", r.Step+1, r.Reason)
	}
	halted := time.Now()
	waitFor(t, "0.2 at phase 0", func() (bool, string) {
		p := w.stanza("0.2")
		return strings.Contains(p, "Phased-Update-Percentage: 0\n"), p
	})
	// Every device checks the repository after the halt; none outside the
	// first step's draw takes 0.2, and the bad ones went back to 0.1.
	w.waitAllChecked(halted)
	for i, d := range w.devices {
		v := d.Version("hi")
		switch {
		case bad[i] && v != "0.1":
			t.Errorf("%s (health check fails on 0.2) runs %s, not 0.1 (rolled back)", d.ID, v)
		case !admitted[i] && v != "0.1":
			t.Errorf("%s, outside the first step's draw, runs %s: the halted release spread", d.ID, v)
		case admitted[i] && !bad[i] && v != "0.2" && v != "0.1":
			t.Errorf("%s runs %s", d.ID, v)
		}
	}

	// 2. Revert through the server's rollout API: every device and a
	// plain apt-get client end on 0.2+revert1 (0.1's payload).
	out := w.cli("rollout", "revert", "bookworm/hi/0.2", "--reason", "health checks fail", "--server", url, "--token-file", w.tokenF)
	if !strings.Contains(out, "(0.1 published as 0.2+revert1)") {
		t.Fatalf("revert: %s", out)
	}
	w.waitVersions("0.2+revert1")
	for _, d := range w.devices {
		if got := d.Hi(); got != "Hello Deb! Version 0.1" {
			t.Errorf("%s: hi says %q after the revert", d.ID, got)
		}
	}
	w.plainApt("0.2+revert1")

	// 3. A healthy release walks every step to 100 %. A second server on
	// the same repository runs meanwhile and does not act; the first is
	// killed at the second step and resumes there.
	w.writeHealthChecks(nil, "")
	second := w.startServe("2")
	w.release("0.3", "30%:1s/1,60%:20s/2,100%:1s/3")
	w.waitRollout("bookworm/hi/0.3", func(r *rollout.Status) bool { return r.Step >= 1 || r.State != rollout.Running })
	w.serve.stop(syscall.SIGKILL) // within the 20 s soak of the second step
	st, err := (&rollout.BoltStore{Path: repo.Layout{Base: w.base}.Rollouts()}).Get(w.ctx, "bookworm/hi/0.3")
	if err != nil {
		t.Fatal(err)
	}
	killedAt := st.Step
	if st.State != rollout.Running || st.Step != 1 {
		t.Fatalf("0.3 is %s at step %d (%s) when the server is killed", st.State, st.Step+1, st.Reason)
	}
	second.stop(syscall.SIGINT)
	if notes := decisionNotes(second.log.String()); notes != "" {
		t.Errorf("the second server acted although the first held the lease:\n%s", notes)
	}
	w.serve = w.startServe("")
	r = w.waitRollout("bookworm/hi/0.3", func(r *rollout.Status) bool { return r.State != rollout.Running })
	if r.State != rollout.Completed {
		t.Fatalf("the healthy release is %s: %s", r.State, r.Reason)
	}
	var steps []string
	for _, d := range r.Decisions {
		steps = append(steps, fmt.Sprintf("%s %d→%d", d.Action, d.From, d.To))
	}
	if got := strings.Join(steps, ", "); got != "hold 0→30, advance 30→60, advance 60→100, complete 100→100" {
		t.Errorf("the healthy release's log (killed at step %d): %s", killedAt+1, got)
	}
	w.waitVersions("0.3")
	if p := w.stanza("0.3"); strings.Contains(p, "Phased-Update-Percentage") {
		t.Errorf("0.3 still phased after completion:\n%s", p)
	}
	pins, err := openTestRepo(t, w.base).Pins(w.ctx)
	if err != nil || len(pins) != 0 {
		t.Errorf("pins left after the rollouts closed: %+v %v", pins, err)
	}
	w.serve.stop(syscall.SIGINT)
}

// setupRepo makes the repository: bookworm, amd64, Limit 2 (the pins
// keep what a revert needs), signed with a new key; hi 0.1 published.
func (w *fleetWorld) setupRepo() {
	t := w.t
	dir := t.TempDir()
	w.base = filepath.Join(dir, "srv")
	k := at.NewKey(t, "Lampi Fleet Test")
	var sec, pub bytes.Buffer
	if err := k.WriteSecret(&sec, true); err != nil {
		t.Fatal(err)
	}
	if err := k.WritePublic(&pub, false); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "signing.asc")
	w.keyring = filepath.Join(dir, "repo.gpg")
	writeFile(t, keyFile, sec.Bytes())
	writeFile(t, w.keyring, pub.Bytes())
	writeFile(t, filepath.Join(w.base, "conf/distributions"), []byte("Origin: Lampi\nLabel: Lampi\nSuite: stable\nCodename: bookworm\nArchitectures: amd64\nComponents: main\nDescription: fleet test\nLimit: 2\nSignWith: "+keyFile+"\n"))
	hi01 := at.BuildHi(t, dir, "0.1", at.HiOptions{})
	r := openTestRepo(t, w.base)
	if _, err := r.IncludeDeb(w.ctx, "bookworm", []string{hi01}, repo.IncludeOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.CreateSymlinks(w.ctx, false); err != nil { // dists/stable
		t.Fatal(err)
	}
	secret, _, err := (&server.TokenStore{Path: repo.Layout{Base: w.base}.Tokens(), Now: time.Now}).Create("ops", []string{server.ScopeRollouts})
	if err != nil {
		t.Fatal(err)
	}
	w.tokenF = filepath.Join(dir, "ops.token")
	writeFile(t, w.tokenF, []byte(secret+"\n"))
}

func (w *fleetWorld) token() string {
	b, err := os.ReadFile(w.tokenF)
	if err != nil {
		w.t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func openTestRepo(t *testing.T, base string) *repo.Repo {
	t.Helper()
	r, err := repo.Open(base, repo.Options{Now: time.Now, Signer: repo.KeyDirSigners(repo.Layout{Base: base}.KeyDir(), time.Now, func(string) ([]byte, error) { return nil, nil })})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func writeFile(t *testing.T, p string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// startServe starts "lampi-pkg serve" on the repository: the main one
// (name "") on the world's addresses, or another one (its own fleet
// database, addresses and collector id) on the same repository.
func (w *fleetWorld) startServe(name string) *serveProc {
	t := w.t
	httpAddr, mqttAddr := w.httpAddr, w.mqttAddr
	args := []string{"serve", "--repo", w.base, "--rollout-interval", "500ms", "--renew-interval", "0",
		"--access-log", filepath.Join(t.TempDir(), "access.log")}
	if name != "" {
		httpAddr = fmt.Sprintf("127.0.0.1:%d", at.FreePort(t))
		mqttAddr = fmt.Sprintf("127.0.0.1:%d", at.FreePort(t))
		args = append(args, "--fleet-db", filepath.Join(t.TempDir(), "fleet"+name+".db"))
	}
	args = append(args, "--listen", httpAddr)
	if w.mosquitto {
		args = append(args, "--broker", w.brokerURL)
		if name != "" {
			pw := filepath.Join(t.TempDir(), "pw")
			writeFile(t, pw, []byte("x\n"))
			args = append(args, "--broker-username", "lampi-serve-"+name, "--broker-password-file", pw)
		}
	} else {
		args = append(args, "--mqtt-listen", mqttAddr, "--allow-anonymous")
	}
	p := &serveProc{cmd: exec.Command("lampi-pkg", args...), log: &testutil.SyncBuffer{}, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("serve%s said:\n%s", name, p.log.String())
		}
	})
	waitFor(t, "serve"+name+" answers", func() (bool, string) {
		select {
		case <-p.done:
			t.Fatalf("serve%s exited: %s", name, p.log.String())
		default:
		}
		resp, err := http.Get("http://" + httpAddr + "/dists/bookworm/Release")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	})
	return p
}

// startDevices makes the fleet: each device its own root with hi 0.1
// installed, its own machine id, a lampi-agent polling every second.
func (w *fleetWorld) startDevices() {
	t := w.t
	hi01 := at.BuildHi(t, t.TempDir(), "0.1", at.HiOptions{})
	src := &at.Repo{Keyring: w.keyring, URL: "http://" + w.httpAddr}
	for i := 0; i < fleetSize; i++ {
		id := fmt.Sprintf("lamp%02d", i)
		sum := sha256.Sum256([]byte("machine " + id))
		mid := hex.EncodeToString(sum[:16])
		d := at.NewDevice(t, src, id, "broker = "+w.brokerURL+"\npoll_interval = 1s\npoll_jitter = 0s\nmax_backoff = 2s\nheartbeat = 1s\nreconnect_backoff = 1s\n"+
			"health_check = sh "+filepath.Join(w.healthDir, id+".health")+"\n")
		d.SetMachineID(mid)
		d.InstallDeb(hi01)
		w.devices = append(w.devices, d)
		w.machineIDs = append(w.machineIDs, mid)
	}
	w.writeHealthChecks(nil, "")
	for _, d := range w.devices {
		cmd := exec.Command("lampi-agent", "run", "--config", d.Conf)
		log := &testutil.SyncBuffer{}
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		id := d.ID
		t.Cleanup(func() {
			cmd.Process.Kill()
			cmd.Wait()
			if t.Failed() {
				// The end of each agent's log, for the next diagnosis
				// (all of it with -v).
				out := log.String()
				if lines := strings.Split(out, "\n"); !testing.Verbose() && len(lines) > 25 {
					out = "…\n" + strings.Join(lines[len(lines)-25:], "\n")
				}
				t.Logf("agent %s said:\n%s", id, out)
			}
		})
	}
}

// writeHealthChecks makes the health check of the devices in bad fail
// while they run the payload of version (their /opt/hi/__VERSION__), and
// every other health check pass.
func (w *fleetWorld) writeHealthChecks(bad map[int]bool, version string) {
	for i, d := range w.devices {
		script := "exit 0\n"
		if bad[i] {
			script = fmt.Sprintf("if grep -qx '%s' %s; then echo 'lamp does not light'; exit 1; fi\n", version, filepath.Join(d.Root, "opt/hi/__VERSION__"))
		}
		writeFile(w.t, filepath.Join(w.healthDir, d.ID+".health"), []byte(script))
	}
}

// admitted are the devices whose phasing draw for hi at version is at
// most percent (apt's rule, which the agent follows).
func (w *fleetWorld) admitted(version string, percent int) map[int]bool {
	out := map[int]bool{}
	for i, mid := range w.machineIDs {
		if agent.PhaseDraw("hi", version, mid) <= uint32(percent) {
			out[i] = true
		}
	}
	if len(out) < 4 || len(out) > fleetSize-4 {
		w.t.Fatalf("%d of %d devices drawn for hi %s at %d%%: choose other machine ids", len(out), fleetSize, version, percent)
	}
	return out
}

// pickBad chooses a fifth of the fleet: half of them among admitted.
func (w *fleetWorld) pickBad(admitted map[int]bool) map[int]bool {
	bad := map[int]bool{}
	n := fleetSize / 5
	var in, out []int
	for i := range w.devices {
		if admitted[i] {
			in = append(in, i)
		} else {
			out = append(out, i)
		}
	}
	for _, i := range in[:min(n/2, len(in))] {
		bad[i] = true
	}
	for _, i := range out {
		if len(bad) == n {
			break
		}
		bad[i] = true
	}
	return bad
}

// release releases hi at version with "lampi-pkg release --rollout",
// reading the fleet from the running server's fleet API.
func (w *fleetWorld) release(version, plan string) {
	t := w.t
	tree := filepath.Join(t.TempDir(), "hi")
	if out, err := exec.Command("cp", "-a", filepath.Join(at.FixturesDir(), "hi"), tree).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	ctl, err := os.ReadFile(filepath.Join(tree, "DEBIAN/control"))
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(string(ctl), "\n") {
		if strings.HasPrefix(l, "Version:") {
			l = "Version: " + version
		}
		lines = append(lines, l)
	}
	writeFile(t, filepath.Join(tree, "DEBIAN/control"), []byte(strings.Join(lines, "\n")))
	writeFile(t, filepath.Join(tree, "opt/hi/__VERSION__"), []byte(version+"\n"))
	out := w.cli("release", tree, "--repo", w.base, "--rollout", plan, "--fleet-server", "http://"+w.httpAddr)
	if !strings.Contains(out, "rollout bookworm/hi/"+version+" started at ") {
		t.Fatalf("release --rollout: %s", out)
	}
}

// cli runs lampi-pkg and returns its output, failing the test when it fails.
func (w *fleetWorld) cli(args ...string) string {
	w.t.Helper()
	out, err := exec.Command("lampi-pkg", args...).CombinedOutput()
	if err != nil {
		w.t.Fatalf("lampi-pkg %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// waitRollout waits until the server's rollout API shows key as ok says.
func (w *fleetWorld) waitRollout(key string, ok func(*rollout.Status) bool) *rollout.Status {
	w.t.Helper()
	var st *rollout.Status
	waitFor(w.t, "rollout "+key, func() (bool, string) {
		var err error
		st, err = w.client.Status(w.ctx, key)
		if err != nil {
			return false, err.Error()
		}
		return ok(st), fmt.Sprintf("%s at step %d (%d%%): %s; last decision %+v", st.State, st.Step+1, st.Percent(), st.Reason, st.Decisions[len(st.Decisions)-1])
	})
	return st
}

// stanza returns the served Packages stanza of hi at version.
func (w *fleetWorld) stanza(version string) string {
	resp, err := http.Get(w.packagesURL)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	for _, s := range strings.Split(b.String(), "\n\n") {
		if strings.Contains(s+"\n", "\nVersion: "+version+"\n") {
			return s + "\n"
		}
	}
	return "no stanza of " + version + " in:\n" + b.String()
}

// waitAllChecked waits until every device reported a check of the
// repository made after since.
func (w *fleetWorld) waitAllChecked(since time.Time) {
	waitFor(w.t, "every device checks again", func() (bool, string) {
		devs, err := w.fleetAPI.Devices(w.ctx, 0)
		if err != nil {
			return false, err.Error()
		}
		var late []string
		seen := map[string]bool{}
		for _, d := range devs {
			seen[d.ID] = true
			if !d.State.LastCheck.After(since) {
				late = append(late, d.ID)
			}
		}
		for _, d := range w.devices {
			if !seen[d.ID] {
				late = append(late, d.ID+" (no report)")
			}
		}
		return len(late) == 0, "not yet: " + strings.Join(late, " ")
	})
}

// waitVersions waits until every device runs hi at version (dpkg-query
// in its root).
func (w *fleetWorld) waitVersions(version string) {
	waitFor(w.t, "every device on "+version, func() (bool, string) {
		have := map[string][]string{}
		for _, d := range w.devices {
			v := d.Version("hi")
			have[v] = append(have[v], d.ID)
		}
		var parts []string
		for v, ids := range have {
			parts = append(parts, v+": "+strconv.Itoa(len(ids)))
		}
		sort.Strings(parts)
		return len(have[version]) == len(w.devices), strings.Join(parts, ", ")
	})
}

// plainApt installs hi 0.1 in an apt root without the agent, then
// apt-get update and upgrade: apt alone reaches version.
func (w *fleetWorld) plainApt(version string) {
	t := w.t
	a := testutil.NewAptRoot(t, fmt.Sprintf("deb [signed-by=%s] http://%s/ stable main\n", w.keyring, w.httpAddr))
	if out, err := a.Dpkg("-i", at.BuildHi(t, t.TempDir(), "0.1", at.HiOptions{})); err != nil {
		t.Fatalf("dpkg -i: %v\n%s", err, out)
	}
	a.Update()
	a.MustRun("-y", "--only-upgrade", "install", "hi")
	out, err := exec.Command("dpkg-query", "--admindir="+filepath.Join(a.Root, "var/lib/dpkg"), "-W", "-f=${Version}", "hi").Output()
	if err != nil || string(out) != version {
		t.Errorf("plain apt-get client runs hi %q (%v), want %s", out, err, version)
	}
}

// decisionNotes are the rollout decisions a server told its operator.
func decisionNotes(log string) string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "rollout bookworm/") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
