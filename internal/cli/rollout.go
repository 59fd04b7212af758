package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/lampi-pkg/lampi-pkg/deb"
	"github.com/lampi-pkg/lampi-pkg/repo"
	"github.com/lampi-pkg/lampi-pkg/rollout"
	"github.com/lampi-pkg/lampi-pkg/server"
)

func newRolloutCmd(env *Env) *cobra.Command {
	ro := &repoOptions{}
	cmd := &cobra.Command{
		Use:   "rollout [-b BASEDIR] VERB …",
		Short: "Walk a release through phased steps while the fleet stays healthy (start, status, pause, resume, abort, revert, tick)",
		Long: `A rollout publishes a version of a package to a growing share of the
devices (apt's Phased-Update-Percentage, which lampi-agent honours too),
step by step, and moves on only while the fleet's reports stay healthy:

  - each step has a soak time and a number of devices that must run the
    version before the next one;
  - stop rules halt it (phase 0: nobody new takes the version) when too many
    attempts fail or roll back, when health checks fail, or when devices
    that may take the version stay on the old one (stuck);
  - a halted rollout is resumed, or reverted forward: the last good
    version's package is published again, unchanged, under a version just
    above the bad one (1.4.1 → 1.4.1+revert1), so that every apt client
    upgrades to it, with or without lampi-agent.

"lampi-pkg serve" walks the running rollouts every --rollout-interval; for a
repository served statically (a directory, S3), run "rollout tick" from
cron. Rollouts, their decisions and the controller's lease are kept in
BASEDIR/db/rollouts.db. A rollout is named CODENAME/PACKAGE/VERSION.
"lampi-pkg release --rollout PLAN" releases and starts one in one step.

With --server URL and a token of scope rollouts (--token-file F or
$LAMPI_TOKEN), start, status, pause, resume, abort and revert act on the
running server through its rollout API instead of the local files.

A plan is a preset (default, quick) or steps PERCENT[%][:SOAK][/DEVICES]
separated by commas, then rules: max-failed=5% max-failed-ratio=2
max-health-failed=5% min-attempts=5 min-failures=3 stuck-polls=6
max-stuck=25% auto-revert (these are the defaults, auto-revert off).`,
		Example: `  lampi-pkg rollout -b /srv/repo start bookworm hi 1.4.1 --plan "5%:30m/2,25%:1h/10,100%" --server http://127.0.0.1:8080
  lampi-pkg rollout -b /srv/repo status
  lampi-pkg rollout -b /srv/repo abort bookworm/hi/1.4.1 --reason "lamps flicker"
  lampi-pkg rollout -b /srv/repo revert bookworm/hi/1.4.1
  lampi-pkg rollout abort bookworm/hi/1.4.1 --server https://repo.example.org --token-file ops.token
  */5 * * * *  lampi-pkg rollout -b /srv/repo tick --server http://127.0.0.1:8080`,
	}
	ro.flags(cmd)
	cmd.AddCommand(newRolloutStartCmd(env, ro, nil), newRolloutStatusCmd(env, ro, nil), newRolloutTickCmd(env, ro, nil))
	for _, a := range []string{"pause", "resume", "abort", "revert"} {
		cmd.AddCommand(newRolloutChangeCmd(env, ro, a, nil))
	}
	return cmd
}

// rolloutFleet is where a verb reads the fleet: fleetSource, with the
// repository's own fleet database as the default.
type rolloutFleet struct{ fleetSource }

func (f *rolloutFleet) flags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.server, "server", "", "read the fleet from the fleet API of a running server at `URL` (needed while serve holds the fleet database)")
	cmd.Flags().StringVar(&f.db, "db", "", "read the fleet database at `PATH` or postgres:// URL (default BASEDIR/db/fleet.db, when no --server)")
	fleetDBAlias(cmd, &f.db)
}

// open returns the fleet the flags name: the database counts a version
// itself; over the API every device is read and counted here.
func (f *rolloutFleet) open(env *Env, base string) (rollout.Fleet, func(), error) {
	if f.db == "" {
		f.db = repo.Layout{Base: base}.FleetDB()
	}
	rd, closeFleet, err := f.fleetSource.open(env)
	if err != nil {
		return nil, nil, err
	}
	if s, ok := rd.(rollout.Fleet); ok { // a database counts a version itself
		return s, closeFleet, nil
	}
	return rollout.ReaderFleet{Reader: rd}, closeFleet, nil
}

// controller opens the repository and the rollout store of ro's base
// directory; fl (nil for verbs that do not read the fleet) is the fleet.
func rolloutController(ctx context.Context, env *Env, ro *repoOptions, fl rollout.Fleet) (*rollout.Controller, error) {
	r, err := ro.open(ctx, env, true)
	if err != nil {
		return nil, err
	}
	return newRolloutController(r, fl, env), nil
}

