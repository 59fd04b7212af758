package repo

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/lampi-pkg/lampi-pkg/deb"
	"github.com/lampi-pkg/lampi-pkg/signing"
)

// maxReleaseSize bounds an upstream's Release, InRelease or Release.gpg.
const maxReleaseSize = 16 << 20

// upstream fetches files below one rule's Method.
type upstream struct {
	method string // the rule's Method, without a trailing "/"
	dir    string // file: and copy: methods: the local directory
	client *http.Client
}

func newUpstream(method string, client *http.Client) *upstream {
	u := &upstream{method: method, client: client}
	switch {
	case strings.HasPrefix(method, "file://"):
		u.dir = strings.TrimPrefix(method, "file://")
	case strings.HasPrefix(method, "copy:"):
		u.dir = strings.TrimPrefix(strings.TrimPrefix(method, "copy:"), "//")
	}
	if u.client == nil {
		u.client = http.DefaultClient
	}
	return u
}

// checkRemotePath refuses a path an upstream names (an index from its
// Release, a Filename from its Packages) that could leave the mirrored
// tree or the repository: absolute, "..", backslashes, empty parts.
func checkRemotePath(p string) error {
	if p == "" || strings.HasPrefix(p, "/") || strings.Contains(p, "\\") || strings.ContainsRune(p, 0) ||
		path.Clean(p) != p || p == "." || strings.HasPrefix(p, "../") || p == ".." {
		return fmt.Errorf("%w: upstream path %q is not a plain relative path below the repository (absolute, \"..\" or unclean): refused", ErrUpdate, p)
	}
	for _, part := range strings.Split(p, "/") {
		if part == ".." || part == "" {
			return fmt.Errorf("%w: upstream path %q leaves the repository: refused", ErrUpdate, p)
		}
	}
	return nil
}

// open returns the upstream file rel; a missing file matches
// fs.ErrNotExist. size is the length when known (-1 otherwise).
func (u *upstream) open(ctx context.Context, rel string) (rc io.ReadCloser, size int64, err error) {
	if err := checkRemotePath(rel); err != nil {
		return nil, 0, err
	}
	if u.dir != "" {
		f, err := os.Open(filepath.Join(u.dir, filepath.FromSlash(rel)))
		if err != nil {
			return nil, 0, err
		}
		st, err := f.Stat()
		if err != nil || !st.Mode().IsRegular() {
			f.Close()
			return nil, 0, fmt.Errorf("%w: %s/%s is not a regular file", ErrUpdate, u.method, rel)
		}
		return f, st.Size(), nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.method+"/"+rel, nil)
	if err != nil {
		return nil, 0, err
	}
	resp, err := u.client.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: fetch %s/%s: %w", ErrUpdate, u.method, rel, err)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		resp.Body.Close()
		return nil, 0, fmt.Errorf("fetch %s/%s: %s: %w", u.method, rel, resp.Status, fs.ErrNotExist)
	case resp.StatusCode != http.StatusOK:
		resp.Body.Close()
		return nil, 0, fmt.Errorf("%w: fetch %s/%s: %s", ErrUpdate, u.method, rel, resp.Status)
	}
	return resp.Body, resp.ContentLength, nil
}

// fetchSmall reads a whole upstream file of at most limit bytes.
func (u *upstream) fetchSmall(ctx context.Context, rel string, limit int64) ([]byte, error) {
	rc, _, err := u.open(ctx, rel)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%w: read %s/%s: %w", ErrUpdate, u.method, rel, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%w: %s/%s is larger than %d bytes: refused", ErrUpdate, u.method, rel, limit)
	}
	return data, nil
}

// fetchVerified reads the upstream file rel, which must have the size
// and SHA256 want gives, into w; nothing of a file that does not match
// is trusted (the caller discards what w received).
func (u *upstream) fetchVerified(ctx context.Context, rel string, want Checksums, w io.Writer) error {
	rc, _, err := u.open(ctx, rel)
	if err != nil {
		return err
	}
	defer rc.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(w, h), io.LimitReader(rc, want.Size+1))
	if err != nil {
		return fmt.Errorf("%w: read %s/%s: %w", ErrUpdate, u.method, rel, err)
	}
	if n != want.Size {
		return fmt.Errorf("%w: %s/%s: %d bytes where the signed listing says %d: refused", ErrUpdate, u.method, rel, n, want.Size)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want.SHA256 {
		return fmt.Errorf("%w: %s/%s: SHA256 %s where the signed listing says %s: refused", ErrUpdate, u.method, rel, got, want.SHA256)
	}
	return nil
}

