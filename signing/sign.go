package signing

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/lampi-pkg/lampi-pkg/internal/ctxio"
)

// Format is the form of a signature.
type Format int

// Signature formats.
const (
	// Clearsigned is the signed text with the signature appended, as in
	// an apt repository's InRelease.
	Clearsigned Format = iota + 1
	// DetachedArmored is an ASCII-armored detached signature, as in
	// Release.gpg.
	DetachedArmored
	// DetachedBinary is a binary detached signature, as in the
	// _gpgorigin member of a .deb signed for debsig-verify.
	DetachedBinary
)

// String names the format.
func (f Format) String() string {
	switch f {
	case Clearsigned:
		return "clearsigned"
	case DetachedArmored:
		return "detached armored"
	case DetachedBinary:
		return "detached binary"
	}
	return fmt.Sprintf("Format(%d)", int(f))
}

// SignFunc signs what it reads and returns the signature (or, for
// Clearsigned, the signed document). A remote signer plugs in by
// providing one.
type SignFunc func(r io.Reader) ([]byte, error)

// SignOptions configure a Signer.
type SignOptions struct {
	// Now returns the signing time; it is called once per signature and
	// decides which (sub)key is valid. Required: the package never reads
	// the clock.
	Now func() time.Time
	// Hash is the digest: crypto.SHA256, SHA384 or SHA512 (the default).
	Hash crypto.Hash
}

// Signer makes signatures with one secret key.
type Signer struct {
	key  *Key
	now  func() time.Time
	hash crypto.Hash
}

// NewSigner returns a Signer for k. It fails early, with the sentinel
// errors of this package, if k cannot sign at opts.Now(): a public key
// (ErrNotSecretKey), a locked key (ErrNeedPassphrase), an expired, revoked
// or not yet valid key, no signing-capable (sub)key, or a key gpgv 2.2
// cannot verify (ErrUnsupportedKey).
func NewSigner(k *Key, opts SignOptions) (*Signer, error) {
	if opts.Now == nil {
		return nil, errors.New("signing: SignOptions.Now is required")
	}
	h := opts.Hash
	switch h {
	case 0:
		h = crypto.SHA512
	case crypto.SHA256, crypto.SHA384, crypto.SHA512:
	default:
		return nil, fmt.Errorf("signing: %w: %v; use SHA-256, SHA-384 or SHA-512", ErrWeakHash, h)
	}
	s := &Signer{key: k, now: opts.Now, hash: h}
	if _, err := s.signingKey(opts.Now()); err != nil {
		return nil, err
	}
	return s, nil
}

// Key returns the key the signer signs with.
func (s *Signer) Key() *Key { return s.key }

// SigningFingerprint returns the fingerprint of the (sub)key that signs
// at the signer's current time.
func (s *Signer) SigningFingerprint() (string, error) {
	k, err := s.signingKey(s.now())
	if err != nil {
		return "", err
	}
	return fingerprint(k.PublicKey), nil
}

// Sign reads r to its end and returns its signature in format f (for
// Clearsigned: the whole signed document). ctx cancels a long read.
func (s *Signer) Sign(ctx context.Context, r io.Reader, f Format) ([]byte, error) {
	switch f {
	case Clearsigned:
		return s.Clearsign(ctx, r)
	case DetachedArmored:
		return s.SignDetachedArmored(ctx, r)
	case DetachedBinary:
		return s.SignDetached(ctx, r)
	}
	return nil, fmt.Errorf("signing: unknown format %v", f)
}

// Func returns s as a SignFunc producing format f.
func (s *Signer) Func(ctx context.Context, f Format) SignFunc {
	return func(r io.Reader) ([]byte, error) { return s.Sign(ctx, r, f) }
}

// SignDetached returns a binary detached signature (signature type
// "binary document") of everything read from r.
func (s *Signer) SignDetached(ctx context.Context, r io.Reader) ([]byte, error) {
	return s.signPacket(packet.SigTypeBinary, ctxio.Reader(ctx, r))
}

