package agent

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseDeb822Sources(t *testing.T) {
	in := `# lampi
Types: deb deb-src
URIs: https://updates.example.org/lampi/ http://mirror.example.org/lampi
Suites: stable testing
Components: main contrib
Signed-By: /usr/share/keyrings/lampi.gpg
Architectures: armhf
By-Hash: force

Types: deb
Enabled: no
URIs: http://off.example.org
Suites: x
Components: main

Types: deb
URIs: http://inline.example.org
Suites: bookworm
Components: main
Signed-By:
 -----BEGIN PGP PUBLIC KEY BLOCK-----
 .
 mDMEZ...
 =abcd
 -----END PGP PUBLIC KEY BLOCK-----
`
	got, err := ParseDeb822Sources(strings.NewReader(in), "lampi.sources")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 {
		t.Fatalf("%d sources: %+v", len(got), got)
	}
	s := got[0]
	if s.URI != "https://updates.example.org/lampi" || s.Suite != "stable" || strings.Join(s.Components, " ") != "main contrib" ||
		s.SignedBy != "/usr/share/keyrings/lampi.gpg" || s.ByHash != "force" || s.Architectures[0] != "armhf" || s.Line != 2 {
		t.Errorf("first: %+v", s)
	}
	if got[3].Suite != "testing" || got[3].URI != "http://mirror.example.org/lampi" {
		t.Errorf("fourth: %+v", got[3])
	}
	in4 := got[4]
	if in4.SignedBy != "" || !strings.HasPrefix(string(in4.SignedByKey), "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmDMEZ...\n") {
		t.Errorf("inline key: %q", in4.SignedByKey)
	}
}

// TestParseDeb822SourcesAsApt: what apt accepts in a hand-edited .sources
// file stays accepted: comments between continuation lines, Windows line
// ends, no newline after the last line.
func TestParseDeb822SourcesAsApt(t *testing.T) {
	in := "Types: deb\r\n# mirror\r\nURIs: http://x.example.org\r\nSuites: s\r\nComponents: main\r\n" +
		"Signed-By:\r\n -----BEGIN PGP PUBLIC KEY BLOCK-----\r\n# the key\r\n .\r\n mDMEZ...\r\n -----END PGP PUBLIC KEY BLOCK-----"
	got, err := ParseDeb822Sources(strings.NewReader(in), "lampi.sources")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].URI != "http://x.example.org" || string(got[0].SignedByKey) != "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmDMEZ...\n-----END PGP PUBLIC KEY BLOCK-----\n" {
		t.Errorf("%+v", got)
	}
}

func TestParseSourcesList(t *testing.T) {
	in := "# comment\n\ndeb-src http://x.example.org stable main\ndeb [signed-by=/k.gpg arch=armhf,arm64 by-hash=yes] http://127.0.0.1:8080/ stable main extra # trailing\n"
	got, err := ParseSourcesList(strings.NewReader(in), "lampi.list")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].URI != "http://127.0.0.1:8080" || got[0].Suite != "stable" || len(got[0].Components) != 2 ||
		got[0].SignedBy != "/k.gpg" || len(got[0].Architectures) != 2 || got[0].ByHash != "yes" || got[0].Line != 4 {
		t.Errorf("%+v", got)
	}
}

