package signing

import (
	"bytes"
	"errors"
	"testing"
)

// TestReadPublicKeyring: public keys are read from a binary keyring and
// from every armored block whatever text surrounds them; secret key
// material anywhere is ErrSecretKey; anything but key packets is
// ErrMalformed; what Write writes of the result is the public keys only.
func TestReadPublicKeyring(t *testing.T) {
	k := readFixture(t, "gpg-subkey.sec.asc")
	other := sharedKey(t, Ed25519)
	enc := func(k *Key, secret, armored bool) []byte { return keyBytes(t, k, secret, armored) }
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	text := []byte("\nSome words about the key.\n\n")
	for _, c := range []struct {
		name string
		data []byte
		want error // nil: readable, with keys wantKeys
		keys int
	}{
		{"binary", enc(k, false, false), nil, 1},
		{"binary two keys", cat(enc(k, false, false), enc(other, false, false)), nil, 2},
		{"armored with text around", cat(text, enc(k, false, true), text, enc(other, false, true), text), nil, 2},
		{"private block after text", cat(enc(k, false, true), text, enc(other, true, true)), ErrSecretKey, 0},
		{"private block first", cat(enc(other, true, true), enc(k, false, true)), ErrSecretKey, 0},
		{"binary secret after public", cat(enc(k, false, false), enc(other, true, false)), ErrSecretKey, 0},
		{"binary secret alone", enc(other, true, false), ErrSecretKey, 0},
		{"secret packets under a public armor header", armorEncode(armorPublicKey, enc(other, true, false)), ErrSecretKey, 0},
		{"armored secret after binary public", cat(enc(k, false, false), enc(other, true, true)), ErrSecretKey, 0},
		{"text after a binary keyring", cat(enc(k, false, false), text), ErrMalformed, 0},
		{"a signature block", armorEncode("PGP SIGNATURE", []byte{0x88, 0}), ErrMalformed, 0},
		{"a literal data packet", cat(enc(k, false, false), []byte{0xcb, 3, 'b', 0, 0}), ErrMalformed, 0},
		{"a truncated packet", enc(k, false, false)[:40], ErrMalformed, 0},
		{"nothing", []byte("no keys here\n"), ErrMalformed, 0},
		{"empty", nil, ErrMalformed, 0},
	} {
		kr, err := ReadPublicKeyring(bytes.NewReader(c.data))
		if c.want != nil {
			if !errors.Is(err, c.want) {
				t.Errorf("%s: %v, want %v", c.name, err, c.want)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if len(kr.Keys()) != c.keys {
			t.Errorf("%s: %d keys, want %d", c.name, len(kr.Keys()), c.keys)
		}
		for _, armored := range []bool{false, true} {
			var out bytes.Buffer
			if err := kr.Write(&out, armored); err != nil {
				t.Fatalf("%s: write: %v", c.name, err)
			}
			back, err := ReadPublicKeyring(&out)
			if err != nil || len(back.Keys()) != c.keys {
				t.Errorf("%s: written keyring (armored %v) reads back as %v, %v", c.name, armored, back, err)
			}
		}
	}
}

// FuzzReadPublicKeyring: arbitrary input is refused with ErrSecretKey or
// ErrMalformed, or yields keys whose written form holds no secret.
func FuzzReadPublicKeyring(f *testing.F) {
	k := readFixture(f, "gpg-subkey.sec.asc")
	for _, armored := range []bool{true, false} {
		for _, secret := range []bool{true, false} {
			f.Add(keyBytes(f, k, secret, armored))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		kr, err := ReadPublicKeyring(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrSecretKey) {
				t.Fatalf("error without a sentinel: %v", err)
			}
			return
		}
		var out bytes.Buffer
		if err := kr.Write(&out, false); err != nil {
			t.Fatalf("keys read cannot be written: %v", err)
		}
		if err := checkPublicPackets(out.Bytes()); err != nil {
			t.Fatalf("written public keys hold %v", err)
		}
	})
}
