package cli

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lampi-pkg/lampi-pkg/signing"
)

// fakeEnv is an Env whose standard input may pretend to be a terminal.
func fakeEnv(stdin string, terminal bool, vars map[string]string) (*Env, *bytes.Buffer, *bytes.Buffer) {
	var out, errb bytes.Buffer
	return &Env{
		In:         strings.NewReader(stdin),
		Out:        &out,
		Err:        &errb,
		Getenv:     func(k string) string { return vars[k] },
		Now:        func() time.Time { return time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC) },
		IsTerminal: func(any) bool { return terminal },
	}, &out, &errb
}

func TestReadPassphraseSources(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "pass")
	os.WriteFile(file, []byte("from-file\r\n"), 0o600)
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("\n"), 0o600)
	env, _, _ := fakeEnv("typed\n", true, map[string]string{PassphraseEnv: "from-env"})
	cases := []struct {
		name, file string
		env        *Env
		want       string
		err        bool
	}{
		{"file first", file, env, "from-file", false},
		{"empty file", empty, env, "", true},
		{"environment", "", env, "from-env", false},
		{"terminal", "", func() *Env { e, _, _ := fakeEnv("typed\n", true, nil); return e }(), "typed", false},
		{"none", "", func() *Env { e, _, _ := fakeEnv("typed\n", false, nil); return e }(), "", true},
	}
	for _, c := range cases {
		got, err := readPassphrase(c.env, c.file, "? ", false)
		if (err != nil) != c.err || string(got) != c.want {
			t.Errorf("%s: %q, %v", c.name, got, err)
		}
	}
	e, _, _ := fakeEnv("", false, nil)
	if _, err := readPassphrase(e, "", "? ", false); !errors.Is(err, errNoPassphrase) {
		t.Errorf("no source: %v, want errNoPassphrase", err)
	}
}

// TestGenerateAsksOnTerminal: in a terminal, key generate asks twice for
// the passphrase, never echoes it, and protects the key with it.
func TestGenerateAsksOnTerminal(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "k.asc")
	env, out, errb := fakeEnv("s3cret-words\ns3cret-words\n", true, nil)
	if code := Main([]string{"key", "generate", "--name", "T", "--email", "t@lampi.example", "-o", key}, env); code != 0 {
		t.Fatalf("exit %d: %s", code, errb)
	}
	if !strings.Contains(errb.String(), "Passphrase for the new key") || !strings.Contains(errb.String(), "Repeat") {
		t.Errorf("no prompts on stderr: %q", errb)
	}
	if strings.Contains(out.String()+errb.String(), "s3cret") {
		t.Error("the passphrase was printed")
	}
	k := readKeyFile(t, key)
	if !k.Locked() || k.Unlock([]byte("s3cret-words")) != nil {
		t.Error("the key is not protected with the typed passphrase")
	}

	env, _, errb = fakeEnv("first-pw-xyz\nsecond-pw-xyz\n", true, nil)
	if code := Main([]string{"key", "generate", "--name", "T", "-o", filepath.Join(dir, "k2.asc")}, env); code != ExitFailure || !strings.Contains(errb.String(), "the two passphrases differ") {
		t.Errorf("mismatched passphrases: exit %d, %q", code, errb)
	}
	if strings.Contains(errb.String(), "pw-xyz") {
		t.Errorf("a passphrase was printed: %q", errb)
	}

	// --check asks once on the terminal for a protected key.
	env, out, errb = fakeEnv("s3cret-words\n", true, nil)
	if code := Main([]string{"key", "info", key, "--check"}, env); code != 0 || !strings.Contains(out.String(), "check: OK") {
		t.Errorf("key info --check: exit %d, %s %s", code, out, errb)
	}
}

func readKeyFile(t *testing.T, path string) *signing.Key {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	k, err := signing.ReadKey(f)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