func TestSourcesErrors(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"deb http://x.example.org stable main\n", "lampi.list:1: no signed-by"},
		{"deb [signed-by=/k.gpg trusted=yes] http://x.example.org stable main\n", "lampi.list:1: trusted=yes"},
		{"\n\ndeb [signed-by=/k.gpg] ftp://x.example.org stable main\n", "lampi.list:3: URI"},
		{"deb [signed-by=/k.gpg] http://x.example.org stable\n", "no components"},
		{"deb [signed-by=/k.gpg] http://x.example.org ./ main\n", "flat repository"},
		{"deb [signed-by=k.gpg] http://x.example.org stable main\n", "absolute keyring path"},
		{"deb [signed-by=/k.gpg http://x.example.org stable main\n", "no ']'"},
		{"rpm http://x stable\n", "unknown entry type"},
		{"# nothing\n", "no \"deb\" entry"},
	} {
		_, err := ParseSourcesList(strings.NewReader(c.in), "lampi.list")
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.in, err, c.want)
		}
	}
	for _, c := range []struct{ in, want string }{
		{"Types: deb\nURIs: http://x.example.org\nSuites: s\nComponents: main\n", "lampi.sources:1: no Signed-By"},
		{"URIs: http://x.example.org\n", "no Types"},
		{"Types: deb\nSuites: s\n", "no URIs"},
		{"Types: deb\nURIs: http://x.example.org\nSuites: s\nComponents: main\nSigned-By: /k.gpg\nBy-Hash: maybe\n", "lampi.sources:6: By-Hash"},
		{" continuation\n", "lampi.sources:1: control file syntax error: continuation line"},
		{"Types deb\n", `lampi.sources:1: control file syntax error: "Types deb" is not a field`},
		{"Types: deb\nURIs: http://x.example.org\nURIs: http://y.example.org\n", `lampi.sources:3: control file syntax error: duplicate field "URIs"`},
	} {
		_, err := ParseDeb822Sources(strings.NewReader(c.in), "lampi.sources")
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.in, err, c.want)
		}
	}
}

func TestParseConfig(t *testing.T) {
	in := `# lampi-agent
device_id = lamp-01
broker = mqtts://fleet.example.org:8883
broker_username = lamp-01
broker_password_file = /etc/lampi-agent/password
packages = hi, lampi-service
poll_interval = 30m
poll_jitter = 5m
maintenance_window = 22:30-04:00
health_check = systemctl is-active lampi-service
install_method = dpkg
root = /srv/img
apt_option = Acquire::http::Proxy=false
apt_option = APT::Get::Show-Versions=1
max_deb_size = 256M
`
	c, err := ParseConfig(strings.NewReader(in), "agent.conf")
	if err != nil {
		t.Fatal(err)
	}
	if c.DeviceID != "lamp-01" || c.PollInterval != 30*time.Minute || c.PollJitter != 5*time.Minute || c.Method != MethodDpkg ||
		strings.Join(c.Packages, " ") != "hi lampi-service" || c.AdminDir != "/srv/img/var/lib/dpkg" || len(c.AptOptions) != 4 ||
		c.MaxDebSize != 256<<20 || c.Window.String() != "22:30-04:00" || c.TopicPrefix != "devices" || c.StateDir != "/var/lib/lampi-agent" {
		t.Errorf("%+v", c)
	}
	at := func(h, m int) time.Time { return time.Date(2026, 1, 1, h, m, 0, 0, time.UTC) }
	if !c.Window.Open(at(23, 0)) || !c.Window.Open(at(3, 59)) || c.Window.Open(at(4, 0)) || c.Window.Open(at(12, 0)) {
		t.Error("window wrapping midnight")
	}
	if n := c.Window.Next(at(12, 0)); !n.Equal(at(22, 30)) {
		t.Errorf("next opening %s", n)
	}
	args := strings.Join(c.AptArgs(), " ")
	for _, want := range []string{"Dir=/srv/img", "--force-confold", "Dpkg::Options::=--admindir=/srv/img/var/lib/dpkg", "DPkg::Lock::Timeout=300", "Acquire::http::Proxy=false"} {
		if !strings.Contains(args, want) {
			t.Errorf("apt args lack %q: %s", want, args)
		}
	}
	if d := strings.Join(c.DpkgArgs(), " "); !strings.Contains(d, "--root=/srv/img") || !strings.Contains(d, "--force-confold") {
		t.Errorf("dpkg args: %s", d)
	}
	sys := c
	sys.Root, sys.AdminDir = "/", "/var/lib/dpkg"
	if strings.Contains(strings.Join(sys.AptArgs(), " "), "Dir=") || strings.Contains(strings.Join(sys.DpkgArgs(), " "), "--root") {
		t.Error("a device install confines apt to a root")
	}
	cmd := strings.Join(sys.SelfUpdateCommand("lampi-agent-update-1.2", "/var/cache/lampi-agent/lampi-agent_1.2_armhf.deb"), " ")
	if !strings.HasPrefix(cmd, "systemd-run --unit=lampi-agent-update-1.2 ") || !strings.Contains(cmd, " -- dpkg ") || !strings.HasSuffix(cmd, "-i /var/cache/lampi-agent/lampi-agent_1.2_armhf.deb") {
		t.Errorf("self-update command: %s", cmd)
	}
}