// newRolloutController is the controller of the command line over the
// repository r.
func newRolloutController(r *repo.Repo, fl rollout.Fleet, env *Env) *rollout.Controller {
	host, _ := os.Hostname()
	return &rollout.Controller{
		Store:     &rollout.BoltStore{Path: repo.Layout{Base: r.Base}.Rollouts()},
		Fleet:     fl,
		Publisher: rollout.RepoPublisher{Repo: r},
		Holder:    fmt.Sprintf("%s/%d (rollout tick)", host, os.Getpid()),
		LeaseTTL:  2 * time.Minute,
		Now:       env.Now,
	}
}

type rolloutStartOptions struct {
	env                    *Env
	repo                   *repoOptions
	fleet                  rolloutFleet
	api                    apiAccess // server: fleet.server
	codename, pkg, version string
	plan, previous         string
	json                   bool
}

func newRolloutStartCmd(env *Env, ro *repoOptions, runF runFunc[rolloutStartOptions]) *cobra.Command {
	o := &rolloutStartOptions{env: env, repo: ro}
	cmd := &cobra.Command{
		Use:   "start CODENAME PACKAGE VERSION",
		Short: "Start rolling VERSION of PACKAGE out in CODENAME (it must be published)",
		Long: `Start a rollout of a published version: its Phased-Update-Percentage is set
to the plan's first step, the previous version (--previous, default the
newest published one below VERSION) is kept for a revert whatever Limit
says, and the previous version's failure share becomes the baseline of the
relative stop rule.`,
		Args: cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.codename, o.pkg, o.version = args[0], args[1], args[2]
			return runVerb(cmd, runF, runRolloutStart, o)
		},
	}
	cmd.Flags().StringVar(&o.plan, "plan", "default", "the `PLAN`: a preset (default, quick) or steps and rules (see lampi-pkg rollout --help)")
	cmd.Flags().StringVar(&o.previous, "previous", "", "the last good `VERSION`, what a revert publishes again (default: the newest published below VERSION)")
	cmd.Flags().BoolVar(&o.json, "json", false, "print the rollout as JSON")
	o.fleet.flags(cmd)
	o.api.tokenFlags(cmd)
	return cmd
}

func runRolloutStart(ctx context.Context, o *rolloutStartOptions) error {
	plan, err := rollout.ParsePlan(o.plan)
	if err != nil {
		return usageErrorf("rollout start: --plan: %v", err)
	}
	if _, err := deb.ParseVersion(o.version); err != nil {
		return usageErrorf("rollout start: %v", err)
	}
	o.api.server = o.fleet.server
	if c, err := o.api.rolloutClient(o.env, false); err != nil || c != nil {
		if err != nil {
			return err
		}
		r, err := c.Start(ctx, rollout.StartRequest{Distribution: o.codename, Package: o.pkg, Version: o.version, Previous: o.previous, Plan: o.plan})
		if err != nil {
			return rolloutAPIError(o.api.server, err)
		}
		return printStarted(o.env, r, o.json)
	}
	fl, closeFleet, err := o.fleet.open(o.env, o.repo.basedirOr(o.env))
	if err != nil {
		return err
	}
	defer closeFleet()
	c, err := rolloutController(ctx, o.env, o.repo, fl)
	if err != nil {
		return err
	}
	prev := o.previous
	if prev == "" {
		have, err := c.Publisher.Versions(ctx, o.codename, o.pkg)
		if err != nil {
			return repoError(err)
		}
		prev = rollout.PreviousVersion(have, o.version)
	}
	r, err := c.Start(ctx, rollout.Rollout{Distribution: o.codename, Package: o.pkg, Version: o.version, Previous: prev, Plan: plan})
	if err != nil {
		return repoError(err)
	}
	return printStarted(o.env, r, o.json)
}

func printStarted(env *Env, r *rollout.Rollout, asJSON bool) error {
	if asJSON {
		return writeJSON(env.Out, r)
	}
	fmt.Fprintf(env.Out, "started %s at %d%% (previous %s): %s\n", r.Key(), r.Percent(), orNone(r.Previous), r.Plan)
	return nil
}

// tokenFlags binds --token-file and --ca; --server is the verb's own.
func (a *apiAccess) tokenFlags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&a.tokenFile, "token-file", "", "with --server: manage the rollout through the server's rollout API with the token in `FILE` (scope "+server.ScopeRollouts+"; default $"+TokenEnv+")")
	cmd.Flags().StringVar(&a.ca, "ca", "", "trust the CA certificates in `FILE` (PEM) for an https --server")
}

// flags binds --server, --token-file and --ca of the verbs that manage
// rollouts through a running server's rollout API.
func (a *apiAccess) rolloutFlags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&a.server, "server", "", "manage the rollouts of the running 'lampi-pkg serve' at `URL` through its rollout API (a token with scope "+server.ScopeRollouts+")")
	a.tokenFlags(cmd)
}

