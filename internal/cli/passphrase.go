package cli

import (
	"bytes"
	"errors"
	"fmt"
	"os"

	"golang.org/x/term"

	"github.com/lampi-pkg/lampi-pkg/signing"
)

// PassphraseEnv names the environment variable that holds the passphrase
// of the signing key in CI.
const PassphraseEnv = "LAMPI_PASSPHRASE"

// errNoPassphrase: no passphrase source is available.
var errNoPassphrase = errors.New("no passphrase given")

// readPassphrase returns a passphrase from, in this order: the file given
// with --passphrase-file, $LAMPI_PASSPHRASE, or a prompt on the terminal
// when standard input is one (typed without echo; confirmed when confirm
// is set). Without any of them it returns errNoPassphrase. The passphrase
// is never printed, logged or put in an error message.
func readPassphrase(env *Env, file, prompt string, confirm bool) ([]byte, error) {
	if file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("read passphrase file: %w", err)
		}
		p := bytes.TrimSuffix(bytes.TrimSuffix(data, []byte{'\n'}), []byte{'\r'})
		if len(p) == 0 {
			return nil, fmt.Errorf("passphrase file %s is empty", file)
		}
		return p, nil
	}
	if p := env.Getenv(PassphraseEnv); p != "" {
		return []byte(p), nil
	}
	if env.IsTerminal == nil || !env.IsTerminal(env.In) {
		return nil, errNoPassphrase
	}
	p, err := promptPassphrase(env, prompt)
	if err != nil || !confirm || len(p) == 0 {
		return p, err
	}
	again, err := promptPassphrase(env, "Repeat the passphrase: ")
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(p, again) {
		return nil, errors.New("the two passphrases differ")
	}
	return p, nil
}

// promptPassphrase asks on the terminal without echo. An In that is not a
// file (tests) is read line by line.
func promptPassphrase(env *Env, prompt string) ([]byte, error) {
	fmt.Fprint(env.Err, prompt)
	defer fmt.Fprintln(env.Err)
	if f, ok := env.In.(*os.File); ok {
		p, err := term.ReadPassword(int(f.Fd()))
		if err != nil {
			return nil, fmt.Errorf("read passphrase from the terminal: %w", err)
		}
		return p, nil
	}
	// One byte at a time: a buffered reader would swallow the next answer.
	var line []byte
	b := make([]byte, 1)
	for {
		n, err := env.In.Read(b)
		if n == 1 && b[0] == '\n' {
			break
		}
		line = append(line, b[:n]...)
		if err != nil {
			if len(line) == 0 {
				return nil, fmt.Errorf("read passphrase: %w", err)
			}
			break
		}
	}
	return bytes.TrimRight(line, "\r"), nil
}

// loadSecretKey reads the secret key at path and unlocks it if it is
// passphrase-protected, asking as readPassphrase does. Verbs that sign
// use it.
func loadSecretKey(env *Env, path, passphraseFile string) (*signing.Key, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	key, err := signing.ReadKey(f)
	if err != nil {
		return nil, withHint(fmt.Errorf("read key %s: %w", path, err), "give an OpenPGP secret key file (armored .asc or binary), e.g. one made by 'lampi-pkg key generate'")
	}
	if !key.IsSecret() {
		return nil, withHint(fmt.Errorf("key %s (%s): %w", path, key.Fingerprint(), signing.ErrNotSecretKey),
			"this is a public key; sign with the secret key file (from 'lampi-pkg key generate' or 'gpg --export-secret-keys')")
	}
	if !key.Locked() {
		return key, nil
	}
	pass, err := readPassphrase(env, passphraseFile, fmt.Sprintf("Passphrase for key %s: ", key.Fingerprint()), false)
	if errors.Is(err, errNoPassphrase) {
		return nil, withHint(fmt.Errorf("key %s (%s): %w, and no passphrase was given", path, key.Fingerprint(), signing.ErrNeedPassphrase),
			"give it with --passphrase-file FILE or in $"+PassphraseEnv+", or run in a terminal to be asked")
	}
	if err != nil {
		return nil, err
	}
	if err := key.Unlock(pass); err != nil {
		return nil, withHint(fmt.Errorf("key %s: %w", path, err), "check the passphrase (a passphrase file's final newline is ignored)")
	}
	return key, nil
}
