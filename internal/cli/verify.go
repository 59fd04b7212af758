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

// Exit codes of "lampi-pkg verify", the same as debsig-verify's for the
// same cases, so scripts can use either.
const (
	ExitVerifyUnsigned   = 10
	ExitVerifyUnknownKey = 11
	ExitVerifyBad        = 13
)

// Verify statuses, as printed by "verify --json".
const (
	verifyGood       = "good"
	verifyUnsigned   = "unsigned"
	verifyUnknownKey = "unknown-key"
	verifyBad        = "bad-signature"
	verifyError      = "error"
)

type verifyOptions struct {
	env      *Env
	file     string
	keyrings []string
	json     bool
}

func newVerifyCmd(env *Env, runF runFunc[verifyOptions]) *cobra.Command {
	o := &verifyOptions{env: env}
	cmd := &cobra.Command{
		Use:   "verify FILE.deb --keyring KEYRING",
		Short: "Check a package's origin signature (debsigs _gpgorigin)",
		Long: `Check the origin signature of a package, as debsig-verify does once its
policy names the keyring: the _gpgorigin member must be a good signature over
debian-binary, control.tar.* and data.tar.*, by a key of the keyring (binary
.gpg or armored .asc; --keyring may be repeated) that is neither expired nor
revoked now, with a strong digest. 'lampi-pkg sign' makes such signatures.

Exit status (10, 11 and 13 are debsig-verify's codes for the same cases):
   0  good signature
   1  the package cannot be read or is not a well-formed .deb, or a keyring
      cannot be read
   2  usage error
  10  unsigned: the package has no _gpgorigin member
  11  unknown key: signed, but by no key of the keyring
  13  bad signature: the package changed after signing, the signature is
      corrupt, or the key is expired or revoked, or the digest weak

With --json the output is one object, also when the package fails
verification (not for usage or keyring errors): {file, good, status
(good|unsigned|unknown-key|bad-signature|error), signer: {fingerprint,
primary_fingerprint, user_id, created, hash, algorithm}, error}.`,
		Example: `  lampi-pkg verify hi_1.0_all.deb --keyring repo-key.gpg
  lampi-pkg verify hi_1.0_all.deb --keyring repo-key.asc --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.file = args[0]
			return runVerb(cmd, runF, runVerify, o)
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&o.keyrings, "keyring", nil, "keyring with the trusted public keys (repeatable)")
	f.BoolVar(&o.json, "json", false, "print the result as JSON (also on failure)")
	return cmd
}

// verifyResult is the JSON output of verify.
type verifyResult struct {
	File   string             `json:"file"`
	Good   bool               `json:"good"`
	Status string             `json:"status"`
	Signer *signing.Signature `json:"signer,omitempty"`
	Error  string             `json:"error,omitempty"`
}

func runVerify(ctx context.Context, o *verifyOptions) error {
	env, file := o.env, o.file
	if len(o.keyrings) == 0 {
		return withHint(&usageError{errors.New("verify: --keyring is required")},
			"name the public keyring that holds the signing key, e.g. --keyring repo-key.gpg (see 'lampi-pkg key export')")
	}
	kr, err := loadKeyrings(o.keyrings)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	sig, err := verifyDebFile(ctx, kr, file, env.Now)
	res := verifyResult{File: file, Good: err == nil, Status: verifyGood, Signer: sig}
	if err != nil {
		code, status := verifyExit(err)
		res.Status, res.Error = status, err.Error()
		if o.json {
			if jerr := writeJSON(env.Out, res); jerr != nil {
				return jerr
			}
		}
		return &ExitError{Code: code, Err: verifyErrorHint(err)}
	}
	if sig.Fingerprint != sig.PrimaryFingerprint {
		fmt.Fprintf(env.Err, "warning: %s: signed by subkey %s: debsig-verify 0.28 (Debian 12) cannot check such signatures\n", file, sig.Fingerprint)
	}
	if o.json {
		return writeJSON(env.Out, res)
	}
	w := env.Out
	fmt.Fprintf(w, "%s: good origin signature by %s", file, sig.Fingerprint)
	if sig.UserID != "" {
		fmt.Fprintf(w, " %q", sig.UserID)
	}
	fmt.Fprintf(w, "\n  made %s, %s, %s\n", sig.Created.Format(time.RFC3339), sig.Algorithm, sig.Hash)
	return nil
}

func verifyDebFile(ctx context.Context, kr *signing.Keyring, file string, now func() time.Time) (*signing.Signature, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("verify %s: %w: not a regular file", file, deb.ErrNotDeb)
	}
	sig, err := signing.VerifyDeb(ctx, kr, f, st.Size(), signing.VerifyOptions{Now: now})
	if err != nil {
		return nil, fmt.Errorf("verify %s: %w", file, err)
	}
	return sig, nil
}

// verifyExit maps a verification error to verify's exit code and status.
func verifyExit(err error) (int, string) {
	switch {
	case errors.Is(err, signing.ErrUnsigned):
		return ExitVerifyUnsigned, verifyUnsigned
	case errors.Is(err, signing.ErrUnknownKey):
		return ExitVerifyUnknownKey, verifyUnknownKey
	case errors.Is(err, signing.ErrBadSignature), errors.Is(err, signing.ErrMalformed),
		errors.Is(err, signing.ErrWeakHash), errors.Is(err, signing.ErrKeyExpired),
		errors.Is(err, signing.ErrKeyRevoked), errors.Is(err, signing.ErrKeyNotYetValid),
		errors.Is(err, signing.ErrSignatureExpired):
		return ExitVerifyBad, verifyBad
	}
	return ExitFailure, verifyError
}

// verifyErrorHint adds what to do about a failed verification.
func verifyErrorHint(err error) error {
	switch {
	case errors.Is(err, signing.ErrUnsigned):
		return withHint(err, "sign the package: lampi-pkg sign FILE.deb --key KEY")
	case errors.Is(err, signing.ErrUnknownKey):
		return withHint(err, "the keyring lacks the signing key: export it with 'lampi-pkg key export KEY -o K.gpg', or check who signed the package")
	case errors.Is(err, signing.ErrBadSignature):
		return withHint(err, "the package changed after signing (or was damaged): do not install it; get it again or sign it again")
	case errors.Is(err, signing.ErrKeyExpired), errors.Is(err, signing.ErrKeyRevoked):
		return withHint(err, "re-sign the package with a valid key and ship that key's policy to the devices")
	case errors.Is(err, os.ErrNotExist):
		return withHint(err, "check the path of the .deb file")
	case errors.Is(err, deb.ErrTruncated):
		return withHint(err, "the file is incomplete: download or copy it again")
	case errors.Is(err, deb.ErrNotDeb), errors.Is(err, deb.ErrCompression):
		return withHint(err, "check that the file is a Debian binary package: 'lampi-pkg info FILE'")
	}
	return err
}
