// Package rollout is the closed loop between a release and the fleet's
// reports: a plan of phased steps, stop rules, and the decision to hold,
// advance, complete or halt, made from the numbers the fleet reports.
//
// # Basics
//
// A Plan is a list of steps (the Phased-Update-Percentage apt and
// lampi-agent honour, a minimum soak time, a minimum number of devices on
// the new version) and Rules that stop the rollout: too many failed or
// rolled-back attempts (absolute, and relative to the previous version),
// failed health checks, devices that are eligible yet stay on the old
// version. ParsePlan reads the compact form used on the command line
// ("10%:30m/2,50%:1h/10,100% max-failed=2%") and Plan.String writes it.
//
// Evaluate takes a Rollout and the fleet's Stats and returns a Decision;
// Apply moves the Rollout as the decision says. Both are pure: reading the
// fleet, publishing the new percentage through the repository's signed
// path and keeping the audit log are the controller's job.
//
// # Caveats
//
// The percentages are apt's phasing: a device's draw is fixed per
// (source, version, machine id), so cloned SD cards share it and a step
// of 1 % on a fleet of 30 devices may admit none. Choose MinUpdated with
// the fleet's size in mind, or the rollout waits at that step.
package rollout
