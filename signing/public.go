package signing

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/ProtonMail/go-crypto/openpgp"
)

// ReadPublicKeyring reads key data that is to be published — a keyring
// file handed out to apt clients — the way "gpg --import" reads it: a
// binary keyring when the first byte is an OpenPGP packet header, else
// every ASCII-armored block in the data, whatever text lies before,
// between or after them (ReadKeyring stops at the first text).
//
// Data holding secret key material anywhere is refused with an error
// wrapping ErrSecretKey: a private key block, or a secret key or secret
// subkey packet in any block (whatever its armor header says) or in any
// position of a binary keyring. Anything else than the packets of public
// keys (user IDs, user attributes, signatures, gpg's trust packets) is
// refused with ErrMalformed, so nothing the check does not understand
// passes. Publish what [Keyring.Write] writes of the result, never the
// input: it holds the public keys only, whatever else the input held.
func ReadPublicKeyring(r io.Reader) (*Keyring, error) {
	data, err := readKeyData(r)
	if err != nil {
		return nil, err
	}
	if bytes.Contains(data, []byte("PRIVATE KEY BLOCK")) {
		return nil, fmt.Errorf("%w: the data holds a private key block; publish the output of 'lampi-pkg key export' (public keys only)", ErrSecretKey)
	}
	if len(data) > 0 && data[0]&0x80 != 0 {
		if err := checkPublicPackets(data); err != nil {
			return nil, err
		}
		list, err := parseKeyPackets(data)
		if err != nil {
			return nil, err
		}
		return &Keyring{list: list}, nil
	}
	var list openpgp.EntityList
	for rest := data; bytes.Contains(rest, []byte("-----BEGIN ")); {
		blk, next, err := armorDecode(rest)
		if err != nil {
			return nil, err
		}
		if blk.Type != armorPublicKey {
			return nil, fmt.Errorf("%w: found a %q block where public keys were expected", ErrMalformed, blk.Type)
		}
		if err := checkPublicPackets(blk.Data); err != nil {
			return nil, err
		}
		l, err := parseKeyPackets(blk.Data)
		if err != nil {
			return nil, err
		}
		list = append(list, l...)
		rest = next
	}
	if len(list) == 0 {
		return nil, fmt.Errorf("%w: neither a binary OpenPGP keyring nor an armored public key block ('-----BEGIN PGP PUBLIC KEY BLOCK-----')", ErrMalformed)
	}
	return &Keyring{list: list}, nil
}

// OpenPGP packet tags (RFC 4880 section 4.3) that make up public keys.
const (
	tagSignature     = 2
	tagSecretKey     = 5
	tagPublicKey     = 6
	tagSecretSubkey  = 7
	tagMarker        = 10
	tagTrust         = 12
	tagUserID        = 13
	tagPublicSubkey  = 14
	tagUserAttribute = 17
)

// checkPublicPackets walks the packet headers of data, without parsing
// the packets, and refuses secret key packets (ErrSecretKey) and every
// packet that is not part of a transferable public key (ErrMalformed):
// literal, compressed or encrypted data could hide anything.
func checkPublicPackets(data []byte) error {
	for off := 0; off < len(data); {
		tag, hdr, n, err := packetHeader(data[off:])
		if err != nil {
			return fmt.Errorf("%w: byte %d: %v", ErrMalformed, off, err)
		}
		switch tag {
		case tagSecretKey, tagSecretSubkey:
			return fmt.Errorf("%w: the data holds a secret key packet (at byte %d); publish the output of 'lampi-pkg key export' (public keys only)", ErrSecretKey, off)
		case tagSignature, tagPublicKey, tagMarker, tagTrust, tagUserID, tagPublicSubkey, tagUserAttribute:
		default:
			return fmt.Errorf("%w: byte %d: a packet of type %d, which is not part of a public key", ErrMalformed, off, tag)
		}
		if int64(n) > int64(len(data)-off-hdr) {
			return fmt.Errorf("%w: byte %d: the packet's %d bytes run past the end of the data", ErrMalformed, off, n)
		}
		off += hdr + int(n)
	}
	return nil
}

// packetHeader decodes the packet header at the start of b (old or new
// format) into the tag, the header's length and the body's length.
// Partial and indeterminate lengths, which only data packets use, are
// refused.
func packetHeader(b []byte) (tag, hdr int, n uint32, err error) {
	if b[0]&0x80 == 0 {
		return 0, 0, 0, fmt.Errorf("not an OpenPGP packet header (0x%02x)", b[0])
	}
	short := fmt.Errorf("the packet header is cut short")
	if b[0]&0x40 != 0 { // new format
		tag = int(b[0] & 0x3f)
		if len(b) < 2 {
			return 0, 0, 0, short
		}
		switch l := b[1]; {
		case l < 192:
			return tag, 2, uint32(l), nil
		case l < 224:
			if len(b) < 3 {
				return 0, 0, 0, short
			}
			return tag, 3, (uint32(l)-192)<<8 + uint32(b[2]) + 192, nil
		case l == 255:
			if len(b) < 6 {
				return 0, 0, 0, short
			}
			return tag, 6, binary.BigEndian.Uint32(b[2:6]), nil
		}
		return 0, 0, 0, fmt.Errorf("a partial body length, which no key packet has")
	}
	tag = int(b[0]>>2) & 0x0f
	switch b[0] & 3 {
	case 0:
		if len(b) < 2 {
			return 0, 0, 0, short
		}
		return tag, 2, uint32(b[1]), nil
	case 1:
		if len(b) < 3 {
			return 0, 0, 0, short
		}
		return tag, 3, uint32(binary.BigEndian.Uint16(b[1:3])), nil
	case 2:
		if len(b) < 5 {
			return 0, 0, 0, short
		}
		return tag, 5, binary.BigEndian.Uint32(b[1:5]), nil
	}
	return 0, 0, 0, fmt.Errorf("an indeterminate length, which no key packet has")
}
