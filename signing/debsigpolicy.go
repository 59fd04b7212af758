package signing

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/lampi-pkg/lampi-pkg/internal/atomicfile"
)

// The directories debsig-verify reads, relative to the root directory
// (its --root option). --policies-dir and --keyrings-dir replace them.
const (
	DebsigPoliciesDir = "etc/debsig/policies"
	DebsigKeyringsDir = "usr/share/debsig/keyrings"
)

// DefaultDebsigPolicyName names the policy and keyring files when
// DebsigPolicyOptions.Name is empty.
const DefaultDebsigPolicyName = "lampi-pkg"

// DebsigPolicyOptions configure [NewDebsigPolicy].
type DebsigPolicyOptions struct {
	// Name is the base name of the policy (NAME.pol) and keyring
	// (NAME.gpg) files, and the policy's Origin name: letters, digits and
	// ".+_-". Empty means DefaultDebsigPolicyName.
	Name string
	// Description is the Origin's description; empty means the key's user
	// ID.
	Description string
	// Now is the time at which the key must be able to sign with its
	// primary key. Required.
	Now func() time.Time
}

// DebsigPolicy is what debsig-verify needs to accept packages whose
// origin signature was made by one key: an XML policy file requiring that
// signature, and a keyring holding the key's public part. Both live in a
// directory named after the key ID (16 hex digits), under the policies and
// keyrings directories respectively. Debian 12's debsig-verify 0.28 looks
// up that directory by key ID (newer versions try the fingerprint first,
// then the key ID), so the key-ID layout works for all.
type DebsigPolicy struct {
	Fingerprint string
	KeyID       string
	Name        string
	// Policy is the content of KEYID/NAME.pol.
	Policy []byte
	// Keyring is the content of KEYID/NAME.gpg: the binary public key.
	Keyring []byte
}

var policyNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.+_-]{0,63}$`)

// NewDebsigPolicy returns the debsig-verify policy trusting k for origin
// signatures. k may be public or secret (only its public part goes in the
// keyring). The policy requires the origin signature and names k's
// fingerprint in every rule, so no other key of the keyring is accepted.
//
// A key that would sign with a subkey at opts.Now is refused
// (ErrUnsupportedKey: debsig-verify 0.28 cannot check such signatures), as
// is one that cannot sign at all (ErrNoSigningKey).
func NewDebsigPolicy(k *Key, opts DebsigPolicyOptions) (*DebsigPolicy, error) {
	if opts.Now == nil {
		return nil, errors.New("signing: DebsigPolicyOptions.Now is required")
	}
	name := opts.Name
	if name == "" {
		name = DefaultDebsigPolicyName
	}
	if !policyNameRE.MatchString(name) {
		return nil, fmt.Errorf("debsig policy name %q: use up to 64 letters, digits and \".+_-\", starting with a letter or digit", name)
	}
	info := k.Info(opts.Now())
	switch info.SigningKey {
	case "":
		return nil, fmt.Errorf("key %s: %w at %s (status %s); a policy for it would accept nothing", k.Fingerprint(), ErrNoSigningKey, opts.Now().UTC().Format(time.RFC3339), info.Status)
	case k.Fingerprint():
	default:
		return nil, fmt.Errorf("key %s: %w: it signs with its subkey %s, and debsig-verify 0.28 (Debian 12) cannot check a .deb signature made by a subkey; use a key whose primary key signs, as 'lampi-pkg key generate' makes them", k.Fingerprint(), ErrUnsupportedKey, info.SigningKey)
	}
	desc := opts.Description
	if desc == "" {
		desc = k.UserID()
	}
	var kr bytes.Buffer
	if err := k.WritePublic(&kr, false); err != nil {
		return nil, err
	}
	p := &DebsigPolicy{Fingerprint: k.Fingerprint(), KeyID: k.KeyID(), Name: name, Keyring: kr.Bytes()}
	p.Policy = policyXML(name, desc, p.Fingerprint, name+".gpg")
	return p, nil
}

// policyXML writes the policy in the syntax of debsig-verify's
// policy.dtd.
func policyXML(name, desc, fpr, keyring string) []byte {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0"?>
<!DOCTYPE Policy SYSTEM "https://www.debian.org/debsig/1.0/policy.dtd">
<Policy xmlns="https://www.debian.org/debsig/1.0/">
`)
	fmt.Fprintf(&b, "  <!-- Written by lampi-pkg: accept packages whose _gpgorigin signature was made by %s. -->\n", fpr)
	fmt.Fprintf(&b, "  <Origin Name=%s id=%s Description=%s/>\n", attr(name), attr(fpr), attr(desc))
	rule := fmt.Sprintf("    <Required Type=\"origin\" File=%s id=%s/>\n", attr(keyring), attr(fpr))
	b.WriteString("  <Selection>\n" + rule + "  </Selection>\n")
	b.WriteString("  <Verification MinOptional=\"0\">\n" + rule + "  </Verification>\n")
	b.WriteString("</Policy>\n")
	return b.Bytes()
}

// attr quotes s as an XML attribute value.
func attr(s string) string {
	var b bytes.Buffer
	b.WriteByte('"')
	xml.EscapeText(&b, []byte(s)) // escapes quotes too; never fails on a Buffer
	b.WriteByte('"')
	return b.String()
}

// PolicyFile is the policy's path relative to the policies directory.
func (p *DebsigPolicy) PolicyFile() string { return filepath.Join(p.KeyID, p.Name+".pol") }

// KeyringFile is the keyring's path relative to the keyrings directory.
func (p *DebsigPolicy) KeyringFile() string { return filepath.Join(p.KeyID, p.Name+".gpg") }

// Write writes the policy under policiesDir and the keyring under
// keyringsDir (debsig-verify's --policies-dir and --keyrings-dir), making
// the key-ID directories, and returns the two paths. Existing files are
// replaced atomically; files are 0644 and directories 0755.
func (p *DebsigPolicy) Write(policiesDir, keyringsDir string) (policy, keyring string, err error) {
	policy = filepath.Join(policiesDir, p.PolicyFile())
	keyring = filepath.Join(keyringsDir, p.KeyringFile())
	if err := writeFileAtomic(keyring, p.Keyring); err != nil {
		return "", "", err
	}
	if err := writeFileAtomic(policy, p.Policy); err != nil {
		return "", "", err
	}
	return policy, keyring, nil
}

// Install writes the policy and keyring under root in debsig-verify's
// default layout (root/etc/debsig/policies/KEYID/NAME.pol and
// root/usr/share/debsig/keyrings/KEYID/NAME.gpg): root "/" on a device, or
// a package tree to ship them in a .deb.
func (p *DebsigPolicy) Install(root string) (policy, keyring string, err error) {
	return p.Write(filepath.Join(root, DebsigPoliciesDir), filepath.Join(root, DebsigKeyringsDir))
}

func writeFileAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := atomicfile.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
