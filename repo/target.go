package repo

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Publish targets mirror the published tree (pool/ and dists/) into other
// storage — an S3-compatible bucket, or another directory — after every
// publish. The local repository stays the source of truth; what was
// uploaded to each target is recorded in the state database, so a sync
// uploads only what changed (see Repo.SyncTargets).

var (
	// ErrTarget: a publish target cannot be used (unreachable endpoint,
	// missing bucket, refused credentials, bad configuration).
	ErrTarget = errors.New("publish target error")
	// ErrTargetBehind: the local repository was published but a target
	// could not be brought up to date; the next command (or export)
	// completes it.
	ErrTargetBehind = errors.New("publish target is behind the local repository")
)

// TargetConfig describes a publish target: a paragraph of conf/targets,
// or the --publish-to URL of one command.
type TargetConfig struct {
	// Name identifies the target in messages ("cdn"); defaults to URL.
	Name string
	// URL is s3://BUCKET[/PREFIX] or file:///DIR.
	URL string
	// Endpoint is host[:port] of the S3 service; Region its region.
	Endpoint, Region string
	// PathStyle addresses buckets as http://endpoint/bucket/ (MinIO).
	PathStyle bool
	// Insecure uses plain http (a MinIO on the loopback interface only).
	Insecure bool
	// Codenames limits the target to these distributions (and the pool
	// files they use); empty: all of them.
	Codenames []string
	// File and Line tell where the paragraph was read ("" for flags).
	File string
	Line int
}

// Where names the target for messages.
func (c *TargetConfig) Where() string {
	if c.File != "" {
		return fmt.Sprintf("target %s (%s:%d)", c.Name, c.File, c.Line)
	}
	return "target " + c.Name
}

// scheme, bucket (or directory) and prefix of the URL.
func parseTargetURL(raw string) (scheme, bucket, prefix string, err error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", "", "", fmt.Errorf("%w: %q is not a URL: use s3://BUCKET/PREFIX or file:///DIR", ErrTarget, raw)
	}
	switch u.Scheme {
	case "s3":
		if u.Host == "" {
			return "", "", "", fmt.Errorf("%w: %q names no bucket: use s3://BUCKET/PREFIX", ErrTarget, raw)
		}
		if u.User != nil {
			return "", "", "", fmt.Errorf("%w: %q: credentials do not belong in the URL; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or use the shared credentials file", ErrTarget, "s3://"+u.Host+u.Path)
		}
		prefix = strings.Trim(u.Path, "/")
		for _, part := range strings.Split(prefix, "/") {
			if prefix != "" && (part == "" || part == "." || part == "..") {
				return "", "", "", fmt.Errorf("%w: %q: bad prefix %q", ErrTarget, raw, prefix)
			}
		}
		return "s3", u.Host, prefix, nil
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return "", "", "", fmt.Errorf("%w: %q: a file URL names a local directory: file:///DIR", ErrTarget, raw)
		}
		if !filepath.IsAbs(u.Path) {
			return "", "", "", fmt.Errorf("%w: %q: use an absolute path, file:///DIR", ErrTarget, raw)
		}
		return "file", filepath.Clean(u.Path), "", nil
	}
	return "", "", "", fmt.Errorf("%w: %q: unsupported scheme %q; use s3://BUCKET/PREFIX or file:///DIR", ErrTarget, raw, u.Scheme)
}

// Validate checks the URL and the fields that go with it.
func (c *TargetConfig) Validate() error {
	scheme, _, _, err := parseTargetURL(c.URL)
	if err != nil {
		return err
	}
	if scheme != "s3" && (c.Endpoint != "" || c.Region != "" || c.PathStyle || c.Insecure) {
		return fmt.Errorf("%w: %s: Endpoint, Region, PathStyle and Insecure apply to s3:// URLs only", ErrTarget, c.URL)
	}
	return nil
}

