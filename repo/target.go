package repo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lampi-pkg/lampi-pkg/repo/storage"
)

// Publish targets mirror the published tree (pool/ and dists/) into other
// storage — an S3-compatible bucket, or another directory — after every
// publish (package storage opens them). The local repository stays the
// source of truth; what was uploaded to each target is recorded in the
// state database, so a sync uploads only what changed (see
// target_sync.go).

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
func LoadTargets(confdir string) ([]*storage.TargetConfig, error) {
	p := filepath.Join(confdir, "targets")
	ps, err := readConfFile(confdir, p, 0)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var out []*storage.TargetConfig
	names := map[string]*storage.TargetConfig{}
	for _, para := range ps {
		c := &storage.TargetConfig{File: para.file, Line: para.line}
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

// MirrorOptions configure the publish targets of a Repo (Options.Mirror).
type MirrorOptions struct {
	// Targets receive a copy of the published tree after every publish.
	Targets []*storage.PublishTarget
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

// Targets returns the publish targets of Options.Mirror.
func (r *Repo) Targets() []*storage.PublishTarget {
	if r.opts.Mirror == nil {
		return nil
	}
	return r.opts.Mirror.Targets
}
