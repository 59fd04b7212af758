package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/lampi-pkg/lampi-pkg/deb"
	"github.com/lampi-pkg/lampi-pkg/signing"
)

type signOptions struct {
	env                 *Env
	files               []string
	key, passphraseFile string
	policyRoot, policy  string
	json                bool
}

func newSignCmd(env *Env, runF runFunc[signOptions]) *cobra.Command {
	o := &signOptions{env: env}
	cmd := &cobra.Command{
		Use:   "sign FILE.deb... --key KEY",
		Short: "Sign packages the debsigs way, for debsig-verify on the devices",
		Long: `Sign each FILE.deb in place with an origin signature, as 'debsigs --sign=origin'
does: an ar member _gpgorigin holding a detached OpenPGP signature over the
members debian-binary, control.tar.* and data.tar.*, concatenated. dpkg ignores
the member; debsig-verify (and 'lampi-pkg verify') check it. Signing again
replaces the signature. The other members are kept byte for byte.

The package is rewritten into a temporary file next to it and renamed over it,
so a failure leaves the original untouched; files are signed in order and
the first failure stops the run. The signature time is now.

KEY is the secret key file (from 'lampi-pkg key generate'); its passphrase comes
from --passphrase-file, $LAMPI_PASSPHRASE or a prompt on the terminal. Its
PRIMARY key must sign: debsig-verify 0.28 (Debian 12) cannot check signatures
made by a subkey, so gpg keys with a signing subkey are refused.

--debsig-policy DIR writes what debsig-verify needs to trust KEY, under DIR in
its default layout:
  DIR/etc/debsig/policies/KEYID/NAME.pol      the policy (XML)
  DIR/usr/share/debsig/keyrings/KEYID/NAME.gpg the public key
with KEYID the key's 16-hex-digit ID and NAME from --policy-name. Use DIR "/" on
a device, or a package tree to ship the trust as a .deb ('lampi-pkg build').
Without FILE arguments only the policy is written, and a public key will do.
Check with: debsig-verify --root DIR FILE.deb

With --json the output is one object: {"signed": [{file, fingerprint, key_id,
created, replaced, size, members}], "debsig_policy": {key_id, policy, keyring}}.`,
		Example: `  lampi-pkg sign out/hi_1.0_all.deb --key signing-key.asc
  LAMPI_PASSPHRASE=… lampi-pkg sign out/*.deb --key signing-key.asc --json
  lampi-pkg sign --key repo-key.gpg --debsig-policy trust-pkg/`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 && o.policyRoot == "" {
				return usageErrorf("sign: give the .deb files to sign (or --debsig-policy DIR to write only the policy)")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			o.files = args
			return runVerb(cmd, runF, runSign, o)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.key, "key", "k", "", "secret key file that signs (armored .asc or binary)")
	f.StringVar(&o.passphraseFile, "passphrase-file", "", "read the key's passphrase from this file (its final newline is ignored)")
	f.StringVar(&o.policyRoot, "debsig-policy", "", "also write the debsig-verify policy and keyring for KEY under this root directory")
	f.StringVar(&o.policy, "policy-name", signing.DefaultDebsigPolicyName, "base name of the policy and keyring files, and the policy's Origin name")
	f.BoolVar(&o.json, "json", false, "print the result as JSON")
	return cmd
}

// signedFile is one entry of sign's JSON output.
type signedFile struct {
	File string `json:"file"`
	*signing.SignedDeb
}

// policyFiles is the debsig_policy part of sign's JSON output.
type policyFiles struct {
	KeyID   string `json:"key_id"`
	Policy  string `json:"policy"`
	Keyring string `json:"keyring"`
}

type signResult struct {
	Signed []signedFile `json:"signed"`
	Policy *policyFiles `json:"debsig_policy,omitempty"`
}

func runSign(ctx context.Context, o *signOptions) error {
	env, files := o.env, o.files
	if o.key == "" {
		return withHint(&usageError{errors.New("sign: --key is required")},
			"name the secret key file, e.g. --key signing-key.asc (make one with 'lampi-pkg key generate')")
	}
	var key *signing.Key
	var err error
	if len(files) > 0 {
		key, err = loadSecretKey(env, o.key, o.passphraseFile)
	} else {
		key, err = readOneKey(o.key)
	}
	if err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	res := signResult{Signed: []signedFile{}}
	w := env.Out
	if len(files) > 0 {
		s, err := signing.NewSigner(key, signing.SignOptions{Now: env.Now})
		if err != nil {
			return signKeyError(fmt.Errorf("sign: key %s: %w", o.key, err))
		}
		for _, f := range files {
			sd, err := signing.SignDebFile(ctx, s, f)
			if err != nil {
				return signFileError(err)
			}
			res.Signed = append(res.Signed, signedFile{File: f, SignedDeb: sd})
			warnZstd(env, f, sd.Members)
			if !o.json {
				replaced := ""
				if sd.Replaced > 0 {
					replaced = " (replaced the previous signature)"
				}
				fmt.Fprintf(w, "signed %s: %s by %s, made %s%s\n", f, signing.DebOriginMember, key, sd.Created.Format(time.RFC3339), replaced)
			}
		}
	}
	if o.policyRoot != "" {
		pol, err := signing.NewDebsigPolicy(key, signing.DebsigPolicyOptions{Name: o.policy, Now: env.Now})
		if err != nil {
			return signKeyError(fmt.Errorf("sign: debsig policy for %s: %w", o.key, err))
		}
		polPath, krPath, err := pol.Install(o.policyRoot)
		if err != nil {
			return withHint(fmt.Errorf("sign: debsig policy: %w", err), "check that the --debsig-policy directory is writable")
		}
		res.Policy = &policyFiles{KeyID: pol.KeyID, Policy: polPath, Keyring: krPath}
		if !o.json {
			fmt.Fprintf(w, "wrote the debsig-verify policy for key %s (%s):\n  %s\n  %s\n", pol.KeyID, pol.Fingerprint, polPath, krPath)
		}
	}
	if o.json {
		return writeJSON(w, res)
	}
	return nil
}

// readOneKey reads a key file that may be public or secret.
func readOneKey(path string) (*signing.Key, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, withHint(err, "check the path of the key file")
	}
	defer f.Close()
	key, err := signing.ReadKey(f)
	if err != nil {
		return nil, withHint(fmt.Errorf("read key %s: %w", path, err), "give one OpenPGP key file (armored .asc or binary), e.g. one made by 'lampi-pkg key generate' or 'lampi-pkg key export'")
	}
	return key, nil
}

