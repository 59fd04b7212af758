package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/lampi-pkg/lampi-pkg/bump"
	"github.com/lampi-pkg/lampi-pkg/deb"
	"github.com/lampi-pkg/lampi-pkg/internal/netutil"
	"github.com/lampi-pkg/lampi-pkg/release"
	"github.com/lampi-pkg/lampi-pkg/repo"
	"github.com/lampi-pkg/lampi-pkg/rollout"
	"github.com/lampi-pkg/lampi-pkg/server/upload"
	"github.com/lampi-pkg/lampi-pkg/signing"
)

// TokenEnv holds the upload token of "release --to" when no --token-file
// is given.
const TokenEnv = "LAMPI_TOKEN"

// releaseClient is the upload client of "release --to": the token from
// --token-file or $LAMPI_TOKEN, the CA of --ca.
func releaseClient(env *Env, o *releaseOptions) (*upload.Client, error) {
	token := ""
	switch {
	case o.tokenFile != "":
		data, err := os.ReadFile(o.tokenFile)
		if err != nil {
			return nil, withHint(fmt.Errorf("release: token file: %w", err), "create a token on the server with 'lampi-pkg token create --name ci --scope upload:CODENAME' and save it in a file only you can read")
		}
		token = strings.TrimSpace(string(data))
		if token == "" || strings.ContainsAny(token, " \t\r\n") {
			return nil, usageErrorf("release: token file %s: want the token alone on one line", o.tokenFile)
		}
	default:
		token = strings.TrimSpace(env.Getenv(TokenEnv))
	}
	if token == "" {
		return nil, withHint(usageErrorf("release: --to needs a token"), "give --token-file F or set $"+TokenEnv+"; never put the token on the command line")
	}
	c := &upload.Client{BaseURL: o.to, Token: token}
	if u, err := url.Parse(o.to); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usageErrorf("release: --to %q: want https://host[:port]/", o.to)
	} else if u.Scheme == "http" && !netutil.IsLoopbackHost(u.Hostname()) {
		return nil, withHint(usageErrorf("release: --to %s: refusing plain http:// to %s, a non-loopback host: the token would travel in clear", o.to, u.Hostname()),
			"use https:// (lampi-pkg serve --tls-cert --tls-key), with --ca for a private CA")
	}
	if o.ca != "" {
		pem, err := os.ReadFile(o.ca)
		if err != nil {
			return nil, fmt.Errorf("release: --ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, usageErrorf("release: --ca %s: no PEM certificate in it", o.ca)
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		c.HTTPClient = &http.Client{Transport: tr}
	}
	return c, nil
}

type releaseOptions struct {
	env                          *Env
	dirs                         []string
	repoDir, codename, component string
	to, tokenFile, ca            string
	part                         string
	signDeb                      bool
	key, passphraseFile          string
	out, compress, mtime         string
	lockTimeout                  time.Duration
	lockTimeoutSet               bool // --lock-timeout given: conf/options' waitforlock does not apply
	allowDirty                   bool
	commit, noCommit, tag, noTag bool
	dryRun, json                 bool
	// rollout is --rollout PLAN; fleet is where its start reads the
	// previous version's numbers.
	rollout string
	fleet   rolloutFleet
}

func newReleaseCmd(env *Env, runF runFunc[releaseOptions]) *cobra.Command {
	o := &releaseOptions{env: env}
	cmd := &cobra.Command{
		Use:   "release [DIR…] (--repo REPO | --to URL --token-file F)",
		Short: "Bump, build, sign and publish package trees in one all-or-nothing step",
		Long:  releaseLong,
		Example: `  lampi-pkg release hi --repo /srv/repo --bump minor
  lampi-pkg release ui bluetooth hardware --repo /srv/repo --codename bookworm --bump patch --sign-deb
  lampi-pkg release --repo /srv/repo --dry-run --json
  lampi-pkg release hi --to https://repo.example.org/ --token-file ci.token --bump minor`,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.dirs, o.lockTimeoutSet = args, cmd.Flags().Changed("lock-timeout")
			return runVerb(cmd, runF, runRelease, o)
		},
	}
	addReleaseFlags(cmd.Flags(), o)
	cmd.MarkFlagsMutuallyExclusive("repo", "to")
	cmd.MarkFlagsMutuallyExclusive("rollout", "to")
	cmd.MarkFlagsMutuallyExclusive("commit", "no-commit")
	cmd.MarkFlagsMutuallyExclusive("tag", "no-tag")
	return cmd
}

