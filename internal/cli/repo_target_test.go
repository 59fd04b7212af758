package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
	"github.com/lampi-pkg/lampi-pkg/repo"
	"github.com/lampi-pkg/lampi-pkg/server"
	"github.com/lampi-pkg/lampi-pkg/server/upload"
)

// runEnv runs lampi-pkg in-process with the given environment.
func runEnv(t *testing.T, vars map[string]string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &Env{Out: &out, Err: &errb, In: strings.NewReader(""), Getenv: func(k string) string { return vars[k] },
		Now: time.Now, IsTerminal: func(any) bool { return false }}
	code = Main(args, env)
	return out.String(), errb.String(), code
}

// targetRepo makes a signed repository and builds hi 0.1 and 0.2.
func targetRepo(t *testing.T) (base, hi1, hi2 string) {
	base, hi1, hi2, _ = targetRepo3(t)
	return base, hi1, hi2
}

// targetRepo3 is targetRepo with hi 0.3 as well.
func targetRepo3(t *testing.T) (base, hi1, hi2, hi3 string) {
	t.Helper()
	dir := t.TempDir()
	base = filepath.Join(dir, "srv")
	root, _ := filepath.Abs("../..")
	fx := filepath.Join(root, "fixtures")
	if _, errs, code := runEnv(t, nil, "repo", "init", base, "--codename", "bookworm", "--suite", "stable",
		"--architectures", "amd64", "--sign-with", filepath.Join(fx, "keys", "lampi-test.sec.asc")); code != 0 {
		t.Fatalf("init: %s", errs)
	}
	hi1 = filepath.Join(dir, "hi_0.1_all.deb")
	if _, errs, code := runEnv(t, nil, "build", filepath.Join(fx, "hi"), "-o", hi1); code != 0 {
		t.Fatalf("build: %s", errs)
	}
	// hi 0.2 and 0.3: the fixture with another version.
	version := func(v string) string {
		src := filepath.Join(dir, "hi-"+v)
		if err := os.CopyFS(src, os.DirFS(filepath.Join(fx, "hi"))); err != nil {
			t.Fatal(err)
		}
		ctl := filepath.Join(src, "DEBIAN", "control")
		data, _ := os.ReadFile(ctl)
		os.WriteFile(ctl, bytes.Replace(data, []byte("Version: 0.1"), []byte("Version: "+v), 1), 0o644)
		out := filepath.Join(dir, "hi_"+v+"_all.deb")
		if _, errs, code := runEnv(t, nil, "build", src, "-o", out); code != 0 {
			t.Fatalf("build: %s", errs)
		}
		return out
	}
	return base, hi1, version("0.2"), version("0.3")
}

var minioCreds = map[string]string{"AWS_ACCESS_KEY_ID": testutil.MinIOUser, "AWS_SECRET_ACCESS_KEY": testutil.MinIOPassword}

