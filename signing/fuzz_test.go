package signing

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// Fuzz targets for every parser this package owns: armor, cleartext
// framework, signature packets, keys. Whatever the input, no panic, and
// every error wraps one of the package's sentinels.

func fuzzSigner(f *testing.F) (*Signer, *Keyring) {
	k := readFixture(f, "lampi-test.sec.asc")
	return mustSigner(f, k, testNow), NewKeyring(k)
}

func isSentinel(err error) bool {
	for _, s := range []error{ErrMalformed, ErrBadSignature, ErrUnknownKey, ErrUnsigned, ErrWeakHash, ErrKeyExpired, ErrKeyRevoked, ErrKeyNotYetValid, ErrSignatureExpired} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// FuzzVerifyClearsigned feeds arbitrary bytes as an InRelease file.
func FuzzVerifyClearsigned(f *testing.F) {
	s, kr := fuzzSigner(f)
	for _, in := range []string{sampleRelease, "", "-", "a\n-b\n"} {
		out, err := s.Clearsign(bg, strings.NewReader(in))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(out)
		f.Add(bytes.Replace(out, []byte("\n="), []byte("\n"), 1))
	}
	f.Add([]byte(clearsignBegin + "\n\n" + signatureBegin + "\n\n=AAAA\n-----END PGP SIGNATURE-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		sig, text, err := VerifyClearsigned(bg, kr, bytes.NewReader(data), VerifyOptions{Now: at(testNow)})
		if err != nil {
			if !isSentinel(err) {
				t.Fatalf("error without a sentinel: %v", err)
			}
			return
		}
		if sig == nil || text == nil {
			t.Fatal("no error and no result")
		}
	})
}

// FuzzVerifyDetached feeds arbitrary bytes as a Release.gpg file.
func FuzzVerifyDetached(f *testing.F) {
	s, kr := fuzzSigner(f)
	for _, format := range []Format{DetachedArmored, DetachedBinary} {
		out, err := s.Sign(bg, strings.NewReader(sampleRelease), format)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(out)
	}
	f.Add([]byte{0x88, 0x00})
	f.Fuzz(func(t *testing.T, sig []byte) {
		_, err := VerifyDetached(bg, kr, strings.NewReader(sampleRelease), bytes.NewReader(sig), VerifyOptions{Now: at(testNow)})
		if err != nil && !isSentinel(err) {
			t.Fatalf("error without a sentinel: %v", err)
		}
	})
}

// FuzzReadKeyring feeds arbitrary bytes as a key file.
func FuzzReadKeyring(f *testing.F) {
	k := readFixture(f, "gpg-subkey.sec.asc")
	for _, armored := range []bool{true, false} {
		var b bytes.Buffer
		k.WriteSecret(&b, armored)
		f.Add(b.Bytes())
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		kr, err := ReadKeyring(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error without ErrMalformed: %v", err)
			}
			return
		}
		for _, k := range kr.Keys() {
			k.Info(testNow)
			var b bytes.Buffer
			if err := k.WritePublic(&b, true); err != nil {
				t.Fatalf("a key read cannot be written: %v", err)
			}
		}
	})
}

// FuzzArmor checks the armor codec: encoding round-trips, and decoding
// arbitrary input either fails with ErrMalformed or yields a block whose
// re-encoding decodes to the same data.
func FuzzArmor(f *testing.F) {
	f.Add([]byte("hello"), []byte(armorEncode(armorSignature, []byte("hello"))))
	f.Add([]byte{}, []byte("-----BEGIN X-----\nKey: v\n\nAAAA\n=AAAA\n-----END X-----\n"))
	f.Fuzz(func(t *testing.T, payload, armored []byte) {
		if len(payload) > 0 {
			blk, rest, err := armorDecode(armorEncode(armorPublicKey, payload))
			if err != nil || !bytes.Equal(blk.Data, payload) || len(rest) != 0 || blk.Type != armorPublicKey {
				t.Fatalf("round trip of %x: %v", payload, err)
			}
		}
		blk, _, err := armorDecode(armored)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error without ErrMalformed: %v", err)
			}
			return
		}
		again, _, err := armorDecode(armorEncode(blk.Type, blk.Data))
		if err != nil || !bytes.Equal(again.Data, blk.Data) {
			t.Fatalf("re-encoding a decoded block fails: %v", err)
		}
	})
}

// FuzzClearsignRoundTrip: whatever text we clearsign, we verify it and get
// back exactly the text the signature covers.
func FuzzClearsignRoundTrip(f *testing.F) {
	s, kr := fuzzSigner(f)
	for _, in := range []string{sampleRelease, "", "-", "- \n", "a \r\n\tb\t", "\n\n"} {
		f.Add([]byte(in))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		doc, err := s.Clearsign(bg, bytes.NewReader(in))
		if errors.Is(err, ErrNotText) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		_, text, err := VerifyClearsigned(bg, kr, bytes.NewReader(doc), VerifyOptions{Now: at(testNow)})
		if err != nil {
			t.Fatalf("our own clearsigned %q does not verify: %v\n%s", in, err, doc)
		}
		if want := normalized(in); !bytes.Equal(text, want) {
			t.Fatalf("text %q, want %q", text, want)
		}
	})
}
