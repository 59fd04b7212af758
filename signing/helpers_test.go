package signing

import (
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
)

// testNow is the fixed "current time" of the tests.
var testNow = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func at(t time.Time) func() time.Time { return func() time.Time { return t } }

var bg = context.Background()

// sharedKeys are generated once per test binary: RSA-4096 takes seconds.
// Tests must not modify them.
var sharedKeys sync.Map // Algorithm → func() (*Key, error)

func sharedKey(t testing.TB, algo Algorithm) *Key {
	t.Helper()
	f, _ := sharedKeys.LoadOrStore(algo, sync.OnceValues(func() (*Key, error) {
		return GenerateKey(GenerateOptions{Name: "Lampi Test " + string(algo), Email: "test@lampi.example", Algorithm: algo, Now: testNow.Add(-time.Hour)})
	}))
	k, err := f.(func() (*Key, error))()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustSigner(t testing.TB, k *Key, now time.Time) *Signer {
	t.Helper()
	s, err := NewSigner(k, SignOptions{Now: at(now)})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// keyBytes is k as a key file holds it: secret or public, armored or
// binary.
func keyBytes(t testing.TB, k *Key, secret, armored bool) []byte {
	t.Helper()
	var b bytes.Buffer
	var err error
	if secret {
		err = k.WriteSecret(&b, armored)
	} else {
		err = k.WritePublic(&b, armored)
	}
	if err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// roundTrip writes k and reads it back, as a user's file would be.
func roundTrip(t testing.TB, k *Key, secret, armored bool) *Key {
	t.Helper()
	k2, err := ReadKey(bytes.NewReader(keyBytes(t, k, secret, armored)))
	if err != nil {
		t.Fatal(err)
	}
	return k2
}

// writeKeyring exports the public keys to a binary keyring file for gpgv.
func writeKeyring(t testing.TB, dir string, keys ...*Key) string {
	t.Helper()
	var b bytes.Buffer
	if err := NewKeyring(keys...).Write(&b, false); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "keyring.gpg")
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// gpgv runs the real gpgv against keyring (an absolute path) and returns
// its status lines ("--status-fd 1") and whether it succeeded. Its home
// directory is the keyring's (empty) directory, never the user's.
func gpgv(t testing.TB, keyring string, files ...string) (status string, err error) {
	t.Helper()
	bin := testutil.RequireTool(t, "gpgv")
	home := filepath.Dir(keyring)
	args := append([]string{"--homedir", home, "--status-fd", "1", "--keyring", keyring}, files...)
	cmd := exec.Command(bin, args...)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	err = cmd.Run()
	if err != nil {
		err = fmt.Errorf("%v: %s", err, strings.TrimSpace(stderr.String()))
	}
	return out.String(), err
}

// validsig returns the fingerprint of gpgv's VALIDSIG status line.
func validsig(status string) string {
	for _, l := range strings.Split(status, "\n") {
		if f := strings.Fields(l); len(f) > 2 && f[0] == "[GNUPG:]" && f[1] == "VALIDSIG" {
			return f[2]
		}
	}
	return ""
}

// textInputs returns n text inputs meant to break a clearsign
// implementation: lines starting with '-' (including a fake armor line),
// trailing spaces and tabs, CRLF line ends, no final newline, empty input,
// blank lines, non-ASCII, and lengths from 0 to ~60 KB.
func textInputs(rng *rand.Rand, n int) [][]byte {
	fixed := []string{
		"", "\n", "\n\n\n", "-", "-\n", "- \n", "--\n", "no final newline", "trailing  \t \n",
		"-----BEGIN PGP SIGNATURE-----\n", "-----END PGP SIGNATURE-----\n",
		"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA1\n\nfake\n",
		"Origin: x\r\nLabel: y  \r\n", "From me\n", "a\n \n\t\nb", "h\xc3\xa9llo w\xc3\xb6rld\n",
		strings.Repeat("x", maxCleartextLine) + "\n", "-" + strings.Repeat("y", maxCleartextLine-3) + "\n",
	}
	out := make([][]byte, 0, n)
	for _, s := range fixed {
		out = append(out, []byte(s))
	}
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 :.,/_+=-\t"
	sizes := []int{10, 100, 1000, 10000, 60000}
	for len(out) < n {
		limit := sizes[rng.Intn(len(sizes))]
		var b bytes.Buffer
		for b.Len() < limit {
			switch rng.Intn(5) {
			case 0:
				b.WriteString(strings.Repeat("-", 1+rng.Intn(6)))
			case 1:
				b.WriteString("Hash: SHA256")
			}
			for range rng.Intn(100) {
				b.WriteByte(alphabet[rng.Intn(len(alphabet))])
			}
			if rng.Intn(4) == 0 {
				b.WriteString("  \t "[:1+rng.Intn(4)])
			}
			if rng.Intn(10) == 0 {
				b.WriteByte('\r')
			}
			b.WriteByte('\n')
		}
		data := b.Bytes()
		if rng.Intn(3) == 0 {
			data = bytes.TrimRight(data, "\n")
		}
		out = append(out, data)
	}
	return out
}

// normalized is the text a clearsigned document carries for input in:
// trailing blanks removed from every line, every line ending in LF.
func normalized(in []byte) []byte {
	lines := bytes.Split(bytes.TrimSuffix(in, []byte{'\n'}), []byte{'\n'})
	var out []byte
	for _, l := range lines {
		out = append(append(out, bytes.TrimRight(l, " \t\r")...), '\n')
	}
	return out
}
