package signing

import "errors"

// Sentinel errors. Every error returned by this package that matches one of
// these wraps it with context (which key, which file part, what to do), so
// callers test with errors.Is and users read the whole message. No error
// ever contains a passphrase or secret key material.
var (
	// ErrMalformed: the input is not well-formed OpenPGP data: corrupt
	// armor (bad base64, CRC mismatch, missing END line), unparsable
	// packets, or a clearsigned file with unsigned text around it.
	ErrMalformed = errors.New("malformed OpenPGP data")
	// ErrWrongPassphrase: the passphrase does not decrypt the secret key.
	ErrWrongPassphrase = errors.New("wrong passphrase")
	// ErrNeedPassphrase: the secret key is passphrase-protected and no
	// passphrase was given.
	ErrNeedPassphrase = errors.New("secret key is passphrase-protected")
	// ErrKeyExpired: the key (or the only usable subkey) is expired at the
	// time of signing or verification.
	ErrKeyExpired = errors.New("key expired")
	// ErrKeyNotYetValid: the key was created after the time of signing or
	// verification (a clock problem, or a wrong injected time).
	ErrKeyNotYetValid = errors.New("key not valid yet")
	// ErrKeyRevoked: the key or the signing subkey is revoked.
	ErrKeyRevoked = errors.New("key revoked")
	// ErrNoSigningKey: neither the primary key nor any subkey may sign.
	ErrNoSigningKey = errors.New("no signing-capable key")
	// ErrSecretKey: data that is to be published (a keyring served to
	// apt clients) holds secret key material.
	ErrSecretKey = errors.New("secret key material in public key data")
	// ErrNotSecretKey: a public key was given where a secret key is needed,
	// or the secret part of the signing key is missing (a gpg stub).
	ErrNotSecretKey = errors.New("not a secret key")
	// ErrUnsupportedKey: the key cannot be used here, e.g. a v6 or
	// RFC 9580 Ed25519 key that gpgv 2.2 (apt on Debian 12) rejects.
	ErrUnsupportedKey = errors.New("unsupported key")
	// ErrBadSignature: a signature by a known key does not match the data,
	// or is otherwise invalid (created in the future, before its key).
	ErrBadSignature = errors.New("bad signature")
	// ErrSignatureExpired: the signature carries a lifetime that has passed.
	ErrSignatureExpired = errors.New("signature expired")
	// ErrWeakHash: the signature uses a digest apt rejects (MD5, SHA-1,
	// RIPEMD-160).
	ErrWeakHash = errors.New("weak digest algorithm")
	// ErrUnknownKey: no key of the keyring made the signature.
	ErrUnknownKey = errors.New("signed by an unknown key")
	// ErrUnsigned: the input carries no signature at all.
	ErrUnsigned = errors.New("not signed")
	// ErrNotText: the input cannot be clearsigned so that gpgv verifies it
	// (a NUL byte, or a line longer than gpg accepts).
	ErrNotText = errors.New("input is not clearsignable text")
)
