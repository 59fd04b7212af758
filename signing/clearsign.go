package signing

import (
	"bytes"
	"fmt"
	"strings"
)

// The cleartext signature framework (RFC 4880 section 7), written and read
// here: go-crypto's writer omits the armor CRC (gpgv 2.2 then fails on some
// signatures) and its reader accepts unsigned text before and after the
// signed part, which apt rejects.

const (
	clearsignBegin = "-----BEGIN PGP SIGNED MESSAGE-----"
	signatureBegin = "-----BEGIN " + armorSignature + "-----"
	// maxCleartextLine is the longest line, as written (with its dash
	// escape), that gpgv 2.2 verifies in a clearsigned message: its armor
	// filter reads lines into a 20000-byte buffer and a longer line gives
	// "BAD signature" (measured with gpgv 2.2.40).
	maxCleartextLine = 19998
	// maxClearsigned bounds a clearsigned file read into memory.
	maxClearsigned = 256 << 20
)

// cleartextBody prepares data for clearsigning, following gpg: a final
// line end of data is not signed (it becomes the line end before the
// signature, so "a" and "a\n" sign alike), every line loses its trailing
// blanks, and lines starting with '-' are dash-escaped. It returns the
// body as written between the header and the signature (LF line ends,
// ending with the line end before the signature) and the canonical text
// the signature covers (the unescaped lines joined by CRLF).
func cleartextBody(data []byte) (body, canonical []byte, err error) {
	if i := bytes.IndexByte(data, 0); i >= 0 {
		return nil, nil, fmt.Errorf("%w: NUL byte at offset %d (binary data needs a detached signature)", ErrNotText, i)
	}
	data = bytes.TrimSuffix(data, []byte{'\n'})
	lines := bytes.Split(data, []byte{'\n'})
	body = make([]byte, 0, len(data)+64)
	canonical = make([]byte, 0, len(data)+len(lines))
	for i, l := range lines {
		l = bytes.TrimRight(l, " \t\r")
		escaped := len(l) > 0 && l[0] == '-'
		n := len(l)
		if escaped {
			n += 2
		}
		if n > maxCleartextLine {
			return nil, nil, fmt.Errorf("%w: line %d is %d bytes long as written; gpgv verifies lines of at most %d bytes", ErrNotText, i+1, n, maxCleartextLine)
		}
		if i > 0 {
			canonical = append(canonical, '\r', '\n')
		}
		canonical = append(canonical, l...)
		if escaped {
			body = append(body, '-', ' ')
		}
		body = append(body, l...)
		body = append(body, '\n')
	}
	return body, canonical, nil
}

// cleartext is a parsed clearsigned document.
type cleartext struct {
	// Text is the signed text: the unescaped lines, each ending in LF.
	Text []byte
	// Canonical is what the signature covers: the lines joined by CRLF.
	Canonical []byte
	// Hashes holds the names from the "Hash:" headers, upper case.
	Hashes []string
	// Signature holds the binary signature packets.
	Signature []byte
}

// parseClearsigned parses a clearsigned document the strict way apt does:
// only blank lines may precede the BEGIN line and follow the END line, so
// no unsigned text can hide around the signed part. Errors wrap
// ErrUnsigned (no clearsigned message at all) or ErrMalformed.
func parseClearsigned(data []byte) (*cleartext, error) {
	rest := data
	lineNo := 0
	var line []byte
	for {
		if len(bytes.TrimSpace(rest)) == 0 {
			return nil, fmt.Errorf("%w: the file is empty", ErrUnsigned)
		}
		line, rest = nextLine(rest)
		lineNo++
		if len(bytes.TrimSpace(line)) != 0 {
			break
		}
	}
	if string(bytes.TrimRight(line, " \t")) != clearsignBegin {
		if string(bytes.TrimSpace(line)) == signatureBegin {
			return nil, fmt.Errorf("%w: this is a detached signature, not a clearsigned file; verify it together with the file it signs", ErrUnsigned)
		}
		if bytes.Contains(rest, []byte(clearsignBegin)) {
			return nil, fmt.Errorf("%w: line %d: unsigned text before the %q line", ErrMalformed, lineNo, clearsignBegin)
		}
		return nil, fmt.Errorf("%w: line %d: expected %q (is the file clearsigned?)", ErrUnsigned, lineNo, clearsignBegin)
	}
	ct := &cleartext{}
	for {
		if len(rest) == 0 {
			return nil, fmt.Errorf("%w: clearsigned file ends in its header", ErrMalformed)
		}
		line, rest = nextLine(rest)
		lineNo++
		t := strings.TrimSpace(string(line))
		if t == "" {
			break
		}
		k, v, ok := strings.Cut(t, ":")
		if !ok || strings.TrimSpace(k) != "Hash" {
			return nil, fmt.Errorf("%w: line %d: unexpected header %q in a clearsigned message (only 'Hash:' is allowed)", ErrMalformed, lineNo, trunc(t))
		}
		for _, h := range strings.Split(v, ",") {
			ct.Hashes = append(ct.Hashes, strings.ToUpper(strings.TrimSpace(h)))
		}
	}
	var lines [][]byte
	for {
		if len(rest) == 0 {
			return nil, fmt.Errorf("%w: no %q line after the signed text", ErrMalformed, signatureBegin)
		}
		start := rest
		line, rest = nextLine(rest)
		lineNo++
		line = bytes.TrimRight(line, " \t\r")
		if string(line) == signatureBegin {
			rest = start
			break
		}
		if len(line) > 0 && line[0] == '-' {
			if !bytes.HasPrefix(line, []byte("- ")) {
				return nil, fmt.Errorf("%w: line %d starts with '-' but is not dash-escaped", ErrMalformed, lineNo)
			}
			line = bytes.TrimRight(line[2:], " \t\r")
		}
		lines = append(lines, line)
	}
	ct.Text = append(bytes.Join(lines, []byte{'\n'}), '\n')
	ct.Canonical = bytes.Join(lines, []byte("\r\n"))
	blk, after, err := armorDecode(rest)
	if err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(after)) != 0 {
		return nil, fmt.Errorf("%w: text after the signature is not covered by it", ErrMalformed)
	}
	ct.Signature = blk.Data
	return ct, nil
}

// Cleartext returns the text of a possibly clearsigned document without
// verifying anything: the unescaped signed text if data is clearsigned
// (signed true), else data itself. It is for reading files whose
// signature is optional, such as a .dsc or a .changes; a caller that
// trusts the content because of its signature must use VerifyClearsigned
// instead. A document that starts as clearsigned but is malformed is an
// error (ErrMalformed), never read as plain text.
func Cleartext(data []byte) (text []byte, signed bool, err error) {
	if !bytes.HasPrefix(bytes.TrimLeft(data, " \t\r\n"), []byte(clearsignBegin)) {
		return data, false, nil
	}
	ct, err := parseClearsigned(data)
	if err != nil {
		return nil, false, err
	}
	return ct.Text, true, nil
}
