package signing

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lampi-pkg/lampi-pkg/deb"
)

// TestSignDebErrors: bad input gives a clear error, wrapping a sentinel,
// and leaves the file as it was, with nothing else in its directory.
func TestSignDebErrors(t *testing.T) {
	t.Parallel()
	key := readFixture(t, "lampi-test.sec.asc")
	pkg := buildHi(t, deb.CompressGzip)
	data := member(t, writeTemp(t, t.TempDir(), "x.deb", pkg), "data.tar")
	for _, tc := range []struct {
		name string
		in   []byte
		key  string
		want error
		msg  string
	}{
		{"truncated in data.tar", pkg[:data.Offset+data.Size/2], "", deb.ErrTruncated, "member data.tar.gz: truncated archive"},
		{"truncated before data.tar", pkg[:data.Offset-arHeaderSize], "", deb.ErrTruncated, "ends before its data.tar member"},
		{"not a deb", []byte("#!/bin/sh\necho hi\n"), "", deb.ErrNotDeb, "does not start with the ar magic"},
		{"empty", nil, "", deb.ErrNotDeb, "the input is empty"},
		{"signing subkey", pkg, "gpg-subkey.sec.asc", ErrUnsupportedKey, "cannot check a .deb signature made by a subkey"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := key
			if tc.key != "" {
				k = readFixture(t, tc.key)
			}
			dir := t.TempDir()
			path := writeTemp(t, dir, "in.deb", tc.in)
			_, err := SignDebFile(bg, mustSigner(t, k, testNow), path)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) || !strings.HasPrefix(err.Error(), "sign "+path+": ") {
				t.Errorf("error %v; want %v with %q", err, tc.want, tc.msg)
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(after, tc.in) {
				t.Error("the input file changed")
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 1 {
				t.Errorf("files left behind: %v", entries)
			}
		})
	}
	if _, err := SignDebFile(bg, mustSigner(t, key, testNow), t.TempDir()); !errors.Is(err, deb.ErrNotDeb) {
		t.Errorf("a directory: %v", err)
	}
	if _, err := SignDebFile(bg, mustSigner(t, key, testNow), filepath.Join(t.TempDir(), "none.deb")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a missing file: %v", err)
	}
}

// TestSignDebFileSymlink signs through a symbolic link: the link stays.
func TestSignDebFileSymlink(t *testing.T) {
	t.Parallel()
	key := readFixture(t, "lampi-test.sec.asc")
	dir := t.TempDir()
	target := writeTemp(t, dir, "hi.deb", buildHi(t, deb.CompressGzip))
	if err := os.Chmod(target, 0o640); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.deb")
	if err := os.Symlink("hi.deb", link); err != nil {
		t.Fatal(err)
	}
	if _, err := SignDebFile(bg, mustSigner(t, key, testNow), link); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Lstat(link); err != nil || st.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the link was replaced: %v", err)
	}
	if st, err := os.Stat(target); err != nil || st.Mode().Perm() != 0o640 {
		t.Errorf("target mode: %v %v", st.Mode(), err)
	}
	if _, err := verifyFile(t, NewKeyring(key), target); err != nil {
		t.Error(err)
	}
}

// TestVerifyDebErrors: the failures a verifier must tell apart.
func TestVerifyDebErrors(t *testing.T) {
	t.Parallel()
	key := readFixture(t, "lampi-test.sec.asc")
	kr := NewKeyring(key)
	pkg := buildHi(t, deb.CompressGzip)
	sig := mustSign(t, key, testNow, pkg)
	signed := append(append([]byte{}, pkg...), arMember(t, DebOriginMember, sig)...)
	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"two signatures", append(append([]byte{}, signed...), arMember(t, DebOriginMember, sig)...), ErrMalformed},
		{"empty signature", append(append([]byte{}, pkg...), arMember(t, DebOriginMember, nil)...), ErrUnsigned},
		{"garbage signature", append(append([]byte{}, pkg...), arMember(t, DebOriginMember, []byte("not a signature"))...), ErrMalformed},
		{"armored signature", append(append([]byte{}, pkg...), arMember(t, DebOriginMember, armorEncode(armorSignature, sig))...), nil},
		{"signature of another package", append(append([]byte{}, pkg...), arMember(t, DebOriginMember, mustSign(t, key, testNow, buildHi(t, deb.CompressXZ)))...), ErrBadSignature},
		{"truncated signature member", signed[:len(signed)-10], deb.ErrTruncated},
		{"expired key", signedWith(t, readFixture(t, "expired.sec.asc"), pkg), ErrKeyExpired},
	} {
		kr := kr
		if tc.want == ErrKeyExpired {
			kr = NewKeyring(readFixture(t, "expired.sec.asc"))
		}
		_, err := VerifyDeb(bg, kr, bytes.NewReader(tc.in), int64(len(tc.in)), VerifyOptions{Now: at(testNow)})
		if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

// signedWith returns pkg with a _gpgorigin by k, made while k was valid.
func signedWith(t testing.TB, k *Key, pkg []byte) []byte {
	t.Helper()
	return append(append([]byte{}, pkg...), arMember(t, DebOriginMember, mustSign(t, k, fixtureTime.Add(time.Hour), pkg))...)
}
