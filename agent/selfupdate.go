package agent

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/lampi-pkg/lampi-pkg/agent/state"
)

// selfUpdateGrace is how long a self-update may take before the next agent
// reports it as failed.
const selfUpdateGrace = 30 * time.Minute

// SelfUpdateCommand returns the command that installs the agent's own
// package outside the agent's process tree: systemd-run starts a transient
// service (its own cgroup), so the package's postinst may restart
// lampi-agent.service without killing the install half-way. The new agent
// reports the result (see Persisted.SelfUpdate).
func (c Config) SelfUpdateCommand(unit, debPath string) []string {
	args := []string{c.SystemdRun, "--unit=" + unit, "--description=lampi-agent self-update",
		"--collect", "--no-block", "--quiet",
		"--setenv=DEBIAN_FRONTEND=noninteractive", "--setenv=LC_ALL=C", "--"}
	if c.Method == MethodDpkg {
		args = append(args, c.Dpkg)
		args = append(args, c.DpkgArgs()...)
		return append(args, "-i", debPath)
	}
	args = append(args, c.AptGet)
	args = append(args, c.AptArgs()...)
	return append(args, "install", "--no-remove", debPath)
}

// selfUnitName is the transient unit of a self-update to version v.
func selfUnitName(pkg, v string) string {
	r := strings.NewReplacer(":", "_", "~", "_", "+", "_")
	return pkg + "-update-" + r.Replace(v)
}

// startSelfUpdate hands the install of the agent's own package to
// systemd-run and records it.
func (a *Agent) startSelfUpdate(ctx context.Context, u *update) (*SelfUpdate, error) {
	if err := a.inst.waitLock(ctx); err != nil {
		return nil, err
	}
	unit := selfUnitName(u.cand.Package, u.cand.Version)
	cmd := a.cfg.SelfUpdateCommand(unit, u.deb)
	out, err := a.inst.run(ctx, cmd[0], cmd[1:]...)
	if err != nil {
		return nil, fmt.Errorf("%w: self-update through %s: %v: %s", ErrInstall, a.cfg.SystemdRun, err, tail([]byte(out), 800))
	}
	su := &SelfUpdate{Package: u.cand.Package, From: u.from, To: u.cand.Version, Unit: unit, Started: a.opts.Now()}
	a.cyc.SelfUpdate = su
	return su, nil
}

// finishSelfUpdate reports a self-update the previous agent started: nil
// when there is none or it may still be running.
func (a *Agent) finishSelfUpdate(inv *Inventory) *Outcome {
	su := a.cyc.SelfUpdate
	if su == nil {
		return nil
	}
	target := map[string]string{su.Package: su.To}
	if v := inv.Version(su.Package); v == su.To {
		a.cyc.SelfUpdate = nil
		return &Outcome{Result: state.ResultUpdated, Target: target}
	}
	if a.opts.Now().Sub(su.Started) < selfUpdateGrace {
		return nil
	}
	a.cyc.SelfUpdate = nil
	return &Outcome{Result: state.ResultFailed, Target: target,
		Err: fmt.Errorf("%w: self-update of %s to %s (unit %s) did not complete; installed: %q", ErrInstall, su.Package, su.To, su.Unit, inv.Version(su.Package))}
}
