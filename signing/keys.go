package signing

import (
	"bytes"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// maxKeyData bounds the size of a key or keyring file we read into memory.
const maxKeyData = 16 << 20

// Key is one OpenPGP key: a primary key with its user IDs and subkeys,
// either public only or with secret key material (possibly
// passphrase-protected, see [Key.Locked] and [Key.Unlock]).
type Key struct {
	e *openpgp.Entity
}

// Keyring is an ordered set of public keys that signatures are verified
// against, like the file named by apt's signed-by= option.
type Keyring struct {
	list openpgp.EntityList
}

// ReadKeyring reads one or more keys from r: a binary keyring (.gpg, as
// "gpg --export" writes it), or one or more ASCII-armored public or
// private key blocks (.asc). Secret key material, if any, is kept but not
// needed for verification. Errors wrap ErrMalformed.
func ReadKeyring(r io.Reader) (*Keyring, error) {
	data, err := readKeyData(r)
	if err != nil {
		return nil, err
	}
	list, err := parseKeys(data)
	if err != nil {
		return nil, err
	}
	return &Keyring{list: list}, nil
}

// readKeyData reads key data, at most maxKeyData bytes.
func readKeyData(r io.Reader) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxKeyData+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxKeyData {
		return nil, fmt.Errorf("%w: key data larger than %d MiB", ErrMalformed, maxKeyData>>20)
	}
	return data, nil
}

// ReadKey reads exactly one key from r (armored or binary, public or
// secret). A file holding several keys is an error: say which one to use
// by keeping only that one in the file.
func ReadKey(r io.Reader) (*Key, error) {
	kr, err := ReadKeyring(r)
	if err != nil {
		return nil, err
	}
	if len(kr.list) != 1 {
		fps := make([]string, len(kr.list))
		for i, e := range kr.list {
			fps[i] = fingerprint(e.PrimaryKey)
		}
		return nil, fmt.Errorf("%w: expected one key, found %d (%s); keep only the one to use", ErrMalformed, len(kr.list), strings.Join(fps, ", "))
	}
	return &Key{e: kr.list[0]}, nil
}

// parseKeys parses armored or binary key data.
func parseKeys(data []byte) (openpgp.EntityList, error) {
	if !isArmored(data) {
		if len(data) == 0 || data[0]&0x80 == 0 {
			return nil, fmt.Errorf("%w: neither an armored key ('-----BEGIN PGP …') nor a binary OpenPGP keyring", ErrMalformed)
		}
		return parseKeyPackets(data)
	}
	var list openpgp.EntityList
	for rest := data; isArmored(rest); {
		blk, next, err := armorDecode(rest)
		if err != nil {
			return nil, err
		}
		if blk.Type != armorPublicKey && blk.Type != armorSecretKey {
			return nil, fmt.Errorf("%w: found a %q block where a key was expected", ErrMalformed, blk.Type)
		}
		l, err := parseKeyPackets(blk.Data)
		if err != nil {
			return nil, err
		}
		list = append(list, l...)
		rest = next
	}
	return list, nil
}