// LoadTargets reads confdir/targets (optional: none when it does not
// exist), in reprepro's configuration syntax:
//
//	Name: cdn
//	URL: s3://apt-bucket/lampi
//	Endpoint: s3.eu-central-1.amazonaws.com
//	Region: eu-central-1
//	PathStyle: no
//	Codenames: stable testing
//
// Errors name file:line and wrap ErrConfig.
func LoadTargets(confdir string) ([]*TargetConfig, error) {
	p := filepath.Join(confdir, "targets")
	ps, err := readConfFile(confdir, p, 0)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var out []*TargetConfig
	names := map[string]*TargetConfig{}
	for _, para := range ps {
		c := &TargetConfig{File: para.file, Line: para.line}
		urlLine := para.line
		for _, f := range para.fields {
			errf := func(format string, a ...any) error {
				return fmt.Errorf("%s:%d: %w: %s", para.file, f.Line, ErrConfig, fmt.Sprintf(format, a...))
			}
			yes := func() (bool, error) {
				switch strings.ToLower(f.Value) {
				case "yes", "true":
					return true, nil
				case "no", "false", "":
					return false, nil
				}
				return false, errf("%s: %q is not yes or no", f.Name, f.Value)
			}
			switch strings.ToLower(f.Name) {
			case "name":
				c.Name = f.Value
			case "url":
				c.URL, urlLine = f.Value, f.Line
			case "endpoint":
				c.Endpoint = f.Value
			case "region":
				c.Region = f.Value
			case "pathstyle":
				if c.PathStyle, err = yes(); err != nil {
					return nil, err
				}
			case "insecure":
				if c.Insecure, err = yes(); err != nil {
					return nil, err
				}
			case "codenames":
				c.Codenames = strings.Fields(f.Value)
			case "accesskeyid", "secretaccesskey", "sessiontoken", "credentials":
				return nil, errf("%s: credentials do not belong in conf/targets; set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or use the shared credentials file (AWS_PROFILE)", f.Name)
			default:
				return nil, errf("unknown field %q (known: Name, URL, Endpoint, Region, PathStyle, Insecure, Codenames)", f.Name)
			}
		}
		if c.URL == "" {
			return nil, fmt.Errorf("%s:%d: %w: target paragraph without URL; add 'URL: s3://BUCKET/PREFIX'", para.file, para.line, ErrConfig)
		}
		if c.Name == "" {
			c.Name = c.URL
		}
		if err := c.Validate(); err != nil {
			return nil, fmt.Errorf("%s:%d: %w: %w", para.file, urlLine, ErrConfig, err)
		}
		if prev := names[c.Name]; prev != nil {
			return nil, fmt.Errorf("%s:%d: %w: target %q is defined twice (first at line %d)", para.file, para.line, ErrConfig, c.Name, prev.Line)
		}
		names[c.Name] = c
		out = append(out, c)
	}
	return out, nil
}

// PublishTarget is an opened target: its configuration and storage.
type PublishTarget struct {
	Config  TargetConfig
	Storage Storage
	id      string // key of its upload record in the state database
}

// OpenTarget makes the storage of a target; s3:// targets sign with
// creds. It does not contact the service (CheckTargets does).
func OpenTarget(c TargetConfig, creds S3Credentials) (*PublishTarget, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if c.Name == "" {
		c.Name = c.URL
	}
	scheme, bucket, prefix, _ := parseTargetURL(c.URL)
	switch scheme {
	case "file":
		return &PublishTarget{Config: c, Storage: &DirStorage{Root: bucket}, id: "file://" + bucket}, nil
	}
	st, err := NewS3Storage(S3Options{Endpoint: c.Endpoint, Region: c.Region, Bucket: bucket, Prefix: prefix,
		PathStyle: c.PathStyle, Insecure: c.Insecure, Credentials: creds})
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %w", c.Where(), ErrTarget, err)
	}
	ep := c.Endpoint
	if ep == "" {
		ep = "s3.amazonaws.com"
	}
	return &PublishTarget{Config: c, Storage: st, id: "s3://" + bucket + "/" + prefix + "@" + ep}, nil
}

// covers tells whether the target mirrors distribution codename.
func (t *PublishTarget) covers(codename string) bool {
	if len(t.Config.Codenames) == 0 {
		return true
	}
	for _, c := range t.Config.Codenames {
		if c == codename {
			return true
		}
	}
	return false
}

// Check makes sure the target can be written to, within timeout: the
// bucket exists and takes the credentials, or the directory can be
// created.
func (t *PublishTarget) Check(ctx context.Context, timeout time.Duration) error {
	switch st := t.Storage.(type) {
	case *S3Storage:
		if err := st.Check(ctx, timeout); err != nil {
			if t.Config.Name == t.Config.URL && t.Config.File == "" {
				return err // the URL is in the message already
			}
			return fmt.Errorf("%s: %w", t.Config.Where(), err)
		}
	case *DirStorage:
		if err := os.MkdirAll(st.Root, 0o755); err != nil {
			return fmt.Errorf("%s: %w: %w", t.Config.Where(), ErrTarget, err)
		}
	}
	return nil
}

// MirrorOptions configure the publish targets of a Repo (Options.Mirror).
type MirrorOptions struct {
	// Targets receive a copy of the published tree after every publish.
	Targets []*PublishTarget
	// Workers bounds the parallel uploads per target (default 8).
	Workers int
	// Progress, if set, is called while a target is synced: bytes done
	// of total.
	Progress func(target string, done, total int64)
	// Done, if set, receives the summary of every target sync.
	Done func(SyncResult)
}

// CheckTargets makes sure every configured target is usable: call it
// before a command changes the local repository, so that a bad target
// leaves the repository untouched.
func (r *Repo) CheckTargets(ctx context.Context, timeout time.Duration) error {
	if r.opts.Mirror == nil {
		return nil
	}
	for _, t := range r.opts.Mirror.Targets {
		if err := t.Check(ctx, timeout); err != nil {
			return err
		}
	}
	return nil
}
