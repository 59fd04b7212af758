// Package cli is the lampi-pkg command tree: it turns flags into library
// calls, writes their results, and decides exit codes. Nothing else in the
// module reads os.Args, the environment, the clock or the standard streams.
package cli

import (
	"io"
	"os"
	"runtime/debug"
	"runtime/pprof"
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
	for _, add := range commands {
		root.AddCommand(add(env))
	}
	refuseUnknownVerbs(root)
	return root
}

// commands lists the constructors of the top-level verbs. Each verb lives
// in its own file and registers itself here through init-free static
// listing, so the tree is visible in one place.
var commands = []func(*Env) *cobra.Command{
	newBuildCmd,
	newInfoCmd,
	newContentsCmd,
	newExtractCmd,
	newVersionCmd,
	newKeyCmd,
	newSignCmd,
	newVerifyCmd,
	newVerifyReleaseCmd,
	newRepoCmd,
	newBumpCmd,
	newFleetCmd,
	newDeviceCmd,
	newLoadtestCmd,
	newReleaseCmd,
	newServeCmd,
	newTokenCmd,
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
	root := NewRootCmd(env)
	root.SetArgs(args)
	cmd, err := root.ExecuteC()
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