// rolloutClient is the rollout API's client when --server is given with
// a token (required: without one it is an error; else, for start and
// its fleet-reading --server, nil), nil without --server.
func (a *apiAccess) rolloutClient(env *Env, required bool) (*rollout.Client, error) {
	if a.server == "" {
		if a.tokenFile != "" || a.ca != "" {
			return nil, usageErrorf("rollout: --token-file and --ca go with --server")
		}
		return nil, nil
	}
	if !required {
		tok, err := a.token(env, "rollout", server.ScopeRollouts)
		if err != nil || tok == "" {
			return nil, err
		}
	}
	token, hc, err := a.client(env, "rollout", server.ScopeRollouts)
	if err != nil {
		return nil, err
	}
	return &rollout.Client{Base: a.server, Token: token, HTTP: hc}, nil
}

// rolloutAPIError adds a true hint to a refusal of a server's rollout API.
func rolloutAPIError(serverURL string, err error) error {
	if err == nil {
		return nil
	}
	var ae *rollout.APIError
	if !errors.As(err, &ae) {
		return withHint(fmt.Errorf("rollout: %w", err), "is 'lampi-pkg serve' running at "+serverURL+"? check --server")
	}
	return apiRefusal(fmt.Errorf("rollout: %s: %w", serverURL, err), ae.Status, ae.Code, server.ScopeRollouts, "rollout", "upload and device tokens cannot manage rollouts")
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

type rolloutStatusOptions struct {
	env  *Env
	repo *repoOptions
	api  apiAccess
	key  string
	json bool
}

func newRolloutStatusCmd(env *Env, ro *repoOptions, runF runFunc[rolloutStatusOptions]) *cobra.Command {
	o := &rolloutStatusOptions{env: env, repo: ro}
	cmd := &cobra.Command{
		Use:   "status [CODENAME/PACKAGE/VERSION]",
		Short: "List the rollouts, or show one with its decisions",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				o.key = args[0]
			}
			return runVerb(cmd, runF, runRolloutStatus, o)
		},
	}
	cmd.Flags().BoolVar(&o.json, "json", false, "print JSON")
	o.api.rolloutFlags(cmd)
	return cmd
}

func runRolloutStatus(ctx context.Context, o *rolloutStatusOptions) error {
	cl, err := o.api.rolloutClient(o.env, true)
	if err != nil {
		return err
	}
	st := &rollout.BoltStore{Path: repo.Layout{Base: o.repo.basedirOr(o.env)}.Rollouts()}
	if o.key == "" {
		var list []rollout.Rollout
		if cl != nil {
			list, err = cl.List(ctx)
			err = rolloutAPIError(o.api.server, err)
		} else {
			list, err = st.List(ctx)
		}
		if err != nil {
			return err
		}
		if o.json {
			if list == nil {
				list = []rollout.Rollout{}
			}
			return writeJSON(o.env.Out, list)
		}
		w := newTable(o.env.Out)
		fmt.Fprintln(w, "ROLLOUT\tSTATE\tPHASE\tSTEP\tSINCE\tREASON")
		for i := range list {
			r := &list[i]
			fmt.Fprintf(w, "%s\t%s\t%d%%\t%d/%d\t%s\t%s\n", r.Key(), r.State, r.Percent(), r.Step+1, len(r.Plan.Steps),
				r.StepStarted.UTC().Format(time.RFC3339), r.Reason)
		}
		return w.Flush()
	}
	var status *rollout.Status
	if cl != nil {
		if status, err = cl.Status(ctx, o.key); err != nil {
			return rolloutAPIError(o.api.server, err)
		}
	} else {
		c := rollout.Controller{Store: st}
		if status, err = c.Status(ctx, o.key); err != nil {
			return withHint(err, "list the rollouts with lampi-pkg rollout status")
		}
	}
	r, log := status.Rollout, status.Decisions
	if o.json {
		return writeJSON(o.env.Out, status)
	}
	fmt.Fprintf(o.env.Out, "%s: %s at %d%%, step %d of %d, plan %s\n", r.Key(), r.State, r.Percent(), r.Step+1, len(r.Plan.Steps), r.Plan)
	w := newTable(o.env.Out)
	fmt.Fprintln(w, "TIME\tACTION\tPHASE\tDEVICES\tUPDATED\tFAILED\tSTUCK\tREASON")
	for _, d := range log {
		fmt.Fprintf(w, "%s\t%s\t%d%%→%d%%\t%d\t%d\t%d/%d\t%d\t%s\n", d.Time.UTC().Format(time.RFC3339), d.Action, d.From, d.To,
			d.Stats.Devices, d.Stats.Updated, d.Stats.Failed, d.Stats.Attempted, d.Stats.Stuck, d.Reason)
	}
	return w.Flush()
}