func parseKeyPackets(data []byte) (list openpgp.EntityList, err error) {
	defer func() {
		// go-crypto is not fuzzed against every hostile packet sequence;
		// a panic while parsing is a malformed key, not a crash.
		if r := recover(); r != nil {
			list, err = nil, fmt.Errorf("%w: unparsable key packets", ErrMalformed)
		}
	}()
	list, err = openpgp.ReadKeyRing(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if len(list) == 0 {
		return nil, fmt.Errorf("%w: no usable key found", ErrMalformed)
	}
	return list, nil
}

// NewKeyring returns a keyring holding the public parts of keys.
func NewKeyring(keys ...*Key) *Keyring {
	kr := &Keyring{}
	for _, k := range keys {
		kr.list = append(kr.list, k.e)
	}
	return kr
}

// Keys returns the keys of the keyring in file order.
func (kr *Keyring) Keys() []*Key {
	out := make([]*Key, len(kr.list))
	for i, e := range kr.list {
		out[i] = &Key{e: e}
	}
	return out
}

// Write writes the public keys of kr to w, armored or as a binary
// keyring. Both forms work with apt's signed-by= and "gpgv --keyring"
// accepts the binary one.
func (kr *Keyring) Write(w io.Writer, armored bool) error {
	var b bytes.Buffer
	for _, e := range kr.list {
		if err := serializeEntity(&b, e, false); err != nil {
			return fmt.Errorf("key %s: %w", fingerprint(e.PrimaryKey), err)
		}
	}
	return writeMaybeArmored(w, armorPublicKey, b.Bytes(), armored)
}

// Fingerprint returns the primary key's fingerprint in upper-case hex,
// as gpg prints it.
func (k *Key) Fingerprint() string { return fingerprint(k.e.PrimaryKey) }

// KeyID returns the primary key's 64-bit key ID in upper-case hex.
func (k *Key) KeyID() string { return fmt.Sprintf("%016X", k.e.PrimaryKey.KeyId) }

// UserID returns the primary user ID ("Name <email>"), or "".
func (k *Key) UserID() string {
	if id := k.e.PrimaryIdentity(); id != nil {
		return id.Name
	}
	return ""
}

// String returns the fingerprint and the primary user ID.
func (k *Key) String() string {
	if uid := k.UserID(); uid != "" {
		return k.Fingerprint() + " (" + uid + ")"
	}
	return k.Fingerprint()
}

// IsSecret reports whether k holds secret key material for the primary
// key or any subkey (a gpg stub without the secret part does not count).
func (k *Key) IsSecret() bool {
	for _, p := range k.privateKeys() {
		if !p.Dummy() {
			return true
		}
	}
	return false
}

// Locked reports whether some secret key material of k is still
// encrypted with a passphrase.
func (k *Key) Locked() bool {
	for _, p := range k.privateKeys() {
		if !p.Dummy() && p.Encrypted {
			return true
		}
	}
	return false
}

// Unlock decrypts the passphrase-protected secret key material of k in
// memory (the file is untouched). It does nothing if k is not locked. An
// empty passphrase for a locked key is ErrNeedPassphrase; one that does not
// decrypt it is ErrWrongPassphrase.
func (k *Key) Unlock(passphrase []byte) error {
	if !k.Locked() {
		return nil
	}
	if len(passphrase) == 0 {
		return fmt.Errorf("key %s: %w; give the passphrase", k.Fingerprint(), ErrNeedPassphrase)
	}
	if err := k.e.DecryptPrivateKeys(passphrase); err != nil {
		return fmt.Errorf("key %s: %w (or the secret key is damaged)", k.Fingerprint(), ErrWrongPassphrase)
	}
	return nil
}

// WritePublic writes the public part of k (the key users put in
// /usr/share/keyrings), armored or binary.
func (k *Key) WritePublic(w io.Writer, armored bool) error {
	return NewKeyring(k).Write(w, armored)
}

// WriteSecret writes k with its secret key material, armored or binary.
// The material is written as it is held: still encrypted if k was never
// unlocked, in the clear if it was unlocked or never protected.
func (k *Key) WriteSecret(w io.Writer, armored bool) error {
	if !k.IsSecret() {
		return fmt.Errorf("key %s: %w", k.Fingerprint(), ErrNotSecretKey)
	}
	var b bytes.Buffer
	if err := serializeEntity(&b, k.e, true); err != nil {
		return fmt.Errorf("key %s: %w", k.Fingerprint(), err)
	}
	return writeMaybeArmored(w, armorSecretKey, b.Bytes(), armored)
}

func (k *Key) privateKeys() []*packet.PrivateKey {
	var out []*packet.PrivateKey
	if k.e.PrivateKey != nil {
		out = append(out, k.e.PrivateKey)
	}
	for _, s := range k.e.Subkeys {
		if s.PrivateKey != nil {
			out = append(out, s.PrivateKey)
		}
	}
	return out
}

func writeMaybeArmored(w io.Writer, typ string, data []byte, armored bool) error {
	if armored {
		data = armorEncode(typ, data)
	}
	_, err := w.Write(data)
	return err
}

// serializeEntity writes the transferable key e in a stable order (the
// primary identity first, then the others by name), with or without the
// secret key packets. Unlike go-crypto's SerializePrivate it never
// re-signs anything, so it needs neither a clock nor an unlocked key.
func serializeEntity(w io.Writer, e *openpgp.Entity, secret bool) error {
	var err error
	if secret && e.PrivateKey != nil {
		err = e.PrivateKey.Serialize(w)
	} else {
		err = e.PrimaryKey.Serialize(w)
	}
	if err != nil {
		return err
	}
	sigs := append(append([]*packet.Signature(nil), e.Revocations...), e.Signatures...)
	if err := serializeSigs(w, sigs); err != nil {
		return err
	}
	primary := e.PrimaryIdentity()
	ids := make([]*openpgp.Identity, 0, len(e.Identities))
	for _, id := range e.Identities {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool {
		if (ids[i] == primary) != (ids[j] == primary) {
			return ids[i] == primary
		}
		return ids[i].Name < ids[j].Name
	})
	for _, id := range ids {
		if err := id.UserId.Serialize(w); err != nil {
			return err
		}
		if err := serializeSigs(w, id.Signatures); err != nil {
			return err
		}
	}
	for _, s := range e.Subkeys {
		if secret && s.PrivateKey != nil {
			err = s.PrivateKey.Serialize(w)
		} else {
			err = s.PublicKey.Serialize(w)
		}
		if err != nil {
			return err
		}
		if err := serializeSigs(w, append(append([]*packet.Signature(nil), s.Revocations...), s.Sig)); err != nil {
			return err
		}
	}
	return nil
}

func serializeSigs(w io.Writer, sigs []*packet.Signature) error {
	for _, s := range sigs {
		if err := s.Serialize(w); err != nil {
			return err
		}
	}
	return nil
}

func fingerprint(pk *packet.PublicKey) string {
	return fmt.Sprintf("%X", pk.Fingerprint)
}
