package signing

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/lampi-pkg/lampi-pkg/internal/ctxio"
)

// maxSignatureData bounds a detached signature file.
const maxSignatureData = 1 << 20

// VerifyOptions configure verification.
type VerifyOptions struct {
	// Now returns the verification time: keys must be valid (not expired,
	// not revoked, already created) then, as gpgv checks them. Required.
	Now func() time.Time
}

// Signature describes a good signature.
type Signature struct {
	// Fingerprint is the fingerprint of the (sub)key that made the
	// signature; PrimaryFingerprint that of its primary key (equal when
	// the primary key signed). Both are upper-case hex, as gpg prints.
	Fingerprint        string    `json:"fingerprint"`
	PrimaryFingerprint string    `json:"primary_fingerprint"`
	UserID             string    `json:"user_id,omitempty"`
	Created            time.Time `json:"created"`
	Hash               string    `json:"hash"`
	Algorithm          string    `json:"algorithm"`
}

// VerifyDetached checks the detached signature read from sig (armored or
// binary) over the data read from signed, as "gpgv --keyring K sig signed"
// and apt (for Release.gpg) do, and returns the good signature. signed is
// streamed, never held in memory.
//
// Every signature by a key of kr must be good (a bad one is
// ErrBadSignature, as apt treats it); signatures by other keys are
// ignored, but at least one must be by a key of kr (else ErrUnknownKey).
// The key must be valid at opts.Now (ErrKeyExpired, ErrKeyRevoked,
// ErrKeyNotYetValid), the digest strong (ErrWeakHash), the signature not
// made in the future (ErrBadSignature) nor expired (ErrSignatureExpired).
func VerifyDetached(ctx context.Context, kr *Keyring, signed, sig io.Reader, opts VerifyOptions) (*Signature, error) {
	if opts.Now == nil {
		return nil, errors.New("signing: VerifyOptions.Now is required")
	}
	raw, err := io.ReadAll(io.LimitReader(sig, maxSignatureData+1))
	if err != nil {
		return nil, err
	}
	if len(raw) > maxSignatureData {
		return nil, fmt.Errorf("%w: signature larger than %d MiB", ErrMalformed, maxSignatureData>>20)
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, fmt.Errorf("%w: the signature is empty", ErrUnsigned)
	}
	if isArmored(raw) {
		blk, _, err := armorDecode(raw)
		if err != nil {
			return nil, err
		}
		if blk.Type != armorSignature {
			return nil, fmt.Errorf("%w: found a %q block where a %q was expected", ErrMalformed, blk.Type, armorSignature)
		}
		raw = blk.Data
	}
	return verify(kr, ctxio.Reader(ctx, signed), raw, nil, opts.Now())
}

// VerifyClearsigned checks a clearsigned document read from r (an
// InRelease file) like VerifyDetached does, and returns the good
// signature and the signed text (dash-escapes and trailing blanks
// removed, every line ending in LF, as apt extracts it): the only part of
// the file to trust. Text before
// the BEGIN line or after the signature, headers other than "Hash:" and a
// Hash header that does not match the signature are errors.
func VerifyClearsigned(ctx context.Context, kr *Keyring, r io.Reader, opts VerifyOptions) (*Signature, []byte, error) {
	if opts.Now == nil {
		return nil, nil, errors.New("signing: VerifyOptions.Now is required")
	}
	data, err := io.ReadAll(io.LimitReader(ctxio.Reader(ctx, r), maxClearsigned+1))
	if err != nil {
		return nil, nil, err
	}
	if len(data) > maxClearsigned {
		return nil, nil, fmt.Errorf("%w: clearsigned file larger than %d MiB", ErrMalformed, maxClearsigned>>20)
	}
	ct, err := parseClearsigned(data)
	if err != nil {
		return nil, nil, err
	}
	s, err := verify(kr, bytes.NewReader(ct.Canonical), ct.Signature, ct.Hashes, opts.Now())
	if err != nil {
		return nil, nil, err
	}
	return s, ct.Text, nil
}

// candidate is one (signature, key) pair to check.
type candidate struct {
	sig *packet.Signature
	key openpgp.Key
	h   hash.Hash
}

