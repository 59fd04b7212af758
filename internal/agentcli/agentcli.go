// Package agentcli is the lampi-agent command tree: it reads the
// configuration, calls the agent library, prints results and decides exit
// codes. Nothing else of the agent reads os.Args, the environment, the
// clock or the standard streams.
//
// As in lampi-pkg's CLI, each command has an xxxOptions struct, a
// newXxxCmd(env, g, runF) constructor binding the flags into it and a
// runXxx(ctx, opts) function; Main executes the tree once under the
// context of Env.Signals.
//
// Exit codes of "lampi-agent once":
//
//	0   up to date (nothing to install)
//	10  updated (installed and the health check passed)
//	20  deferred (phasing, maintenance window, a self-update handed to systemd-run,
//	    a failed update waiting for its backoff, or the repository's Retry-After
//	    from an earlier run still holds)
//	11  rolled back (the update or its health check failed; the previous version is back)
//	12  held back (a version that rolled back before is not tried again until a newer
//	    one is published, or once --retry-failed)
//	1   failed (check, download, verification or install failed; see the message)
//	2   usage or configuration error
package agentcli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/lampi-pkg/lampi-pkg/agent"
	"github.com/lampi-pkg/lampi-pkg/agent/state"
)

// Exit codes.
const (
	ExitUpToDate   = 0
	ExitFailed     = 1
	ExitUsage      = 2
	ExitUpdated    = 10
	ExitRolledBack = 11
	ExitHeldBack   = 12
	ExitDeferred   = 20
)

// Env is what a command may touch of the outside world.
type Env struct {
	Out, Err io.Writer
	Environ  func() []string
	Now      func() time.Time
	// Signals returns a context cancelled by SIGINT/SIGTERM; Main runs
	// every command under it. Nil: no signal ends a command early.
	Signals func(ctx context.Context) (context.Context, context.CancelFunc)
}

// signalContext is ctx under the Env's signal hook, if it has one.
func (e *Env) signalContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if e.Signals == nil {
		return context.WithCancel(ctx)
	}
	return e.Signals(ctx)
}

// StdIO is the Env of the real process.
func StdIO() *Env {
	return &Env{Out: os.Stdout, Err: os.Stderr, Environ: os.Environ, Now: time.Now,
		Signals: func(ctx context.Context) (context.Context, context.CancelFunc) {
			return signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
		}}
}

type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// Version is the agent's version (module version when built by go install,
// else "dev").
func Version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return strings.TrimPrefix(bi.Main.Version, "v")
	}
	return version
}

// version is set at link time: -ldflags "-X .../internal/agentcli.version=1.2.3".
var version = "dev"

// Main runs lampi-agent with args and returns the exit code.
func Main(args []string, env *Env) int {
	ctx, stop := env.signalContext(context.Background())
	defer stop()
	root := newRoot(env)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintf(env.Err, "lampi-agent: %v\n", ee.err)
		}
		return ee.code
	}
	fmt.Fprintf(env.Err, "lampi-agent: %v\n", err)
	if errors.Is(err, agent.ErrConfig) {
		return ExitUsage
	}
	if strings.Contains(err.Error(), "unknown flag") || strings.Contains(err.Error(), "unknown command") || strings.Contains(err.Error(), "accepts") {
		fmt.Fprintln(env.Err, "Try: lampi-agent --help")
		return ExitUsage
	}
	return ExitFailed
}

type globals struct {
	config  string
	verbose bool
}

func newRoot(env *Env) *cobra.Command {
	g := &globals{}
	root := newRootCmd(env, g)
	root.AddCommand(newOnceCmd(env, g, nil), newRunCmd(env, g, nil), newStatusCmd(env, g, nil))
	return root
}

