package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/lampi-pkg/lampi-pkg/signing"
)

type verifyReleaseOptions struct {
	env *Env
	// files are InRelease, or Release and Release.gpg.
	files    []string
	keyrings []string
	json     bool
}

func newVerifyReleaseCmd(env *Env, runF runFunc[verifyReleaseOptions]) *cobra.Command {
	o := &verifyReleaseOptions{env: env}
	cmd := &cobra.Command{
		Use:   "verify-release InRelease | Release Release.gpg --keyring KEYRING",
		Short: "Check a repository's signed index the way apt does",
		Long: `Check the signature of an apt repository index as apt (through gpgv) will:
a clearsigned InRelease, or a Release file with its detached Release.gpg.
The signature must be good and made by a key of the keyring (the file apt's
signed-by= names: binary .gpg or armored .asc; --keyring may be repeated),
the key neither expired nor revoked now, and the digest not weak (SHA-1 and
MD5 are refused). Text around the signed part of an InRelease is refused.

Exit status: 0 good signature, 1 bad, unknown or unusable signature (or
unreadable input), 2 usage error.`,
		Example: `  lampi-pkg verify-release dists/stable/InRelease --keyring repo-key.gpg
  lampi-pkg verify-release dists/stable/Release dists/stable/Release.gpg --keyring repo-key.asc --json`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.files = args
			return runVerb(cmd, runF, runVerifyRelease, o)
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&o.keyrings, "keyring", nil, "keyring with the trusted public keys (repeatable)")
	f.BoolVar(&o.json, "json", false, "print the result as JSON (also on failure)")
	return cmd
}

// verifyReleaseResult is the JSON output of verify-release.
type verifyReleaseResult struct {
	File      string             `json:"file"`
	Signature string             `json:"signature_file,omitempty"`
	Good      bool               `json:"good"`
	Signer    *signing.Signature `json:"signer,omitempty"`
	Error     string             `json:"error,omitempty"`
}

func runVerifyRelease(ctx context.Context, o *verifyReleaseOptions) error {
	env, args := o.env, o.files
	if len(o.keyrings) == 0 {
		return withHint(&usageError{fmt.Errorf("verify-release: --keyring is required")},
			"name the public keyring apt's signed-by= uses, e.g. --keyring /usr/share/keyrings/lampi.gpg (see 'lampi-pkg key export')")
	}
	kr, err := loadKeyrings(o.keyrings)
	if err != nil {
		return err
	}
	res := verifyReleaseResult{File: args[0]}
	if len(args) == 2 {
		res.Signature = args[1]
	}
	sig, err := verifyReleaseFiles(ctx, kr, args, env.Now)
	if err != nil {
		if o.json {
			res.Error = err.Error()
			if jerr := writeJSON(env.Out, res); jerr != nil {
				return jerr
			}
		}
		return &ExitError{Code: ExitFailure, Err: err}
	}
	res.Good, res.Signer = true, sig
	if o.json {
		return writeJSON(env.Out, res)
	}
	what := args[0]
	if len(args) == 2 {
		what = args[1] + " (over " + args[0] + ")"
	}
	by := sig.Fingerprint
	if sig.PrimaryFingerprint != sig.Fingerprint {
		by = "subkey " + sig.Fingerprint + " of " + sig.PrimaryFingerprint
	}
	w := env.Out
	fmt.Fprintf(w, "%s: good signature by %s", what, by)
	if sig.UserID != "" {
		fmt.Fprintf(w, " %q", sig.UserID)
	}
	fmt.Fprintf(w, "\n  made %s, %s, %s\n", sig.Created.Format(time.RFC3339), sig.Algorithm, sig.Hash)
	return nil
}

func verifyReleaseFiles(ctx context.Context, kr *signing.Keyring, args []string, now func() time.Time) (*signing.Signature, error) {
	opts := signing.VerifyOptions{Now: now}
	data, err := os.ReadFile(args[0])
	if err != nil {
		return nil, err
	}
	if len(args) == 1 {
		sig, _, err := signing.VerifyClearsigned(ctx, kr, bytes.NewReader(data), opts)
		if err != nil {
			return nil, verifyHint(fmt.Errorf("verify %s: %w", args[0], err), args)
		}
		return sig, nil
	}
	if bytes.HasPrefix(bytes.TrimSpace(data), []byte("-----BEGIN PGP SIGNATURE-----")) {
		return nil, withHint(&usageError{fmt.Errorf("verify-release: %s is a signature, not the signed file", args[0])},
			fmt.Sprintf("give the signed file first: lampi-pkg verify-release %s %s --keyring K", args[1], args[0]))
	}
	sigData, err := os.ReadFile(args[1])
	if err != nil {
		return nil, err
	}
	sig, err := signing.VerifyDetached(ctx, kr, bytes.NewReader(data), bytes.NewReader(sigData), opts)
	if err != nil {
		return nil, verifyHint(fmt.Errorf("verify %s with %s: %w", args[0], args[1], err), args)
	}
	return sig, nil
}

// verifyHint adds what to do for the common failures.
func verifyHint(err error, args []string) error {
	switch {
	case errors.Is(err, signing.ErrUnknownKey):
		return withHint(err, "the keyring lacks the signing key: export it with 'lampi-pkg key export KEY -o K.gpg', or check which key signed the repository")
	case errors.Is(err, signing.ErrUnsigned) && len(args) == 1:
		return withHint(err, "for a Release file give its signature too: lampi-pkg verify-release Release Release.gpg --keyring K")
	case errors.Is(err, signing.ErrKeyExpired):
		return withHint(err, "extend the key's expiry and re-sign the repository, then ship the updated public key to the devices")
	case errors.Is(err, signing.ErrBadSignature):
		return withHint(err, "the file changed after signing (or was damaged in transit): re-publish the repository")
	}
	return err
}

// loadKeyrings reads and merges the keyring files.
func loadKeyrings(paths []string) (*signing.Keyring, error) {
	var keys []*signing.Key
	for _, p := range paths {
		kr, err := readKeyringFile(p)
		if err != nil {
			return nil, err
		}
		keys = append(keys, kr.Keys()...)
	}
	return signing.NewKeyring(keys...), nil
}
