package signing

import (
	"bytes"
	"crypto"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// craftSig makes a binary detached signature of data by k with the packet
// API, after mod changed its fields: signatures our Signer refuses to make.
func craftSig(t testing.TB, k *Key, data string, mod func(*packet.Signature)) []byte {
	t.Helper()
	pub := k.e.PrimaryKey
	sig := &packet.Signature{
		Version: 4, SigType: packet.SigTypeBinary, PubKeyAlgo: pub.PubKeyAlgo, Hash: crypto.SHA256,
		CreationTime: testNow, IssuerKeyId: &pub.KeyId, IssuerFingerprint: pub.Fingerprint,
	}
	mod(sig)
	no := false
	cfg := &packet.Config{Time: at(sig.CreationTime), NonDeterministicSignaturesViaNotation: &no}
	h, err := sig.PrepareSign(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.Write([]byte(data))
	if err := sig.Sign(h, k.e.PrivateKey, cfg); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := sig.Serialize(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestVerifyDetachedErrors(t *testing.T) {
	ed, rsa := sharedKey(t, Ed25519), sharedKey(t, RSA4096)
	kr := NewKeyring(ed)
	good := craftSig(t, ed, sampleRelease, func(*packet.Signature) {})
	byRSA := craftSig(t, rsa, sampleRelease, func(*packet.Signature) {})
	expiring := craftSig(t, ed, sampleRelease, func(s *packet.Signature) { life := uint32(60); s.SigLifetimeSecs = &life })
	var pubKey bytes.Buffer
	ed.WritePublic(&pubKey, false)
	cases := []struct {
		name    string
		kr      *Keyring
		signed  string
		sig     []byte
		now     time.Time
		want    error
		mention string
	}{
		{"good", kr, sampleRelease, good, testNow, nil, ""},
		{"good, armored", kr, sampleRelease, armorEncode(armorSignature, good), testNow, nil, ""},
		{"changed data", kr, sampleRelease + "x", good, testNow, ErrBadSignature, ed.Fingerprint()},
		{"unknown key", kr, sampleRelease, byRSA, testNow, ErrUnknownKey, rsa.Fingerprint()},
		{"unknown + good", kr, sampleRelease, append(bytes.Clone(byRSA), good...), testNow, nil, ""},
		{"bad + good", NewKeyring(ed, rsa), sampleRelease, append(craftSig(t, rsa, "other", func(*packet.Signature) {}), good...), testNow, ErrBadSignature, rsa.Fingerprint()},
		{"sha1", kr, sampleRelease, craftSig(t, ed, sampleRelease, func(s *packet.Signature) { s.Hash = crypto.SHA1 }), testNow, ErrWeakHash, "SHA1"},
		{"from the future", kr, sampleRelease, good, testNow.Add(-time.Minute), ErrBadSignature, "future"},
		{"signature expired", kr, sampleRelease, expiring, testNow.Add(time.Hour), ErrSignatureExpired, ""},
		{"key not yet valid", kr, sampleRelease, good, testNow.Add(-2 * time.Hour), ErrKeyNotYetValid, ""},
		{"empty", kr, sampleRelease, nil, testNow, ErrUnsigned, ""},
		{"a key, not a signature", kr, sampleRelease, pubKey.Bytes(), testNow, ErrMalformed, "only signatures"},
		{"corrupt armor", kr, sampleRelease, bytes.Replace(armorEncode(armorSignature, good), []byte("\n="), []byte("\n=A"), 1), testNow, ErrMalformed, ""},
		{"wrong armor type", kr, sampleRelease, armorEncode("PGP MESSAGE", good), testNow, ErrMalformed, "PGP MESSAGE"},
	}
	for _, c := range cases {
		s, err := VerifyDetached(bg, c.kr, strings.NewReader(c.signed), bytes.NewReader(c.sig), VerifyOptions{Now: at(c.now)})
		switch {
		case c.want == nil && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want == nil && s.Fingerprint != ed.Fingerprint():
			t.Errorf("%s: signer %s, want %s", c.name, s.Fingerprint, ed.Fingerprint())
		case c.want != nil && !errors.Is(err, c.want):
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		case c.want != nil && !strings.Contains(err.Error(), c.mention):
			t.Errorf("%s: %q does not mention %q", c.name, err, c.mention)
		}
	}
	if _, err := VerifyDetached(bg, kr, strings.NewReader(""), bytes.NewReader(good), VerifyOptions{}); err == nil {
		t.Error("VerifyDetached without Now succeeded")
	}
}

// TestVerifyKeyState: a signature by a key that is expired or revoked at
// verification time is refused, as gpgv reports it to apt.
func TestVerifyKeyState(t *testing.T) {
	k, err := GenerateKey(GenerateOptions{Name: "S", Now: testNow.Add(-time.Hour), Lifetime: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	sig, err := mustSigner(t, k, testNow).SignDetached(bg, strings.NewReader(sampleRelease))
	if err != nil {
		t.Fatal(err)
	}
	verify := func(k *Key, now time.Time) error {
		_, err := VerifyDetached(bg, NewKeyring(k), strings.NewReader(sampleRelease), bytes.NewReader(sig), VerifyOptions{Now: at(now)})
		return err
	}
	if err := verify(k, testNow); err != nil {
		t.Fatal(err)
	}
	if err := verify(k, testNow.Add(48*time.Hour)); !errors.Is(err, ErrKeyExpired) {
		t.Errorf("expired key: %v, want ErrKeyExpired", err)
	}
	if err := k.e.RevokeKey(packet.KeySuperseded, "", &packet.Config{Time: at(testNow)}); err != nil {
		t.Fatal(err)
	}
	if err := verify(roundTrip(t, k, false, false), testNow.Add(time.Minute)); !errors.Is(err, ErrKeyRevoked) {
		t.Errorf("revoked key: %v, want ErrKeyRevoked", err)
	}
}

func TestVerifyClearsignedErrors(t *testing.T) {
	k := sharedKey(t, Ed25519)
	kr := NewKeyring(k)
	doc, err := mustSigner(t, k, testNow).Clearsign(bg, strings.NewReader(sampleRelease))
	if err != nil {
		t.Fatal(err)
	}
	d := string(doc)
	detached, _ := mustSigner(t, k, testNow).SignDetachedArmored(bg, strings.NewReader(sampleRelease))
	cases := []struct {
		name, doc string
		want      error
	}{
		{"leading blank lines", "\n \n" + d, nil},
		{"CRLF", strings.ReplaceAll(d, "\n", "\r\n"), nil},
		{"plain Release", sampleRelease, ErrUnsigned},
		{"empty", "", ErrUnsigned},
		{"detached signature", string(detached), ErrUnsigned},
		{"text before", "Origin: evil\n" + d, ErrMalformed},
		{"text after", d + "Origin: evil\n", ErrMalformed},
		{"second header", strings.Replace(d, "Hash: SHA512\n", "Hash: SHA512\nComment: x\n", 1), ErrMalformed},
		{"hash header lies", strings.Replace(d, "Hash: SHA512", "Hash: SHA256", 1), ErrBadSignature},
		{"undashed line", strings.Replace(d, "\n - a line", "\n-a line", 1), ErrMalformed},
		{"changed text", strings.Replace(d, "Suite: stable", "Suite: stabl3", 1), ErrBadSignature},
		{"no signature block", d[:strings.Index(d, signatureBegin)], ErrMalformed},
		{"unterminated armor", d[:strings.Index(d, "-----END")], ErrMalformed},
	}
	for _, c := range cases {
		s, text, err := VerifyClearsigned(bg, kr, strings.NewReader(c.doc), VerifyOptions{Now: at(testNow)})
		if c.want == nil {
			if err != nil || string(text) != sampleRelease || s.Fingerprint != k.Fingerprint() {
				t.Errorf("%s: %v, text %q", c.name, err, text)
			}
			continue
		}
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}
