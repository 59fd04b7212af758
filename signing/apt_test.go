package signing

import (
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
)

const aptPackages = `Package: lampi-hello
Version: 1.0.0
Architecture: all
Maintainer: Lampi Test <test@lampi.example>
Installed-Size: 1
Filename: pool/main/l/lampi-hello/lampi-hello_1.0.0_all.deb
Size: 1024
SHA256: 0000000000000000000000000000000000000000000000000000000000000000
Description: test package that is never downloaded
`

// aptRelease is a minimal Release over one Packages file, dated at
// testNow (in the past: apt refuses a Date in the future).
func aptRelease() string {
	sum := sha256.Sum256([]byte(aptPackages))
	return fmt.Sprintf(`Origin: lampi-test
Label: lampi-test
Suite: stable
Codename: stable
Date: %s
Architectures: amd64
Components: main
SHA256:
 %x %d main/binary-amd64/Packages
`, testNow.Format(time.RFC1123), sum, len(aptPackages))
}

// TestAptAcceptsOurRepository is the end-to-end judge: the real
// "apt-get update", in an isolated root, accepts a repository served over
// HTTP whose InRelease, or Release + Release.gpg, we signed — and refuses
// it (NO_PUBKEY, "is not signed", non-zero exit) when another key signed
// it.
func TestAptAcceptsOurRepository(t *testing.T) {
	// The package's end to end under -short: a real apt-get.
	testutil.KeepInShort(t)
	ours := sharedKey(t, Ed25519)
	other := readFixture(t, "other.sec.asc")
	cases := []struct {
		name      string
		signer    *Key
		inRelease bool // serve InRelease, else Release + Release.gpg
		ok        bool
	}{
		{"InRelease", ours, true, true},
		{"Release.gpg", ours, false, true},
		{"InRelease by another key", other, true, false},
		{"Release.gpg by another key", other, false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			repo := t.TempDir()
			s := mustSigner(t, c.signer, testNow)
			release := aptRelease()
			files := map[string]string{"dists/stable/main/binary-amd64/Packages": aptPackages, "dists/stable/Release": release}
			if c.inRelease {
				out, err := s.Clearsign(bg, strings.NewReader(release))
				if err != nil {
					t.Fatal(err)
				}
				files["dists/stable/InRelease"] = string(out)
			} else {
				out, err := s.SignDetachedArmored(bg, strings.NewReader(release))
				if err != nil {
					t.Fatal(err)
				}
				files["dists/stable/Release.gpg"] = string(out)
			}
			for name, data := range files {
				p := filepath.Join(repo, name)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			srv := httptest.NewServer(http.FileServer(http.Dir(repo)))
			defer srv.Close()

			keyring := writeKeyring(t, t.TempDir(), ours)
			apt := testutil.NewAptRoot(t, fmt.Sprintf("deb [signed-by=%s] %s/ stable main\n", keyring, srv.URL))
			out, err := apt.Run("update")
			lists, _ := filepath.Glob(filepath.Join(apt.Root, "var/lib/apt/lists/*_Packages*"))
			if c.ok {
				if err != nil || strings.Contains(out, "W:") || strings.Contains(out, "E:") || len(lists) != 1 {
					t.Fatalf("apt-get update refused our repository (%v, lists %v):\n%s", err, lists, out)
				}
				return
			}
			wantKey := other.KeyID()
			if err == nil || !strings.Contains(out, "NO_PUBKEY "+wantKey) || !strings.Contains(out, "is not signed") || len(lists) != 0 {
				t.Fatalf("apt-get update did not refuse a repository signed by another key (%v, lists %v):\n%s", err, lists, out)
			}
		})
	}
}
