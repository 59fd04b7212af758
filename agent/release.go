package agent

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/lampi-pkg/lampi-pkg/deb"
	"github.com/lampi-pkg/lampi-pkg/signing"
)

// Release is the part of a verified Release file the agent uses.
type Release struct {
	Suite, Codename string
	Date            time.Time
	ValidUntil      time.Time // zero: no Valid-Until
	ByHash          bool
	// Files maps an index path relative to dists/SUITE to its SHA256 and size.
	Files map[string]FileSum
	// Signer is the fingerprint of the key that signed it.
	Signer string
}

// FileSum is a file's size and SHA256 (hex) as an index lists it.
type FileSum struct {
	Size   int64
	SHA256 string
}

// releaseDateLayouts are the Date formats apt accepts (RFC 1123 with a
// numeric or named zone).
var releaseDateLayouts = []string{time.RFC1123, time.RFC1123Z, "Mon, 2 Jan 2006 15:04:05 MST", "Mon, 2 Jan 2006 15:04:05 -0700"}

func parseReleaseDate(s string) (time.Time, error) {
	for _, l := range releaseDateLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not an RFC 1123 date", s)
}

// VerifyRelease checks the clearsigned InRelease against kr at now and
// parses the signed text only: nothing outside the signature is read.
// It checks that the Release is for suite, that Date is not later than now
// plus maxFuture and that Valid-Until has not passed.
func VerifyRelease(ctx context.Context, kr *signing.Keyring, inRelease []byte, suite string, now time.Time, maxFuture time.Duration) (*Release, error) {
	sig, text, err := signing.VerifyClearsigned(ctx, kr, bytes.NewReader(inRelease), signing.VerifyOptions{Now: func() time.Time { return now }})
	if err != nil {
		return nil, fmt.Errorf("InRelease: %w: %w", ErrSignature, err)
	}
	return parseRelease(text, sig, suite, now, maxFuture)
}

// VerifyDetachedRelease is VerifyRelease for a repository without
// InRelease: Release and its detached signature Release.gpg.
func VerifyDetachedRelease(ctx context.Context, kr *signing.Keyring, release, releaseGPG []byte, suite string, now time.Time, maxFuture time.Duration) (*Release, error) {
	sig, err := signing.VerifyDetached(ctx, kr, bytes.NewReader(release), bytes.NewReader(releaseGPG), signing.VerifyOptions{Now: func() time.Time { return now }})
	if err != nil {
		return nil, fmt.Errorf("Release.gpg: %w: %w", ErrSignature, err)
	}
	return parseRelease(release, sig, suite, now, maxFuture)
}

// parseRelease reads the signed text of a Release file and checks it.
func parseRelease(text []byte, sig *signing.Signature, suite string, now time.Time, maxFuture time.Duration) (*Release, error) {
	paras, err := deb.ParseParagraphs(bytes.NewReader(text), "InRelease")
	if err != nil || len(paras) != 1 {
		if err == nil {
			err = fmt.Errorf("%d paragraphs, want 1", len(paras))
		}
		return nil, fmt.Errorf("%w: InRelease: %v", ErrIndex, err)
	}
	p := paras[0]
	r := &Release{Suite: p.Get("Suite"), Codename: p.Get("Codename"), Files: map[string]FileSum{}, Signer: sig.Fingerprint}
	if r.Suite != suite && r.Codename != suite {
		return nil, fmt.Errorf("%w: InRelease is for suite %q (codename %q), not %q", ErrIndex, r.Suite, r.Codename, suite)
	}
	ds, ok := p.Lookup("Date")
	if !ok {
		return nil, fmt.Errorf("%w: InRelease has no Date field", ErrIndex)
	}
	if r.Date, err = parseReleaseDate(ds); err != nil {
		return nil, fmt.Errorf("%w: InRelease Date: %v", ErrIndex, err)
	}
	if r.Date.After(now.Add(maxFuture)) {
		return nil, fmt.Errorf("%w: Date %s is after now (%s); check the device clock", ErrNotYetValid, r.Date.UTC().Format(time.RFC1123), now.UTC().Format(time.RFC1123))
	}
	if vs, ok := p.Lookup("Valid-Until"); ok {
		if r.ValidUntil, err = parseReleaseDate(vs); err != nil {
			return nil, fmt.Errorf("%w: InRelease Valid-Until: %v", ErrIndex, err)
		}
		if now.After(r.ValidUntil) {
			return nil, fmt.Errorf("%w: Valid-Until %s has passed; the repository must be re-exported (or the device clock is wrong)", ErrExpired, r.ValidUntil.UTC().Format(time.RFC1123))
		}
	}
	r.ByHash = strings.EqualFold(p.Get("Acquire-By-Hash"), "yes")
	sums, ok := p.Lookup("SHA256")
	if !ok {
		return nil, fmt.Errorf("%w: InRelease has no SHA256 field", ErrIndex)
	}
	for _, l := range strings.Split(sums, "\n") {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		if len(f) != 3 {
			return nil, fmt.Errorf("%w: InRelease SHA256 line %q", ErrIndex, l)
		}
		size, err := strconv.ParseInt(f[1], 10, 64)
		if b, herr := hex.DecodeString(f[0]); herr != nil || len(b) != 32 || err != nil || size < 0 {
			return nil, fmt.Errorf("%w: InRelease SHA256 line %q", ErrIndex, l)
		}
		r.Files[f[2]] = FileSum{Size: size, SHA256: strings.ToLower(f[0])}
	}
	return r, nil
}
