// Package signing makes and checks the OpenPGP signatures of an apt
// repository and its packages: InRelease (clearsigned), Release.gpg
// (detached, armored) and binary detached signatures, with keys that gpgv
// 2.2 (apt on Debian 12) and debsig-verify accept.
//
// # Basics
//
// Keys are read with [ReadKey] (exactly one key: a secret key to sign
// with) or [ReadKeyring] (the public keys to verify against, as apt's
// signed-by= file), armored (.asc) or binary (.gpg), public or secret. A
// passphrase-protected secret key is [Key.Locked] until [Key.Unlock].
// [GenerateKey] makes a v4 key with ONE primary key that signs and
// certifies (ed25519 as EdDSA algorithm 22, or RSA ≥ 3072 bits);
// [Key.WritePublic] exports what users install in /usr/share/keyrings.
//
// A [Signer] signs with a key at a time given by SignOptions.Now (the
// package never reads the clock, so tests and repository builds are
// reproducible: the same key, time and input give the same bytes). It
// picks the (sub)key valid at that time as gpg would — the newest valid
// signing subkey, else the primary key — so keys made by gpg with a
// separate signing subkey work too:
//
//	s, err := signing.NewSigner(key, signing.SignOptions{Now: now})
//	inRelease, err := s.Clearsign(ctx, bytes.NewReader(release))
//	releaseGPG, err := s.SignDetachedArmored(ctx, bytes.NewReader(release))
//
// [Signer.Func] adapts a signer to a [SignFunc], the shape a remote
// signer can provide instead.
//
// [VerifyClearsigned] and [VerifyDetached] check signatures the way gpgv
// does for apt: the signature must be good and by a key of the keyring,
// the key valid (not expired, revoked or from the future) at
// VerifyOptions.Now, the digest not weak (MD5, SHA-1 and RIPEMD-160 are
// rejected). They return the signer's fingerprints; VerifyClearsigned
// also returns the signed text, the only part of an InRelease file to
// trust.
//
// Package signatures follow debsigs: [SignDeb] and [SignDebFile] add an
// origin signature (the "_gpgorigin" ar member, a detached signature over
// debian-binary, the control member and the data member) to a .deb,
// streaming and, for files, atomically; signing again replaces it. Only a
// primary key may sign a package, since debsig-verify cannot check a
// subkey's signature. [VerifyDeb] checks the origin signature;
// [NewDebsigPolicy] writes the policy and keyring debsig-verify needs on a
// device.
//
// Errors wrap the sentinels of errors.go (ErrWrongPassphrase,
// ErrKeyExpired, ErrBadSignature, ErrUnknownKey, …) with the key's
// fingerprint and what to do; none ever contains a passphrase.
//
// # Caveats
//
// gpgv 2.2 rejects v6 keys and RFC 9580 Ed25519 (algorithm 27): such
// keys load and verify here, but a Signer refuses them (ErrUnsupportedKey).
//
// Armor is written and read by this package, not by go-crypto: go-crypto's
// clearsign output lacks the CRC-24 line, and gpgv 2.2 then fails on every
// signature whose length is a multiple of 3 bytes (no base64 padding: it
// reads on into the END line, "invalid radix64 character 2D skipped", and
// exits non-zero although it also prints "Good signature"), e.g. every
// RSA-3072 signature without go-crypto's salt notation; go-crypto's reader
// never checks the CRC. Here the CRC is
// always written and, when present, checked.
//
// Clearsigning follows gpg: the final line end of the input is not signed
// (it becomes the line end before the signature), so "a" and "a\n" give
// the same document. Unlike gpg it also removes trailing blanks from the
// written lines (they are never covered by a cleartext signature). It
// refuses text with a NUL byte or a line longer than 19998 bytes as
// written, which gpgv reports as a BAD signature.
//
// Signatures are deterministic (no go-crypto salt notation), as gpg makes
// them. Dashes that start a line are escaped; "From " lines are not.
//
// debsig-verify 0.28 (Debian 12) cannot verify a signature made by a
// subkey: sign .deb files with a key whose primary key signs, as
// GenerateKey makes them.
package signing
