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

	"github.com/lampi-pkg/lampi-pkg/deb"
	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
)

// buildHi builds fixtures/hi with compression comp and returns the bytes.
func buildHi(t testing.TB, comp deb.Compression) []byte {
	t.Helper()
	root, err := os.OpenRoot("../fixtures/hi")
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	var b bytes.Buffer
	if _, err := deb.Build(bg, root.FS(), &b, deb.BuildOptions{Compression: comp, Mtime: time.Unix(1700000000, 0)}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// writeTemp writes data to dir/name and returns the path.
func writeTemp(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// verifyFile runs VerifyDeb on the file at path.
func verifyFile(t testing.TB, kr *Keyring, path string) (*Signature, error) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return VerifyDeb(bg, kr, bytes.NewReader(data), int64(len(data)), VerifyOptions{Now: at(testNow)})
}

// debsigVerify runs the real debsig-verify with the policies and keyrings
// under trust (as written by DebsigPolicy.Install) and returns its exit
// code and output.
func debsigVerify(t testing.TB, trust, pkg string) (int, string) {
	t.Helper()
	bin := testutil.RequireTool(t, "debsig-verify")
	cmd := exec.Command(bin, "--policies-dir", filepath.Join(trust, DebsigPoliciesDir),
		"--keyrings-dir", filepath.Join(trust, DebsigKeyringsDir), pkg)
	cmd.Env = append(os.Environ(), "GNUPGHOME="+t.TempDir())
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &ee):
		return ee.ExitCode(), string(out)
	}
	t.Fatalf("debsig-verify: %v", err)
	return -1, ""
}

