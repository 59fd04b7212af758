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
	"github.com/lampi-pkg/lampi-pkg/deb"
	at "github.com/lampi-pkg/lampi-pkg/internal/agentcli/agenttest"
	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
)

// TestPackagingTree builds packaging/lampi-agent the way scripts/dist.sh
// does (with a stand-in binary), installs it with dpkg into an isolated
// root, and checks the conffile, the unit and the maintainer scripts.
func TestPackagingTree(t *testing.T) {
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
	if out, err := root.Dpkg("--purge", "lampi-agent"); err != nil {
		t.Fatalf("dpkg --purge: %v\n%s", err, out)
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
