package signing

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

var updateFixtures = flag.Bool("update-fixtures", false, "regenerate the throwaway test keys in ../fixtures/keys (needs gpg)")

const fixtureDir = "../fixtures/keys"

// fixtureTime is when the fixture keys were made.
var fixtureTime = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// FixturePassphrase protects fixtures/keys/protected.sec.asc.
const fixturePassphrase = "lampi-test-passphrase"

func readFixture(t testing.TB, name string) *Key {
	t.Helper()
	f, err := os.Open(filepath.Join(fixtureDir, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	k, err := ReadKey(f)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return k
}

// TestFixtureKeys checks that the throwaway keys in fixtures/keys are what
// their README says; with -update-fixtures it makes them first.
func TestFixtureKeys(t *testing.T) {
	if *updateFixtures {
		writeFixtures(t)
	}
	for name, want := range map[string]error{
		"lampi-test.sec.asc": nil,
		"other.sec.asc":      nil,
		"gpg-subkey.sec.asc": nil,
		"protected.sec.asc":  ErrNeedPassphrase,
		"expired.sec.asc":    ErrKeyExpired,
		"revoked.sec.asc":    ErrKeyRevoked,
		"lampi-test.pub.asc": ErrNotSecretKey,
	} {
		_, err := NewSigner(readFixture(t, name), SignOptions{Now: at(testNow)})
		if !errors.Is(err, want) {
			t.Errorf("%s: NewSigner: %v, want %v", name, err, want)
		}
	}
	p := readFixture(t, "protected.sec.asc")
	if err := p.Unlock([]byte(fixturePassphrase)); err != nil {
		t.Errorf("protected.sec.asc: %v", err)
	}
	if sub := readFixture(t, "gpg-subkey.sec.asc").Info(testNow); len(sub.Subkeys) != 1 || sub.SigningKey != sub.Subkeys[0].Fingerprint {
		t.Errorf("gpg-subkey.sec.asc does not sign with its subkey: %+v", sub)
	}
	pub, err := os.ReadFile(filepath.Join(fixtureDir, "lampi-test.pub.gpg"))
	if err != nil {
		t.Fatal(err)
	}
	kr, err := ReadKeyring(bytes.NewReader(pub))
	if err != nil || len(kr.Keys()) != 1 || kr.Keys()[0].Fingerprint() != readFixture(t, "lampi-test.sec.asc").Fingerprint() {
		t.Errorf("lampi-test.pub.gpg is not the public key of lampi-test.sec.asc (%v)", err)
	}
}

func writeFixtures(t *testing.T) {
	gen := func(name string, now time.Time, life time.Duration, pass string) *Key {
		k, err := GenerateKey(GenerateOptions{
			Name: name, Comment: "THROWAWAY TEST KEY, DO NOT TRUST", Email: "test@lampi.example",
			Now: now, Lifetime: life, Passphrase: []byte(pass),
		})
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	write := func(name string, k *Key, secret, armored bool) {
		if err := os.WriteFile(filepath.Join(fixtureDir, name), keyBytes(t, k, secret, armored), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(fixtureDir, 0o755); err != nil {
		t.Fatal(err)
	}
	main := gen("Lampi Test", fixtureTime, 0, "")
	write("lampi-test.sec.asc", main, true, true)
	write("lampi-test.pub.asc", main, false, true)
	write("lampi-test.pub.gpg", main, false, false)
	other := gen("Lampi Other", fixtureTime, 0, "")
	write("other.sec.asc", other, true, true)
	write("other.pub.gpg", other, false, false)
	write("protected.sec.asc", gen("Lampi Protected", fixtureTime, 0, fixturePassphrase), true, true)
	write("expired.sec.asc", gen("Lampi Expired", fixtureTime, 24*time.Hour, ""), true, true)
	revoked := gen("Lampi Revoked", fixtureTime, 0, "")
	no := false
	cfg := &packet.Config{Time: at(fixtureTime.Add(time.Hour)), NonDeterministicSignaturesViaNotation: &no}
	if err := revoked.e.RevokeKey(packet.KeyRetired, "throwaway test key", cfg); err != nil {
		t.Fatal(err)
	}
	write("revoked.sec.asc", revoked, true, true)
	write("revoked.pub.gpg", revoked, false, false)

	g := newGnupg(t)
	fake := fixtureTime.Format("20060102T150405")
	uid := "Lampi Gpg Subkey (THROWAWAY TEST KEY, DO NOT TRUST) <test@lampi.example>"
	g.run("--faked-system-time", fake, "--quick-gen-key", uid, "ed25519", "cert", "never")
	fp, _ := g.fingerprints("test@lampi.example")
	g.run("--faked-system-time", fake, "--quick-add-key", fp, "ed25519", "sign", "never")
	if err := os.WriteFile(filepath.Join(fixtureDir, "gpg-subkey.sec.asc"), g.run("--armor", "--export-secret-keys", fp), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(fixtureDir, "gpg-subkey.pub.gpg"), g.run("--export", fp), 0o644); err != nil {
		t.Fatal(err)
	}
}