// newRootCmd is the root command alone, its persistent flags bound to g.
func newRootCmd(env *Env, g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "lampi-agent",
		Short: "Keep this device's packages up to date from a signed apt repository",
		Long: `lampi-agent polls the apt repository named by the device's apt source,
verifies every index and package against the source's Signed-By key, installs
newer versions of the managed packages through apt-get or dpkg, runs a health
check, rolls back on failure, and reports what the device runs over MQTT.

Configuration: ` + agent.DefaultConfigPath + ` ("key = value" lines, '#' comments;
the packaged file lists every key with its default). The apt source it polls
is named by "sources" (default /etc/apt/sources.list.d/lampi.sources) and
must carry Signed-By.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       Version(),
	}
	root.SetOut(env.Out)
	root.SetErr(env.Err)
	root.CompletionOptions.DisableDefaultCmd = true
	root.PersistentFlags().StringVarP(&g.config, "config", "c", agent.DefaultConfigPath, "configuration file")
	root.PersistentFlags().BoolVarP(&g.verbose, "verbose", "v", false, "log progress to standard error")
	return root
}

func newAgent(env *Env, g *globals, verbose bool) (*agent.Agent, error) {
	return newAgentOpts(env, g, verbose, nil)
}

func newAgentOpts(env *Env, g *globals, verbose bool, afterCycle func()) (*agent.Agent, error) {
	cfg, err := agent.LoadConfig(g.config)
	if err != nil {
		return nil, &exitError{code: ExitUsage, err: fmt.Errorf("%w\nTry: fix %s (see lampi-agent --help)", err, g.config)}
	}
	opts := agent.Options{Now: env.Now, Env: env.Environ(), Version: Version(), AfterCycle: afterCycle}
	if verbose {
		opts.Logf = func(format string, a ...any) {
			fmt.Fprintf(env.Err, "%s %s\n", env.Now().Format("2006-01-02T15:04:05"), fmt.Sprintf(format, a...))
		}
	}
	a, err := agent.New(cfg, opts)
	if err != nil {
		code := ExitFailed
		if errors.Is(err, agent.ErrConfig) {
			code = ExitUsage
		}
		return nil, &exitError{code: code, err: err}
	}
	return a, nil
}

type onceOptions struct {
	env                      *Env
	g                        *globals
	json, force, retryFailed bool
}

func newOnceCmd(env *Env, g *globals, runF runFunc[onceOptions]) *cobra.Command {
	o := &onceOptions{env: env, g: g}
	cmd := &cobra.Command{
		Use:   "once",
		Short: "Check once, install what is new, report, and exit with a code that says what happened",
		Long: `once does one check: repair an interrupted dpkg, fetch and verify the
repository, install newer versions of the managed packages, run the health
check (rolling back on failure) and report over MQTT.

When the repository answered an earlier check with Retry-After (429 or
503), the time is kept in the state directory and once makes no request
before it: it says so and exits 20 (deferred), unless --force.

A version that was rolled back is held back: it is not installed again
until a newer one is published (exit 12). A version whose update failed
otherwise (download, verification, install) is tried again after a
backoff (5 min, doubling up to max_backoff; exit 20 while it waits).
--retry-failed forgets both and tries now.

Exit codes: 0 up to date, 10 updated, 20 deferred, 11 rolled back,
12 held back, 1 failed, 2 usage or configuration error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runVerb(cmd, runF, runOnce, o) },
	}
	cmd.Flags().BoolVar(&o.json, "json", false, "print the outcome as JSON")
	cmd.Flags().BoolVar(&o.force, "force", false, "check now even if the repository asked (Retry-After) not to be contacted yet")
	cmd.Flags().BoolVar(&o.retryFailed, "retry-failed", false, "try again the versions held back after a rollback or waiting after a failed update")
	return cmd
}

func runOnce(ctx context.Context, o *onceOptions) error {
	env := o.env
	a, err := newAgent(env, o.g, o.g.verbose)
	if err != nil {
		return err
	}
	if nb := a.NotBefore(); !nb.IsZero() && !o.force {
		return deferredByServer(env, o.json, a, nb)
	}
	if o.retryFailed {
		forgot, err := a.RetryFailed()
		if err != nil {
			return err
		}
		for _, f := range forgot {
			fmt.Fprintf(env.Err, "lampi-agent: retrying %s %s (failed %d time(s), last %s)\n", f.Package, f.Version, f.Failures, fmtTime(f.Last))
		}
	}
	oc := a.Once(ctx)
	reportErr := report(ctx, env, a)
	if o.json {
		if err := writeJSON(env.Out, outcomeJSON(oc, reportErr)); err != nil {
			return err
		}
	} else {
		printOutcome(env.Out, oc)
		if reportErr != nil {
			fmt.Fprintf(env.Err, "lampi-agent: warning: %v (the state is sent with the next report)\n", reportErr)
		}
	}
	code := oc.ExitCode()
	if code == ExitFailed && !o.json {
		return &exitError{code: code, err: oc.Err}
	}
	if code != 0 {
		return &exitError{code: code}
	}
	return nil
}

