package signing

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
)

// gnupg is a throwaway GNUPGHOME driven with the real gpg.
type gnupg struct {
	t    testing.TB
	home string
	bin  string
}

func newGnupg(t testing.TB) *gnupg {
	t.Helper()
	bin := testutil.RequireTool(t, "gpg")
	gpgconf := testutil.RequireTool(t, "gpgconf")
	// A short path: gpg-agent's socket path must fit in 108 bytes.
	home, err := os.MkdirTemp("", "lampi-gpg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		exec.Command(gpgconf, "--homedir", home, "--kill", "all").Run()
		os.RemoveAll(home)
	})
	return &gnupg{t: t, home: home, bin: bin}
}

// run runs gpg in batch mode with the empty passphrase unless args give
// another one, and returns its standard output. gpg's clock starts an hour
// before testNow unless args fake another time.
func (g *gnupg) run(args ...string) []byte {
	g.t.Helper()
	out, err := g.try(args...)
	if err != nil {
		g.t.Fatalf("gpg %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func (g *gnupg) try(args ...string) ([]byte, error) {
	base := []string{"--homedir", g.home, "--batch", "--yes", "--no-tty", "--pinentry-mode", "loopback"}
	if !strings.HasPrefix(strings.Join(args, " "), "--passphrase") {
		base = append(base, "--passphrase", "")
	}
	if !strings.Contains(strings.Join(args, " "), "--faked-system-time") {
		base = append(base, "--faked-system-time", testNow.Add(-time.Hour).Format("20060102T150405"))
	}
	cmd := exec.Command(g.bin, append(base, args...)...)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return nil, errors.New(err.Error() + ": " + strings.TrimSpace(stderr.String()))
	}
	return out.Bytes(), nil
}

// fingerprints returns the primary key's and the subkeys' fingerprints.
func (g *gnupg) fingerprints(uid string) (primary string, subs []string) {
	g.t.Helper()
	for _, l := range strings.Split(string(g.run("--with-colons", "--list-keys", uid)), "\n") {
		f := strings.Split(l, ":")
		if f[0] == "fpr" {
			if primary == "" {
				primary = f[9]
			} else {
				subs = append(subs, f[9])
			}
		}
	}
	return primary, subs
}

// file writes data into the gpg home and returns the path.
func (g *gnupg) file(name string, data []byte) string {
	g.t.Helper()
	p := filepath.Join(g.home, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		g.t.Fatal(err)
	}
	return p
}

func (g *gnupg) keyring(args ...string) *Keyring {
	g.t.Helper()
	kr, err := ReadKeyring(bytes.NewReader(g.run(append([]string{"--export"}, args...)...)))
	if err != nil {
		g.t.Fatal(err)
	}
	return kr
}

const sampleRelease = `Origin: lampi
Label: lampi
Suite: stable
Codename: stable
Date: Sat, 01 Mar 2025 12:00:00 UTC
Architectures: armhf arm64 all
Components: main
Description: LAMPi firmware updates
SHA256:
 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 0 main/binary-armhf/Packages
 - a line that starts with a dash
`

// TestVerifyGpgSignatures: our verifier accepts what the real gpg signs —
// clearsigned, detached armored, detached binary and detached text-mode
// signatures, with a plain RSA key
// and with an ed25519 key whose signatures come from a separate signing
// subkey — against binary and armored keyrings, and rejects every
// one-byte change of the signed text or of the signature.
func TestVerifyGpgSignatures(t *testing.T) {
	testutil.Heavy(t, "signs with the real gpg and verifies the signatures")
	g := newGnupg(t)
	g.run("--quick-gen-key", "Plain <plain@lampi.example>", "rsa3072", "sign", "never")
	g.run("--quick-gen-key", "Sub <sub@lampi.example>", "ed25519", "cert", "never")
	subPrimary, _ := g.fingerprints("sub@lampi.example")
	g.run("--quick-add-key", subPrimary, "ed25519", "sign", "never")
	release := g.file("Release", []byte(sampleRelease))
	opts := VerifyOptions{Now: at(testNow)}
	for _, uid := range []string{"plain@lampi.example", "sub@lampi.example"} {
		t.Run(uid, func(t *testing.T) {
			primary, subs := g.fingerprints(uid)
			signer := primary
			if len(subs) > 0 {
				signer = subs[0]
			}
			armoredKR, err := ReadKeyring(bytes.NewReader(g.run("--export", "--armor", uid)))
			if err != nil {
				t.Fatal(err)
			}
			inRelease := g.run("--local-user", uid, "--clearsign", "--output", "-", release)
			detached := g.run("--local-user", uid, "--armor", "--detach-sign", "--output", "-", release)
			binary := g.run("--local-user", uid, "--detach-sign", "--output", "-", release)
			textmode := g.run("--local-user", uid, "--textmode", "--detach-sign", "--output", "-", release)
			for _, kr := range []*Keyring{g.keyring(uid), armoredKR} {
				s, text, err := VerifyClearsigned(bg, kr, bytes.NewReader(inRelease), opts)
				if err != nil {
					t.Fatalf("InRelease by gpg: %v", err)
				}
				if s.Fingerprint != signer || s.PrimaryFingerprint != primary {
					t.Errorf("signer %s (primary %s), want %s (primary %s)", s.Fingerprint, s.PrimaryFingerprint, signer, primary)
				}
				if string(text) != sampleRelease {
					t.Errorf("signed text %q, want %q", text, sampleRelease)
				}
				for _, sig := range [][]byte{detached, binary, textmode} {
					s, err := VerifyDetached(bg, kr, strings.NewReader(sampleRelease), bytes.NewReader(sig), opts)
					if err != nil {
						t.Fatalf("detached signature by gpg: %v", err)
					}
					if s.Fingerprint != signer {
						t.Errorf("signer %s, want %s", s.Fingerprint, signer)
					}
				}
			}
			kr := g.keyring(uid)
			// Every one-byte change of the signed text is a bad signature.
			for i := range len(sampleRelease) {
				changed := []byte(sampleRelease)
				changed[i] ^= 0x01
				if _, err := VerifyDetached(bg, kr, bytes.NewReader(changed), bytes.NewReader(binary), opts); !errors.Is(err, ErrBadSignature) {
					t.Fatalf("Release changed at byte %d: %v, want ErrBadSignature", i, err)
				}
			}
			body, sigLines := regions(t, inRelease)
			for _, i := range append(body, sigLines...) {
				changed := bytes.Clone(inRelease)
				changed[i] ^= 0x01
				if _, _, err := VerifyClearsigned(bg, kr, bytes.NewReader(changed), opts); err == nil {
					t.Fatalf("InRelease changed at byte %d (%q) still verifies", i, inRelease[i])
				}
			}
			_, sigLines = regions(t, detached)
			for _, i := range sigLines {
				changed := bytes.Clone(detached)
				changed[i] ^= 0x01
				if _, err := VerifyDetached(bg, kr, strings.NewReader(sampleRelease), bytes.NewReader(changed), opts); err == nil {
					t.Fatalf("Release.gpg changed at byte %d still verifies", i)
				}
			}
		})
	}
}

// regions returns the offsets of the signed text of a clearsigned
// document and those of the base64 lines of its armored signature.
func regions(t testing.TB, doc []byte) (body, sig []int) {
	t.Helper()
	s := string(doc)
	if strings.HasPrefix(s, clearsignBegin) {
		start := strings.Index(s, "\n\n") + 2
		end := strings.Index(s, "\n"+signatureBegin)
		for i := start; i < end; i++ {
			body = append(body, i)
		}
	}
	sigStart := strings.Index(s, signatureBegin)
	b64 := strings.Index(s[sigStart:], "\n\n") + sigStart + 2
	end := strings.Index(s, "-----END")
	for i := b64; i < end; i++ {
		if s[i] != '\n' {
			sig = append(sig, i)
		}
	}
	if len(sig) == 0 {
		t.Fatalf("no signature lines in %q", s)
	}
	return body, sig
}
