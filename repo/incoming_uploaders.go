package repo

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/lampi-pkg/lampi-pkg/deb"
	"github.com/lampi-pkg/lampi-pkg/signing"
)

// uploaders is a reprepro uploaders file (named by a distribution's
// Uploaders field): who may upload to the distribution. lampi-pkg reads
// the forms
//
//	allow CONDITION by anybody
//	allow CONDITION by unsigned
//	allow CONDITION by any key
//	allow CONDITION by key KEYID[+]
//
// with CONDITION "*" or "source 'GLOB'"; groups, include lines and the
// other conditions reprepro knows are refused, never ignored.
type uploaders struct {
	file  string
	rules []uploaderRule
}

type uploaderRule struct {
	line int
	// source is the glob the upload's Source must match ("" = any).
	source string
	// by is "anybody", "unsigned", "any key" or "key".
	by string
	// key is the upper-case hex suffix of the key's fingerprint;
	// subkeys accepts a signature by a subkey of that primary key.
	key     string
	subkeys bool
}

// readUploaders reads an uploaders file.
func readUploaders(file string) (*uploaders, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("%w: read uploaders file: %w", ErrConfig, err)
	}
	u := &uploaders{file: file}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		r, err := parseUploaderLine(line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w: %w", file, n, ErrConfig, err)
		}
		r.line = n
		u.rules = append(u.rules, r)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", file, err)
	}
	return u, nil
}

func parseUploaderLine(line string) (uploaderRule, error) {
	var r uploaderRule
	first, rest, _ := strings.Cut(line, " ")
	switch first {
	case "allow":
	case "group", "include":
		return r, fmt.Errorf("%q lines are not implemented by lampi-pkg; write one \"allow … by key KEYID\" line per key", first)
	default:
		return r, fmt.Errorf("%q: a line must read \"allow CONDITION by WHO\"", shorten(line))
	}
	i := strings.LastIndex(rest, " by ")
	if i < 0 {
		return r, fmt.Errorf("%q: no \" by \": write \"allow CONDITION by WHO\"", shorten(line))
	}
	cond, who := strings.TrimSpace(rest[:i]), strings.Fields(rest[i+4:])
	switch {
	case cond == "*":
	case strings.HasPrefix(cond, "source "):
		g := strings.TrimSpace(strings.TrimPrefix(cond, "source "))
		if len(g) < 3 || g[0] != '\'' || g[len(g)-1] != '\'' || strings.Contains(g[1:len(g)-1], "'") {
			return r, fmt.Errorf("condition %q: write source 'NAME' (shell wildcards allowed)", cond)
		}
		r.source = g[1 : len(g)-1]
		if _, err := path.Match(r.source, ""); err != nil {
			return r, fmt.Errorf("condition %q: %w", cond, err)
		}
	default:
		return r, fmt.Errorf("condition %q is not implemented by lampi-pkg (only * and source 'NAME')", shorten(cond))
	}
	switch {
	case len(who) == 1 && (who[0] == "anybody" || who[0] == "unsigned"):
		r.by = who[0]
	case len(who) == 2 && who[0] == "any" && who[1] == "key":
		r.by = "any key"
	case len(who) == 2 && who[0] == "key":
		k := strings.ToUpper(strings.TrimPrefix(strings.TrimPrefix(who[1], "0x"), "0X"))
		r.subkeys = strings.HasSuffix(k, "+")
		k = strings.TrimSuffix(k, "+")
		if len(k) < 8 || strings.Trim(k, "0123456789ABCDEF") != "" {
			return r, fmt.Errorf("key %q: give at least the last 8 hex digits of the key's fingerprint (a trailing + also accepts its subkeys)", who[1])
		}
		r.by, r.key = "key", k
	case len(who) == 2 && who[0] == "group":
		return r, fmt.Errorf("\"by group\" is not implemented by lampi-pkg; write one \"by key KEYID\" line per key")
	default:
		return r, fmt.Errorf("%q: WHO must be anybody, unsigned, any key or key KEYID", strings.Join(who, " "))
	}
	return r, nil
}

// uploadSignature is what is known about the signature of a .changes.
type uploadSignature struct {
	// signed: the .changes is clearsigned; sig is its good signature by
	// a key of the keyring (nil: signed by a key the keyring lacks).
	signed bool
	sig    *signing.Signature
}

func (s uploadSignature) String() string {
	switch {
	case !s.signed:
		return "unsigned"
	case s.sig == nil:
		return "signed by a key not in the keyring"
	}
	return "signed by key " + s.sig.Fingerprint
}

