package fleet

import (
	"context"

	"github.com/lampi-pkg/lampi-pkg/agent/state"
)

// VersionQuery names a version of a package whose spread a rollout
// follows.
type VersionQuery struct {
	Package string
	Version string
	// StuckChecks: a device eligible for Version that still runs an
	// older version after this many checks in a row is stuck.
	StuckChecks int
}

// VersionStats are the fleet's numbers for one version of a package, from
// the devices' newest reports (state.State's Packages, Candidates and
// Attempts).
type VersionStats struct {
	// Devices report the package installed, or a candidate or an attempt
	// of it.
	Devices int `json:"devices"`
	// Updated run Version.
	Updated int `json:"updated"`
	// Eligible run Version, or report it as a candidate their phasing
	// draw admits.
	Eligible int `json:"eligible"`
	// Attempted run Version or report a failed attempt of it.
	Attempted int `json:"attempted"`
	// Failed report an attempt of Version that failed or was rolled back
	// (and do not run it).
	Failed int `json:"failed"`
	// HealthFailed report an attempt of Version whose health check failed.
	HealthFailed int `json:"health_failed"`
	// Stuck are eligible for Version, have not failed it, yet run an older
	// version after StuckChecks checks.
	Stuck int `json:"stuck"`
}

// add counts one device.
func (vs *VersionStats) add(q VersionQuery, s *state.State) {
	installed, has := s.Packages[q.Package]
	cand, hasCand := s.Candidates[q.Package]
	att, hasAtt := s.Attempts[q.Package]
	if !has && !hasCand && !hasAtt {
		return
	}
	vs.Devices++
	updated := has && installed == q.Version
	failed := hasAtt && att.Version == q.Version && (att.Result == state.ResultFailed || att.Result == state.ResultRolledBack) && !updated
	eligible := hasCand && cand.Version == q.Version && cand.Eligible
	if updated {
		vs.Updated++
	}
	if updated || eligible {
		vs.Eligible++
	}
	if updated || failed {
		vs.Attempted++
	}
	if failed {
		vs.Failed++
	}
	if hasAtt && att.Version == q.Version && att.Health == state.HealthFailed {
		vs.HealthFailed++
	}
	if eligible && !updated && !failed && q.StuckChecks > 0 && cand.Checks >= q.StuckChecks {
		vs.Stuck++
	}
}

// CountVersion computes VersionStats over devices (as Devices returns them).
func CountVersion(devs []Device, q VersionQuery) VersionStats {
	var vs VersionStats
	for i := range devs {
		vs.add(q, &devs[i].State)
	}
	return vs
}

// VersionStats walks the store once and counts q's version.
func (s *Store) VersionStats(ctx context.Context, q VersionQuery) (VersionStats, error) {
	var vs VersionStats
	if err := ctx.Err(); err != nil {
		return vs, err
	}
	err := s.eachDevice(func(d *Device) { vs.add(q, &d.State) })
	return vs, err
}
