package signing

import (
	"bytes"
	"errors"
	"testing"

	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
)

// TestCleartext: a .dsc clearsigned by the real gpg (dash-escaped lines,
// trailing blanks) reads back as its text; an unsigned file reads as is; a
// clearsigned file with a damaged frame is an error, not plain text.
func TestCleartext(t *testing.T) {
	testutil.Heavy(t, "clearsigns with the real gpg")
	g := newGnupg(t)
	g.run("--quick-generate-key", "Uploader <up@example.org>", "ed25519", "sign", "never")
	dsc := []byte("Format: 3.0 (quilt)\nSource: lamp\nVersion: 1.0-1\n-Odd: dash line\nFiles:\n 0123456789abcdef0123456789abcdef 3 lamp_1.0.orig.tar.gz\n")
	signed := g.run("--clearsign", "--output", "-", g.file("lamp.dsc", dsc))
	text, isSigned, err := Cleartext(signed)
	if err != nil || !isSigned || !bytes.Equal(text, dsc) {
		t.Fatalf("Cleartext(gpg --clearsign) = %q, %v, %v; want the original text, signed", text, isSigned, err)
	}
	text, isSigned, err = Cleartext(dsc)
	if err != nil || isSigned || !bytes.Equal(text, dsc) {
		t.Fatalf("Cleartext(unsigned) = %q, %v, %v", text, isSigned, err)
	}
	damaged := bytes.Replace(signed, []byte("-----BEGIN PGP SIGNATURE-----"), []byte("-----BEGIN PGP SIGNATURE----"), 1)
	if _, _, err := Cleartext(damaged); !errors.Is(err, ErrMalformed) {
		t.Fatalf("damaged frame: %v, want ErrMalformed", err)
	}
}