func TestParseConfigErrors(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"poll_interval = often\n", "agent.conf:1: poll_interval"},
		{"\n# x\ncolour = blue\n", "agent.conf:3: colour: unknown key"},
		{"device_id = a/b\n", "agent.conf:1: device_id"},
		{"broker = http://x\n", "agent.conf:1: broker"},
		{"broker = mqtt://user:pw@x\n", "must not hold credentials"},
		{"install_method = yum\n", "install_method"},
		{"maintenance_window = 25:00-01:00\n", "maintenance_window"},
		{"state_dir = relative\n", "absolute path"},
		{"poll_interval = 1h\npoll_interval = 2h\n", "agent.conf:2: poll_interval is already set on line 1"},
		{"just words\n", "expected \"key = value\""},
		{"poll_interval = 1m\npoll_jitter = 1h\n", "poll_jitter"},
		{"broker_cert = /c.pem\n", "go together"},
		{"max_deb_size = lots\n", "max_deb_size"},
		{"packages = Hi!\n", "packages"},
	} {
		_, err := ParseConfig(strings.NewReader(c.in), "agent.conf")
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.in, err, c.want)
		}
	}
}

// TestConfigSizes is issue 13 §6: max_index_size and max_deb_size read
// sizes as serve --max-upload does; "64MB" was 64 MiB here and 64·10⁶
// bytes there.
func TestConfigSizes(t *testing.T) {
	for in, want := range map[string]int64{"64MB": 64_000_000, "64MiB": 64 << 20, "64M": 64 << 20, "1GB": 1_000_000_000, "1 GiB": 1 << 30, "1.5GB": 1_500_000_000, "65536": 65536, "512kB": 512_000} {
		for _, key := range []string{"max_index_size", "max_deb_size"} {
			c, err := ParseConfig(strings.NewReader(key+" = "+in+"\n"), "agent.conf")
			if err != nil {
				t.Errorf("%s = %s: %v", key, in, err)
				continue
			}
			got := c.MaxIndexSize
			if key == "max_deb_size" {
				got = c.MaxDebSize
			}
			if got != want {
				t.Errorf("%s = %s: %d bytes, want %d", key, in, got, want)
			}
		}
	}
	for in, want := range map[string]string{
		"64 M B": `agent.conf:1: max_deb_size: "64 M B" is not a size: use a number with B, kB, MB, GB, KiB, MiB, GiB`,
		"0":      `agent.conf:1: max_deb_size: "0" would refuse everything`,
		"1.5B":   `agent.conf:1: max_deb_size: "1.5B" is not a whole number of bytes`,
		"-1M":    `is not a size`,
	} {
		_, err := ParseConfig(strings.NewReader("max_deb_size = "+in+"\n"), "agent.conf")
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), want) {
			t.Errorf("max_deb_size = %s: %v, want %q", in, err, want)
		}
	}
}

// TestShippedBoundsAreTheDefaults: the bounds the packaged agent.conf
// shows, uncommented, are the defaults in the words of package bytesize.
func TestShippedBoundsAreTheDefaults(t *testing.T) {
	data, err := os.ReadFile("../packaging/lampi-agent/etc/lampi-agent/agent.conf")
	if err != nil {
		t.Fatal(err)
	}
	var conf strings.Builder
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, "#max_index_size") || strings.HasPrefix(l, "#max_deb_size") || strings.HasPrefix(l, "#max_future") {
			kv, _, _ := strings.Cut(strings.TrimPrefix(l, "#"), "  (")
			conf.WriteString(strings.TrimSpace(kv) + "\n")
		}
	}
	if strings.Count(conf.String(), "\n") != 3 {
		t.Fatalf("want max_index_size, max_deb_size and max_future in the packaged file, got:\n%s", conf.String())
	}
	c, err := ParseConfig(strings.NewReader(conf.String()), "agent.conf")
	if err != nil {
		t.Fatal(err)
	}
	def := Config{}.Defaults()
	if c.MaxIndexSize != def.MaxIndexSize || c.MaxDebSize != def.MaxDebSize || c.MaxFuture != def.MaxFuture {
		t.Errorf("the packaged file shows %d, %d, %s; the defaults are %d, %d, %s", c.MaxIndexSize, c.MaxDebSize, c.MaxFuture, def.MaxIndexSize, def.MaxDebSize, def.MaxFuture)
	}
}