// releaseLong is the help text of release.
const releaseLong = `Release the package trees DIR… (default: the current directory) into the
repository REPO, in one step that either completes or changes nothing:

  bump      with --bump PART, as 'lampi-pkg bump' (DEBIAN/control and the files
            a .bumpversion.cfg lists)
  build     each tree, as 'lampi-pkg build', into a temporary directory (or --out)
  check     each package against the repository: the same version with the
            same files (timestamps aside) is already published, nothing to do;
            the same version with other content is refused: bump it
  sign      with --sign-deb, a debsigs origin signature (--key, default: the
            repository's SignWith key)
  commit    the bump's git commit and tag, if asked for (--commit/--tag or the
            configuration)
  include   all new packages into the distribution (--codename, default: the
  publish   only one), then the signed publish, as one repository transaction

If a step fails, everything is put back: the files the bump changed (byte for
byte, with their times), the commit and tag, the built files, and the
repository (database, pool, dists, log). The error names the step and the tree.
The repository's signing key is checked before anything changes.

Several trees are released together, in one publish. Run again without --bump
and without changes, nothing new is published and release says so.

A .bumpversion.cfg at the top of a tree is not packaged (nor .git, .gitignore,
setup.cfg): 'lampi-pkg build' leaves tool configuration at the top out.

--dry-run changes nothing: it shows the bump (every changed line), builds the
would-be packages in a temporary directory, and checks them against the
repository and its signing key.

--to URL publishes through a lampi-pkg server's upload API instead of a local
--repo ('lampi-pkg serve' on the machine holding the repository). The token
comes from --token-file F or $` + TokenEnv + ` (never from the command line); plain
http:// is refused unless the host is a loopback address; --ca FILE trusts a
private CA. The steps are then: bump, build, sign (--sign-deb needs --key: the
server's key stays on the server), check (the server's dry run: new, already
published, version clash, older), commit, upload (the server includes and
publishes every new package in one transaction, or none). A refusal at any
step puts the trees and git back as locally. --codename defaults to the only
distribution the token may upload to.`

// addReleaseFlags defines release's flags on f, bound to o.
func addReleaseFlags(f *pflag.FlagSet, o *releaseOptions) {
	f.StringVar(&o.repoDir, "repo", "", "repository base directory (holding conf/distributions)")
	f.StringVar(&o.to, "to", "", "publish through the upload API of the lampi-pkg server at this URL (instead of --repo)")
	f.StringVar(&o.tokenFile, "token-file", "", "file holding the upload token for --to (else $"+TokenEnv+")")
	f.StringVar(&o.ca, "ca", "", "PEM file of the CA certificates to trust for --to https://")
	f.StringVar(&o.codename, "codename", "", "distribution to publish to (default: the repository's only one)")
	f.StringVarP(&o.component, "component", "C", "", "component to put the packages in (default: from their Section)")
	f.StringVar(&o.part, "bump", "", "bump this part first: major, minor, patch, revision, pre, final or a configured part")
	f.BoolVar(&o.signDeb, "sign-deb", false, "add a debsigs origin signature to each package")
	f.StringVarP(&o.key, "key", "k", "", "secret key file for --sign-deb (default: the repository's SignWith key)")
	f.StringVar(&o.passphraseFile, "passphrase-file", "", "passphrase of a protected key (else $"+PassphraseEnv+" or a prompt)")
	f.StringVarP(&o.out, "out", "o", "", "keep the built packages in this directory (not inside a tree)")
	f.StringVarP(&o.compress, "compress", "Z", "xz", "compression of the packages: xz, gzip, zstd or none")
	f.StringVar(&o.mtime, "mtime", "", "clamp timestamps to T (default SOURCE_DATE_EPOCH, else the newest file)")
	f.DurationVar(&o.lockTimeout, "lock-timeout", time.Minute, "how long to wait for another writer of the repository")
	f.BoolVar(&o.allowDirty, "allow-dirty", false, "bump although the git work tree has uncommitted changes")
	f.BoolVar(&o.commit, "commit", false, "commit the bump (default: from the configuration)")
	f.BoolVar(&o.noCommit, "no-commit", false, "do not commit, whatever the configuration says")
	f.BoolVar(&o.tag, "tag", false, "tag the bump commit (default: from the configuration)")
	f.BoolVar(&o.noTag, "no-tag", false, "do not tag, whatever the configuration says")
	f.BoolVarP(&o.dryRun, "dry-run", "n", false, "show what would be released; change nothing")
	f.BoolVar(&o.json, "json", false, "print the report as JSON")
	f.StringVar(&o.rollout, "rollout", "", "start a rollout with this `PLAN` for every package published (see lampi-pkg rollout --help): published at its first step, the previous version pinned for a revert")
	f.StringVar(&o.fleet.server, "fleet-server", "", "with --rollout: read the fleet from the fleet API of the running server at `URL` (needed while serve holds the fleet database)")
	f.StringVar(&o.fleet.db, "fleet-db", "", "with --rollout: the fleet database at `PATH` (default REPO/db/fleet.db)")
}