// warnZstd warns that debsig-verify 0.28 cannot check a package with
// zstd-compressed members (it does not look for them).
func warnZstd(env *Env, file string, members []deb.Member) {
	for _, m := range members {
		if m.Compression == deb.CompressZstd {
			fmt.Fprintf(env.Err, "warning: %s: member %s is zstd-compressed: debsig-verify 0.28 (Debian 12) cannot check this package; rebuild it with 'lampi-pkg build --compress xz' if devices verify with debsig-verify\n", file, m.Name)
			return
		}
	}
}

// signKeyError says what to do when the key cannot sign packages.
func signKeyError(err error) error {
	switch {
	case errors.Is(err, signing.ErrUnsupportedKey), errors.Is(err, signing.ErrNoSigningKey):
		return withHint(err, "make a key whose primary key signs: lampi-pkg key generate --name NAME --email EMAIL -o signing-key.asc")
	case errors.Is(err, signing.ErrKeyExpired):
		return withHint(err, "extend the key's expiry (gpg --quick-set-expire) or make a new key with 'lampi-pkg key generate'")
	case errors.Is(err, signing.ErrKeyRevoked):
		return withHint(err, "the key is revoked: make a new key with 'lampi-pkg key generate' and ship its policy to the devices")
	case errors.Is(err, signing.ErrKeyNotYetValid):
		return withHint(err, "check the clock of this machine")
	}
	return err
}

// signFileError says what to do about a package that cannot be signed.
func signFileError(err error) error {
	switch {
	case errors.Is(err, deb.ErrTruncated):
		return withHint(err, "the file is incomplete (it was left as it was): build, download or copy it again")
	case errors.Is(err, deb.ErrNotDeb), errors.Is(err, deb.ErrCompression):
		return withHint(err, "give a Debian binary package (check it with 'lampi-pkg info FILE'); the file was left as it was")
	case errors.Is(err, os.ErrNotExist):
		return withHint(err, "check the path of the .deb file")
	case errors.Is(err, os.ErrPermission):
		return withHint(err, "the package and its directory must be writable: the signed package replaces it")
	}
	return signKeyError(err)
}
