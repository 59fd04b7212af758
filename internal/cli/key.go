package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/lampi-pkg/lampi-pkg/internal/atomicfile"
	"github.com/lampi-pkg/lampi-pkg/signing"
)

func newKeyCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "key",
		Short: "Make, export and inspect the OpenPGP key that signs the repository",
		Long: `Make, export and inspect OpenPGP keys. The secret key signs the repository
(InRelease, Release.gpg) and packages; its public key, exported as a binary
keyring, goes to /usr/share/keyrings on the devices for apt's signed-by=.`,
	}
	cmd.AddCommand(newKeyGenerateCmd(env, nil), newKeyExportCmd(env, nil), newKeyInfoCmd(env, nil))
	return cmd
}

type keyGenerateOptions struct {
	env                                                        *Env
	name, email, comment, algo, expire, passphraseFile, output string
	noPassphrase, force                                        bool
}

func newKeyGenerateCmd(env *Env, runF runFunc[keyGenerateOptions]) *cobra.Command {
	o := &keyGenerateOptions{env: env}
	cmd := &cobra.Command{
		Use:   "generate --name NAME --email EMAIL -o KEY.asc",
		Short: "Generate a signing key that apt, gpgv and debsig-verify accept",
		Long: `Generate a v4 OpenPGP secret key: ONE primary key that signs and certifies,
no subkey (debsig-verify cannot verify signatures made by a subkey), ed25519
(EdDSA, as gpgv 2.2 on Debian 12 needs) or RSA.

The secret key is protected with a passphrase from --passphrase-file, from
$LAMPI_PASSPHRASE, or typed twice when run in a terminal (empty: none). It is
written to -o with mode 0600 and never over an existing file without --force.`,
		Example: `  lampi-pkg key generate --name "Lampi Releases" --email releases@example.org -o signing-key.asc
  lampi-pkg key generate --name CI --email ci@example.org --algo rsa4096 --expire 3y --passphrase-file pass.txt -o ci.asc`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return runVerb(cmd, runF, runKeyGenerate, o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.name, "name", "", "real name of the user ID, e.g. \"Lampi Releases\"")
	f.StringVar(&o.email, "email", "", "e-mail address of the user ID")
	f.StringVar(&o.comment, "comment", "", "comment of the user ID")
	f.StringVar(&o.algo, "algo", string(signing.Ed25519), "key algorithm: ed25519, rsa4096 or rsa3072")
	f.StringVar(&o.expire, "expire", "2y", "lifetime: N days, Nd, Nw, Nm (30 days), Ny (365 days), or never")
	f.StringVar(&o.passphraseFile, "passphrase-file", "", "read the passphrase from this file (its final newline is ignored)")
	f.BoolVar(&o.noPassphrase, "no-passphrase", false, "do not protect the secret key, do not ask")
	f.StringVarP(&o.output, "output", "o", "", "secret key file to write (armored; binary if it ends in .gpg)")
	f.BoolVar(&o.force, "force", false, "overwrite an existing output file")
	cmd.MarkFlagRequired("output")
	cmd.MarkFlagsMutuallyExclusive("passphrase-file", "no-passphrase")
	return cmd
}

func runKeyGenerate(_ context.Context, o *keyGenerateOptions) error {
	env := o.env
	if o.name == "" && o.email == "" {
		return usageErrorf("key generate: --name or --email is required")
	}
	life, err := parseKeyLifetime(o.expire)
	if err != nil {
		return &usageError{fmt.Errorf("key generate: --expire: %w", err)}
	}
	if !o.force {
		if _, err := os.Stat(o.output); err == nil {
			return withHint(fmt.Errorf("key generate: %s already exists", o.output), "choose another -o, or add --force to replace it (the old key is lost)")
		}
	}
	var pass []byte
	if !o.noPassphrase {
		pass, err = readPassphrase(env, o.passphraseFile, "Passphrase for the new key (empty for none): ", true)
		if err != nil && !errors.Is(err, errNoPassphrase) {
			return fmt.Errorf("key generate: %w", err)
		}
	}
	now := env.Now()
	key, err := signing.GenerateKey(signing.GenerateOptions{
		Name: o.name, Email: o.email, Comment: o.comment,
		Algorithm: signing.Algorithm(strings.ToLower(o.algo)), Lifetime: life, Now: now, Passphrase: pass,
	})
	if err != nil {
		return &usageError{err}
	}
	var b bytes.Buffer
	if err := key.WriteSecret(&b, !strings.HasSuffix(o.output, ".gpg")); err != nil {
		return err
	}
	if err := atomicfile.WriteFile(o.output, b.Bytes(), 0o600); err != nil {
		return fmt.Errorf("key generate: %w", err)
	}
	info := key.Info(now)
	w := env.Out
	fmt.Fprintf(w, "Created %s key %s\n", info.Algorithm, info.Fingerprint)
	fmt.Fprintf(w, "  user ID   %s\n", strings.Join(info.UserIDs, ", "))
	fmt.Fprintf(w, "  expires   %s\n", keyExpires(info.Expires))
	protection := "passphrase-protected"
	if len(pass) == 0 {
		protection = "NOT passphrase-protected: keep the file secret"
	}
	fmt.Fprintf(w, "  secret    %s (%s)\n", o.output, protection)
	fmt.Fprintf(w, "Export the public keyring for the devices with:\n  lampi-pkg key export %s -o repo-key.gpg\n", o.output)
	return nil
}

type keyExportOptions struct {
	env           *Env
	key           string
	armor, binary bool
	output        string
}

func newKeyExportCmd(env *Env, runF runFunc[keyExportOptions]) *cobra.Command {
	o := &keyExportOptions{env: env}
	cmd := &cobra.Command{
		Use:   "export KEY [-o FILE]",
		Short: "Export the public keyring that devices use to verify the repository",
		Long: `Export the public part of KEY (a secret or public key file, armored or binary)
as the keyring users put in /usr/share/keyrings and name with signed-by=.
Binary by default when -o ends in .gpg, armored otherwise (and on standard
output). No passphrase is needed.`,
		Example: `  lampi-pkg key export signing-key.asc -o repo-key.gpg
  lampi-pkg key export signing-key.asc --armor > repo-key.asc`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.key = args[0]
			return runVerb(cmd, runF, runKeyExport, o)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.armor, "armor", false, "write an ASCII-armored key (.asc)")
	f.BoolVar(&o.binary, "binary", false, "write a binary keyring (.gpg)")
	f.StringVarP(&o.output, "output", "o", "", "file to write (default: standard output)")
	cmd.MarkFlagsMutuallyExclusive("armor", "binary")
	return cmd
}

func runKeyExport(_ context.Context, o *keyExportOptions) error {
	w, path := o.env.Out, o.key
	kr, err := readKeyringFile(path)
	if err != nil {
		return err
	}
	armored := !strings.HasSuffix(o.output, ".gpg")
	switch {
	case o.armor:
		armored = true
	case o.binary:
		armored = false
	}
	var b bytes.Buffer
	if err := kr.Write(&b, armored); err != nil {
		return fmt.Errorf("key export %s: %w", path, err)
	}
	if o.output == "" || o.output == "-" {
		_, err := w.Write(b.Bytes())
		return err
	}
	if err := atomicfile.WriteFile(o.output, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("key export: %w", err)
	}
	kind := "binary keyring"
	if armored {
		kind = "armored key"
	}
	for _, k := range kr.Keys() {
		fmt.Fprintf(w, "Exported public key %s to %s (%s)\n", k.Fingerprint(), o.output, kind)
	}
	return nil
}

type keyInfoOptions struct {
	env            *Env
	key            string
	json, check    bool
	passphraseFile string
}

func newKeyInfoCmd(env *Env, runF runFunc[keyInfoOptions]) *cobra.Command {
	o := &keyInfoOptions{env: env}
	cmd := &cobra.Command{
		Use:   "info KEY",
		Short: "Show fingerprints, algorithms, validity and subkeys of a key file",
		Long: `Show each key of KEY (secret or public, armored or binary) as gpg lists it:
fingerprint, algorithm, creation and expiry, capabilities ([S]ign,
[C]ertify, [E]ncrypt, [A]uthenticate), status now, subkeys, whether the
secret part is present and protected, and which (sub)key signs.

With --check, also prove that KEY can sign now, as a CI pre-flight check:
it must be one secret key, its passphrase (from --passphrase-file,
$LAMPI_PASSPHRASE or the terminal) must unlock it, and it must be neither
expired nor revoked and have a signing-capable (sub)key.`,
		Example: `  lampi-pkg key info signing-key.asc
  lampi-pkg key info /usr/share/keyrings/lampi.gpg --json
  LAMPI_PASSPHRASE=... lampi-pkg key info signing-key.asc --check`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.key = args[0]
			return runVerb(cmd, runF, runKeyInfo, o)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.json, "json", false, "print the keys as JSON")
	f.BoolVar(&o.check, "check", false, "check that the secret key unlocks and can sign now")
	f.StringVar(&o.passphraseFile, "passphrase-file", "", "with --check: read the passphrase from this file")
	return cmd
}

func runKeyInfo(_ context.Context, o *keyInfoOptions) error {
	env, path := o.env, o.key
	kr, err := readKeyringFile(path)
	if err != nil {
		return err
	}
	now := env.Now()
	infos := []signing.KeyInfo{}
	for _, k := range kr.Keys() {
		infos = append(infos, k.Info(now))
	}
	var checked string
	if o.check {
		key, err := loadSecretKey(env, path, o.passphraseFile)
		if err != nil {
			return err
		}
		s, err := signing.NewSigner(key, signing.SignOptions{Now: env.Now})
		if err != nil {
			return withHint(fmt.Errorf("key %s cannot sign: %w", path, err), "run 'lampi-pkg key info "+path+"' to see its validity and capabilities")
		}
		checked, _ = s.SigningFingerprint()
	}
	w := env.Out
	if o.json {
		out := map[string]any{"file": path, "keys": infos}
		if o.check {
			out["can_sign_with"] = checked
		}
		return writeJSON(w, out)
	}
	for i, info := range infos {
		if i > 0 {
			fmt.Fprintln(w)
		}
		printKeyInfo(w, info)
	}
	if o.check {
		fmt.Fprintf(w, "check: OK, signs now with %s\n", checked)
	}
	return nil
}

func printKeyInfo(w io.Writer, k signing.KeyInfo) {
	secretSubkeys := false
	for _, s := range k.Subkeys {
		secretSubkeys = secretSubkeys || s.Secret
	}
	kind := "pub"
	switch {
	case k.Secret:
		kind = "sec"
	case secretSubkeys:
		kind = "sec#" // gpg's mark for a primary key stub
	}
	fmt.Fprintf(w, "%-5s %s %s [%s]%s\n      %s\n", kind, k.Algorithm, k.Created.Format("2006-01-02"), k.Capabilities, keyValidity(k.Status, k.Expires), k.Fingerprint)
	for _, uid := range k.UserIDs {
		fmt.Fprintf(w, "uid   %s\n", uid)
	}
	for _, s := range k.Subkeys {
		kind := "sub"
		if s.Secret {
			kind = "ssb"
		}
		fmt.Fprintf(w, "%s   %s %s [%s]%s\n      %s\n", kind, s.Algorithm, s.Created.Format("2006-01-02"), s.Capabilities, keyValidity(s.Status, s.Expires), s.Fingerprint)
	}
	switch {
	case k.Secret && k.Protected:
		fmt.Fprintln(w, "secret key: present, passphrase-protected")
	case k.Secret:
		fmt.Fprintln(w, "secret key: present, NOT passphrase-protected")
	case secretSubkeys && k.Protected:
		fmt.Fprintln(w, "secret key: subkeys only (primary key offline), passphrase-protected")
	case secretSubkeys:
		fmt.Fprintln(w, "secret key: subkeys only (primary key offline), NOT passphrase-protected")
	default:
		fmt.Fprintln(w, "secret key: absent (public key only)")
	}
	if k.SigningKey == "" {
		fmt.Fprintln(w, "signs with: nothing (no valid signing-capable key)")
	} else {
		fmt.Fprintf(w, "signs with: %s\n", k.SigningKey)
	}
}

func keyValidity(status string, expires *time.Time) string {
	switch {
	case status == signing.StatusRevoked || status == signing.StatusNotYetValid:
		return " [" + status + "]"
	case status == signing.StatusExpired && expires != nil:
		return " [expired: " + expires.Format("2006-01-02") + "]"
	case status == signing.StatusExpired:
		return " [expired]"
	case expires != nil:
		return " [expires: " + expires.Format("2006-01-02") + "]"
	}
	return ""
}

func keyExpires(t *time.Time) string {
	if t == nil {
		return "never"
	}
	return t.Format("2006-01-02 15:04:05 MST")
}

// readKeyringFile reads a key file (one or more keys) with a helpful error.
func readKeyringFile(path string) (*signing.Keyring, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	kr, err := signing.ReadKeyring(f)
	if err != nil {
		return nil, withHint(fmt.Errorf("read key %s: %w", path, err), "give an OpenPGP key file: armored (.asc, '-----BEGIN PGP …') or a binary keyring (.gpg)")
	}
	return kr, nil
}

// parseKeyLifetime parses gpg's expiry syntax: "never" or 0, N (days), Nd,
// Nw, Nm (30 days), Ny (365 days).
func parseKeyLifetime(s string) (time.Duration, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "never" || s == "0" {
		return 0, nil
	}
	unit := 24 * time.Hour
	num := s
	if n := len(s); n > 0 {
		switch s[n-1] {
		case 'd':
			num = s[:n-1]
		case 'w':
			unit, num = 7*24*time.Hour, s[:n-1]
		case 'm':
			unit, num = 30*24*time.Hour, s[:n-1]
		case 'y':
			unit, num = 365*24*time.Hour, s[:n-1]
		}
	}
	n, err := strconv.Atoi(num)
	if err != nil || n < 0 || n > 136*365 {
		return 0, fmt.Errorf("%q is not a lifetime: use e.g. 2y, 18m, 6w, 90d, 90 or never", s)
	}
	return time.Duration(n) * unit, nil
}