func runRelease(ctx context.Context, o *releaseOptions) error {
	env := o.env
	opts, err := releaseRunOptions(ctx, o)
	if err != nil {
		return err
	}
	if !o.json && env.IsTerminal != nil && env.IsTerminal(env.Err) {
		opts.Progress = func(step, dir string) {
			if dir != "" {
				step += " " + dir
			}
			fmt.Fprintf(env.Err, "\r\033[K%s…", step)
		}
		defer fmt.Fprint(env.Err, "\r\033[K")
	}
	var (
		plan       rollout.Plan
		fl         rollout.Fleet
		closeFleet = func() {}
	)
	if o.rollout != "" {
		// The plan and the fleet before anything changes.
		if plan, err = rollout.ParsePlan(o.rollout); err != nil {
			return usageErrorf("release: --rollout: %v", err)
		}
		if !o.dryRun {
			if fl, closeFleet, err = o.fleet.open(env, o.repoDir); err != nil {
				return fmt.Errorf("release: --rollout: %w", err)
			}
		}
		pct := plan.Steps[0].Percent
		opts.Phase = &pct
		opts.PinPrevious = func(codename, pkg, version string) string {
			r := rollout.Rollout{Distribution: codename, Package: pkg, Version: version}
			return "rollout " + r.Key()
		}
	}
	defer closeFleet()
	rep, err := release.Run(ctx, opts)
	if err != nil {
		return releaseHint(fmt.Errorf("release: %w", err))
	}
	var started []*rollout.Rollout
	if o.rollout != "" && !o.dryRun {
		if started, err = startReleaseRollouts(ctx, opts.Repo, fl, env, rep, plan); err != nil {
			return err
		}
	}
	out := env.Out
	for _, p := range rep.Packages {
		for _, w := range p.Warnings {
			if !strings.Contains(w, "left out of the package") {
				fmt.Fprintf(env.Err, "warning: %s: %s\n", p.Dir, w)
			}
		}
	}
	if o.json {
		if o.rollout == "" {
			return writeJSON(out, rep)
		}
		if started == nil {
			started = []*rollout.Rollout{}
		}
		return writeJSON(out, struct {
			*release.Report
			Rollouts []*rollout.Rollout `json:"rollouts"`
		}{rep, started})
	}
	writeReleaseReport(out, rep)
	for _, r := range started {
		fmt.Fprintf(out, "rollout %s started at %d%% (previous %s): %s\n", r.Key(), r.Percent(), orNone(r.Previous), r.Plan)
	}
	return nil
}

