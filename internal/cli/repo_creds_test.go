package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAWSCredentials: the environment's keys win; else the profile of
// the shared credentials file, read by minio-go's provider; no file at
// the default place is anonymous; a missing profile, a profile without
// keys, half a key pair and a malformed file are errors that say what to
// do and never show a secret.
func TestAWSCredentials(t *testing.T) {
	const secret = "sEcReT-in-file-4242"
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good", "[default]\naws_access_key_id = DEF\naws_secret_access_key = "+secret+"\n\n[lampi]\naws_access_key_id = LAMPI\naws_secret_access_key = "+secret+"\naws_session_token = tok\n[empty]\nregion = x\n")
	half := write("half", "[default]\naws_access_key_id = DEF\n")
	bad := write("bad", "[default]\naws_secret_access_key "+secret+"\n")
	home := t.TempDir()
	os.MkdirAll(filepath.Join(home, ".aws"), 0o755)
	for _, c := range []struct {
		name    string
		vars    map[string]string
		wantKey string // access key id; "" anonymous
		wantErr string
	}{
		{"env", map[string]string{"AWS_ACCESS_KEY_ID": "ENV", "AWS_SECRET_ACCESS_KEY": "s", "AWS_SHARED_CREDENTIALS_FILE": good}, "ENV", ""},
		{"env half", map[string]string{"AWS_ACCESS_KEY_ID": "ENV"}, "", "must be set together"},
		{"file default profile", map[string]string{"AWS_SHARED_CREDENTIALS_FILE": good}, "DEF", ""},
		{"file named profile", map[string]string{"AWS_SHARED_CREDENTIALS_FILE": good, "AWS_PROFILE": "lampi"}, "LAMPI", ""},
		{"no file at home", map[string]string{"HOME": home}, "", ""},
		{"no home", nil, "", ""},
		{"missing explicit file", map[string]string{"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "nope")}, "", "no such file"},
		{"missing profile", map[string]string{"AWS_SHARED_CREDENTIALS_FILE": good, "AWS_PROFILE": "nope"}, "", "no profile [nope]; set AWS_PROFILE"},
		{"profile without keys", map[string]string{"AWS_SHARED_CREDENTIALS_FILE": good, "AWS_PROFILE": "empty"}, "", "profile [empty] lacks aws_access_key_id"},
		{"half a pair", map[string]string{"AWS_SHARED_CREDENTIALS_FILE": half}, "", "profile [default] lacks aws_access_key_id"},
		{"malformed", map[string]string{"AWS_SHARED_CREDENTIALS_FILE": bad}, "", "'key = value' lines"},
	} {
		t.Run(c.name, func(t *testing.T) {
			env := &Env{Getenv: func(k string) string { return c.vars[k] }}
			creds, err := awsCredentials(env)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("error %v, want %q", err, c.wantErr)
				}
				if strings.Contains(err.Error(), secret) {
					t.Fatalf("the secret is in the error: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			key := creds.AccessKeyID
			if creds.Provider != nil {
				v, err := creds.Provider.Retrieve()
				if err != nil {
					t.Fatal(err)
				}
				key = v.AccessKeyID
			}
			if key != c.wantKey {
				t.Fatalf("access key %q, want %q", key, c.wantKey)
			}
			if strings.Contains(creds.String(), secret) {
				t.Fatalf("String shows the secret: %s", creds)
			}
		})
	}
}