// verify checks the signature packets sigData over signed (canonical text
// for a clearsigned document); hashHeader lists the clearsign "Hash:"
// names, if any.
func verify(kr *Keyring, signed io.Reader, sigData []byte, hashHeader []string, now time.Time) (*Signature, error) {
	sigs, err := parseSignatures(sigData)
	if err != nil {
		return nil, err
	}
	var (
		cands    []*candidate
		writers  []io.Writer
		unknown  []string
		firstErr error
	)
	for _, sig := range sigs {
		keys := keysFor(kr, sig)
		if len(keys) == 0 {
			unknown = append(unknown, issuerString(sig))
			continue
		}
		if err := checkDigest(sig, hashHeader); err != nil {
			firstErr = firstOf(firstErr, err)
			continue
		}
		for _, k := range keys {
			h, err := sig.PrepareVerify()
			if err != nil {
				firstErr = firstOf(firstErr, fmt.Errorf("%w: %v", ErrMalformed, err))
				continue
			}
			c := &candidate{sig: sig, key: k, h: h}
			cands = append(cands, c)
			if sig.SigType == packet.SigTypeText {
				writers = append(writers, openpgp.NewCanonicalTextHash(h))
			} else {
				writers = append(writers, h)
			}
		}
	}
	if len(cands) == 0 {
		if firstErr != nil {
			return nil, firstErr
		}
		return nil, fmt.Errorf("%w: issuer %s is not in the keyring (%s)", ErrUnknownKey, strings.Join(unknown, ", "), keyringSummary(kr))
	}
	if _, err := io.Copy(io.MultiWriter(writers...), signed); err != nil {
		return nil, err
	}
	var good *Signature
	for _, c := range cands {
		if err := c.key.PublicKey.VerifySignature(c.h, c.sig); err != nil {
			if len(keysFor(kr, c.sig)) > 1 {
				continue // a key ID collision: another candidate may match
			}
			return nil, fmt.Errorf("%w by key %s: the signed data or the signature was changed", ErrBadSignature, fingerprint(c.key.PublicKey))
		}
		if err := checkValidity(c, now); err != nil {
			firstErr = firstOf(firstErr, err)
			continue
		}
		if good == nil {
			good = describe(c)
		}
	}
	if good == nil {
		if firstErr == nil {
			firstErr = fmt.Errorf("%w: no signature matches", ErrBadSignature)
		}
		return nil, firstErr
	}
	return good, nil
}