// startReleaseRollouts records a rollout of each package the release
// published (already at the plan's first percentage, its previous
// version pinned, in the release's own publish).
func startReleaseRollouts(ctx context.Context, rp *repo.Repo, fl rollout.Fleet, env *Env, rep *release.Report, plan rollout.Plan) ([]*rollout.Rollout, error) {
	c := newRolloutController(rp, fl, env)
	var out []*rollout.Rollout
	for _, p := range rep.Packages {
		if p.Status != release.StatusPublished {
			continue
		}
		r, err := c.Start(ctx, rollout.Rollout{Distribution: rep.Codename, Package: p.Package, Version: p.Version, Previous: p.Previous, Plan: plan})
		if err != nil {
			return out, withHint(fmt.Errorf("release: %s %s is published at %d%%, but its rollout did not start: %w", p.Package, p.Version, plan.Steps[0].Percent, repoError(err)),
				fmt.Sprintf("start it with 'lampi-pkg rollout -b %s start %s %s %s --plan %q'", rp.Base, rep.Codename, p.Package, p.Version, plan.String()))
		}
		out = append(out, r)
	}
	return out, nil
}

// releaseRunOptions checks the flags and turns them into release's
// options: the repository or upload client, the build and the signer.
func releaseRunOptions(ctx context.Context, o *releaseOptions) (release.Options, error) {
	env, dirs := o.env, o.dirs
	var none release.Options
	if o.repoDir == "" && o.to == "" {
		return none, withHint(usageErrorf("release: --repo or --to is required"), "name the repository's base directory, e.g. --repo /srv/repo (lampi-pkg repo init creates one), or a server: --to https://repo.example.org/ --token-file F")
	}
	if o.to == "" && (o.tokenFile != "" || o.ca != "") {
		return none, usageErrorf("release: --token-file and --ca are for --to")
	}
	if o.to != "" && o.component != "" {
		return none, usageErrorf("release: --component is for --repo: the server puts packages by their Section")
	}
	if len(dirs) == 0 {
		dirs = []string{"."}
	}
	if o.key != "" && !o.signDeb {
		return none, usageErrorf("release: --key is for --sign-deb")
	}
	comp, err := deb.ParseCompression(o.compress)
	if err != nil {
		return none, &usageError{err}
	}
	mtime, err := clampTime(o.mtime, env.Getenv("SOURCE_DATE_EPOCH"))
	if err != nil {
		return none, err
	}
	var rp *repo.Repo
	var client *upload.Client
	if o.to != "" {
		if client, err = releaseClient(env, o); err != nil {
			return none, err
		}
	} else {
		ro := &repoOptions{basedir: o.repoDir, lockTimeout: o.lockTimeout, waitForLock: -1, export: "changed",
			byHashKeep: 24 * time.Hour, passphraseFile: o.passphraseFile, set: map[string]bool{"lock-timeout": o.lockTimeoutSet}}
		// Opened as a non-modifying verb: release.Run checks the
		// publish targets itself before anything changes.
		rp, err = ro.open(ctx, env, false)
		if err != nil {
			return none, fmt.Errorf("release: %w", repoError(err))
		}
	}
	opts := release.Options{
		Dirs: dirs, Repo: rp, Server: client, Codename: o.codename, Include: repo.IncludeOptions{Component: o.component},
		Part: o.part, AllowDirty: o.allowDirty, SignDeb: o.signDeb, OutDir: o.out,
		Build:  deb.BuildOptions{Compression: comp, Mtime: mtime},
		DryRun: o.dryRun, Now: env.Now,
		LookupEnv: env.lookupEnv,
	}
	opts.Commit, opts.Tag = gitChoice(o.commit, o.noCommit), gitChoice(o.tag, o.noTag)
	if o.key != "" {
		key, err := loadSecretKey(env, o.key, o.passphraseFile)
		if err != nil {
			return none, fmt.Errorf("release: %w", err)
		}
		s, err := signing.NewSigner(key, signing.SignOptions{Now: env.Now})
		if err != nil {
			return none, signKeyError(fmt.Errorf("release: key %s: %w", o.key, err))
		}
		opts.DebSigner = s
	}
	return opts, nil
}

