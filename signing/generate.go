package signing

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/ProtonMail/go-crypto/openpgp/s2k"
)

// Algorithm is a key algorithm GenerateKey can make.
type Algorithm string

// Algorithms for GenerateKey. Ed25519 is the EdDSA "legacy" algorithm 22
// of RFC 4880bis that gpgv 2.2 understands, not RFC 9580's algorithm 27.
const (
	Ed25519 Algorithm = "ed25519"
	RSA3072 Algorithm = "rsa3072"
	RSA4096 Algorithm = "rsa4096"
)

// Algorithms lists the algorithms GenerateKey accepts, default first.
var Algorithms = []Algorithm{Ed25519, RSA4096, RSA3072}

// GenerateOptions say what key GenerateKey makes.
type GenerateOptions struct {
	// Name, Email and Comment make the user ID "Name (Comment) <Email>".
	// At least Name or Email is required; none may hold "()<>" or NUL.
	Name, Email, Comment string
	// Algorithm defaults to Ed25519.
	Algorithm Algorithm
	// Lifetime after which the key expires; 0 means never. It is stored
	// in whole seconds.
	Lifetime time.Duration
	// Now is the key's creation time (and the time of its
	// self-signature). Required: the package never reads the clock.
	Now time.Time
	// Passphrase, if not empty, protects the secret key material
	// (AES-256, iterated and salted SHA-256 S2K, which gpg 2.2 reads).
	Passphrase []byte
}

// s2kCount is the S2K iteration count for new protected keys: go-crypto's
// default, around 50 ms to unlock on a small machine.
const s2kCount = 16777216

// GenerateKey makes a new v4 secret key that gpgv 2.2 and debsig-verify
// accept: ONE primary key that may sign and certify, with one user ID and
// no subkeys (debsig-verify 0.28 cannot verify a signature made by a
// subkey). With a Passphrase the key comes back locked: [Key.WriteSecret]
// writes it protected, and [Key.Unlock] is needed before signing with it.
func GenerateKey(opts GenerateOptions) (*Key, error) {
	if opts.Now.IsZero() {
		return nil, errors.New("generate key: GenerateOptions.Now is required")
	}
	if strings.TrimSpace(opts.Name) == "" && strings.TrimSpace(opts.Email) == "" {
		return nil, errors.New("generate key: a name or an e-mail address is required for the user ID")
	}
	for _, f := range []string{opts.Name, opts.Email, opts.Comment} {
		if strings.ContainsAny(f, "()<>\x00") {
			return nil, fmt.Errorf("generate key: %q: the user ID fields cannot contain ( ) < > or NUL", f)
		}
	}
	if opts.Email != "" && !strings.Contains(opts.Email, "@") {
		return nil, fmt.Errorf("generate key: %q is not an e-mail address", opts.Email)
	}
	if opts.Lifetime < 0 || opts.Lifetime.Seconds() > math.MaxUint32 {
		return nil, fmt.Errorf("generate key: lifetime %v out of range (0 for never, at most 136 years)", opts.Lifetime)
	}
	if opts.Lifetime > 0 && opts.Lifetime < time.Second {
		return nil, fmt.Errorf("generate key: lifetime %v is shorter than a second", opts.Lifetime)
	}
	now := opts.Now.UTC().Truncate(time.Second)
	no := false
	cfg := &packet.Config{
		DefaultHash:     crypto.SHA512,
		DefaultCipher:   packet.CipherAES256,
		Time:            func() time.Time { return now },
		KeyLifetimeSecs: uint32(opts.Lifetime / time.Second),
		V6Keys:          false,
		Curve:           packet.Curve25519,
		S2KConfig:       &s2k.Config{S2KMode: s2k.IteratedSaltedS2K, Hash: crypto.SHA256, S2KCount: s2kCount},
		// Deterministic self-signatures, as gpg makes them.
		NonDeterministicSignaturesViaNotation: &no,
	}
	var e *openpgp.Entity
	switch algo := opts.Algorithm; algo {
	case Ed25519, "":
		// NewEntity always adds an encryption subkey; an ed25519 one costs
		// nothing to make, so make it and drop it.
		cfg.Algorithm = packet.PubKeyAlgoEdDSA
		var err error
		e, err = openpgp.NewEntity(opts.Name, opts.Comment, opts.Email, cfg)
		if err != nil {
			return nil, fmt.Errorf("generate %s key: %w", Ed25519, err)
		}
		e.Subkeys = nil
	case RSA3072, RSA4096:
		// Generating a throwaway RSA subkey would double the (slow) work:
		// build the entity around one RSA key instead.
		bits := 4096
		if algo == RSA3072 {
			bits = 3072
		}
		rk, err := rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			return nil, fmt.Errorf("generate %s key: %w", algo, err)
		}
		// RFC 9580 wants p < q; the packet writes Primes[1] as p.
		if rk.Primes[0].Cmp(rk.Primes[1]) < 0 {
			rk.Primes[0], rk.Primes[1] = rk.Primes[1], rk.Primes[0]
			rk.Precomputed = rsa.PrecomputedValues{}
			rk.Precompute()
		}
		priv := packet.NewSignerPrivateKey(now, rk)
		e = &openpgp.Entity{PrimaryKey: &priv.PublicKey, PrivateKey: priv, Identities: map[string]*openpgp.Identity{}}
		if err := e.AddUserId(opts.Name, opts.Comment, opts.Email, cfg); err != nil {
			return nil, fmt.Errorf("generate %s key: %w", algo, err)
		}
	default:
		return nil, fmt.Errorf("generate key: unknown algorithm %q (use %s)", algo, joinAlgorithms())
	}
	k := &Key{e: e}
	if len(opts.Passphrase) > 0 {
		if err := e.EncryptPrivateKeys(opts.Passphrase, cfg); err != nil {
			return nil, fmt.Errorf("generate key: protect secret key: %w", err)
		}
	}
	return k, nil
}

func joinAlgorithms() string {
	s := make([]string, len(Algorithms))
	for i, a := range Algorithms {
		s[i] = string(a)
	}
	return strings.Join(s, ", ")
}
