package fleet

import (
	"context"

	bolt "go.etcd.io/bbolt"

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

// pkgView is what VersionStats reads of one device for one package: the
// installed version and the candidate and attempt fields that count. The
// store keeps a counter per distinct view (see aggregate.go), so a
// VersionStats over the whole fleet reads those counters.
type pkgView struct {
	Installed    string
	HasInstalled bool
	Cand         string
	CandEligible bool
	CandChecks   int
	HasCand      bool
	Att          string
	AttResult    string
	AttHealth    string
	HasAtt       bool
}

// viewOf returns a device's view of package pkg; ok is false when the
// device neither has the package nor reports a candidate or attempt of it.
func viewOf(s *state.State, pkg string) (v pkgView, ok bool) {
	v.Installed, v.HasInstalled = s.Packages[pkg]
	cand, hasCand := s.Candidates[pkg]
	att, hasAtt := s.Attempts[pkg]
	if hasCand {
		v.Cand, v.CandEligible, v.CandChecks, v.HasCand = cand.Version, cand.Eligible, cand.Checks, true
	}
	if hasAtt {
		v.Att, v.AttResult, v.AttHealth, v.HasAtt = att.Version, att.Result, att.Health, true
	}
	return v, v.HasInstalled || v.HasCand || v.HasAtt
}

// add counts one device.
func (vs *VersionStats) add(q VersionQuery, s *state.State) {
	if v, ok := viewOf(s, q.Package); ok {
		vs.addView(q, v, 1)
	}
}

// addView counts n devices with view v of q.Package.
func (vs *VersionStats) addView(q VersionQuery, v pkgView, n int) {
	vs.Devices += n
	updated := v.HasInstalled && v.Installed == q.Version
	failed := v.HasAtt && v.Att == q.Version && (v.AttResult == state.ResultFailed || v.AttResult == state.ResultRolledBack) && !updated
	eligible := v.HasCand && v.Cand == q.Version && v.CandEligible
	if updated {
		vs.Updated += n
	}
	if updated || eligible {
		vs.Eligible += n
	}
	if updated || failed {
		vs.Attempted += n
	}
	if failed {
		vs.Failed += n
	}
	if v.HasAtt && v.Att == q.Version && v.AttHealth == state.HealthFailed {
		vs.HealthFailed += n
	}
	if eligible && !updated && !failed && q.StuckChecks > 0 && v.CandChecks >= q.StuckChecks {
		vs.Stuck += n
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

// VersionStats counts q's version from the store's aggregates (a format 1
// file opened read-only: by walking every device).
func (s *Store) VersionStats(ctx context.Context, q VersionQuery) (VersionStats, error) {
	if !s.agg {
		return s.versionStatsScan(ctx, q)
	}
	if err := ctx.Err(); err != nil {
		return VersionStats{}, err
	}
	var vs VersionStats
	err := s.db.View(func(tx *bolt.Tx) (err error) {
		vs, err = versionStatsFromAggregates(tx, q)
		return err
	})
	return vs, err
}

// versionStatsScan is VersionStats by walking every device once.
func (s *Store) versionStatsScan(ctx context.Context, q VersionQuery) (VersionStats, error) {
	var vs VersionStats
	if err := ctx.Err(); err != nil {
		return vs, err
	}
	err := s.eachDevice(func(d *Device) { vs.add(q, &d.State) })
	return vs, err
}
