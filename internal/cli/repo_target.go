package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/spf13/pflag"

	"github.com/lampi-pkg/lampi-pkg/repo"
	"github.com/lampi-pkg/lampi-pkg/repo/storage"
)

// targetFlags are the publish-target options of "lampi-pkg repo".
type targetFlags struct {
	publishTo []string
	endpoint  string
	region    string
	pathStyle bool
	insecure  bool
	workers   int
}

// targetCheckTimeout bounds the reachability check done before a command
// changes the local repository.
var targetCheckTimeout = 15 * time.Second

// flags binds --publish-to and its companions to the persistent flags f
// of the repo command. "check --targets" compares a target with the
// repository (repo_check.go).
func (tf *targetFlags) flags(f *pflag.FlagSet) {
	f.StringArrayVar(&tf.publishTo, "publish-to", nil, "also publish to this target: s3://BUCKET/PREFIX or file:///DIR (repeatable; conf/targets names more)")
	f.StringVar(&tf.endpoint, "s3-endpoint", "", "S3 endpoint host[:port] for --publish-to (default: from conf/targets, else s3.amazonaws.com)")
	f.StringVar(&tf.region, "s3-region", "", "S3 region for --publish-to")
	f.BoolVar(&tf.pathStyle, "s3-path-style", false, "address the bucket as ENDPOINT/BUCKET (MinIO, Ceph)")
	f.BoolVar(&tf.insecure, "s3-insecure", false, "plain http to the S3 endpoint (a local MinIO only)")
	f.IntVar(&tf.workers, "upload-workers", 8, "parallel uploads per publish target")
}

// applyTargets sets opts.Mirror from conf/targets and --publish-to, with
// credentials from the environment, and makes sure the targets are
// usable before a modifying command touches the local repository.
func (o *repoOptions) applyTargets(ctx context.Context, env *Env, modifying bool, conf *repo.Config, opts *repo.Options) error {
	m, err := mirrorOptions(env, conf.Dir, &o.target, o.silent, o.verbose > 0)
	if err != nil || m == nil {
		return err
	}
	opts.Mirror = m
	if modifying && opts.Export != repo.ExportNever {
		for _, t := range m.Targets {
			if err := t.Check(ctx, targetCheckTimeout); err != nil {
				return withHint(err, "nothing was changed; fix the target (or drop --publish-to) and run the command again")
			}
		}
	}
	return nil
}

// ConfTargetsMirror returns the publish targets conf/targets of the
// repository at base configures (nil when none), with credentials from
// the environment: for commands that open a repository themselves (the
// upload API of serve). Check them (Repo.CheckTargets) before changing
// the repository.
func ConfTargetsMirror(env *Env, base string) (*repo.MirrorOptions, error) {
	return mirrorOptions(env, repo.Layout{Base: base}.Conf(), &targetFlags{}, true, false)
}

// mirrorOptions builds the publish targets of conf/targets in confDir
// and of tf's --publish-to.
func mirrorOptions(env *Env, confDir string, tf *targetFlags, silent, verbose bool) (*repo.MirrorOptions, error) {
	confTargets, err := repo.LoadTargets(confDir)
	if err != nil {
		return nil, withHint(err, "fix conf/targets at the place shown")
	}
	var cfgs []storage.TargetConfig
	for _, c := range confTargets {
		cfgs = append(cfgs, *c)
	}
	for _, u := range tf.publishTo {
		var match *storage.TargetConfig
		for _, c := range confTargets {
			if c.URL == u || c.Name == u {
				match = c
			}
		}
		if match != nil {
			continue // conf/targets has it, with its settings
		}
		cfgs = append(cfgs, storage.TargetConfig{Name: u, URL: u, Endpoint: tf.endpoint, Region: tf.region,
			PathStyle: tf.pathStyle, Insecure: tf.insecure})
	}
	if len(cfgs) == 0 {
		return nil, nil
	}
	creds, err := awsCredentials(env)
	if err != nil {
		return nil, withHint(err, "publish targets take credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or the shared credentials file")
	}
	m := &repo.MirrorOptions{Workers: tf.workers}
	for _, c := range cfgs {
		t, err := storage.OpenTarget(c, creds)
		if err != nil {
			return nil, withHint(err, "use --publish-to s3://BUCKET/PREFIX or file:///DIR")
		}
		m.Targets = append(m.Targets, t)
	}
	if env.IsTerminal != nil && env.IsTerminal(env.Err) && !silent {
		var mu sync.Mutex
		printers := map[string]func(done, total int64){}
		m.Progress = func(target string, done, total int64) {
			mu.Lock()
			defer mu.Unlock()
			p := printers[target]
			if p == nil {
				p = progressPrinter(env, "upload to "+target)
				printers[target] = p
			}
			p(done, total)
			if done >= total {
				fmt.Fprintln(env.Err)
			}
		}
	}
	if !silent {
		m.Done = func(r repo.SyncResult) {
			if r.Uploaded+r.Copied+r.Deleted > 0 || verbose {
				fmt.Fprintf(env.Err, "%s: uploaded %d objects (%s), copied %d in place, deleted %d\n",
					r.Target, r.Uploaded, humanBytes(r.Bytes), r.Copied, r.Deleted)
			}
		}
	}
	return m, nil
}

