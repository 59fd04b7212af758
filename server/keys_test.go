package server

import (
	"bytes"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp/armor"

	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
)

// gpgHome is a throwaway GNUPGHOME driven with the real gpg.
type gpgHome struct {
	t    *testing.T
	home string
	bin  string
}

func newGPGHome(t *testing.T) *gpgHome {
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
	return &gpgHome{t: t, home: home, bin: bin}
}

func (g *gpgHome) run(args ...string) (string, error) {
	cmd := exec.Command(g.bin, append([]string{"--homedir", g.home, "--batch", "--yes", "--no-tty",
		"--pinentry-mode", "loopback", "--passphrase", ""}, args...)...)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	err := cmd.Run()
	return out.String() + stderr.String(), err
}

// colons returns the records of a --with-colons listing of the given
// type ("sec", "pub", "fpr").
func (g *gpgHome) colons(list, typ string) []string {
	g.t.Helper()
	out, err := g.run("--with-colons", list)
	if err != nil && !strings.Contains(out, "No secret key") {
		g.t.Fatalf("gpg %s: %v\n%s", list, err, out)
	}
	var recs []string
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Split(l, ":"); f[0] == typ {
			recs = append(recs, l)
		}
	}
	return recs
}

// TestKeyFilesNeverServeSecrets: a key file at the top of the repository
// that holds secret key material anywhere — after a public block and a
// line of text (the reported attack), first, binary after binary public
// packets, armored after a binary keyring, under a public block's armor
// header — is not served; a real gpg importing everything served gets no
// secret key. Public keyrings are served as their public keys,
// re-serialized: gpg imports the key and gpgv checks the repository's
// InRelease with it.
func TestKeyFilesNeverServeSecrets(t *testing.T) {
	t.Parallel()
	tr := newTestRepo(t)
	var pubArm, pubBin, secArm, secBin, disguised bytes.Buffer
	for _, w := range []struct {
		b             *bytes.Buffer
		secret, armor bool
	}{{&pubArm, false, true}, {&pubBin, false, false}, {&secArm, true, true}, {&secBin, true, false}} {
		var err error
		if w.secret {
			err = tr.key.WriteSecret(w.b, w.armor)
		} else {
			err = tr.key.WritePublic(w.b, w.armor)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	aw, err := armor.Encode(&disguised, "PGP PUBLIC KEY BLOCK", nil)
	if err != nil {
		t.Fatal(err)
	}
	aw.Write(secBin.Bytes())
	aw.Close()
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	hostile := map[string][]byte{
		"mixed.asc":        cat(pubArm.Bytes(), []byte("\nThe release key; keep the rest of this file private.\n\n"), secArm.Bytes()),
		"secret-first.asc": cat(secArm.Bytes(), pubArm.Bytes()),
		"indented.asc":     cat(pubArm.Bytes(), []byte("\n    "), bytes.ReplaceAll(secArm.Bytes(), []byte("\n"), []byte("\n    "))),
		"mixed.gpg":        cat(pubBin.Bytes(), secBin.Bytes()),
		"secret.pub":       secBin.Bytes(),
		"trailer.gpg":      cat(pubBin.Bytes(), secArm.Bytes()),
		"disguised.asc":    disguised.Bytes(),
	}
	for name, data := range hostile {
		mustWrite(t, filepath.Join(tr.dir, name), data)
	}
	// Public keyrings: binary (newTestRepo's repo-key.gpg), and armored
	// with text around it.
	mustWrite(t, filepath.Join(tr.dir, "release.asc"), cat([]byte("Lampi release key\n\n"), pubArm.Bytes(), []byte("\nFingerprint: "+tr.key.Fingerprint()+"\n")))
	_, hs := startServer(t, Options{Dir: tr.dir})

	g := newGPGHome(t)
	served := func(name string) (int, []byte) {
		resp, body := get(t, nil, hs.URL+"/"+name)
		if resp.StatusCode == http.StatusOK {
			p := filepath.Join(t.TempDir(), name)
			mustWrite(t, p, body)
			if out, err := g.run("--import", p); err != nil {
				t.Logf("gpg --import %s (served %d bytes): %v\n%s", name, len(body), err, out)
			}
		}
		return resp.StatusCode, body
	}
	for name := range hostile {
		if code, body := served(name); code != http.StatusNotFound {
			t.Errorf("GET /%s (secret key material inside): %d, %d bytes; want 404", name, code, len(body))
		}
	}
	if sec := g.colons("--list-secret-keys", "sec"); len(sec) != 0 {
		t.Fatalf("gpg imported a secret key from what the server served: %v", sec)
	}
	code, bin := served("repo-key.gpg")
	if code != http.StatusOK || len(bin) == 0 || bin[0]&0x80 == 0 {
		t.Fatalf("GET /repo-key.gpg: %d, want a binary keyring", code)
	}
	code, arm := served("release.asc")
	if code != http.StatusOK || !bytes.HasPrefix(arm, []byte("-----BEGIN PGP PUBLIC KEY BLOCK-----\n")) || bytes.Contains(arm, []byte("Lampi release key")) {
		t.Fatalf("GET /release.asc: %d, want the armored public key alone:\n%s", code, arm)
	}

	if sec := g.colons("--list-secret-keys", "sec"); len(sec) != 0 {
		t.Fatalf("gpg imported a secret key from the public keyrings served: %v", sec)
	}
	fprs := g.colons("--list-keys", "fpr")
	if len(fprs) == 0 || !strings.Contains(fprs[0], tr.key.Fingerprint()) {
		t.Fatalf("gpg did not import the public key %s: %v", tr.key.Fingerprint(), fprs)
	}

	// The served binary keyring verifies the repository, as apt's
	// signed-by= file would.
	keyring := filepath.Join(t.TempDir(), "served.gpg")
	mustWrite(t, keyring, bin)
	_, inRelease := get(t, nil, hs.URL+"/dists/stable/InRelease")
	irPath := filepath.Join(t.TempDir(), "InRelease")
	mustWrite(t, irPath, inRelease)
	gpgv := testutil.RequireTool(t, "gpgv")
	if out, err := exec.Command(gpgv, "--homedir", filepath.Dir(keyring), "--keyring", keyring, irPath).CombinedOutput(); err != nil {
		t.Fatalf("gpgv with the served keyring: %v\n%s", err, out)
	}
}