type rolloutChangeOptions struct {
	env    *Env
	repo   *repoOptions
	api    apiAccess
	action string
	key    string
	reason string
	json   bool
}

var rolloutChangeHelp = map[string]string{
	"pause":  "Keep a running rollout at its percentage until resume",
	"resume": "Let a paused or halted rollout go on from its step (its soak starts over)",
	"abort":  "Halt a rollout by hand: phase 0, nobody new takes the version",
	"revert": "Publish the last good version again, unchanged, above the bad one, at 100 %",
}

func newRolloutChangeCmd(env *Env, ro *repoOptions, action string, runF runFunc[rolloutChangeOptions]) *cobra.Command {
	o := &rolloutChangeOptions{env: env, repo: ro, action: action}
	cmd := &cobra.Command{
		Use:   action + " CODENAME/PACKAGE/VERSION",
		Short: rolloutChangeHelp[action],
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.key = args[0]
			return runVerb(cmd, runF, runRolloutChange, o)
		},
	}
	cmd.Flags().StringVar(&o.reason, "reason", "by hand", "why, for the audit log")
	cmd.Flags().BoolVar(&o.json, "json", false, "print the rollout as JSON")
	o.api.rolloutFlags(cmd)
	return cmd
}

func runRolloutChange(ctx context.Context, o *rolloutChangeOptions) error {
	cl, err := o.api.rolloutClient(o.env, true)
	if err != nil {
		return err
	}
	var r *rollout.Rollout
	if cl != nil {
		if r, err = cl.Change(ctx, o.action, o.key, o.reason); err != nil {
			return withHint(rolloutAPIError(o.api.server, err), "see lampi-pkg rollout status "+o.key+" --server "+o.api.server)
		}
	} else {
		c, err := rolloutController(ctx, o.env, o.repo, nil)
		if err != nil {
			return err
		}
		if r, err = c.Action(o.action)(ctx, o.key, o.reason); err != nil {
			return withHint(repoError(err), "see lampi-pkg rollout status "+o.key)
		}
	}
	if o.json {
		return writeJSON(o.env.Out, r)
	}
	msg := fmt.Sprintf("%s: %s at %d%%", r.Key(), r.State, r.Percent())
	if r.RevertedAs != "" {
		msg += fmt.Sprintf(" (%s published as %s)", r.Previous, r.RevertedAs)
	}
	fmt.Fprintln(o.env.Out, msg)
	return nil
}

type rolloutTickOptions struct {
	env   *Env
	repo  *repoOptions
	fleet rolloutFleet
	json  bool
}

func newRolloutTickCmd(env *Env, ro *repoOptions, runF runFunc[rolloutTickOptions]) *cobra.Command {
	o := &rolloutTickOptions{env: env, repo: ro}
	cmd := &cobra.Command{
		Use:   "tick",
		Short: "Evaluate every running rollout once (for static or S3 repositories, from cron)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVerb(cmd, runF, runRolloutTick, o)
		},
	}
	cmd.Flags().BoolVar(&o.json, "json", false, "print the decisions as JSON")
	o.fleet.flags(cmd)
	return cmd
}

func runRolloutTick(ctx context.Context, o *rolloutTickOptions) error {
	fl, closeFleet, err := o.fleet.open(o.env, o.repo.basedirOr(o.env))
	if err != nil {
		return err
	}
	defer closeFleet()
	c, err := rolloutController(ctx, o.env, o.repo, fl)
	if err != nil {
		return err
	}
	ds, held, err := c.Tick(ctx)
	if o.json {
		if ds == nil {
			ds = []rollout.Decision{}
		}
		if werr := writeJSON(o.env.Out, struct {
			Held      bool               `json:"held"`
			Decisions []rollout.Decision `json:"decisions"`
		}{held, ds}); werr != nil {
			return werr
		}
	} else {
		if !held {
			fmt.Fprintln(o.env.Err, "lampi-pkg: another controller holds the lease (a running serve, or another tick): nothing done")
		}
		for _, d := range ds {
			fmt.Fprintf(o.env.Out, "%s: %s %d%% → %d%%: %s\n", d.Rollout, d.Action, d.From, d.To, d.Reason)
		}
	}
	if err != nil {
		return repoError(err)
	}
	return nil
}

// basedirOr is the base directory the options name (-b, else
// $REPREPRO_BASE_DIR, else ".").
func (o *repoOptions) basedirOr(env *Env) string {
	switch {
	case o.basedir != "":
		return o.basedir
	case env.Getenv("REPREPRO_BASE_DIR") != "":
		return env.Getenv("REPREPRO_BASE_DIR")
	}
	return "."
}
