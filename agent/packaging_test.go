package agent_test

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/lampi-pkg/lampi-pkg/agent"
	at "github.com/lampi-pkg/lampi-pkg/agent/agenttest"
	"github.com/lampi-pkg/lampi-pkg/deb"
	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
)

// TestPackagingTree builds packaging/lampi-agent the way scripts/dist.sh
// does (with a stand-in binary), installs it with dpkg into an isolated
// root, and checks the conffile, the unit and the maintainer scripts.
func TestPackagingTree(t *testing.T) {
	testutil.Heavy(t, "builds the lampi-agent package tree with dpkg-deb")
	t.Parallel()
	testutil.RequireTool(t, "dpkg-deb")
	src := filepath.Join(at.FixturesDir(), "..", "packaging", "lampi-agent")
	tree := t.TempDir()
	if out, err := exec.Command("cp", "-a", src+"/.", tree).CombinedOutput(); err != nil {
		t.Fatal(err, string(out))
	}
	os.MkdirAll(filepath.Join(tree, "usr/bin"), 0o755)
	os.WriteFile(filepath.Join(tree, "usr/bin/lampi-agent"), []byte("#!/bin/sh\nexit 0\n"), 0o755)
	ctl, _ := os.ReadFile(filepath.Join(tree, "DEBIAN/control"))
	ctl = []byte(strings.NewReplacer("@VERSION@", "0.3.0", "@ARCH@", "amd64").Replace(string(ctl)))
	os.WriteFile(filepath.Join(tree, "DEBIAN/control"), ctl, 0o644)
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		if out, err := exec.Command("sh", "-n", filepath.Join(tree, "DEBIAN", s)).CombinedOutput(); err != nil {
			t.Errorf("%s: %v %s", s, err, out)
		}
	}
	var buf bytes.Buffer
	res, err := deb.Build(context.Background(), os.DirFS(tree), &buf, deb.BuildOptions{Mtime: at.Start})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(res.Conffiles, " ") != "/etc/lampi-agent/agent.conf" {
		t.Errorf("conffiles %v", res.Conffiles)
	}
	debPath := filepath.Join(t.TempDir(), res.Filename)
	os.WriteFile(debPath, buf.Bytes(), 0o644)
	root := testutil.NewAptRoot(t, "")
	if out, err := root.Dpkg("-i", debPath); err != nil {
		t.Fatalf("dpkg -i: %v\n%s", err, out)
	}
	// dpkg --root sets DPKG_ROOT: the scripts leave the host's systemd alone.
	if _, err := os.Lstat("/etc/systemd/system/multi-user.target.wants/lampi-agent.service"); err == nil {
		t.Error("installing into an isolated root enabled the service on the host")
	}
	// Purge drops the agent's state and cache inside the root.
	stateDir := filepath.Join(root.Root, "var/lib/lampi-agent")
	os.MkdirAll(stateDir, 0o755)
	os.WriteFile(filepath.Join(stateDir, "state.json"), []byte("{}"), 0o644)
	if out, err := root.Dpkg("--purge", "lampi-agent"); err != nil {
		t.Fatalf("dpkg --purge: %v\n%s", err, out)
	}
	if _, err := os.Stat(stateDir); !os.IsNotExist(err) {
		t.Errorf("purge left %s: %v", stateDir, err)
	}
	if _, err := os.Stat(filepath.Join(root.Root, "etc/lampi-agent/agent.conf")); !os.IsNotExist(err) {
		t.Errorf("purge left the conffile: %v", err)
	}
	// The shipped agent.conf is valid as it is (everything commented).
	c, err := agent.LoadConfig(filepath.Join(src, "etc/lampi-agent/agent.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Method != agent.MethodApt || c.PollInterval.String() != "1h0m0s" {
		t.Errorf("defaults %+v", c)
	}
	unit, _ := os.ReadFile(filepath.Join(src, "lib/systemd/system/lampi-agent.service"))
	for _, want := range []string{"ExecStart=/usr/bin/lampi-agent run", "Restart=on-failure", "NoNewPrivileges=yes", "WantedBy=multi-user.target"} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("unit lacks %q", want)
		}
	}
	if p, err := exec.LookPath("systemd-analyze"); err == nil {
		cmd := exec.Command(p, "verify", "--man=no", filepath.Join(src, "lib/systemd/system/lampi-agent.service"))
		out, _ := cmd.CombinedOutput()
		for _, l := range strings.Split(string(out), "\n") {
			if strings.Contains(l, "Unknown key") || strings.Contains(l, "Unknown section") {
				t.Errorf("systemd-analyze: %s", l)
			}
		}
	}
}