// upstreamRelease is a verified Release file: the indices it lists.
type upstreamRelease struct {
	suite string
	files map[string]Checksums // path below dists/SUITE → size and SHA256
	// validUntil is the Release's Valid-Until (zero: none).
	validUntil time.Time
	// signer is the fingerprint of the key that signed it ("" with
	// blindtrust).
	signer string
}

// fetchRelease fetches dists/SUITE/InRelease (unless the rule says
// GetInRelease: no), else Release and Release.gpg, and checks the
// signature against the keys of kr the rule names before anything of it
// is read. With blindtrust nothing is checked.
func (r *Repo) fetchRelease(ctx context.Context, u *upstream, rule *UpdateRule, suite string, kr *signing.Keyring) (*upstreamRelease, error) {
	base := "dists/" + suite + "/"
	var (
		text   []byte
		signer string
	)
	trusted, err := rule.trustedKeys(kr)
	if err != nil {
		return nil, err
	}
	vo := signing.VerifyOptions{Now: r.opts.Now}
	done := false
	if rule.GetInRelease {
		data, err := u.fetchSmall(ctx, base+"InRelease", maxReleaseSize)
		switch {
		case err == nil:
			if rule.BlindTrust {
				if text, _, err = signing.Cleartext(data); err != nil {
					return nil, fmt.Errorf("%w: rule %s: %s/%sInRelease: %w", ErrUpdate, rule.Name, u.method, base, err)
				}
			} else {
				sig, t, err := signing.VerifyClearsigned(ctx, trusted, bytes.NewReader(data), vo)
				if err != nil {
					return nil, fmt.Errorf("%w: rule %s: %s/%sInRelease: %w (VerifyRelease at %s:%d)", ErrUpdateSignature, rule.Name, u.method, base, err, rule.File, rule.Line)
				}
				if err := rule.acceptSigner(sig); err != nil {
					return nil, err
				}
				text, signer = t, sig.Fingerprint
			}
			done = true
		case !errors.Is(err, fs.ErrNotExist):
			return nil, err
		}
	}
	if !done {
		data, err := u.fetchSmall(ctx, base+"Release", maxReleaseSize)
		if err != nil {
			return nil, fmt.Errorf("rule %s: %w", rule.Name, err)
		}
		if !rule.BlindTrust {
			sigData, err := u.fetchSmall(ctx, base+"Release.gpg", maxReleaseSize)
			if err != nil {
				return nil, fmt.Errorf("%w: rule %s: %s/%sRelease.gpg: %w (VerifyRelease at %s:%d needs a signature)", ErrUpdateSignature, rule.Name, u.method, base, err, rule.File, rule.Line)
			}
			sig, err := signing.VerifyDetached(ctx, trusted, bytes.NewReader(data), bytes.NewReader(sigData), vo)
			if err != nil {
				return nil, fmt.Errorf("%w: rule %s: %s/%sRelease: %w (VerifyRelease at %s:%d)", ErrUpdateSignature, rule.Name, u.method, base, err, rule.File, rule.Line)
			}
			if err := rule.acceptSigner(sig); err != nil {
				return nil, err
			}
			signer = sig.Fingerprint
		}
		text = data
	}
	rel, err := parseUpstreamRelease(text, u.method+"/"+base+"Release")
	if err != nil {
		return nil, err
	}
	if !rel.validUntil.IsZero() && !r.opts.Now().Before(rel.validUntil) {
		// apt refuses it too: an upstream (or whoever stands between)
		// replaying an old signed Release must not roll the mirror back.
		return nil, fmt.Errorf("%w: rule %s: %s/%sRelease expired (Valid-Until %s): refused", ErrUpdate, rule.Name, u.method, base, releaseDate(rel.validUntil))
	}
	rel.suite, rel.signer = suite, signer
	return rel, nil
}

// trustedKeys returns the keys of kr whose primary key VerifyRelease
// names (all of kr when none does: an entry may name a subkey); which
// key signed is then checked by acceptSigner. Nil with blindtrust.
func (rule *UpdateRule) trustedKeys(kr *signing.Keyring) (*signing.Keyring, error) {
	if rule.BlindTrust {
		return nil, nil
	}
	if kr == nil || len(kr.Keys()) == 0 {
		return nil, fmt.Errorf("%w: rule %s (%s:%d): VerifyRelease names keys but no keyring was given: pass the upstream's public key with --keyring FILE", ErrUpdateSignature, rule.Name, rule.File, rule.Line)
	}
	var keys []*signing.Key
	for _, k := range kr.Keys() {
		for _, spec := range rule.VerifyRelease {
			if spec.matches(k.Fingerprint()) {
				keys = append(keys, k)
				break
			}
		}
	}
	if len(keys) == 0 {
		return kr, nil
	}
	return signing.NewKeyring(keys...), nil
}

