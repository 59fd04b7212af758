package agent

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// installer drives apt-get and dpkg.
type installer struct {
	cfg   Config
	env   []string // environment of the child processes (nil: inherited)
	logf  func(format string, a ...any)
	sleep func(ctx context.Context, d time.Duration) error
}

// isolated reports whether the agent acts on a root other than "/".
func (in *installer) isolated() bool { return filepath.Clean(in.cfg.Root) != "/" }

// AptArgs returns the apt-get options the agent uses (without the verb):
// non-interactive, old conffiles kept, the dpkg lock waited for, and for
// an isolated root the options of DESIGN.md that confine apt and dpkg to it.
func (c Config) AptArgs() []string {
	args := []string{"-q", "-y", "-o", "Dpkg::Options::=--force-confold", "-o", "Dpkg::Options::=--force-confdef",
		"-o", "DPkg::Lock::Timeout=" + strconv.Itoa(int(c.LockTimeout/time.Second)),
		"-o", "APT::Get::AllowUnauthenticated=false", "-o", "Acquire::Retries=0"}
	if filepath.Clean(c.Root) != "/" {
		r := c.Root
		args = append(args, "-o", "Dir="+r, "-o", "Dir::State::status="+c.AdminDir+"/status",
			"-o", "Dir::Etc::SourceParts=/dev/null", "-o", "APT::Sandbox::User=root", "-o", "Debug::NoLocking=1",
			"-o", "Dir::Bin::dpkg=/usr/bin/dpkg", "-o", "Dpkg::Options::=--instdir="+r,
			"-o", "Dpkg::Options::=--admindir="+c.AdminDir,
			"-o", "Dpkg::Options::=--force-script-chrootless", "-o", "Dpkg::Options::=--force-not-root",
			"-o", "Dpkg::Options::=--log=/dev/null", "-o", "APT::Architecture="+c.Architecture,
			"-o", "Acquire::Languages=none")
	}
	for _, o := range c.DpkgOptions {
		args = append(args, "-o", "Dpkg::Options::="+o)
	}
	return append(args, c.AptOptions...)
}

// DpkgArgs returns the dpkg options the agent uses (without the action).
func (c Config) DpkgArgs() []string {
	args := []string{"--force-confold", "--force-confdef"}
	if filepath.Clean(c.Root) != "/" {
		args = append(args, "--root="+c.Root, "--admindir="+c.AdminDir,
			"--force-script-chrootless", "--force-not-root", "--log=/dev/null")
	}
	return append(args, c.DpkgOptions...)
}

// tail keeps the end of a command's output for error messages.
func tail(out []byte, n int) string {
	s := strings.TrimSpace(string(out))
	if len(s) > n {
		s = "…" + s[len(s)-n:]
	}
	return s
}

func (in *installer) run(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	env := in.env
	cmd.Env = append(append([]string{}, env...), "DEBIAN_FRONTEND=noninteractive", "LC_ALL=C", "APT_LISTCHANGES_FRONTEND=none")
	if in.cfg.Root != "" && in.isolated() {
		cmd.Env = append(cmd.Env, "DPKG_ROOT="+in.cfg.Root)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 10 * time.Second
	err := cmd.Run()
	in.logf("ran %s %s: %v", name, strings.Join(args, " "), err)
	return out.String(), err
}

// waitLock waits until dpkg's lock is free, up to LockTimeout.
func (in *installer) waitLock(ctx context.Context) error {
	deadline := time.Duration(0)
	for {
		free, err := lockFree(in.cfg.AdminDir)
		if err != nil {
			return fmt.Errorf("dpkg lock in %s: %w", in.cfg.AdminDir, err)
		}
		if free {
			return nil
		}
		if deadline >= in.cfg.LockTimeout {
			return fmt.Errorf("%w: %s held for more than %s (another apt or dpkg is running)", ErrLocked, in.cfg.AdminDir, in.cfg.LockTimeout)
		}
		step := time.Second
		if err := in.sleep(ctx, step); err != nil {
			return err
		}
		deadline += step
	}
}

// repair finishes an interrupted dpkg run: "dpkg --configure -a".
func (in *installer) repair(ctx context.Context) error {
	if err := in.waitLock(ctx); err != nil {
		return err
	}
	out, err := in.run(ctx, in.cfg.Dpkg, append(in.cfg.DpkgArgs(), "--configure", "-a")...)
	if err != nil {
		return fmt.Errorf("%w: dpkg --configure -a: %v: %s", ErrInstall, err, tail([]byte(out), 800))
	}
	return nil
}

// install installs the given .deb files (absolute paths) with the
// configured method. allowDowngrade is set for rollbacks only.
func (in *installer) install(ctx context.Context, debs []string, allowDowngrade bool) error {
	if err := in.waitLock(ctx); err != nil {
		return err
	}
	var name string
	var args []string
	if in.cfg.Method == MethodDpkg {
		name, args = in.cfg.Dpkg, append(in.cfg.DpkgArgs(), "-i")
	} else {
		name, args = in.cfg.AptGet, in.cfg.AptArgs()
		if allowDowngrade {
			args = append(args, "--allow-downgrades")
		}
		args = append(args, "install", "--no-remove")
	}
	out, err := in.run(ctx, name, append(args, debs...)...)
	if err != nil {
		return fmt.Errorf("%w: %s: %v: %s", ErrInstall, filepath.Base(name), err, tail([]byte(out), 1500))
	}
	return nil
}

// healthCheck runs the configured command with sh -c; LAMPI_ROOT names the
// install root.
func (in *installer) healthCheck(ctx context.Context) error {
	if in.cfg.HealthCheck == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, in.cfg.HealthCheckTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", in.cfg.HealthCheck)
	cmd.Env = append(append([]string{}, in.env...), "LAMPI_ROOT="+in.cfg.Root)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w: %q: %v: %s", ErrHealthCheck, in.cfg.HealthCheck, err, tail(out, 800))
	}
	return nil
}