// SignDetachedArmored returns an armored detached signature of
// everything read from r, as "gpg --armor --detach-sign" writes it for
// Release.gpg.
func (s *Signer) SignDetachedArmored(ctx context.Context, r io.Reader) ([]byte, error) {
	sig, err := s.SignDetached(ctx, r)
	if err != nil {
		return nil, err
	}
	return armorEncode(armorSignature, sig), nil
}

// Clearsign returns the text read from r as a clearsigned document, as
// "gpg --clearsign" writes InRelease: lines starting with '-' are
// dash-escaped, trailing blanks are removed (they are never part of a
// cleartext signature), and the armored signature carries its CRC-24
// line. Text with a NUL byte or a line longer than gpg accepts is
// ErrNotText.
func (s *Signer) Clearsign(ctx context.Context, r io.Reader) ([]byte, error) {
	data, err := io.ReadAll(ctxio.Reader(ctx, r))
	if err != nil {
		return nil, err
	}
	body, canonical, err := cleartextBody(data)
	if err != nil {
		return nil, err
	}
	sig, err := s.signPacket(packet.SigTypeText, bytes.NewReader(canonical))
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	out.WriteString(clearsignBegin + "\nHash: " + hashName(s.hash) + "\n\n")
	out.Write(body)
	out.Write(armorEncode(armorSignature, sig))
	return out.Bytes(), nil
}