// acceptSigner checks that a good signature was made by a key
// VerifyRelease names: the signing (sub)key itself, or the primary key
// of a subkey when the entry ends in "+".
func (rule *UpdateRule) acceptSigner(sig *signing.Signature) error {
	for _, spec := range rule.VerifyRelease {
		if spec.matches(sig.Fingerprint) || spec.Subkeys && spec.matches(sig.PrimaryFingerprint) {
			return nil
		}
	}
	var ids []string
	for _, spec := range rule.VerifyRelease {
		ids = append(ids, spec.ID)
	}
	return fmt.Errorf("%w: rule %s (%s:%d): signed by %s (primary key %s), which VerifyRelease (%s) does not name", ErrUpdateSignature, rule.Name, rule.File, rule.Line, sig.Fingerprint, sig.PrimaryFingerprint, strings.Join(ids, "|"))
}

// matches reports whether spec names the key with fingerprint fpr.
func (spec KeySpec) matches(fpr string) bool {
	fpr = strings.ToUpper(fpr)
	return fpr == spec.ID || len(spec.ID) == 16 && strings.HasSuffix(fpr, spec.ID)
}

// parseUpstreamRelease reads the SHA256 list of a Release file (from
// the verified text only).
func parseUpstreamRelease(text []byte, where string) (*upstreamRelease, error) {
	p, err := deb.ParseControl(bytes.NewReader(text), where)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUpdate, err)
	}
	list, ok := p.Lookup("SHA256")
	if !ok {
		return nil, fmt.Errorf("%w: %s has no SHA256 list (MD5 and SHA1 are not trusted)", ErrUpdate, where)
	}
	rel := &upstreamRelease{files: map[string]Checksums{}}
	if v, ok := p.Lookup("Valid-Until"); ok {
		until, err := parseReleaseTime(strings.TrimSpace(v))
		if err != nil {
			return nil, fmt.Errorf("%w: %s: Valid-Until: %w", ErrUpdate, where, err)
		}
		rel.validUntil = until
	}
	for _, line := range strings.Split(list, "\n") {
		w := strings.Fields(line)
		if len(w) == 0 {
			continue
		}
		if len(w) != 3 || len(w[0]) != 64 {
			return nil, fmt.Errorf("%w: %s: SHA256 line %q: expected \"HASH SIZE PATH\"", ErrUpdate, where, line)
		}
		n, err := strconv.ParseInt(w[1], 10, 64)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%w: %s: SHA256 line %q: bad size", ErrUpdate, where, line)
		}
		rel.files[w[2]] = Checksums{Size: n, SHA256: strings.ToLower(w[0])}
	}
	return rel, nil
}

// fetchPackages fetches the Packages index of comp/binary-arch that the
// Release lists (xz, gz or plain, in that order of preference), checks
// its size and SHA256 against the Release and parses it. A list the
// Release does not name gives no stanzas and ok false.
func (r *Repo) fetchPackages(ctx context.Context, u *upstream, rel *upstreamRelease, comp, arch string) (ps []*deb.Paragraph, ok bool, err error) {
	dir := comp + "/binary-" + arch + "/Packages"
	for _, ext := range []string{".xz", ".gz", ""} {
		want, listed := rel.files[dir+ext]
		if !listed {
			continue
		}
		rp := "dists/" + rel.suite + "/" + dir + ext
		if want.Size > maxIndexSize {
			return nil, false, fmt.Errorf("%w: %s/%s: %d bytes is more than lampi-pkg reads into memory", ErrUpdate, u.method, rp, want.Size)
		}
		var buf bytes.Buffer
		if err := u.fetchVerified(ctx, rp, want, &buf); err != nil {
			return nil, false, err
		}
		in, err := decompressIndex(rp, &buf)
		if err != nil {
			return nil, false, fmt.Errorf("%w: %s/%s: %w", ErrUpdate, u.method, rp, err)
		}
		ps, err := deb.ParseParagraphs(in, u.method+"/"+rp)
		if err != nil {
			return nil, false, fmt.Errorf("%w: %w", ErrUpdate, err)
		}
		return ps, true, nil
	}
	return nil, false, nil
}

// maxIndexSize bounds a compressed upstream Packages file (Debian's
// largest, main/binary-amd64/Packages.xz, is about 10 MB).
const maxIndexSize = 256 << 20
