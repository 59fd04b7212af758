package storage

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Publish targets mirror the published tree (pool/ and dists/) into other
// storage — an S3-compatible bucket, or another directory — after every
// publish. The repository package records what was uploaded to each and
// syncs them; this file configures and opens them.

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

// PublishTarget is an opened target: its configuration and storage.
type PublishTarget struct {
	Config  TargetConfig
	Storage Storage
	id      string // see ID
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

// ID identifies the target's place (directory, or bucket, prefix and
// endpoint) whatever its name: the repository keys its upload record
// with it.
func (t *PublishTarget) ID() string { return t.id }

// NewTarget makes a publish target of a Storage of the caller's (a
// wrapper around an opened one, another kind of store); the repository
// keys its upload record with c.URL, which Validate does not check.
func NewTarget(c TargetConfig, st Storage) *PublishTarget {
	if c.Name == "" {
		c.Name = c.URL
	}
	return &PublishTarget{Config: c, Storage: st, id: c.URL}
}

// Covers tells whether the target mirrors distribution codename.
func (t *PublishTarget) Covers(codename string) bool {
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