func TestSafeFilename(t *testing.T) {
	for _, ok := range []string{"pool/main/h/hi/hi_0.2_all.deb", "hi.deb"} {
		if err := safeFilename(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "/etc/x.deb", "../x.deb", "pool/../../x.deb", "pool/./x.deb", "pool//x.deb", "http://evil/x.deb",
		"pool/x.deb?y", "pool\\x.deb", "pool/x", "pool/%2e%2e/x.deb", "..", "."} {
		if err := safeFilename(bad); !errors.Is(err, ErrUnsafePath) {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestRetryAfterHeader(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Duration{"120": 2 * time.Minute, "Thu, 01 Jan 2026 00:10:00 GMT": 10 * time.Minute, "999999": 24 * time.Hour} {
		if d, ok := parseRetryAfter(in, now); !ok || d != want {
			t.Errorf("%q: %s %v", in, d, ok)
		}
	}
	if _, ok := parseRetryAfter("soon", now); ok {
		t.Error("accepted soon")
	}
}

// FuzzParsers feeds the same bytes to every parser of untrusted or
// hand-written input: none may panic, and what they accept is sane.
func FuzzParsers(f *testing.F) {
	f.Add([]byte("Types: deb\nURIs: http://x.example.org\nSuites: s\nComponents: main\nSigned-By: /k.gpg\n"))
	f.Add([]byte("deb [signed-by=/k.gpg] http://127.0.0.1/ stable main\n"))
	f.Add([]byte("poll_interval = 1h\nmaintenance_window = 22:00-02:00\n"))
	f.Add([]byte("Package: hi\nVersion: 0.2\nArchitecture: all\nFilename: pool/hi.deb\nSize: 3\nSHA256: " + strings.Repeat("ab", 32) + "\nPhased-Update-Percentage: 30\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s := string(b)
		if srcs, err := ParseDeb822Sources(strings.NewReader(s), "f.sources"); err == nil {
			for _, src := range srcs {
				if src.URI == "" || src.Suite == "" || len(src.Components) == 0 || (src.SignedBy == "" && src.SignedByKey == nil) {
					t.Fatalf("accepted incomplete source %+v", src)
				}
			}
		}
		if srcs, err := ParseSourcesList(strings.NewReader(s), "f.list"); err == nil {
			for _, src := range srcs {
				if src.URI == "" || src.Suite == "" || len(src.Components) == 0 || src.SignedBy == "" {
					t.Fatalf("accepted incomplete source %+v", src)
				}
			}
		}
		ParseConfig(strings.NewReader(s), "f.conf")
		ParseWindow(s)
		if cands, err := ParsePackages(b, "Packages", "http://x"); err == nil {
			for _, c := range cands {
				if c.Err == nil && safeFilename(c.Filename) != nil {
					t.Fatalf("unsafe filename accepted: %q", c.Filename)
				}
			}
		}
	})
}

func TestConfigKeysListed(t *testing.T) {
	var c Config
	err := c.set("nope", "x")
	if err == nil {
		t.Fatal("unknown key accepted")
	}
	seen := map[string]bool{}
	for _, k := range configKeys() {
		if seen[k] {
			t.Errorf("key %s listed twice", k)
		}
		seen[k] = true
		if !strings.Contains(err.Error(), k) {
			t.Errorf("unknown key error does not list %s: %v", k, err)
		}
	}
	if len(seen) < 39 || !seen["poll_interval"] || !seen["fetch_timeout"] {
		t.Errorf("keys: %v", configKeys())
	}
}
