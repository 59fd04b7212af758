package repo

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/lampi-pkg/lampi-pkg/signing"
)

// Signer signs a Release file: Clearsign makes InRelease,
// SignDetachedArmored makes Release.gpg. *signing.Signer implements it; a
// remote signer can too.
type Signer interface {
	Clearsign(ctx context.Context, r io.Reader) ([]byte, error)
	SignDetachedArmored(ctx context.Context, r io.Reader) ([]byte, error)
}

// KeyDirSigners returns the Options.Signer that resolves a distribution's
// SignWith among local key files:
//
//   - a path to a secret key file (absolute, or relative to keyDir or to
//     the conf directory);
//   - a fingerprint, long or short key ID (with or without "0x" and
//     spaces) of a secret key stored in keyDir (*.asc, *.gpg, *.key, *.sec);
//   - an e-mail address found in the user ID of such a key;
//   - "yes" or "default": the only secret key in keyDir.
//
// passphrase, if not nil, is asked for the passphrase of a protected key
// (given its fingerprint). Errors wrap ErrSigning.
func KeyDirSigners(keyDir string, now func() time.Time, passphrase func(fingerprint string) ([]byte, error)) func(context.Context, *Distribution) (Signer, error) {
	return func(ctx context.Context, d *Distribution) (Signer, error) {
		key, where, err := findKey(keyDir, filepath.Dir(d.File), d.SignWith)
		if err != nil {
			return nil, fmt.Errorf("distribution %s: SignWith %q (%s:%d): %w", d.Codename, d.SignWith, d.File, d.Line, err)
		}
		if key.Locked() {
			if passphrase == nil {
				return nil, fmt.Errorf("distribution %s: key %s in %s: %w: it is passphrase-protected and no passphrase was given", d.Codename, key.Fingerprint(), where, ErrSigning)
			}
			p, err := passphrase(key.Fingerprint())
			if err != nil {
				return nil, fmt.Errorf("distribution %s: key %s: %w: %w", d.Codename, key.Fingerprint(), ErrSigning, err)
			}
			if err := key.Unlock(p); err != nil {
				return nil, fmt.Errorf("distribution %s: %w: %w", d.Codename, ErrSigning, err)
			}
		}
		s, err := signing.NewSigner(key, signing.SignOptions{Now: now})
		if err != nil {
			return nil, fmt.Errorf("distribution %s: key %s in %s: %w: %w", d.Codename, key.Fingerprint(), where, ErrSigning, err)
		}
		return s, nil
	}
}

func readKeyFile(p string) (*signing.Key, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return signing.ReadKey(f)
}

// findKey resolves a SignWith value; it returns the key and the file it
// came from.
func findKey(keyDir, confDir, with string) (*signing.Key, string, error) {
	if strings.HasPrefix(with, "!") {
		return nil, "", fmt.Errorf("%w: signing hook scripts (\"!\") are not run by lampi-pkg; name a key file or fingerprint", ErrSigning)
	}
	var candidates []string
	if filepath.IsAbs(with) {
		candidates = []string{with}
	} else if strings.ContainsAny(with, "/.") && !strings.Contains(with, "@") {
		candidates = []string{filepath.Join(keyDir, with), filepath.Join(confDir, with)}
	}
	for _, c := range candidates {
		if _, err := os.Stat(c); err == nil {
			k, err := readKeyFile(c)
			if err != nil {
				return nil, "", fmt.Errorf("%w: read %s: %w", ErrSigning, c, err)
			}
			if !k.IsSecret() {
				return nil, "", fmt.Errorf("%w: %s holds only a public key; SignWith needs the secret key", ErrSigning, c)
			}
			return k, c, nil
		}
	}
	entries, err := os.ReadDir(keyDir)
	if err != nil {
		return nil, "", fmt.Errorf("%w: no key file %q and no key directory: %w; put the secret key in %s or give its path", ErrSigning, with, err, keyDir)
	}
	want := strings.ToUpper(strings.TrimPrefix(strings.ReplaceAll(with, " ", ""), "0x"))
	anyKey := strings.EqualFold(with, "yes") || strings.EqualFold(with, "default")
	var found []string
	var key *signing.Key
	var seen []string
	for _, e := range entries {
		n := e.Name()
		switch filepath.Ext(n) {
		case ".asc", ".gpg", ".key", ".sec":
		default:
			continue
		}
		p := filepath.Join(keyDir, n)
		k, err := readKeyFile(p)
		if err != nil || !k.IsSecret() {
			continue
		}
		seen = append(seen, k.Fingerprint())
		match := anyKey || strings.HasSuffix(k.Fingerprint(), want) && len(want) >= 8 ||
			strings.Contains(with, "@") && strings.Contains(strings.ToLower(k.UserID()), strings.ToLower(with))
		if match {
			found = append(found, p)
			key = k
		}
	}
	sort.Strings(seen)
	switch len(found) {
	case 0:
		return nil, "", fmt.Errorf("%w: no secret key in %s matches (found: %s); copy the key file there or name its path", ErrSigning, keyDir, strings.Join(seen, ", "))
	case 1:
		return key, found[0], nil
	}
	return nil, "", fmt.Errorf("%w: several keys in %s match (%s); give the full fingerprint", ErrSigning, keyDir, strings.Join(found, ", "))
}
