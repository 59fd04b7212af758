package signing

import (
	"bytes"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
)

// TestGpgvAcceptsOurSignatures is the judge for InRelease and Release.gpg:
// the real gpgv verifies our clearsigned and detached armored signatures,
// made with keys from our generator, over 220 inputs per key type, and
// names our key's fingerprint. Our own verifier must agree and return the
// text the signature covers. Under -short it takes the first 40 inputs —
// every hand-written edge case (textInputs puts them first) and 22 random
// ones — for 160 gpgv runs instead of 880.
func TestGpgvAcceptsOurSignatures(t *testing.T) {
	inputs := 220
	if testing.Short() {
		inputs = 40
	}
	for i, algo := range []Algorithm{Ed25519, RSA4096} {
		t.Run(string(algo), func(t *testing.T) {
			t.Parallel()
			key := sharedKey(t, algo)
			dir := t.TempDir()
			keyring := writeKeyring(t, dir, key)
			s := mustSigner(t, key, testNow)
			kr := NewKeyring(key)
			type job struct {
				name  string
				files []string
			}
			// gpgv runs while the next inputs are signed: two workers per
			// key type, and both key types run in parallel on the two
			// cores of the CI machine.
			ch := make(chan job)
			var wg sync.WaitGroup
			var mu sync.Mutex
			var failures []string
			for range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for jb := range ch {
						status, err := gpgv(t, keyring, jb.files...)
						if fp := validsig(status); err != nil || fp != key.Fingerprint() {
							mu.Lock()
							failures = append(failures, fmt.Sprintf("%s: gpgv: %v (VALIDSIG %q)", jb.name, err, fp))
							mu.Unlock()
						}
					}
				}()
			}
			finish := sync.OnceFunc(func() { close(ch); wg.Wait() })
			defer finish()
			n := 0
			for j, in := range textInputs(rand.New(rand.NewSource(int64(i+1))), inputs) {
				inRelease, err := s.Clearsign(bg, bytes.NewReader(in))
				if err != nil {
					t.Fatalf("input %d: clearsign: %v", j, err)
				}
				detached, err := s.SignDetachedArmored(bg, bytes.NewReader(in))
				if err != nil {
					t.Fatalf("input %d: detached: %v", j, err)
				}
				sig, text, err := VerifyClearsigned(bg, kr, bytes.NewReader(inRelease), VerifyOptions{Now: at(testNow)})
				if err != nil {
					t.Fatalf("input %d (%q…): our verifier rejects our InRelease: %v", j, trunc(string(in)), err)
				}
				if want := normalized(in); !bytes.Equal(text, want) {
					t.Fatalf("input %d: signed text differs:\n got %q\nwant %q", j, trunc(string(text)), trunc(string(want)))
				}
				if sig.Fingerprint != key.Fingerprint() {
					t.Fatalf("input %d: fingerprint %s, want %s", j, sig.Fingerprint, key.Fingerprint())
				}
				if _, err := VerifyDetached(bg, kr, bytes.NewReader(in), bytes.NewReader(detached), VerifyOptions{Now: at(testNow)}); err != nil {
					t.Fatalf("input %d: our verifier rejects our Release.gpg: %v", j, err)
				}
				base := filepath.Join(dir, fmt.Sprintf("in%03d", j))
				for name, data := range map[string][]byte{".InRelease": inRelease, ".Release": in, ".Release.gpg": detached} {
					if err := os.WriteFile(base+name, data, 0o644); err != nil {
						t.Fatal(err)
					}
				}
				ch <- job{fmt.Sprintf("input %d InRelease", j), []string{base + ".InRelease"}}
				ch <- job{fmt.Sprintf("input %d Release.gpg", j), []string{base + ".Release.gpg", base + ".Release"}}
				n += 2
			}
			finish()
			if len(failures) > 0 {
				t.Fatalf("gpgv rejected %d of %d signatures; first: %s", len(failures), n, failures[0])
			}
			t.Logf("gpgv verified %d signatures by %s key %s", n, algo, key.Fingerprint())
		})
	}
}

// TestGpgvUnpaddedSignature is the regression test for go-crypto's missing
// armor CRC: gpgv 2.2 fails on armored signatures whose length is a
// multiple of 3 bytes unless the CRC line ends the base64 — RSA-3072
// signatures are 438 bytes.
func TestGpgvUnpaddedSignature(t *testing.T) {
	testutil.Heavy(t, "runs the real gpgv on many signatures")
	key := sharedKey(t, RSA3072)
	dir := t.TempDir()
	keyring := writeKeyring(t, dir, key)
	s := mustSigner(t, key, testNow)
	// An RSA-3072 signature packet is 438 bytes, or 437 when the
	// signature value happens to start with a zero byte (about one in
	// 256): sign a Release that differs only in a comment field until the
	// packet's length is a multiple of 3.
	release := ""
	for i := 0; i < 64 && release == ""; i++ {
		text := sampleRelease + fmt.Sprintf("X-Attempt: %d\n", i)
		raw, err := s.SignDetached(bg, bytes.NewReader([]byte(text)))
		if err != nil {
			t.Fatal(err)
		}
		if len(raw)%3 == 0 {
			release = text
		}
	}
	if release == "" {
		t.Fatal("no signature of a length that is a multiple of 3 in 64 tries")
	}
	inRelease, err := s.Clearsign(bg, bytes.NewReader([]byte(release)))
	if err != nil {
		t.Fatal(err)
	}
	detached, err := s.SignDetachedArmored(bg, bytes.NewReader([]byte(release)))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{"InRelease": inRelease, "Release": []byte(release), "Release.gpg": detached}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{{"InRelease"}, {"Release.gpg", "Release"}} {
		for i := range args {
			args[i] = filepath.Join(dir, args[i])
		}
		if status, err := gpgv(t, keyring, args...); err != nil || validsig(status) != key.Fingerprint() {
			t.Errorf("gpgv %s: %v", filepath.Base(args[0]), err)
		}
	}
}