// signPacket hashes r (already canonical for text signatures) and
// returns the serialized signature packet.
func (s *Signer) signPacket(t packet.SignatureType, r io.Reader) ([]byte, error) {
	now := s.now().Truncate(time.Second)
	k, err := s.signingKey(now)
	if err != nil {
		return nil, err
	}
	no := false
	cfg := &packet.Config{
		DefaultHash: s.hash,
		Time:        func() time.Time { return now },
		// Deterministic signatures (gpg's behaviour): same key, time and
		// input give the same bytes, so repository builds reproduce.
		NonDeterministicSignaturesViaNotation: &no,
	}
	pub := k.PublicKey
	sig := &packet.Signature{
		Version:           pub.Version,
		SigType:           t,
		PubKeyAlgo:        pub.PubKeyAlgo,
		Hash:              s.hash,
		CreationTime:      now,
		IssuerKeyId:       &pub.KeyId,
		IssuerKeyVersion:  uint8(pub.Version),
		IssuerFingerprint: pub.Fingerprint,
	}
	h, err := sig.PrepareSign(cfg)
	if err != nil {
		return nil, fmt.Errorf("sign with key %s: %w", fingerprint(pub), err)
	}
	if _, err := io.Copy(h, r); err != nil {
		return nil, err
	}
	if err := sig.Sign(h, k.PrivateKey, cfg); err != nil {
		return nil, fmt.Errorf("sign with key %s: %w", fingerprint(pub), err)
	}
	var b bytes.Buffer
	if err := sig.Serialize(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// signingKey picks the (sub)key that signs at now: go-crypto's choice (the
// newest valid signing subkey, else the primary key), or, when the secret
// part of that one is missing (a gpg stub), another valid one that has it.
func (s *Signer) signingKey(now time.Time) (openpgp.Key, error) {
	e := s.key.e
	if !s.key.IsSecret() {
		return openpgp.Key{}, fmt.Errorf("key %s: %w: it holds only public key material; use the secret key (e.g. 'gpg --export-secret-keys')", s.key.Fingerprint(), ErrNotSecretKey)
	}
	k, ok := e.SigningKey(now)
	if !ok {
		return openpgp.Key{}, diagnoseSigning(s.key, now)
	}
	if !usable(k.PrivateKey) {
		ids := []uint64{e.PrimaryKey.KeyId}
		for _, sk := range e.Subkeys {
			ids = append(ids, sk.PublicKey.KeyId)
		}
		found := false
		for _, id := range ids {
			if c, ok := e.SigningKeyById(now, id); ok && usable(c.PrivateKey) {
				k, found = c, true
				break
			}
		}
		if !found {
			return openpgp.Key{}, fmt.Errorf("key %s: %w: the secret part of signing key %s is missing (a gpg stub?)", s.key.Fingerprint(), ErrNotSecretKey, fingerprint(k.PublicKey))
		}
	}
	if k.PrivateKey.Encrypted {
		return openpgp.Key{}, fmt.Errorf("key %s: %w; unlock it with its passphrase first", s.key.Fingerprint(), ErrNeedPassphrase)
	}
	if why := gpgvCompatible(k.PublicKey); why != "" {
		return openpgp.Key{}, fmt.Errorf("key %s: %w: signing key %s is %s, which gpgv 2.2 and apt on Debian 12 reject; use a v4 ed25519 (EdDSA) or RSA key", s.key.Fingerprint(), ErrUnsupportedKey, fingerprint(k.PublicKey), why)
	}
	return k, nil
}

func usable(p *packet.PrivateKey) bool { return p != nil && !p.Dummy() }

// diagnoseSigning explains why no (sub)key of k can sign at now.
func diagnoseSigning(k *Key, now time.Time) error {
	e := k.e
	fp := k.Fingerprint()
	at := now.UTC().Format(time.RFC3339)
	self, pid := e.PrimarySelfSignature()
	switch {
	case e.Revoked(now):
		return fmt.Errorf("key %s: %w", fp, ErrKeyRevoked)
	case self == nil:
		return fmt.Errorf("key %s: %w: no valid self-signed user ID", fp, ErrNoSigningKey)
	case e.PrimaryKey.CreationTime.After(now):
		return fmt.Errorf("key %s: %w: created %s, after the signing time %s (check the clock)", fp, ErrKeyNotYetValid, e.PrimaryKey.CreationTime.UTC().Format(time.RFC3339), at)
	case e.PrimaryKey.KeyExpired(self, now):
		return fmt.Errorf("key %s: %w on %s (signing time %s); extend it (e.g. 'gpg --quick-set-expire') or make a new key", fp, ErrKeyExpired, expiry(e.PrimaryKey, self).Format(time.RFC3339), at)
	case self.SigExpired(now):
		return fmt.Errorf("key %s: %w: its self-signature expired", fp, ErrKeyExpired)
	case pid != nil && pid.Revoked(now):
		return fmt.Errorf("key %s: %w: its primary user ID %q is revoked", fp, ErrKeyRevoked, pid.Name)
	}
	var revoked, expired []string
	for _, s := range e.Subkeys {
		if s.Sig == nil || !s.Sig.FlagsValid || !s.Sig.FlagSign {
			continue
		}
		switch {
		case s.Revoked(now):
			revoked = append(revoked, fingerprint(s.PublicKey))
		case s.PublicKey.KeyExpired(s.Sig, now) || s.Sig.SigExpired(now):
			expired = append(expired, fingerprint(s.PublicKey))
		}
	}
	switch {
	case len(expired) > 0:
		return fmt.Errorf("key %s: %w: signing subkey %s expired (signing time %s)", fp, ErrKeyExpired, expired[0], at)
	case len(revoked) > 0:
		return fmt.Errorf("key %s: %w: signing subkey %s is revoked", fp, ErrKeyRevoked, revoked[0])
	}
	return fmt.Errorf("key %s: %w: neither the primary key (capabilities %q) nor a subkey may sign", fp, ErrNoSigningKey, capabilities(self))
}

// hashName is the OpenPGP name of a hash, as in the clearsign Hash header.
func hashName(h crypto.Hash) string {
	switch h {
	case crypto.MD5:
		return "MD5"
	case crypto.SHA1:
		return "SHA1"
	case crypto.RIPEMD160:
		return "RIPEMD160"
	case crypto.SHA224:
		return "SHA224"
	case crypto.SHA256:
		return "SHA256"
	case crypto.SHA384:
		return "SHA384"
	case crypto.SHA512:
		return "SHA512"
	case crypto.SHA3_256:
		return "SHA3-256"
	case crypto.SHA3_512:
		return "SHA3-512"
	}
	return h.String()
}
