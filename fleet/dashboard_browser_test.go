package fleet

import (
	"bytes"
	"context"
	"image/png"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
)

// chromium runs headless Chromium on url with extra arguments and returns
// its standard output. Each run gets its own profile directory.
func chromium(t *testing.T, url string, args ...string) []byte {
	t.Helper()
	bin := testutil.RequireTool(t, "chromium")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--hide-scrollbars", "--user-data-dir=" + t.TempDir()}
	cmd := exec.CommandContext(ctx, bin, append(append(base, args...), url)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
	}
	return stdout.Bytes()
}

// artifactDir is where screenshots are kept: $LAMPI_ARTIFACTS when set
// (CI uploads it), else a temporary directory.
func artifactDir(t *testing.T) string {
	if dir := os.Getenv("LAMPI_ARTIFACTS"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	return t.TempDir()
}

// TestDashboardInChromium loads the dashboard in a real browser: the
// rendered DOM has the fleet's numbers, the hostile error stays text, and
// a screenshot is kept.
func TestDashboardInChromium(t *testing.T) {
	testutil.Heavy(t, "loads the dashboard in a real Chromium")
	t.Parallel() // Chromium mostly waits on its own processes
	h := newTestDashboard(t, sampleFleet(), DashboardOptions{Title: "LAMPi fleet"})
	srv := httptest.NewServer(h) // 127.0.0.1 only
	defer srv.Close()

	dom := string(chromium(t, srv.URL+"/", "--dump-dom"))
	for _, want := range []string{
		"LAMPi fleet", "Rollout of <strong>0.3</strong>", "28 · 70% · newest", "1.1.0~rc1",
		"Last update failed or held back (3)", "lamp-29", "Offline (4)",
		`&lt;script&gt;alert("pwned")&lt;/script&gt; health check failed`,
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("rendered DOM lacks %q", want)
		}
	}
	// The browser parsed no script element out of device data.
	if strings.Contains(dom, "<script") {
		t.Error("the DOM has a script element")
	}
	// The SVG charts are part of the DOM, not an image the browser failed
	// to load.
	if n := strings.Count(dom, "<svg"); n != 4 {
		t.Errorf("%d svg elements in the DOM, want 4 (2 packages × rollout + versions)", n)
	}

	// The search form works without JavaScript: it is a GET to the page.
	dom = string(chromium(t, srv.URL+"/?q=lamp-3", "--dump-dom"))
	if !strings.Contains(dom, `Devices whose id starts with “lamp-3”`) || !strings.Contains(dom, `href="devices/lamp-39"`) {
		t.Error("search results missing from the rendered page")
	}

	shot := filepath.Join(artifactDir(t), "dashboard.png")
	chromium(t, srv.URL+"/", "--screenshot="+shot, "--window-size=1280,900")
	checkScreenshot(t, shot, true)

	shot = filepath.Join(artifactDir(t), "dashboard-device.png")
	chromium(t, srv.URL+"/devices/lamp-29", "--screenshot="+shot, "--window-size=1280,900")
	checkScreenshot(t, shot, true)

	// A fleet that has not reported yet explains itself.
	empty := httptest.NewServer(newTestDashboard(t, &fakeDashSource{report: &Report{Generated: dashNow}}, DashboardOptions{}))
	defer empty.Close()
	dom = string(chromium(t, empty.URL+"/", "--dump-dom"))
	if !strings.Contains(dom, "No device has reported yet.") {
		t.Error("empty fleet: no explanation in the rendered page")
	}
	shot = filepath.Join(artifactDir(t), "dashboard-empty.png")
	chromium(t, empty.URL+"/", "--screenshot="+shot, "--window-size=1280,900")
	checkScreenshot(t, shot, false)
}

// checkScreenshot decodes the PNG and checks that it shows a page, not a
// blank or an error screen: the size asked for, text and colour (the
// charts' or badges' green when wantGreen).
func checkScreenshot(t *testing.T, path string, wantGreen bool) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot %s: %v", path, err)
	}
	b := img.Bounds()
	if b.Dx() != 1280 || b.Dy() != 900 {
		t.Errorf("screenshot is %dx%d, want 1280x900", b.Dx(), b.Dy())
	}
	colors := map[uint32]bool{}
	green := 0
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		for x := b.Min.X; x < b.Max.X; x += 2 {
			r, g, bl, _ := img.At(x, y).RGBA()
			r, g, bl = r>>8, g>>8, bl>>8
			colors[r<<16|g<<8|bl] = true
			if r == 0x2e && g == 0x85 && bl == 0x40 {
				green++
			}
		}
	}
	if len(colors) < 50 || wantGreen && green < 100 {
		t.Errorf("screenshot %s looks empty: %d colours, %d green pixels", path, len(colors), green)
	}
	t.Logf("screenshot: %s", path)
}