// writeReleaseReport prints the report for people.
func writeReleaseReport(w io.Writer, rep *release.Report) {
	fresh := 0
	where := rep.Codename
	if rep.Server != "" {
		where += " at " + rep.Server
	}
	for _, p := range rep.Packages {
		change := p.Version
		if p.OldVersion != p.Version {
			change = p.OldVersion + " → " + p.Version
		}
		switch p.Status {
		case release.StatusUnchanged:
			fmt.Fprintf(w, "unchanged %s %s: already in %s with the same content (%s)\n", p.Package, p.Version, where, p.Pool)
			continue
		case release.StatusNew:
			fmt.Fprintf(w, "would publish %s %s to %s\n", p.Package, change, where)
		default:
			fmt.Fprintf(w, "published %s %s to %s\n", p.Package, change, where)
		}
		fresh++
		if p.File != "" {
			fmt.Fprintf(w, "  file    %s\n", p.File)
		}
		fmt.Fprintf(w, "  size    %s (%d bytes)\n", humanBytes(p.Size), p.Size)
		fmt.Fprintf(w, "  sha256  %s\n", p.SHA256)
		if p.Pool != "" {
			fmt.Fprintf(w, "  pool    %s\n", p.Pool)
		}
		if len(p.BumpedFiles) > 0 {
			fmt.Fprintf(w, "  bumped  %s\n", strings.Join(p.BumpedFiles, ", "))
		}
		if rep.DryRun {
			for _, c := range p.Changes {
				for _, h := range c.Hunks {
					fmt.Fprintf(w, "    %s:%d\n", c.Path, h.OldLine)
					for _, l := range h.Old {
						fmt.Fprintf(w, "    - %s\n", l)
					}
					for _, l := range h.New {
						fmt.Fprintf(w, "    + %s\n", l)
					}
				}
			}
		}
		if p.Signed != "" {
			fmt.Fprintf(w, "  signed  %s\n", p.Signed)
		}
		if p.Commit != "" {
			fmt.Fprintf(w, "  commit  %.12s\n", p.Commit)
		}
		if p.Tag != "" {
			fmt.Fprintf(w, "  tag     %s\n", p.Tag)
		}
	}
	switch {
	case rep.DryRun:
		fmt.Fprintln(w, "dry run: nothing was changed")
	case fresh == 0:
		fmt.Fprintf(w, "nothing new to publish: %s is up to date (bump the version to release a change)\n", rep.Codename)
	}
	var steps []string
	for _, s := range rep.Steps {
		steps = append(steps, fmt.Sprintf("%s %s", s.Step, s.Duration.Round(time.Millisecond)))
	}
	fmt.Fprintf(w, "steps: %s\n", strings.Join(steps, ", "))
}

// releaseHint adds what to do to the errors a user can fix.
func releaseHint(err error) error {
	var apiErr *upload.APIError
	var unknownCA x509.UnknownAuthorityError
	switch {
	case errors.Is(err, release.ErrVersionClash):
		return withHint(err, "release with --bump patch (or --bump revision): apt never downloads a version it already has")
	case errors.Is(err, bump.ErrDirty):
		return withHint(err, "commit or stash the changes, or release with --allow-dirty")
	case errors.Is(err, deb.ErrInvalidTree), deb.IsValidationError(err):
		return withHint(err, "fix the file named above and release again; 'lampi-pkg build --help' shows the layout")
	case errors.As(err, &apiErr) && apiErr.Hint() != "":
		return withHint(err, apiErr.Hint())
	case errors.As(err, &apiErr) && apiErr.Code == "unknown_distribution":
		return withHint(err, "check --codename: give a codename or suite of the server's repository, or leave it out to use the only one the token may upload to")
	case errors.As(err, &unknownCA):
		return withHint(err, "the server's certificate is not signed by a CA this machine trusts: give the CA's certificate with --ca FILE")
	case errors.Is(err, syscall.ECONNREFUSED):
		return withHint(err, "is 'lampi-pkg serve' running at that address? check --to")
	case errors.Is(err, repo.ErrSigning):
		return withHint(err, "check SignWith in the repository's conf/distributions and its key directory (conf/keys)")
	}
	return repoError(err)
}
