package signing

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestGolden: with the fixture key and a fixed time, signing is byte for
// byte reproducible.
func TestGolden(t *testing.T) {
	s := mustSigner(t, readFixture(t, "lampi-test.sec.asc"), testNow)
	for _, c := range []struct {
		file string
		f    Format
	}{
		{"InRelease.golden", Clearsigned},
		{"Release.gpg.golden", DetachedArmored},
		{"Release.sig.golden", DetachedBinary},
	} {
		got, err := s.Sign(bg, strings.NewReader(sampleRelease), c.f)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join("testdata", c.file)
		if *update {
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs (run go test -update if the change is intended):\n%s", c.file, got)
		}
	}
	// And gpgv accepts the golden InRelease.
	keyring := writeKeyring(t, t.TempDir(), readFixture(t, "lampi-test.pub.asc"))
	if status, err := gpgv(t, keyring, filepath.Join("testdata", "InRelease.golden")); err != nil || validsig(status) == "" {
		t.Errorf("gpgv rejects InRelease.golden: %v", err)
	}
}

func TestClearsignFormat(t *testing.T) {
	s := mustSigner(t, sharedKey(t, Ed25519), testNow)
	out, err := s.Clearsign(bg, strings.NewReader("-a\nb  \n-----BEGIN PGP SIGNATURE-----\n"))
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`^-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\n- -a\nb\n- -----BEGIN PGP SIGNATURE-----\n-----BEGIN PGP SIGNATURE-----\n\n[A-Za-z0-9+/=\n]+\n=[A-Za-z0-9+/]{4}\n-----END PGP SIGNATURE-----\n$`)
	if !re.Match(out) {
		t.Errorf("clearsigned output (dash-escapes, CRC line) not as gpg writes it:\n%s", out)
	}
	for _, bad := range []string{"a\x00b", strings.Repeat("x", maxCleartextLine+1), "-" + strings.Repeat("x", maxCleartextLine-2)} {
		if _, err := s.Clearsign(bg, strings.NewReader(bad)); !errors.Is(err, ErrNotText) {
			t.Errorf("Clearsign(%q…): %v, want ErrNotText", trunc(bad), err)
		}
	}
}

func TestSignOptions(t *testing.T) {
	k := sharedKey(t, Ed25519)
	kr := NewKeyring(k)
	for _, h := range []crypto.Hash{crypto.SHA256, crypto.SHA384, crypto.SHA512} {
		s, err := NewSigner(k, SignOptions{Now: at(testNow), Hash: h})
		if err != nil {
			t.Fatal(err)
		}
		out, err := s.Func(bg, Clearsigned)(strings.NewReader(sampleRelease))
		if err != nil {
			t.Fatal(err)
		}
		sig, _, err := VerifyClearsigned(bg, kr, bytes.NewReader(out), VerifyOptions{Now: at(testNow)})
		if err != nil {
			t.Fatal(err)
		}
		if sig.Hash != hashName(h) || !sig.Created.Equal(testNow) || !bytes.Contains(out, []byte("Hash: "+hashName(h)+"\n")) {
			t.Errorf("hash %v: signature %+v", h, sig)
		}
	}
	// The clock is read once per signature, not once per signer.
	now := testNow
	s, err := NewSigner(k, SignOptions{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	now = testNow.Add(time.Hour)
	out, err := s.SignDetached(bg, strings.NewReader(sampleRelease))
	if err != nil {
		t.Fatal(err)
	}
	sig, err := VerifyDetached(bg, kr, strings.NewReader(sampleRelease), bytes.NewReader(out), VerifyOptions{Now: at(now)})
	if err != nil || !sig.Created.Equal(now) {
		t.Errorf("signature time %v (%v), want %v", sig, err, now)
	}
	ctx, cancel := context.WithCancel(bg)
	cancel()
	if _, err := s.SignDetached(ctx, strings.NewReader(sampleRelease)); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
	if _, err := s.Sign(bg, strings.NewReader(""), Format(42)); err == nil {
		t.Error("unknown format accepted")
	}
}
