package signing

import (
	"bytes"
	"crypto"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

func TestGenerateKey(t *testing.T) {
	for _, algo := range []Algorithm{Ed25519, RSA4096} {
		k := sharedKey(t, algo)
		info := k.Info(testNow)
		if info.Version != 4 || info.Algorithm != string(algo) || info.Capabilities != "SC" || len(info.Subkeys) != 0 {
			t.Errorf("%s: %+v, want a v4 %s primary key that signs and certifies, no subkey", algo, info, algo)
		}
		if k.e.PrimaryKey.PubKeyAlgo != packet.PubKeyAlgoEdDSA && algo == Ed25519 {
			t.Errorf("ed25519 key has algorithm %d, want EdDSA legacy (22)", k.e.PrimaryKey.PubKeyAlgo)
		}
		if info.SigningKey != k.Fingerprint() || info.Status != StatusValid || info.Expires != nil || !info.Secret || info.Protected {
			t.Errorf("%s: %+v", algo, info)
		}
		for _, armored := range []bool{true, false} {
			if got := roundTrip(t, k, true, armored); got.Fingerprint() != k.Fingerprint() || !got.IsSecret() {
				t.Errorf("%s: secret round trip (armored %v) lost the key", algo, armored)
			}
			if got := roundTrip(t, k, false, armored); got.Fingerprint() != k.Fingerprint() || got.IsSecret() {
				t.Errorf("%s: public round trip (armored %v) changed the key", algo, armored)
			}
		}
	}
	k, err := GenerateKey(GenerateOptions{Email: "e@lampi.example", Now: testNow, Lifetime: 2 * 365 * 24 * time.Hour, Algorithm: RSA3072})
	if err != nil {
		t.Fatal(err)
	}
	if info := k.Info(testNow); info.Algorithm != "rsa3072" || info.Expires == nil || !info.Expires.Equal(testNow.Add(2*365*24*time.Hour)) {
		t.Errorf("rsa3072 with lifetime: %+v", info)
	}
	for _, bad := range []GenerateOptions{
		{Name: "x"},
		{Now: testNow},
		{Name: "a <b>", Now: testNow},
		{Name: "x", Email: "not-an-address", Now: testNow},
		{Name: "x", Now: testNow, Algorithm: "dsa1024"},
		{Name: "x", Now: testNow, Lifetime: -time.Hour},
	} {
		if _, err := GenerateKey(bad); err == nil {
			t.Errorf("GenerateKey(%+v) succeeded", bad)
		}
	}
}

func TestPassphrase(t *testing.T) {
	k, err := GenerateKey(GenerateOptions{Name: "P", Now: testNow, Passphrase: []byte("correct horse")})
	if err != nil {
		t.Fatal(err)
	}
	k = roundTrip(t, k, true, true)
	if !k.Locked() || !k.Info(testNow).Protected {
		t.Fatal("protected key is not Locked after reading it back")
	}
	if _, err := NewSigner(k, SignOptions{Now: at(testNow)}); !errors.Is(err, ErrNeedPassphrase) {
		t.Errorf("NewSigner on a locked key: %v, want ErrNeedPassphrase", err)
	}
	if err := k.Unlock(nil); !errors.Is(err, ErrNeedPassphrase) {
		t.Errorf("Unlock(nil): %v, want ErrNeedPassphrase", err)
	}
	err = k.Unlock([]byte("wrong horse"))
	if !errors.Is(err, ErrWrongPassphrase) {
		t.Errorf("Unlock(wrong): %v, want ErrWrongPassphrase", err)
	}
	if strings.Contains(err.Error(), "horse") {
		t.Errorf("error shows the passphrase: %v", err)
	}
	if err := k.Unlock([]byte("correct horse")); err != nil {
		t.Fatal(err)
	}
	if _, err := NewSigner(k, SignOptions{Now: at(testNow)}); err != nil {
		t.Errorf("NewSigner after Unlock: %v", err)
	}
}

// TestSignerRefusesBadKeys: every key that cannot sign gets its sentinel.
func TestSignerRefusesBadKeys(t *testing.T) {
	fresh := func(life time.Duration) *Key {
		k, err := GenerateKey(GenerateOptions{Name: "B", Now: testNow, Lifetime: life})
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	cfg := &packet.Config{Time: at(testNow)}
	revoked := fresh(0)
	if err := revoked.e.RevokeKey(packet.KeyCompromised, "lost", cfg); err != nil {
		t.Fatal(err)
	}
	certOnly := fresh(0)
	for _, id := range certOnly.e.Identities {
		id.SelfSignature.FlagSign = false
		if err := id.SelfSignature.SignUserId(id.UserId.Id, certOnly.e.PrimaryKey, certOnly.e.PrivateKey, cfg); err != nil {
			t.Fatal(err)
		}
	}
	v6, err := openpgp.NewEntity("V6", "", "v6@lampi.example", &packet.Config{V6Keys: true, Algorithm: packet.PubKeyAlgoEd25519, Time: at(testNow)})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		key  *Key
		now  time.Time
		want error
	}{
		{"expired", fresh(24 * time.Hour), testNow.Add(48 * time.Hour), ErrKeyExpired},
		{"not yet valid", fresh(0), testNow.Add(-time.Minute), ErrKeyNotYetValid},
		{"revoked", roundTrip(t, revoked, true, true), testNow, ErrKeyRevoked},
		{"certify only", roundTrip(t, certOnly, true, false), testNow, ErrNoSigningKey},
		{"public key", roundTrip(t, fresh(0), false, true), testNow, ErrNotSecretKey},
		{"v6 key", &Key{e: v6}, testNow, ErrUnsupportedKey},
	}
	for _, c := range cases {
		_, err := NewSigner(c.key, SignOptions{Now: at(c.now)})
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		} else if !strings.Contains(err.Error(), c.key.Fingerprint()) {
			t.Errorf("%s: error %q does not name the key", c.name, err)
		}
	}
	if _, err := NewSigner(sharedKey(t, Ed25519), SignOptions{Now: at(testNow), Hash: crypto.SHA1}); !errors.Is(err, ErrWeakHash) {
		t.Errorf("SHA-1: %v, want ErrWeakHash", err)
	}
	if _, err := NewSigner(sharedKey(t, Ed25519), SignOptions{}); err == nil {
		t.Error("NewSigner without Now succeeded")
	}
}