// TestRepoPublishToErrors: bad credentials, a missing bucket and an
// unreachable endpoint each give a clear error naming the target and
// what to do, never the secret, and leave dists/, pool/ and db/ as they
// were.
func TestRepoPublishToErrors(t *testing.T) {
	m := testutil.StartMinIO(t)
	base, hi1, _ := targetRepo(t)
	bucket := m.NewBucket(t, false)
	dead := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	const secret = "sEcReT-do-not-print-4242"
	before := testutil.TreeSum(t, base, "dists", "pool", "db")
	for _, c := range []struct {
		name     string
		vars     map[string]string
		url, ep  string
		want     string
		wantHint string
	}{
		{"bad credentials", map[string]string{"AWS_ACCESS_KEY_ID": "nobody", "AWS_SECRET_ACCESS_KEY": secret},
			"s3://" + bucket + "/x", m.Endpoint, "credentials refused", "AWS_ACCESS_KEY_ID"},
		{"wrong secret", map[string]string{"AWS_ACCESS_KEY_ID": testutil.MinIOUser, "AWS_SECRET_ACCESS_KEY": secret},
			"s3://" + bucket + "/x", m.Endpoint, "credentials refused", "shared credentials file"},
		{"missing bucket", minioCreds, "s3://no-such-bucket/x", m.Endpoint, `bucket "no-such-bucket" does not exist`, "create it"},
		{"unreachable", minioCreds, "s3://" + bucket + "/x", dead, "cannot reach the endpoint", "is the endpoint right"},
		{"bad url", minioCreds, "http://" + bucket, m.Endpoint, "unsupported scheme", "s3://BUCKET/PREFIX"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.name == "unreachable" {
				// keep the test short: the check's own timeout is 15 s
				old := targetCheckTimeout
				targetCheckTimeout = 2 * time.Second
				defer func() { targetCheckTimeout = old }()
			}
			out, errs, code := runEnv(t, c.vars, "repo", "-b", base, "--publish-to", c.url, "--s3-endpoint", c.ep,
				"--s3-path-style", "--s3-insecure", "includedeb", "bookworm", hi1)
			if code == 0 {
				t.Fatalf("exit 0\n%s%s", out, errs)
			}
			if !strings.Contains(errs, c.want) || !strings.Contains(errs, c.wantHint) || !strings.Contains(errs, "nothing was changed") && c.name != "bad url" {
				t.Errorf("stderr %q, want %q and %q", errs, c.want, c.wantHint)
			}
			if strings.Contains(out+errs, secret) {
				t.Errorf("the secret was printed:\n%s", errs)
			}
			if after := testutil.TreeSum(t, base, "dists", "pool", "db"); after != before {
				t.Errorf("local repository changed:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}
}

// TestRepoPublishToCheck: includedeb --publish-to uploads to MinIO with
// credentials from the shared credentials file; check --publish-to
// --json reports a deleted and a damaged object, --repair fixes them;
// conf/targets names the target for the next commands.
func TestRepoPublishToCheck(t *testing.T) {
	m := testutil.StartMinIO(t)
	base, hi1, hi2, hi3 := targetRepo3(t)
	bucket := m.NewBucket(t, false)
	credFile := filepath.Join(t.TempDir(), "credentials")
	os.WriteFile(credFile, []byte(fmt.Sprintf("[other]\naws_access_key_id = x\naws_secret_access_key = y\n\n[lampi]\naws_access_key_id = %s\naws_secret_access_key = %s\n",
		testutil.MinIOUser, testutil.MinIOPassword)), 0o600)
	vars := map[string]string{"AWS_SHARED_CREDENTIALS_FILE": credFile, "AWS_PROFILE": "lampi"}
	url := "s3://" + bucket + "/apt"
	flags := []string{"repo", "-b", base, "--publish-to", url, "--s3-endpoint", m.Endpoint, "--s3-path-style", "--s3-insecure"}
	if out, errs, code := runEnv(t, vars, append(flags, "includedeb", "bookworm", hi1)...); code != 0 {
		t.Fatalf("includedeb: %s%s", out, errs)
	} else if !strings.Contains(errs, "uploaded") {
		t.Errorf("no upload summary: %s", errs)
	}
	ctx := context.Background()
	if err := m.Client.RemoveObject(ctx, bucket, "apt/pool/main/h/hi/hi_0.1_all.deb", minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Client.PutObject(ctx, bucket, "apt/dists/bookworm/InRelease", strings.NewReader("bad"), 3, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	out, errs, code := runEnv(t, vars, append(flags, "check", "--json")...)
	if code != 1 {
		t.Fatalf("check: exit %d\n%s%s", code, out, errs)
	}
	var reps []struct {
		Missing, Different, Extra []string
		Repaired                  int
	}
	if err := json.Unmarshal([]byte(out), &reps); err != nil || len(reps) != 1 {
		t.Fatalf("json %v: %s", err, out)
	}
	if strings.Join(reps[0].Missing, ",") != "pool/main/h/hi/hi_0.1_all.deb" || strings.Join(reps[0].Different, ",") != "dists/bookworm/InRelease" {
		t.Fatalf("report %+v", reps[0])
	}
	if out, errs, code := runEnv(t, vars, append(flags, "check", "--repair")...); code != 0 || !strings.Contains(out, "repaired 2 objects") {
		t.Fatalf("repair: %d\n%s%s", code, out, errs)
	}
	if out, errs, code := runEnv(t, vars, append(flags, "check")...); code != 0 || !strings.Contains(out, "ok") {
		t.Fatalf("check after repair: %d\n%s%s", code, out, errs)
	}

	// conf/targets: the same bucket under a name, used by every command.
	conf := fmt.Sprintf("Name: cdn\nURL: %s\nEndpoint: %s\nPathStyle: yes\nInsecure: yes\n", url, m.Endpoint)
	os.WriteFile(filepath.Join(base, "conf", "targets"), []byte(conf), 0o644)
	if out, errs, code := runEnv(t, vars, "repo", "-b", base, "includedeb", "bookworm", hi2); code != 0 {
		t.Fatalf("includedeb with conf/targets: %s%s", out, errs)
	} else if !strings.Contains(errs, "cdn: uploaded") {
		t.Errorf("no upload to cdn: %s", errs)
	}
	if _, err := m.Client.StatObject(ctx, bucket, "apt/pool/main/h/hi/hi_0.2_all.deb", minio.StatObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if out, errs, code := runEnv(t, vars, "repo", "-b", base, "check", "--targets", "--json"); code != 0 || !strings.Contains(out, `"missing": []`) {
		t.Fatalf("check with conf/targets: %d\n%s%s", code, out, errs)
	}

	// The upload API (serve) publishes there too, through the same
	// conf/targets (ConfTargetsMirror, which serve's OpenRepo uses).
	var errb bytes.Buffer
	env := &Env{Out: &bytes.Buffer{}, Err: &errb, In: strings.NewReader(""), Getenv: func(k string) string { return vars[k] },
		Now: time.Now, IsTerminal: func(any) bool { return false }}
	mirror, err := ConfTargetsMirror(env, base)
	if err != nil || mirror == nil || len(mirror.Targets) != 1 {
		t.Fatalf("ConfTargetsMirror: %v %v", mirror, err)
	}
	tokens := &server.TokenStore{Path: filepath.Join(t.TempDir(), "tokens.db"), Now: time.Now}
	token, _, err := tokens.Create("ci", []string{"upload:bookworm"})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Options{Dir: base, Now: time.Now, Tokens: tokens,
		OpenRepo: func() (*repo.Repo, error) { return repo.Open(base, repo.Options{Now: time.Now, Mirror: mirror}) }})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	hs := httptest.NewServer(srv)
	defer hs.Close()
	f, err := os.Open(hi3)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	client := &upload.Client{BaseURL: hs.URL, Token: token}
	if _, err := client.Upload(ctx, "bookworm", filepath.Base(hi3), f); err != nil {
		t.Fatalf("upload: %v", err)
	}
	if _, err := m.Client.StatObject(ctx, bucket, "apt/pool/main/h/hi/hi_0.3_all.deb", minio.StatObjectOptions{}); err != nil {
		t.Fatalf("uploaded package not in the bucket: %v", err)
	}
	if out, errs, code := runEnv(t, vars, "repo", "-b", base, "check", "--targets"); code != 0 || !strings.Contains(out, "cdn: ok") {
		t.Fatalf("check after upload: %d\n%s%s", code, out, errs)
	}

	// A profile the file lacks is a clear error.
	_, errs, code = runEnv(t, map[string]string{"AWS_SHARED_CREDENTIALS_FILE": credFile, "AWS_PROFILE": "nope"}, "repo", "-b", base, "export")
	if code == 0 || !strings.Contains(errs, "no profile [nope]") {
		t.Fatalf("missing profile: %d %s", code, errs)
	}
}

// TestRepoPublishToBehind: when the target fails after the local publish,
// the command exits non-zero saying the target is behind and how to
// complete it; the local repository has the package; export completes
// the target.
func TestRepoPublishToBehind(t *testing.T) {
	base, hi1, _ := targetRepo(t)
	mirror := t.TempDir()
	// A file where the pool's directory should be: even root cannot
	// create pool/main/h/ then.
	os.MkdirAll(filepath.Join(mirror, "pool"), 0o755)
	os.WriteFile(filepath.Join(mirror, "pool", "main"), []byte("in the way"), 0o644)
	flags := []string{"repo", "-b", base, "--publish-to", "file://" + mirror}
	out, errs, code := runEnv(t, nil, append(flags, "includedeb", "bookworm", hi1)...)
	if code == 0 || !strings.Contains(errs, "behind") || !strings.Contains(errs, "lampi-pkg repo -b "+base+" export") {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	if out, _, _ := runEnv(t, nil, "repo", "-b", base, "list", "bookworm"); !strings.Contains(out, "hi") {
		t.Fatalf("the local repository lacks hi: %q", out)
	}
	if out, _, code := runEnv(t, nil, append(flags, "check")...); code != 1 || !strings.Contains(out, "behind") {
		t.Fatalf("check: %d %q", code, out)
	}
	os.Remove(filepath.Join(mirror, "pool", "main"))
	if out, errs, code := runEnv(t, nil, append(flags, "export")...); code != 0 {
		t.Fatalf("export: %s%s", out, errs)
	}
	if out, errs, code := runEnv(t, nil, append(flags, "check")...); code != 0 || !strings.Contains(out, "ok") {
		t.Fatalf("check after export: %d\n%s%s", code, out, errs)
	}
	if _, err := os.Stat(filepath.Join(mirror, "pool/main/h/hi/hi_0.1_all.deb")); err != nil {
		t.Fatal(err)
	}
}