// TestResumeDownload: a partial download in the cache is resumed with a
// Range request, and the result is verified like any other.
func TestResumeDownload(t *testing.T) {
	t.Parallel()
	w := newWorld(t, at.RepoOptions{}, "", agent.Options{})
	hi02 := at.BuildHi(t, w.debs, "0.2", at.HiOptions{})
	w.r.Publish(hi02)
	b, _ := os.ReadFile(hi02)
	part := filepath.Join(w.d.CacheDir, "partial", "hi_0.2_all.deb.part")
	os.WriteFile(part, b[:len(b)/2], 0o644)
	var ranges []string
	w.r.SetHook(func(_ http.ResponseWriter, req *http.Request) bool {
		if strings.HasSuffix(req.URL.Path, ".deb") {
			ranges = append(ranges, req.Header.Get("Range"))
		}
		return false
	})
	if o := w.a.Once(context.Background()); o.Result != "updated" {
		t.Fatalf("%s %v", o.Result, o.Err)
	}
	if len(ranges) != 1 || ranges[0] != "bytes="+strconv.Itoa(len(b)/2)+"-" {
		t.Errorf("range requests %q", ranges)
	}
	if w.d.Hi() != "Hello Deb! Version 0.2" {
		t.Error(w.d.Hi())
	}
}

// TestMaintainerScripts runs the packaged maintainer scripts outside dpkg
// (DPKG_ROOT unset) with stand-ins for systemctl, deb-systemd-helper and
// deb-systemd-invoke that only log: without a running systemd they only
// enable the unit (symlinks, as debhelper does); with it they also reload
// and start on install, restart on upgrade, stop on remove. An
// administrator's disable survives an upgrade.
func TestMaintainerScripts(t *testing.T) {
	t.Parallel()
	src := filepath.Join(at.FixturesDir(), "..", "packaging", "lampi-agent", "DEBIAN")
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	log := filepath.Join(t.TempDir(), "calls")
	for _, tool := range []string{"systemctl", "deb-systemd-helper", "deb-systemd-invoke"} {
		// was-enabled answers no when $ADMIN_DISABLED=1 (default yes, like a first install)
		script := "#!" + sh + "\necho " + tool + " \"$@\" >>" + log + "\n" +
			"case \"$*\" in *was-enabled*) [ \"${ADMIN_DISABLED:-0}\" = 0 ] ;; esac\n"
		os.WriteFile(filepath.Join(bin, tool), []byte(script), 0o755)
	}
	_, statErr := os.Stat("/run/systemd/system")
	systemd := statErr == nil
	runScript := func(env []string, name string, args ...string) string {
		t.Helper()
		os.Remove(log)
		cmd := exec.Command(sh, append([]string{filepath.Join(src, name)}, args...)...)
		// only the stand-ins on PATH: a real systemctl can never run
		cmd.Env = append([]string{"PATH=" + bin}, env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
		b, _ := os.ReadFile(log)
		return string(b)
	}
	want := func(got string, lines ...string) {
		t.Helper()
		if strings.Join(lines, "") != got {
			t.Errorf("calls:\n%s\nwant:\n%s", got, strings.Join(lines, ""))
		}
	}
	enable := []string{"deb-systemd-helper unmask lampi-agent.service\n", "deb-systemd-helper --quiet was-enabled lampi-agent.service\n",
		"deb-systemd-helper enable lampi-agent.service\n"}
	ifSystemd := func(lines ...string) []string {
		if systemd {
			return lines
		}
		return nil
	}
	reload := "systemctl --system daemon-reload\n"
	want(runScript(nil, "postinst", "configure", ""), append(enable, ifSystemd(reload, "deb-systemd-invoke start lampi-agent.service\n")...)...)
	want(runScript(nil, "postinst", "configure", "0.2.0"), append(enable, ifSystemd(reload, "deb-systemd-invoke restart lampi-agent.service\n")...)...)
	want(runScript([]string{"ADMIN_DISABLED=1"}, "postinst", "configure", "0.2.0"),
		append([]string{enable[0], enable[1], "deb-systemd-helper update-state lampi-agent.service\n"}, ifSystemd(reload, "deb-systemd-invoke restart lampi-agent.service\n")...)...)
	want(runScript(nil, "prerm", "upgrade", "0.4.0"))
	want(runScript(nil, "prerm", "remove"), ifSystemd("deb-systemd-invoke stop lampi-agent.service\n")...)
	want(runScript(nil, "postrm", "remove"), ifSystemd(reload)...)
	want(runScript(nil, "postrm", "upgrade", "0.4.0"))
	// Inside an image build or an isolated root: nothing at all.
	for _, args := range [][]string{{"postinst", "configure", ""}, {"prerm", "remove"}, {"postrm", "remove"}} {
		want(runScript([]string{"DPKG_ROOT=" + t.TempDir()}, args[0], args[1:]...))
	}
}