// TestReadKeyErrors: corrupt or wrong input is ErrMalformed, naming what
// is wrong.
func TestReadKeyErrors(t *testing.T) {
	var armored bytes.Buffer
	if err := sharedKey(t, Ed25519).WriteSecret(&armored, true); err != nil {
		t.Fatal(err)
	}
	a := armored.String()
	lines := strings.Split(a, "\n")
	flipped := []byte(a)
	flipped[len(lines[0])+len(lines[1])+10] ^= 0x01 // inside the base64
	var two bytes.Buffer
	two.WriteString(a)
	sharedKey(t, RSA4096).WritePublic(&two, true)
	cases := map[string]struct {
		data string
		want string
	}{
		"empty":         {"", "neither"},
		"text":          {"hello world\n", "neither"},
		"flipped byte":  {string(flipped), "CRC-24"},
		"truncated":     {a[:len(a)/2], "ends before"},
		"bad base64":    {strings.Replace(a, lines[2][:4], "!!!!", 1), "radix-64"},
		"signature":     {"-----BEGIN PGP SIGNATURE-----\n\nAAAA\n-----END PGP SIGNATURE-----\n", "where a key was expected"},
		"garbage bytes": {"\x99\x01\x02garbage", "malformed"},
		"two keys":      {two.String(), "expected one key, found 2"},
	}
	for name, c := range cases {
		_, err := ReadKey(strings.NewReader(c.data))
		if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want ErrMalformed mentioning %q", name, err, c.want)
		}
	}
}

func TestKeyringWrite(t *testing.T) {
	ed, rsa := sharedKey(t, Ed25519), sharedKey(t, RSA4096)
	for _, armored := range []bool{true, false} {
		var b bytes.Buffer
		if err := NewKeyring(ed, rsa).Write(&b, armored); err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b.Bytes(), []byte("PRIVATE")) {
			t.Error("public keyring holds a private key block")
		}
		kr, err := ReadKeyring(&b)
		if err != nil {
			t.Fatal(err)
		}
		keys := kr.Keys()
		if len(keys) != 2 || keys[0].Fingerprint() != ed.Fingerprint() || keys[1].Fingerprint() != rsa.Fingerprint() || keys[0].IsSecret() {
			t.Errorf("armored=%v: read back %v", armored, keys)
		}
	}
}
