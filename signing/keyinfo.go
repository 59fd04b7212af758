package signing

import (
	"fmt"
	"sort"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// Key status values reported by [Key.Info].
const (
	StatusValid       = "valid"
	StatusExpired     = "expired"
	StatusRevoked     = "revoked"
	StatusNotYetValid = "not yet valid"
)

// KeyInfo describes a key as "gpg --list-keys" would, evaluated at a given
// time. The JSON form is what "lampi-pkg key info --json" prints.
type KeyInfo struct {
	Fingerprint string     `json:"fingerprint"`
	KeyID       string     `json:"key_id"`
	Version     int        `json:"version"`
	Algorithm   string     `json:"algorithm"`
	Created     time.Time  `json:"created"`
	Expires     *time.Time `json:"expires,omitempty"`
	// Capabilities are gpg's letters: S sign, C certify, E encrypt,
	// A authenticate.
	Capabilities string   `json:"capabilities"`
	Status       string   `json:"status"`
	UserIDs      []string `json:"user_ids"`
	// Secret is true when the secret part of the primary key is present;
	// Protected when secret material is passphrase-protected.
	Secret    bool         `json:"secret"`
	Protected bool         `json:"protected"`
	Subkeys   []SubkeyInfo `json:"subkeys"`
	// SigningKey is the fingerprint of the (sub)key that would sign at the
	// time given to Info, or "" when none can.
	SigningKey string `json:"signing_key,omitempty"`
}

// SubkeyInfo describes one subkey.
type SubkeyInfo struct {
	Fingerprint  string     `json:"fingerprint"`
	KeyID        string     `json:"key_id"`
	Algorithm    string     `json:"algorithm"`
	Created      time.Time  `json:"created"`
	Expires      *time.Time `json:"expires,omitempty"`
	Capabilities string     `json:"capabilities"`
	Status       string     `json:"status"`
	Secret       bool       `json:"secret"`
}

// Info describes k as of time now.
func (k *Key) Info(now time.Time) KeyInfo {
	e := k.e
	self, _ := e.PrimarySelfSignature()
	info := KeyInfo{
		Fingerprint: k.Fingerprint(),
		KeyID:       k.KeyID(),
		Version:     e.PrimaryKey.Version,
		Algorithm:   algorithmName(e.PrimaryKey),
		Created:     e.PrimaryKey.CreationTime.UTC(),
		Expires:     expiry(e.PrimaryKey, self),
		Secret:      e.PrivateKey != nil && !e.PrivateKey.Dummy(),
		Protected:   k.Locked(),
		Status:      status(e.PrimaryKey, self, e.Revocations, now),
		UserIDs:     []string{},
		Subkeys:     []SubkeyInfo{},
	}
	if self != nil {
		info.Capabilities = capabilities(self)
	}
	if pid := e.PrimaryIdentity(); pid != nil {
		info.UserIDs = append(info.UserIDs, pid.Name)
	}
	var others []string
	for name, id := range e.Identities {
		if id != e.PrimaryIdentity() {
			others = append(others, name)
		}
	}
	sort.Strings(others)
	info.UserIDs = append(info.UserIDs, others...)
	for _, s := range e.Subkeys {
		st := status(s.PublicKey, s.Sig, s.Revocations, now)
		if info.Status != StatusValid {
			st = info.Status
		}
		info.Subkeys = append(info.Subkeys, SubkeyInfo{
			Fingerprint:  fingerprint(s.PublicKey),
			KeyID:        fmt.Sprintf("%016X", s.PublicKey.KeyId),
			Algorithm:    algorithmName(s.PublicKey),
			Created:      s.PublicKey.CreationTime.UTC(),
			Expires:      expiry(s.PublicKey, s.Sig),
			Capabilities: capabilities(s.Sig),
			Status:       st,
			Secret:       s.PrivateKey != nil && !s.PrivateKey.Dummy(),
		})
	}
	if sk, ok := e.SigningKey(now); ok {
		info.SigningKey = fingerprint(sk.PublicKey)
	}
	return info
}

// expiry returns when pk expires according to its self-signature sig.
func expiry(pk *packet.PublicKey, sig *packet.Signature) *time.Time {
	if sig == nil || sig.KeyLifetimeSecs == nil || *sig.KeyLifetimeSecs == 0 {
		return nil
	}
	t := pk.CreationTime.Add(time.Duration(*sig.KeyLifetimeSecs) * time.Second).UTC()
	return &t
}

func status(pk *packet.PublicKey, self *packet.Signature, revocations []*packet.Signature, now time.Time) string {
	switch {
	case len(revocations) > 0:
		return StatusRevoked
	case pk.CreationTime.After(now):
		return StatusNotYetValid
	case self == nil:
		return StatusExpired
	case pk.KeyExpired(self, now):
		return StatusExpired
	}
	return StatusValid
}

// capabilities returns gpg's capability letters for a self-signature.
func capabilities(sig *packet.Signature) string {
	if sig == nil || !sig.FlagsValid {
		return ""
	}
	s := ""
	if sig.FlagSign {
		s += "S"
	}
	if sig.FlagCertify {
		s += "C"
	}
	if sig.FlagEncryptCommunications || sig.FlagEncryptStorage {
		s += "E"
	}
	if sig.FlagAuthenticate {
		s += "A"
	}
	return s
}

// algorithmName names a public key algorithm as gpg does ("rsa4096",
// "ed25519", "cv25519", "nistp256").
func algorithmName(pk *packet.PublicKey) string {
	bits, _ := pk.BitLength()
	curve, _ := pk.Curve()
	switch pk.PubKeyAlgo {
	case packet.PubKeyAlgoRSA, packet.PubKeyAlgoRSASignOnly, packet.PubKeyAlgoRSAEncryptOnly:
		return fmt.Sprintf("rsa%d", bits)
	case packet.PubKeyAlgoDSA:
		return fmt.Sprintf("dsa%d", bits)
	case packet.PubKeyAlgoElGamal:
		return fmt.Sprintf("elg%d", bits)
	case packet.PubKeyAlgoEdDSA:
		switch curve {
		case packet.Curve25519:
			return "ed25519"
		case packet.Curve448:
			return "ed448"
		}
		return "eddsa-" + string(curve)
	case packet.PubKeyAlgoECDH:
		switch curve {
		case packet.Curve25519:
			return "cv25519"
		case packet.Curve448:
			return "cv448"
		}
		return curveName(curve)
	case packet.PubKeyAlgoECDSA:
		return curveName(curve)
	case packet.PubKeyAlgoEd25519:
		return "ed25519 (RFC 9580)"
	case packet.PubKeyAlgoEd448:
		return "ed448 (RFC 9580)"
	case packet.PubKeyAlgoX25519:
		return "x25519"
	case packet.PubKeyAlgoX448:
		return "x448"
	}
	return fmt.Sprintf("algorithm %d", pk.PubKeyAlgo)
}

func curveName(c packet.Curve) string {
	switch c {
	case packet.CurveNistP256:
		return "nistp256"
	case packet.CurveNistP384:
		return "nistp384"
	case packet.CurveNistP521:
		return "nistp521"
	case packet.CurveBrainpoolP256:
		return "brainpoolP256r1"
	case packet.CurveBrainpoolP384:
		return "brainpoolP384r1"
	case packet.CurveBrainpoolP512:
		return "brainpoolP512r1"
	}
	return string(c)
}

// gpgvCompatible reports why gpgv 2.2 (apt on Debian 12) cannot verify
// signatures made by pk, or "" if it can.
func gpgvCompatible(pk *packet.PublicKey) string {
	switch {
	case pk.Version != 4:
		return fmt.Sprintf("a v%d key", pk.Version)
	case pk.PubKeyAlgo == packet.PubKeyAlgoEd25519 || pk.PubKeyAlgo == packet.PubKeyAlgoEd448:
		return fmt.Sprintf("an RFC 9580 %s key (algorithm %d)", algorithmName(pk), pk.PubKeyAlgo)
	case pk.PubKeyAlgo >= packet.PubKeyAlgoMldsa65Ed25519:
		return "a post-quantum key"
	}
	return ""
}
