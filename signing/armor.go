package signing

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strings"
)

// ASCII armor (RFC 4880 section 6), written and read by this package rather
// than by go-crypto: go-crypto's clearsign writer omits the CRC-24 line,
// which makes gpgv 2.2 fail on some signatures, and its armor reader never
// checks the CRC. We always write the checksum and verify it when present.

// Armor block types.
const (
	armorSignature = "PGP SIGNATURE"
	armorPublicKey = "PGP PUBLIC KEY BLOCK"
	armorSecretKey = "PGP PRIVATE KEY BLOCK"
)

const (
	armorLineLen = 64
	crc24Init    = 0xb704ce
	crc24Poly    = 0x1864cfb
)

// crc24 is the OpenPGP armor checksum (RFC 4880 section 6.1).
func crc24(data []byte) uint32 {
	crc := uint32(crc24Init)
	for _, b := range data {
		crc ^= uint32(b) << 16
		for range 8 {
			crc <<= 1
			if crc&0x1000000 != 0 {
				crc ^= crc24Poly
			}
		}
	}
	return crc & 0xffffff
}

// armorEncode returns data as an armored block of the given type: no
// headers, 64-character lines, and the CRC-24 line gpgv 2.2 relies on.
func armorEncode(typ string, data []byte) []byte {
	var b bytes.Buffer
	b.WriteString("-----BEGIN " + typ + "-----\n\n")
	enc := base64.StdEncoding.EncodeToString(data)
	for len(enc) > armorLineLen {
		b.WriteString(enc[:armorLineLen])
		b.WriteByte('\n')
		enc = enc[armorLineLen:]
	}
	if enc != "" {
		b.WriteString(enc)
		b.WriteByte('\n')
	}
	crc := crc24(data)
	b.WriteByte('=')
	b.WriteString(base64.StdEncoding.EncodeToString([]byte{byte(crc >> 16), byte(crc >> 8), byte(crc)}))
	b.WriteString("\n-----END " + typ + "-----\n")
	return b.Bytes()
}

// armorBlock is one decoded armored block.
type armorBlock struct {
	Type    string
	Headers map[string]string
	Data    []byte
}

// isArmored reports whether data starts, after white space, with an armor
// header line.
func isArmored(data []byte) bool {
	return bytes.HasPrefix(bytes.TrimLeft(data, " \t\r\n"), []byte("-----BEGIN "))
}

// nextLine splits off the first line of data, without its line ending.
func nextLine(data []byte) (line, rest []byte) {
	i := bytes.IndexByte(data, '\n')
	if i < 0 {
		return data, nil
	}
	return bytes.TrimSuffix(data[:i], []byte{'\r'}), data[i+1:]
}

// armorDecode decodes the first armored block in data and returns it with
// the data after its END line. Lines before the BEGIN line are skipped, as
// gpg does. Bad base64, a checksum mismatch, a missing or mismatched END
// line are errors wrapping ErrMalformed.
func armorDecode(data []byte) (*armorBlock, []byte, error) {
	var line []byte
	rest := data
	lineNo := 0
	for {
		if len(rest) == 0 {
			return nil, data, fmt.Errorf("%w: no armored block (no '-----BEGIN PGP …-----' line)", ErrMalformed)
		}
		line, rest = nextLine(rest)
		lineNo++
		line = bytes.TrimSpace(line)
		if bytes.HasPrefix(line, []byte("-----BEGIN ")) && bytes.HasSuffix(line, []byte("-----")) && len(line) > 16 {
			break
		}
	}
	blk := &armorBlock{Type: string(line[11 : len(line)-5]), Headers: map[string]string{}}
	end := "-----END " + blk.Type + "-----"
	// Header lines ("Key: value") up to a blank line. Base64 never holds a
	// colon, so a line without one starts the body even if the blank line
	// is missing.
	var body []byte
	for {
		if len(rest) == 0 {
			return nil, data, fmt.Errorf("%w: armor ends before the %q line", ErrMalformed, end)
		}
		line, rest = nextLine(rest)
		lineNo++
		t := bytes.TrimSpace(line)
		if len(t) == 0 {
			break
		}
		k, v, ok := strings.Cut(string(t), ":")
		if !ok {
			body = t
			break
		}
		blk.Headers[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	var b64 bytes.Buffer
	var crc []byte
	for {
		if body == nil {
			if len(rest) == 0 {
				return nil, data, fmt.Errorf("%w: armor ends before the %q line", ErrMalformed, end)
			}
			line, rest = nextLine(rest)
			lineNo++
			body = bytes.TrimSpace(line)
		}
		t := body
		body = nil
		switch {
		case string(t) == end:
			return finishArmor(blk, b64.Bytes(), crc, rest)
		case bytes.HasPrefix(t, []byte("-----")):
			return nil, data, fmt.Errorf("%w: line %d: %q where %q was expected", ErrMalformed, lineNo, trunc(string(t)), end)
		case crc != nil:
			return nil, data, fmt.Errorf("%w: line %d: data after the armor checksum line", ErrMalformed, lineNo)
		case len(t) == 5 && t[0] == '=':
			crc = t[1:]
		case len(t) == 0:
			// gpg tolerates blank lines inside the body.
		default:
			if i := bytes.IndexFunc(t, func(r rune) bool { return !isBase64Char(r) }); i >= 0 {
				return nil, data, fmt.Errorf("%w: line %d: invalid radix-64 character %q", ErrMalformed, lineNo, t[i])
			}
			b64.Write(t)
		}
	}
}

func finishArmor(blk *armorBlock, b64, crc, rest []byte) (*armorBlock, []byte, error) {
	raw, err := base64.StdEncoding.DecodeString(string(b64))
	if err != nil {
		return nil, nil, fmt.Errorf("%w: invalid base64 in %s block: %v", ErrMalformed, blk.Type, err)
	}
	if crc != nil {
		want, err := base64.StdEncoding.DecodeString(string(crc))
		if err != nil || len(want) != 3 {
			return nil, nil, fmt.Errorf("%w: invalid armor checksum line in %s block", ErrMalformed, blk.Type)
		}
		got := crc24(raw)
		if uint32(want[0])<<16|uint32(want[1])<<8|uint32(want[2]) != got {
			return nil, nil, fmt.Errorf("%w: armor checksum (CRC-24) mismatch in %s block: the file was changed or damaged", ErrMalformed, blk.Type)
		}
	}
	if len(raw) == 0 {
		return nil, nil, fmt.Errorf("%w: empty %s block", ErrMalformed, blk.Type)
	}
	blk.Data = raw
	return blk, rest, nil
}

func isBase64Char(r rune) bool {
	return r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '+' || r == '/' || r == '='
}

// trunc shortens s for an error message.
func trunc(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}
