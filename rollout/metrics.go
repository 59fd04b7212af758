package rollout

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// metricStates are the states lampi_rollouts counts, always all of them
// (a gauge that vanishes at 0 confuses alerts).
var metricStates = []State{Running, Paused, Halted, Completed, Reverted}

// WriteMetrics writes the rollouts of views in the Prometheus text format
// (version 0.0.4), for a server's /metrics:
//
//	lampi_rollouts{state}                          rollouts per state
//	lampi_rollout_percent{rollout}                 published Phased-Update-Percentage
//	lampi_rollout_step{rollout,stage}              index of the plan's step
//	lampi_rollout_halted{rollout}                  1 while halted
//	lampi_rollout_devices{rollout,kind}            eligible, updated, attempted, failed, health_failed, stuck
//	lampi_rollout_evaluated_timestamp_seconds{rollout}
//
// Per-rollout series are written for open rollouts only (running, paused,
// halted); closed ones count in lampi_rollouts.
func WriteMetrics(w io.Writer, views []View) error {
	b := bufio.NewWriter(w)
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	count := map[State]int{}
	var open []View
	for _, v := range views {
		count[v.Rollout.State]++
		if !v.Rollout.Closed() {
			open = append(open, v)
		}
	}
	p("# HELP lampi_rollouts Rollouts by state.\n# TYPE lampi_rollouts gauge\n")
	for _, st := range metricStates {
		p("lampi_rollouts{state=\"%s\"} %d\n", st, count[st])
	}
	p("# HELP lampi_rollout_percent Phased-Update-Percentage the rollout publishes.\n# TYPE lampi_rollout_percent gauge\n")
	for _, v := range open {
		p("lampi_rollout_percent{rollout=\"%s\"} %d\n", promLabel(v.Rollout.Key()), v.Percent)
	}
	p("# HELP lampi_rollout_step Index of the plan's step the rollout is at (stage names it).\n# TYPE lampi_rollout_step gauge\n")
	for _, v := range open {
		p("lampi_rollout_step{rollout=\"%s\",stage=\"%s\"} %d\n", promLabel(v.Rollout.Key()), promLabel(v.Stage), v.Rollout.Step)
	}
	p("# HELP lampi_rollout_halted 1 while a stop rule or an operator holds the rollout at phase 0.\n# TYPE lampi_rollout_halted gauge\n")
	for _, v := range open {
		h := 0
		if v.Rollout.State == Halted {
			h = 1
		}
		p("lampi_rollout_halted{rollout=\"%s\"} %d\n", promLabel(v.Rollout.Key()), h)
	}
	p("# HELP lampi_rollout_devices Devices of the rollout's version at its latest evaluation, by kind.\n# TYPE lampi_rollout_devices gauge\n")
	for _, v := range open {
		s := v.Stats
		for _, kv := range []struct {
			kind string
			n    int
		}{{"eligible", s.Eligible}, {"updated", s.Updated}, {"attempted", s.Attempted}, {"failed", s.Failed},
			{"health_failed", s.HealthFailed}, {"stuck", s.Stuck}} {
			p("lampi_rollout_devices{rollout=\"%s\",kind=\"%s\"} %d\n", promLabel(v.Rollout.Key()), kv.kind, kv.n)
		}
	}
	p("# HELP lampi_rollout_evaluated_timestamp_seconds When the controller last evaluated the rollout.\n# TYPE lampi_rollout_evaluated_timestamp_seconds gauge\n")
	for _, v := range open {
		if !v.Evaluated.IsZero() {
			p("lampi_rollout_evaluated_timestamp_seconds{rollout=\"%s\"} %d\n", promLabel(v.Rollout.Key()), v.Evaluated.Unix())
		}
	}
	return b.Flush()
}

// promLabel escapes a label value as the text format wants (backslash,
// double quote, newline).
func promLabel(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s)
}
