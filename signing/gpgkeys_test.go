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

// TestSignWithGpgMadeKeys: secret keys made by the real gpg load and sign
// InRelease and Release.gpg files that gpgv accepts — a key with a
// separate signing subkey (the subkey signs), the same key exported with
// "--export-secret-subkeys" (primary key stub), and a passphrase-protected
// key.
func TestSignWithGpgMadeKeys(t *testing.T) {
	testutil.Heavy(t, "makes keys with the real gpg and signs with them")
	g := newGnupg(t)
	g.run("--quick-gen-key", "Sub <sub@lampi.example>", "ed25519", "cert", "never")
	primary, _ := g.fingerprints("sub@lampi.example")
	g.run("--quick-add-key", primary, "ed25519", "sign", "never")
	_, subs := g.fingerprints("sub@lampi.example")
	g.run("--passphrase", "s3cret", "--quick-gen-key", "Protected <prot@lampi.example>", "ed25519", "sign", "never")
	protFP, _ := g.fingerprints("prot@lampi.example")

	dir := t.TempDir()
	keyring := filepath.Join(dir, "keyring.gpg")
	if err := os.WriteFile(keyring, g.run("--export"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, passphrase, want string
		export                 []byte
	}{
		{"signing subkey", "", subs[0], g.run("--armor", "--export-secret-keys", primary)},
		{"primary key stub", "", subs[0], g.run("--export-secret-subkeys", primary)},
		{"protected", "s3cret", protFP, g.run("--passphrase", "s3cret", "--export-secret-keys", protFP)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			key, err := ReadKey(bytes.NewReader(c.export))
			if err != nil {
				t.Fatal(err)
			}
			if c.passphrase != "" {
				if !key.Locked() {
					t.Fatal("gpg's protected key is not Locked")
				}
				if err := key.Unlock([]byte("wrong")); !errors.Is(err, ErrWrongPassphrase) {
					t.Fatalf("Unlock with a wrong passphrase: %v, want ErrWrongPassphrase", err)
				}
				if err := key.Unlock([]byte(c.passphrase)); err != nil {
					t.Fatal(err)
				}
			}
			s := mustSigner(t, key, testNow)
			if fp, _ := s.SigningFingerprint(); fp != c.want {
				t.Errorf("signing key %s, want %s", fp, c.want)
			}
			inRelease, err := s.Clearsign(bg, strings.NewReader(sampleRelease))
			if err != nil {
				t.Fatal(err)
			}
			detached, err := s.SignDetachedArmored(bg, strings.NewReader(sampleRelease))
			if err != nil {
				t.Fatal(err)
			}
			files := map[string][]byte{"InRelease": inRelease, "Release": []byte(sampleRelease), "Release.gpg": detached}
			for name, data := range files {
				if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			for _, args := range [][]string{{"InRelease"}, {"Release.gpg", "Release"}} {
				for i := range args {
					args[i] = filepath.Join(dir, args[i])
				}
				status, err := gpgv(t, keyring, args...)
				if err != nil || validsig(status) != c.want {
					t.Errorf("gpgv %s: %v, VALIDSIG %q, want %s", filepath.Base(args[0]), err, validsig(status), c.want)
				}
			}
		})
	}
}

// TestGpgMadeBadKeys: keys made by gpg that cannot be used are refused
// with the right sentinel — certify-only, expired, revoked — and a SHA-1
// signature made by gpg is rejected as apt rejects it.
func TestGpgMadeBadKeys(t *testing.T) {
	testutil.Heavy(t, "makes bad keys with the real gpg")
	g := newGnupg(t)
	g.run("--quick-gen-key", "Cert Only <cert@lampi.example>", "ed25519", "cert", "never")
	past := []string{"--faked-system-time", "20200101T000000"}
	g.run(append(past, "--quick-gen-key", "Expired <expired@lampi.example>", "ed25519", "sign", "1d")...)
	g.run("--quick-gen-key", "Revoked <revoked@lampi.example>", "ed25519", "sign", "never")
	g.run("--quick-gen-key", "RSA <rsa@lampi.example>", "rsa3072", "sign", "never")
	release := g.file("Release", []byte(sampleRelease))
	expiredSig := g.run(append(past, "--local-user", "expired@lampi.example", "--detach-sign", "--output", "-", release)...)
	revokedSig := g.run("--local-user", "revoked@lampi.example", "--detach-sign", "--output", "-", release)
	sha1Sig := g.run("--local-user", "rsa@lampi.example", "--digest-algo", "SHA1", "--detach-sign", "--output", "-", release)
	// Revoke with the certificate gpg made at key creation.
	revFP, _ := g.fingerprints("revoked@lampi.example")
	rev, err := os.ReadFile(filepath.Join(g.home, "openpgp-revocs.d", revFP+".rev"))
	if err != nil {
		t.Fatal(err)
	}
	g.run("--import", g.file("rev.asc", bytes.Replace(rev, []byte(":-----BEGIN"), []byte("-----BEGIN"), 1)))

	secret := func(uid string) *Key {
		k, err := ReadKey(bytes.NewReader(g.run("--export-secret-keys", uid)))
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	for uid, want := range map[string]error{
		"cert@lampi.example":    ErrNoSigningKey,
		"expired@lampi.example": ErrKeyExpired,
		"revoked@lampi.example": ErrKeyRevoked,
	} {
		if _, err := NewSigner(secret(uid), SignOptions{Now: at(testNow)}); !errors.Is(err, want) {
			t.Errorf("NewSigner(%s): %v, want %v", uid, err, want)
		}
	}
	kr := g.keyring()
	opts := VerifyOptions{Now: at(testNow)}
	for name, c := range map[string]struct {
		sig  []byte
		want error
	}{
		"expired": {expiredSig, ErrKeyExpired},
		"revoked": {revokedSig, ErrKeyRevoked},
		"sha1":    {sha1Sig, ErrWeakHash},
	} {
		if _, err := VerifyDetached(bg, kr, strings.NewReader(sampleRelease), bytes.NewReader(c.sig), opts); !errors.Is(err, c.want) {
			t.Errorf("%s signature: %v, want %v", name, err, c.want)
		}
	}
	// The expired key's signature was good while the key was valid.
	then := VerifyOptions{Now: at(time.Date(2020, 1, 1, 12, 0, 0, 0, time.UTC))}
	if _, err := VerifyDetached(bg, kr, strings.NewReader(sampleRelease), bytes.NewReader(expiredSig), then); err != nil {
		t.Errorf("expired key's signature, verified before expiry: %v", err)
	}
}

// TestGpgImportsOurKeys: gpg imports a passphrase-protected secret key
// from our generator, unlocks it with the passphrase and signs with it.
func TestGpgImportsOurKeys(t *testing.T) {
	testutil.Heavy(t, "imports our keys into the real gpg")
	g := newGnupg(t)
	k, err := GenerateKey(GenerateOptions{Name: "Ours", Email: "ours@lampi.example", Now: testNow.Add(-time.Hour), Passphrase: []byte("pass phrase")})
	if err != nil {
		t.Fatal(err)
	}
	var sec bytes.Buffer
	if err := k.WriteSecret(&sec, true); err != nil {
		t.Fatal(err)
	}
	g.run("--passphrase", "pass phrase", "--import", g.file("ours.asc", sec.Bytes()))
	release := g.file("Release", []byte(sampleRelease))
	// Flush the agent's passphrase cache: a wrong passphrase must fail.
	if out, err := exec.Command(testutil.RequireTool(t, "gpgconf"), "--homedir", g.home, "--reload", "gpg-agent").CombinedOutput(); err != nil {
		t.Fatalf("gpgconf --reload: %v: %s", err, out)
	}
	if _, err := g.try("--passphrase", "wrong", "--local-user", k.Fingerprint(), "--detach-sign", "--output", "-", release); err == nil {
		t.Error("gpg signed with our protected key and a wrong passphrase")
	}
	sig := g.run("--passphrase", "pass phrase", "--local-user", k.Fingerprint(), "--detach-sign", "--output", "-", release)
	s, err := VerifyDetached(bg, NewKeyring(k), strings.NewReader(sampleRelease), bytes.NewReader(sig), VerifyOptions{Now: at(testNow)})
	if err != nil {
		t.Fatal(err)
	}
	if s.Fingerprint != k.Fingerprint() {
		t.Errorf("signer %s, want %s", s.Fingerprint, k.Fingerprint())
	}
}