// permits reports which rule allows an upload of source with signature
// s, or 0 when none does.
func (u *uploaders) permits(source string, s uploadSignature) int {
	for _, r := range u.rules {
		if r.source != "" {
			if ok, _ := path.Match(r.source, source); !ok {
				continue
			}
		}
		switch r.by {
		case "anybody":
			return r.line
		case "unsigned":
			if !s.signed {
				return r.line
			}
		case "any key":
			if s.sig != nil {
				return r.line
			}
		case "key":
			if s.sig != nil && (strings.HasSuffix(s.sig.Fingerprint, r.key) || r.subkeys && strings.HasSuffix(s.sig.PrimaryFingerprint, r.key)) {
				return r.line
			}
		}
	}
	return 0
}

// refusal says why u refuses an upload of source with signature s.
func (u *uploaders) refusal(codename, source string, s uploadSignature) string {
	return fmt.Sprintf("%s (its Uploaders file %s allows no upload of %s %s)", codename, u.file, source, s)
}

// checkUploaders refuses (ErrUpload) an upload, the .changes ch read
// from file, into d when d has an Uploaders file that does not allow it.
// A clearsigned .dsc of the upload is checked too: its bytes are covered
// by the .changes' checksums, but a signature on it by a key of the
// keyring must be good.
func (r *Repo) checkUploaders(ctx context.Context, d *Distribution, file string, ch *deb.Changes) error {
	u, err := r.uploadersOf(d)
	if err != nil || u == nil {
		return err
	}
	s, err := r.uploadSignatureOf(ctx, file)
	if err != nil {
		return err
	}
	if u.permits(ch.Source, s) == 0 {
		return fmt.Errorf("%w: not allowed into %s", ErrUpload, u.refusal(d.Codename, ch.Source, s))
	}
	for _, lf := range ch.Files {
		if deb.ClassifyFile(lf.Name) != deb.UploadDsc {
			continue
		}
		if _, err := r.uploadSignatureOf(ctx, filepath.Join(filepath.Dir(file), lf.Name)); err != nil {
			return err
		}
	}
	return nil
}

// uploadersOf returns the uploaders file of d (its Uploaders field,
// relative to the conf directory unless absolute, "~/", "+b/" or "+c/"),
// or nil when d has none.
func (r *Repo) uploadersOf(d *Distribution) (*uploaders, error) {
	var v string
	for _, f := range d.Fields {
		if strings.EqualFold(f.Name, "Uploaders") {
			v = strings.TrimSpace(f.Value)
		}
	}
	if v == "" {
		return nil, nil
	}
	var p string
	switch {
	case strings.HasPrefix(v, "+b/"):
		p = filepath.Join(r.Base, v[3:])
	case strings.HasPrefix(v, "+c/"):
		p = filepath.Join(r.Conf.Dir, v[3:])
	default:
		p = confPath(r.Conf.Dir, v)
	}
	u, err := readUploaders(p)
	if err != nil {
		return nil, fmt.Errorf("distribution %s: Uploaders (%s:%d): %w", d.Codename, d.File, d.Line, err)
	}
	return u, nil
}

// uploaderKeyring reads every key file in the key directory (*.asc,
// *.gpg, *.key, *.pub, *.sec: public keys, keyrings, or secret keys
// whose public part counts) as the keys uploads are checked against.
func (r *Repo) uploaderKeyring() (*signing.Keyring, error) {
	entries, err := os.ReadDir(r.opts.KeyDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read key directory: %w", err)
	}
	var keys []*signing.Key
	for _, e := range entries {
		switch filepath.Ext(e.Name()) {
		case ".asc", ".gpg", ".key", ".pub", ".sec":
		default:
			continue
		}
		p := filepath.Join(r.opts.KeyDir, e.Name())
		f, err := os.Open(p)
		if err != nil {
			return nil, fmt.Errorf("read uploader keys: %w", err)
		}
		kr, err := signing.ReadKeyring(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("read uploader keys from %s: %w; remove the file from the key directory or fix it", p, err)
		}
		keys = append(keys, kr.Keys()...)
	}
	return signing.NewKeyring(keys...), nil
}

// checkSignature verifies a clearsigned .changes against kr: a good
// signature by a key of kr, or one by a key kr lacks. A bad signature, or
// one by a key that is expired or revoked, is an error: such an upload
// is refused whoever may upload.
func (r *Repo) checkSignature(ctx context.Context, kr *signing.Keyring, file string) (uploadSignature, error) {
	f, err := os.Open(file)
	if err != nil {
		return uploadSignature{}, fmt.Errorf("read upload: %w", err)
	}
	defer f.Close()
	sig, _, err := signing.VerifyClearsigned(ctx, kr, f, signing.VerifyOptions{Now: r.opts.Now})
	switch {
	case err == nil:
		return uploadSignature{signed: true, sig: sig}, nil
	case errors.Is(err, signing.ErrUnknownKey):
		return uploadSignature{signed: true}, nil
	}
	return uploadSignature{}, fmt.Errorf("%w: signature of %s: %w", ErrUpload, filepath.Base(file), err)
}