// firstOf keeps the first error.
func firstOf(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// parseSignatures reads the signature packets of a detached signature.
func parseSignatures(data []byte) (sigs []*packet.Signature, err error) {
	defer func() {
		if r := recover(); r != nil {
			sigs, err = nil, fmt.Errorf("%w: unparsable signature packets", ErrMalformed)
		}
	}()
	pr := packet.NewReader(bytes.NewReader(data))
	var unsupported []string
	for {
		p, err := pr.NextWithUnsupported()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		switch p := p.(type) {
		case *packet.Signature:
			if p.SigType != packet.SigTypeBinary && p.SigType != packet.SigTypeText {
				return nil, fmt.Errorf("%w: signature of type %#x is not a document signature", ErrMalformed, uint8(p.SigType))
			}
			sigs = append(sigs, p)
		case *packet.UnsupportedPacket:
			unsupported = append(unsupported, p.Error.Error())
		default:
			return nil, fmt.Errorf("%w: a %T packet where only signatures belong", ErrMalformed, p)
		}
	}
	if len(sigs) == 0 {
		if len(unsupported) > 0 {
			return nil, fmt.Errorf("%w: unsupported signature (%s)", ErrMalformed, unsupported[0])
		}
		return nil, fmt.Errorf("%w: no signature packet", ErrUnsigned)
	}
	return sigs, nil
}

// keysFor returns the keys of kr that may have made sig: matching key ID
// (and fingerprint when the signature names one) and allowed to sign. A
// primary key without key flags counts as signing-capable, as in gpg.
func keysFor(kr *Keyring, sig *packet.Signature) []openpgp.Key {
	var id uint64
	switch {
	case sig.IssuerKeyId != nil:
		id = *sig.IssuerKeyId
	case len(sig.IssuerFingerprint) == 20:
		for _, b := range sig.IssuerFingerprint[12:] {
			id = id<<8 | uint64(b)
		}
	default:
		return nil
	}
	var out []openpgp.Key
	for _, k := range kr.list.KeysById(id) {
		if len(sig.IssuerFingerprint) > 0 && !bytes.Equal(sig.IssuerFingerprint, k.PublicKey.Fingerprint) {
			continue
		}
		if !k.PublicKey.PubKeyAlgo.CanSign() || k.SelfSignature == nil {
			continue
		}
		isPrimary := k.PublicKey == k.Entity.PrimaryKey
		flags := k.SelfSignature
		if (flags.FlagsValid && !flags.FlagSign) || (!flags.FlagsValid && !isPrimary) {
			continue
		}
		out = append(out, k)
	}
	return out
}

// weakHashes are the digests apt refuses in signatures.
var weakHashes = map[crypto.Hash]bool{crypto.MD5: true, crypto.SHA1: true, crypto.RIPEMD160: true}

func checkDigest(sig *packet.Signature, hashHeader []string) error {
	name := hashName(sig.Hash)
	if weakHashes[sig.Hash] {
		return fmt.Errorf("%w: signature by %s uses %s, which apt rejects; re-sign with SHA-256 or stronger", ErrWeakHash, issuerString(sig), name)
	}
	if len(hashHeader) > 0 {
		for _, h := range hashHeader {
			if h == name {
				return nil
			}
		}
		return fmt.Errorf("%w: the clearsign header announces %s but the signature uses %s", ErrBadSignature, strings.Join(hashHeader, ","), name)
	}
	return nil
}

// checkValidity applies gpgv's checks to a cryptographically good
// signature: key and subkey neither revoked nor expired at now, signature
// not from the future, not older than its key, not expired, no unknown
// critical notation.
func checkValidity(c *candidate, now time.Time) error {
	e, pub, sig := c.key.Entity, c.key.PublicKey, c.sig
	fp := fingerprint(pub)
	bySubkey := pub != e.PrimaryKey
	self, _ := e.PrimarySelfSignature()
	switch {
	case e.Revoked(now):
		return fmt.Errorf("signature by %s: %w", fingerprint(e.PrimaryKey), ErrKeyRevoked)
	case bySubkey && c.key.Revoked(now):
		return fmt.Errorf("signature by subkey %s: %w", fp, ErrKeyRevoked)
	case self == nil:
		return fmt.Errorf("signature by %s: %w: its key has no valid self-signature", fp, ErrUnknownKey)
	case e.PrimaryKey.CreationTime.After(now) || pub.CreationTime.After(now):
		return fmt.Errorf("signature by %s: %w: the key was created after %s (check the clock)", fp, ErrKeyNotYetValid, now.UTC().Format(time.RFC3339))
	case e.PrimaryKey.KeyExpired(self, now):
		return fmt.Errorf("signature by %s: %w on %s", fp, ErrKeyExpired, expiry(e.PrimaryKey, self).Format(time.RFC3339))
	case bySubkey && (pub.KeyExpired(c.key.SelfSignature, now) || c.key.SelfSignature.SigExpired(now)):
		return fmt.Errorf("signature by subkey %s: %w", fp, ErrKeyExpired)
	case sig.CreationTime.After(now):
		return fmt.Errorf("%w by %s: made %s, in the future of %s (check the clock)", ErrBadSignature, fp, sig.CreationTime.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	case sig.CreationTime.Before(pub.CreationTime):
		return fmt.Errorf("%w by %s: made before the key was created", ErrBadSignature, fp)
	case sig.SigExpired(now):
		return fmt.Errorf("signature by %s: %w", fp, ErrSignatureExpired)
	}
	for _, n := range sig.Notations {
		if n.IsCritical {
			return fmt.Errorf("%w by %s: unknown critical notation %q", ErrBadSignature, fp, n.Name)
		}
	}
	return nil
}

func describe(c *candidate) *Signature {
	s := &Signature{
		Fingerprint:        fingerprint(c.key.PublicKey),
		PrimaryFingerprint: fingerprint(c.key.Entity.PrimaryKey),
		Created:            c.sig.CreationTime.UTC(),
		Hash:               hashName(c.sig.Hash),
		Algorithm:          algorithmName(c.key.PublicKey),
	}
	if id := c.key.Entity.PrimaryIdentity(); id != nil {
		s.UserID = id.Name
	}
	return s
}

func issuerString(sig *packet.Signature) string {
	switch {
	case len(sig.IssuerFingerprint) > 0:
		return fmt.Sprintf("%X", sig.IssuerFingerprint)
	case sig.IssuerKeyId != nil:
		return fmt.Sprintf("%016X", *sig.IssuerKeyId)
	}
	return "(no issuer)"
}

func keyringSummary(kr *Keyring) string {
	if len(kr.list) == 0 {
		return "the keyring is empty"
	}
	fps := make([]string, len(kr.list))
	for i, e := range kr.list {
		fps[i] = fingerprint(e.PrimaryKey)
	}
	return "the keyring holds " + strings.Join(fps, ", ")
}
