package fleet

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// RolloutPanel is one rollout as the dashboard's rollout panel shows it.
// The fleet package knows nothing of rollouts: the caller (lampi-pkg
// serve, from the rollout controller's store) fills it in through
// DashboardOptions.Rollouts.
type RolloutPanel struct {
	// Key names the rollout (DISTRIBUTION/PACKAGE/VERSION).
	Key string
	// State is running, paused, halted, completed or reverted; Reason
	// says why it halted or was paused.
	State  string
	Reason string
	// Stage names the plan's step ("10%", "group canary"); Percent is
	// the published Phased-Update-Percentage; Groups are offered the
	// version whatever the percentage.
	Stage   string
	Percent int
	Groups  []string
	// The numbers of the latest evaluation, made at Evaluated.
	Eligible, Updated, Attempted, Failed, HealthFailed, Stuck int
	Evaluated                                                 time.Time
	// Log is the newest decisions, oldest first.
	Log []RolloutLogEntry
}

// RolloutLogEntry is one decision of a rollout's audit log.
type RolloutLogEntry struct {
	Time     time.Time
	Action   string
	From, To int
	Reason   string
}

type dashRollout struct {
	Key, State, Class, Reason, Stage, Groups, Evaluated string
	Percent                                             int
	ProgressW                                           string
	Eligible, Updated, Attempted, Failed, HealthFailed  int
	Stuck                                               int
	Log                                                 []dashRolloutLog
}

type dashRolloutLog struct {
	Time, Action, Change, Reason string
}

// rolloutLogRows bounds the decisions shown per rollout.
const rolloutLogRows = 8

func buildRolloutViews(ps []RolloutPanel, maxRows int) ([]dashRollout, int) {
	more := 0
	if len(ps) > maxRows {
		more, ps = len(ps)-maxRows, ps[:maxRows]
	}
	out := make([]dashRollout, 0, len(ps))
	for _, p := range ps {
		v := dashRollout{Key: p.Key, State: p.State, Reason: dashShort(p.Reason, 300), Stage: p.Stage,
			Groups: strings.Join(p.Groups, ", "), Percent: p.Percent, Evaluated: dashTime(p.Evaluated),
			ProgressW: fmt.Sprintf("%.1f", float64(min(max(p.Percent, 0), 100))/100*dashProgressW),
			Eligible:  p.Eligible, Updated: p.Updated, Attempted: p.Attempted, Failed: p.Failed,
			HealthFailed: p.HealthFailed, Stuck: p.Stuck}
		switch p.State {
		case "running", "completed":
			v.Class = "ok"
		case "halted", "reverted":
			v.Class = "bad"
		default:
			v.Class = "warn"
		}
		log := p.Log
		if len(log) > rolloutLogRows {
			log = log[len(log)-rolloutLogRows:]
		}
		for i := len(log) - 1; i >= 0; i-- { // newest first
			e := log[i]
			v.Log = append(v.Log, dashRolloutLog{Time: dashTime(e.Time), Action: e.Action,
				Change: fmt.Sprintf("%d%% → %d%%", e.From, e.To), Reason: dashShort(e.Reason, 300)})
		}
		out = append(out, v)
	}
	return out, more
}

// rolloutPanels reads the panels for the overview; a failure is shown in
// the panel, the rest of the page stands.
func (h *dashboardHandler) rolloutPanels(ctx context.Context, f *dashFleet) {
	if h.opts.Rollouts == nil {
		return
	}
	f.RolloutsOn = true
	ps, err := h.opts.Rollouts(ctx)
	if err != nil {
		h.logf("fleet dashboard: rollouts: %v", err)
		f.RolloutsProblem = "The rollouts are not available: " + err.Error()
		return
	}
	f.Rollouts, f.RolloutsMore = buildRolloutViews(ps, h.opts.MaxRows)
}
