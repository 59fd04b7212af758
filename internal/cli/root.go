// Package cli is the lampi-pkg command tree: it turns flags into library
// calls, writes their results, and decides exit codes. Nothing else in the
// module reads os.Args, the environment, the clock or the standard streams.
//
// Each verb has three parts, as in the GitHub CLI: an xxxOptions struct
// holding the Env, its arguments and its flags; newXxxCmd(env, runF), which
// binds the flags into the options and whose RunE only calls runVerb; and
// runXxx(ctx, opts), which does the work. Tests pass a runF that captures
// the options to check flag parsing without running anything, and call
// runXxx directly to check behaviour. Main builds the one context every
// verb runs under (cancelled by SIGINT and SIGTERM through Env.Signals) and
// executes the tree once. Verbs write results to Env.Out and notes to
// Env.Err through the helpers of output.go.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

// Env is what a command may touch of the outside world. Tests build one
// with buffers, a fixed clock and a fake environment.
type Env struct {
	In     io.Reader
	Out    io.Writer
	Err    io.Writer
	Getenv func(string) string
	Now    func() time.Time
	// IsTerminal reports whether the given stream is an interactive terminal.
	IsTerminal func(f any) bool
	// Signals returns a context cancelled by SIGINT/SIGTERM; Main runs
	// every verb under it. Nil: no signal ends a verb early.
	Signals func(ctx context.Context) (context.Context, context.CancelFunc)
}

// signalContext is ctx under the Env's signal hook, if it has one.
func (e *Env) signalContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if e.Signals == nil {
		return context.WithCancel(ctx)
	}
	return e.Signals(ctx)
}

// lookupEnv is os.LookupEnv over Getenv: an empty value counts as unset.
func (e *Env) lookupEnv(k string) (string, bool) {
	v := e.Getenv(k)
	return v, v != ""
}

// StdIO returns the Env of the real process.
func StdIO() *Env {
	return &Env{
		In:         os.Stdin,
		Out:        os.Stdout,
		Err:        os.Stderr,
		Getenv:     os.Getenv,
		Now:        time.Now,
		IsTerminal: isTerminal,
		Signals: func(ctx context.Context) (context.Context, context.CancelFunc) {
			return signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
		},
	}
}

// NewRootCmd builds the whole lampi-pkg command tree around env.
func NewRootCmd(env *Env) *cobra.Command {
	root := &cobra.Command{
		Use:   "lampi-pkg",
		Short: "Build, sign and publish Debian packages for device fleets",
		Long: `lampi-pkg builds .deb packages from directory trees without root,
bumps versions, signs them, publishes a reprepro-compatible apt repository
and tells which device runs which version.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(env.In)
	root.SetOut(env.Out)
	root.SetErr(env.Err)
	root.CompletionOptions.DisableDefaultCmd = true
	root.Version = programVersion()
	// The top-level verbs, each in its own file, listed here so that the
	// tree is visible in one place. A nil runF runs the verb for real.
	root.AddCommand(
		newBuildCmd(env, nil),
		newInfoCmd(env, nil),
		newContentsCmd(env, nil),
		newExtractCmd(env, nil),
		newVersionCmd(env),
		newKeyCmd(env),
		newSignCmd(env, nil),
		newVerifyCmd(env, nil),
		newVerifyReleaseCmd(env, nil),
		newRepoCmd(env),
		newBumpCmd(env, nil),
		newFleetCmd(env),
		newDeviceCmd(env),
		newLoadtestCmd(env, nil),
		newReleaseCmd(env, nil),
		newServeCmd(env, nil),
		newRolloutCmd(env),
		newTokenCmd(env),
	)
	refuseUnknownVerbs(root)
	return root
}

// Main runs lampi-pkg with args and returns the process exit code.
func Main(args []string, env *Env) int {
	// LAMPI_CPUPROFILE=FILE writes a CPU profile of the whole command
	// (for make bench and performance work; not a user feature).
	if p, ok := env.lookupEnv("LAMPI_CPUPROFILE"); ok && p != "" {
		if f, err := os.Create(p); err == nil {
			if pprof.StartCPUProfile(f) == nil {
				defer func() { pprof.StopCPUProfile(); f.Close() }()
			}
		}
	}
	ctx, stop := env.signalContext(context.Background())
	defer stop()
	root := NewRootCmd(env)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled) {
		// A signal cancelled the verb: it stopped cleanly (temporary
		// files removed, nothing half published), but it did not finish.
		fmt.Fprintf(env.Err, "lampi-pkg: interrupted: %v\n", err)
		return ExitInterrupted
	}
	return exitCode(env.Err, cmd.CommandPath(), err)
}

// programVersion is the module version the binary was built from ("devel"
// for a build from a work tree), with the VCS revision when known.
func programVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	if v == "" || v == "(devel)" {
		v = "devel"
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += " (" + s.Value[:12] + ")"
		}
	}
	return v + " " + bi.GoVersion
}