// deferredByServer is "once" while an earlier answer's Retry-After holds:
// no request, no report, exit 20.
func deferredByServer(env *Env, asJSON bool, a *agent.Agent, nb time.Time) error {
	st := a.Status()
	why := fmt.Sprintf("the repository asked not to be contacted before %s (Retry-After; %s from now)",
		nb.UTC().Format(time.RFC3339), nb.Sub(env.Now()).Round(time.Second))
	if asJSON {
		out := outcomeOut{Result: state.ResultDeferred, ExitCode: ExitDeferred, Error: why, Installed: st.Installed, NotBefore: nb, Skipped: true}
		if err := writeJSON(env.Out, out); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(env.Out, "deferred: not checking: %s\nlast error: %s\nTry: lampi-agent once --force to check anyway\n", why, orDash(st.Error))
	}
	return &exitError{code: ExitDeferred}
}

// report sends the state once (when a broker is configured) and waits up to
// report_timeout for the broker's acknowledgement.
func report(ctx context.Context, env *Env, a *agent.Agent) error {
	ropts, ok, err := a.ReporterOptions()
	if err != nil || !ok {
		return err
	}
	s, err := a.NewState("")
	if err != nil {
		return err
	}
	rep, err := agent.NewMQTTReporter(ctx, ropts)
	if err != nil {
		return err
	}
	rep.Report(s)
	fctx, cancel := context.WithTimeout(ctx, a.Config().ReportTimeout)
	defer cancel()
	ferr := rep.Flush(fctx)
	cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer ccancel()
	rep.Close(cctx)
	return ferr
}

// agentOptions are those of "run", which has no flags of its own.
type agentOptions struct {
	env *Env
	g   *globals
}

func newRunCmd(env *Env, g *globals, runF runFunc[agentOptions]) *cobra.Command {
	o := &agentOptions{env: env, g: g}
	return &cobra.Command{
		Use:   "run",
		Short: "Run as a daemon: check on the poll schedule and report over MQTT",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return runVerb(cmd, runF, runRun, o) },
	}
}

// runRun runs the daemon until ctx (Main's, cancelled by SIGINT or
// SIGTERM) ends.
func runRun(ctx context.Context, o *agentOptions) error {
	env := o.env
	// A daemon that sleeps an hour between checks: keep the heap
	// small and hand what a check used back to the OS.
	debug.SetGCPercent(50)
	a, err := newAgentOpts(env, o.g, true, debug.FreeOSMemory)
	if err != nil {
		return err
	}
	var rep agent.Reporter
	var mqtt *agent.MQTTReporter
	if ropts, ok, err := a.ReporterOptions(); err != nil {
		return &exitError{code: ExitUsage, err: err}
	} else if ok {
		if mqtt, err = agent.NewMQTTReporter(ctx, ropts); err != nil {
			return err
		}
		rep = mqtt
	}
	err = a.Run(ctx, rep)
	if mqtt != nil {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		mqtt.Flush(fctx)
		mqtt.Close(fctx)
		cancel()
	}
	return err
}

type statusOptions struct {
	env  *Env
	g    *globals
	json bool
}

func newStatusCmd(env *Env, g *globals, runF runFunc[statusOptions]) *cobra.Command {
	o := &statusOptions{env: env, g: g}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show what the agent knows: source, last check, installed versions, pending update, last error",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return runVerb(cmd, runF, runStatus, o) },
	}
	cmd.Flags().BoolVar(&o.json, "json", false, "print as JSON")
	return cmd
}

func runStatus(_ context.Context, o *statusOptions) error {
	env := o.env
	a, err := newAgent(env, o.g, false)
	if err != nil {
		return err
	}
	st := a.Status()
	if o.json {
		return writeJSON(env.Out, st)
	}
	w := env.Out
	fmt.Fprintf(w, "device:       %s (%s)\n", st.Device, st.Architecture)
	for _, s := range st.Sources {
		fmt.Fprintf(w, "source:       %s\n", s)
	}
	fmt.Fprintf(w, "last check:   %s\n", fmtTime(st.LastCheck))
	fmt.Fprintf(w, "last attempt: %s\n", fmtTime(st.LastAttempt))
	fmt.Fprintf(w, "result:       %s\n", orDash(st.Result))
	if st.Error != "" {
		fmt.Fprintf(w, "error:        %s\n", st.Error)
	}
	if !st.NotBefore.IsZero() {
		fmt.Fprintf(w, "not before:   %s (the repository's Retry-After)\n", fmtTime(st.NotBefore))
	}
	fmt.Fprintf(w, "release date: %s (the newest signed Release accepted)\n", fmtTime(st.ReleaseDate))
	for _, f := range st.FailedUpdates {
		if f.RolledBack {
			fmt.Fprintf(w, "held back:    %s %s (rolled back %s; lampi-agent once --retry-failed to try again)\n", f.Package, f.Version, fmtTime(f.Last))
		} else {
			fmt.Fprintf(w, "failed:       %s %s (%d time(s); next attempt after %s)\n", f.Package, f.Version, f.Failures, fmtTime(f.NotBefore))
		}
	}
	fmt.Fprintf(w, "window:       %s\n", st.Window)
	fmt.Fprintf(w, "installed:    %s\n", fmtPkgs(st.Installed))
	if len(st.Pending) > 0 {
		fmt.Fprintf(w, "pending:      %s\n", fmtPkgs(st.Pending))
	}
	if st.SelfUpdate != nil {
		fmt.Fprintf(w, "self-update:  %s %s → %s (unit %s)\n", st.SelfUpdate.Package, st.SelfUpdate.From, st.SelfUpdate.To, st.SelfUpdate.Unit)
	}
	fmt.Fprintf(w, "report seq:   %d%s\n", st.Seq, map[bool]string{true: " (not yet acknowledged by the broker)"}[st.Unsent])
	return nil
}