func mustRunTool(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(testutil.RequireTool(t, name), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// member returns the member called name (by prefix) of the package at path.
func member(t testing.TB, path, prefix string) deb.Member {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := scanDeb(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if strings.HasPrefix(m.Name, prefix) {
			return m
		}
	}
	t.Fatalf("%s has no member %s*", path, prefix)
	return deb.Member{}
}

// flipByte changes one byte of the file at off.
func flipByte(t testing.TB, path string, off int64) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[off] ^= 0x01
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestDebsigVerifyJudges signs packages and lets the real debsig-verify
// judge them, with a policy and keyring written by DebsigPolicy; our
// VerifyDeb must agree in every case.
func TestDebsigVerifyJudges(t *testing.T) {
	t.Parallel()
	testutil.RequireTool(t, "debsig-verify")
	key := readFixture(t, "lampi-test.sec.asc")
	other := readFixture(t, "other.sec.asc")
	kr := NewKeyring(key)
	trust := t.TempDir()
	pol, err := NewDebsigPolicy(key, DebsigPolicyOptions{Now: at(testNow)})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := pol.Install(trust); err != nil {
		t.Fatal(err)
	}
	for _, comp := range []deb.Compression{deb.CompressGzip, deb.CompressXZ} {
		t.Run(string(comp), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			unsigned := buildHi(t, comp)
			path := writeTemp(t, dir, "hi.deb", unsigned)
			res, err := SignDebFile(bg, mustSigner(t, key, testNow), path)
			if err != nil {
				t.Fatal(err)
			}
			if res.KeyID != pol.KeyID || res.Replaced != 0 || !res.Created.Equal(testNow) {
				t.Errorf("result %+v", res)
			}
			if code, out := debsigVerify(t, trust, path); code != 0 {
				t.Fatalf("debsig-verify refused our signature (exit %d):\n%s", code, out)
			}
			if sig, err := verifyFile(t, kr, path); err != nil || sig.Fingerprint != key.Fingerprint() {
				t.Fatalf("VerifyDeb: %v, %+v", err, sig)
			}

			// The rest of the package is unchanged: same bytes before the
			// new member, which dpkg ignores.
			signed, _ := os.ReadFile(path)
			if !bytes.HasPrefix(signed, unsigned) {
				t.Error("signing changed the existing members")
			}
			root := isolatedDpkgRoot(t)
			dpkgIn(t, root, "-i", path)
			if out := mustRunTool(t, filepath.Join(root, "opt/hi/hi")); !strings.Contains(out, "Hello Deb!") {
				t.Errorf("installed hi printed %q", out)
			}
			if out := mustRunTool(t, "dpkg-deb", "--info", path); !strings.Contains(out, "Package: hi") {
				t.Errorf("dpkg-deb --info:\n%s", out)
			}
			if out := mustRunTool(t, "dpkg-deb", "--contents", path); !strings.Contains(out, "./opt/hi/hi") {
				t.Errorf("dpkg-deb --contents:\n%s", out)
			}

			// One byte changed in the middle of data.tar: both refuse.
			tampered := writeTemp(t, dir, "tampered.deb", signed)
			data := member(t, tampered, "data.tar")
			flipByte(t, tampered, data.Offset+data.Size/2)
			if code, out := debsigVerify(t, trust, tampered); code != 13 {
				t.Errorf("debsig-verify accepted a changed data.tar (exit %d):\n%s", code, out)
			}
			if _, err := verifyFile(t, kr, tampered); !errors.Is(err, ErrBadSignature) {
				t.Errorf("VerifyDeb of a changed data.tar: %v", err)
			}

			// Signed by a key without a policy: both refuse.
			byOther := writeTemp(t, dir, "other.deb", unsigned)
			if _, err := SignDebFile(bg, mustSigner(t, other, testNow), byOther); err != nil {
				t.Fatal(err)
			}
			if code, out := debsigVerify(t, trust, byOther); code != 11 {
				t.Errorf("debsig-verify, other key: exit %d:\n%s", code, out)
			}
			if _, err := verifyFile(t, kr, byOther); !errors.Is(err, ErrUnknownKey) {
				t.Errorf("VerifyDeb, other key: %v", err)
			}

			// Unsigned: both say so.
			plain := writeTemp(t, dir, "plain.deb", unsigned)
			if code, out := debsigVerify(t, trust, plain); code != 10 {
				t.Errorf("debsig-verify, unsigned: exit %d:\n%s", code, out)
			}
			if _, err := verifyFile(t, kr, plain); !errors.Is(err, ErrUnsigned) {
				t.Errorf("VerifyDeb, unsigned: %v", err)
			}
		})
	}
}

// isolatedDpkgRoot makes an empty dpkg admin directory in a temp root.
func isolatedDpkgRoot(t testing.TB) string {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeTemp(t, root, "var/lib/dpkg/status", nil)
	return root
}

func dpkgIn(t testing.TB, root string, args ...string) string {
	t.Helper()
	base := []string{"--root=" + root, "--instdir=" + root, "--admindir=" + filepath.Join(root, "var/lib/dpkg"),
		"--force-script-chrootless", "--force-not-root", "--log=/dev/null"}
	return mustRunTool(t, "dpkg", append(base, args...)...)
}

// TestSignDebReplaces signs twice: one _gpgorigin, the newest, and the
// same bytes for the same key, time and package.
func TestSignDebReplaces(t *testing.T) {
	t.Parallel()
	key := readFixture(t, "lampi-test.sec.asc")
	dir := t.TempDir()
	unsigned := buildHi(t, deb.CompressGzip)
	path := writeTemp(t, dir, "hi.deb", unsigned)
	if _, err := SignDebFile(bg, mustSigner(t, key, testNow), path); err != nil {
		t.Fatal(err)
	}
	first, _ := os.ReadFile(path)
	later := testNow.Add(time.Hour)
	res, err := SignDebFile(bg, mustSigner(t, key, later), path)
	if err != nil {
		t.Fatal(err)
	}
	second, _ := os.ReadFile(path)
	if res.Replaced != 1 || !res.Created.Equal(later) || res.Size != int64(len(second)) {
		t.Errorf("result %+v (file %d bytes)", res, len(second))
	}
	var names []string
	for _, m := range res.Members {
		names = append(names, m.Name)
	}
	if got := strings.Join(names, " "); got != "debian-binary control.tar.gz data.tar.gz _gpgorigin" {
		t.Errorf("members: %s", got)
	}
	if last := res.Members[3]; !bytes.Equal(second[last.Offset:last.Offset+last.Size], mustSign(t, key, later, unsigned)) {
		t.Error("the _gpgorigin member is not where the result says, or not the newest signature")
	}
	if bytes.Equal(first, second) || !bytes.HasPrefix(second, unsigned) {
		t.Error("the second signature did not replace the first one alone")
	}
	if _, err := SignDebFile(bg, mustSigner(t, key, testNow), path); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(path); !bytes.Equal(again, first) {
		t.Error("same key, time and package gave different bytes")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
	if out := mustRunTool(t, "ar", "t", path); out != "debian-binary\ncontrol.tar.gz\ndata.tar.gz\n_gpgorigin\n" {
		t.Errorf("ar t:\n%s", out)
	}
}

// mustSign returns the detached signature debsigs would make over pkg.
func mustSign(t testing.TB, k *Key, now time.Time, pkg []byte) []byte {
	t.Helper()
	var signed bytes.Buffer
	ms, err := scanDeb(bytes.NewReader(pkg), int64(len(pkg)))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.Kind != deb.KindIgnored {
			signed.Write(pkg[m.Offset : m.Offset+m.Size])
		}
	}
	sig, err := mustSigner(t, k, now).SignDetached(bg, &signed)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// TestSignDebKeepsOtherMembers: members of other debsigs roles and odd
// sizes survive, unsigned; a stray _gpgorigin in the middle is dropped.
func TestSignDebKeepsOtherMembers(t *testing.T) {
	t.Parallel()
	key := readFixture(t, "lampi-test.sec.asc")
	pkg := buildHi(t, deb.CompressXZ)
	stray := arMember(t, DebOriginMember, []byte("old"))
	maint := arMember(t, "_gpgmaint", []byte("odd"))
	dbinEnd := member(t, writeTemp(t, t.TempDir(), "x.deb", pkg), "debian-binary")
	cut := dbinEnd.Offset + dbinEnd.Size
	in := append(append(append([]byte{}, pkg[:cut]...), stray...), pkg[cut:]...)
	in = append(in, maint...)
	var out bytes.Buffer
	res, err := SignDeb(bg, mustSigner(t, key, testNow), &out, bytes.NewReader(in), int64(len(in)))
	if err != nil {
		t.Fatal(err)
	}
	want := append(append(append([]byte{}, pkg...), maint...), arMember(t, DebOriginMember, mustSign(t, key, testNow, pkg))...)
	if res.Replaced != 1 || !bytes.Equal(out.Bytes(), want) {
		t.Errorf("replaced %d; output differs from the package + _gpgmaint + new _gpgorigin", res.Replaced)
	}
	if _, err := VerifyDeb(bg, NewKeyring(key), bytes.NewReader(out.Bytes()), int64(out.Len()), VerifyOptions{Now: at(testNow)}); err != nil {
		t.Errorf("VerifyDeb: %v", err)
	}
}

// arMember returns a whole ar member as SignDeb writes it.
func arMember(t testing.TB, name string, data []byte) []byte {
	t.Helper()
	h, err := arHeader(name, int64(len(data)), testNow)
	if err != nil {
		t.Fatal(err)
	}
	h = append(h, data...)
	if len(data)%2 == 1 {
		h = append(h, '\n')
	}
	return h
}