// awsCredentials finds the standard AWS credentials: AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN, else the profile
// AWS_PROFILE (default "default") of the shared credentials file
// (AWS_SHARED_CREDENTIALS_FILE, default ~/.aws/credentials), read by
// minio-go's credentials.FileAWSCredentials (which also runs a profile's
// credential_process). None at all gives anonymous access. The variables
// come from env, so that the library never reads the environment.
func awsCredentials(env *Env) (storage.S3Credentials, error) {
	id, secret := env.Getenv("AWS_ACCESS_KEY_ID"), env.Getenv("AWS_SECRET_ACCESS_KEY")
	if id != "" || secret != "" {
		if id == "" || secret == "" {
			return storage.S3Credentials{}, fmt.Errorf("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together")
		}
		return storage.S3Credentials{AccessKeyID: id, SecretAccessKey: secret, SessionToken: env.Getenv("AWS_SESSION_TOKEN")}, nil
	}
	file := env.Getenv("AWS_SHARED_CREDENTIALS_FILE")
	explicit := file != ""
	if file == "" {
		home := env.Getenv("HOME")
		if home == "" {
			return storage.S3Credentials{}, nil
		}
		file = filepath.Join(home, ".aws", "credentials")
	}
	profile := env.Getenv("AWS_PROFILE")
	if profile == "" {
		profile = "default"
	}
	if _, err := os.Stat(file); err != nil {
		if errors.Is(err, os.ErrNotExist) && !explicit && env.Getenv("AWS_PROFILE") == "" {
			return storage.S3Credentials{}, nil
		}
		return storage.S3Credentials{}, fmt.Errorf("credentials: %w", err)
	}
	// Filename and Profile set: the provider reads no variable itself.
	p := &credentials.FileAWSCredentials{Filename: file, Profile: profile}
	v, err := p.Retrieve()
	switch {
	case err != nil:
		return storage.S3Credentials{}, explainCredentialsFile(file, profile, err)
	case v.AccessKeyID == "" || v.SecretAccessKey == "":
		return storage.S3Credentials{}, fmt.Errorf("%s: profile [%s] lacks aws_access_key_id or aws_secret_access_key", file, profile)
	}
	return storage.S3Credentials{Provider: p}, nil
}

// explainCredentialsFile turns an error of the shared credentials file's
// provider into one that says what to do. It never passes on the
// provider's parse errors: they quote the line, which may hold a secret.
func explainCredentialsFile(file, profile string, err error) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, fmt.Sprintf("section %q does not exist", profile)):
		return fmt.Errorf("%s: no profile [%s]; set AWS_PROFILE to one the file has", file, profile)
	case strings.Contains(msg, "partial static credentials"):
		return fmt.Errorf("%s: profile [%s] lacks aws_access_key_id or aws_secret_access_key", file, profile)
	case strings.Contains(msg, "delimiter") || strings.Contains(msg, "unclosed section"):
		return fmt.Errorf("%s: expected '[profile]' headers and 'key = value' lines", file)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("credentials: %w", err)
	}
	return fmt.Errorf("%s: profile [%s]: %w", file, profile, err)
}

// runTargetCheck is "check" with publish targets: it compares each with
// the repository and reports (and with --repair fixes) the differences.
func runTargetCheck(ctx context.Context, o *repoCheckOptions) error {
	if len(o.codenames) > 0 {
		return usageErrorf("repo check: with --publish-to, check takes no codename (a target covers its Codenames)")
	}
	r, err := o.repo.open(ctx, o.env, false)
	if err != nil {
		return repoError(err)
	}
	targets := r.Targets()
	if len(targets) == 0 {
		return usageErrorf("repo check --repair: no publish target; give --publish-to or add one to conf/targets")
	}
	var reports []*repo.TargetReport
	clean := true
	for _, t := range targets {
		rep, err := r.CheckTarget(ctx, t, o.repair)
		if err != nil {
			return repoError(err)
		}
		reports = append(reports, rep)
		if !rep.Clean() && !(o.repair && len(rep.Extra) == 0) {
			clean = false
		}
	}
	if o.json {
		if err := writeJSON(o.env.Out, reports); err != nil {
			return err
		}
	} else {
		out := o.env.Out
		for _, rep := range reports {
			for _, n := range rep.Missing {
				fmt.Fprintf(out, "%s: missing %s\n", rep.Target, n)
			}
			for _, n := range rep.Different {
				fmt.Fprintf(out, "%s: different %s\n", rep.Target, n)
			}
			for _, n := range rep.Extra {
				fmt.Fprintf(out, "%s: extra %s\n", rep.Target, n)
			}
			if rep.Behind {
				fmt.Fprintf(out, "%s: behind (the last upload did not complete)\n", rep.Target)
			}
			if rep.Repaired > 0 {
				fmt.Fprintf(out, "%s: repaired %d objects\n", rep.Target, rep.Repaired)
			}
			if rep.Clean() && !o.repo.silent {
				fmt.Fprintf(out, "%s: ok (%d objects)\n", rep.Target, rep.Checked)
			}
		}
	}
	if !clean {
		return &ExitError{Code: 1, Err: fmt.Errorf("publish target differs from the repository; 'lampi-pkg repo check --publish-to … --repair' uploads what is missing or different")}
	}
	return nil
}