type outcomeOut struct {
	Result      string            `json:"result"`
	ExitCode    int               `json:"exit_code"`
	Error       string            `json:"error,omitempty"`
	Target      map[string]string `json:"target,omitempty"`
	Pending     map[string]string `json:"pending,omitempty"`
	Installed   map[string]string `json:"installed"`
	NotModified bool              `json:"not_modified,omitempty"`
	Repaired    bool              `json:"repaired,omitempty"`
	SelfUpdate  *agent.SelfUpdate `json:"self_update,omitempty"`
	ReportError string            `json:"report_error,omitempty"`
	// NotBefore and Skipped: no check was made, an earlier Retry-After holds.
	NotBefore time.Time `json:"not_before,omitzero"`
	Skipped   bool      `json:"skipped,omitempty"`
}

func outcomeJSON(o *agent.Outcome, reportErr error) outcomeOut {
	out := outcomeOut{Result: o.Result, ExitCode: o.ExitCode(), Target: o.Target, Pending: o.Pending, Installed: o.Installed,
		NotModified: o.NotModified, Repaired: o.Repaired, SelfUpdate: o.SelfUpdate}
	if out.Installed == nil {
		out.Installed = map[string]string{}
	}
	if o.Err != nil {
		out.Error = o.Err.Error()
	}
	if reportErr != nil {
		out.ReportError = reportErr.Error()
	}
	return out
}

func printOutcome(w io.Writer, o *agent.Outcome) {
	if o.Repaired {
		fmt.Fprintln(w, "repaired an interrupted dpkg run (dpkg --configure -a)")
	}
	switch o.Result {
	case state.ResultUpToDate:
		fmt.Fprintf(w, "up to date: %s\n", fmtPkgs(o.Installed))
	case state.ResultUpdated:
		fmt.Fprintf(w, "updated: %s\n", fmtPkgs(o.Target))
	case state.ResultDeferred:
		fmt.Fprintf(w, "deferred: %s", fmtPkgs(o.Pending))
		if o.Err != nil {
			fmt.Fprintf(w, " (%v)", o.Err)
		}
		fmt.Fprintln(w)
	case state.ResultRolledBack:
		fmt.Fprintf(w, "rolled back: %s failed: %v\nnow installed: %s\n", fmtPkgs(o.Target), o.Err, fmtPkgs(o.Installed))
	case state.ResultHeldBack:
		fmt.Fprintf(w, "held back: %s (%v)\ninstalled: %s\n", fmtPkgs(o.Target), o.Err, fmtPkgs(o.Installed))
	}
	if o.SelfUpdate != nil {
		fmt.Fprintf(w, "self-update to %s handed to systemd (unit %s); the new agent reports the result\n", o.SelfUpdate.To, o.SelfUpdate.Unit)
	}
}

func fmtPkgs(m map[string]string) string {
	if len(m) == 0 {
		return "(none)"
	}
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = n + " " + m[n]
	}
	return strings.Join(parts, ", ")
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.Local().Format("2006-01-02 15:04:05 MST")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// runFunc is what a command does with its parsed options; its constructor
// also takes one as runF, a hook through which tests see the options the
// flags gave without running anything. A nil runF runs the command.
type runFunc[O any] func(ctx context.Context, o *O) error

// runVerb is the body of every command's RunE: runF if the test set one,
// else the command's own run, under the context Main built.
func runVerb[O any](cmd *cobra.Command, runF, run runFunc[O], o *O) error {
	if runF != nil {
		return runF(cmd.Context(), o)
	}
	return run(cmd.Context(), o)
}
