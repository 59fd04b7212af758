package rollout

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/lampi-pkg/lampi-pkg/agent/state"
)

// Step is one stage of a rollout: the share of devices offered the new
// version (apt's Phased-Update-Percentage), how long the rollout stays at
// least at this stage, and how many devices must run the new version
// (counted over the whole fleet, not only this stage) before it moves on.
//
// A group step offers the version to the devices of named groups (a
// device's agent.conf "groups = canary") whatever their phasing draw,
// while the percentage stays 0 for everyone else: plain apt clients,
// which know no groups, take nothing. Group steps come before the
// percentages; the groups stay offered at the later steps.
type Step struct {
	Percent    int           `json:"percent"`
	Soak       time.Duration `json:"soak"`
	MinUpdated int           `json:"min_updated"`
	Groups     []string      `json:"groups,omitempty"`
}

// Name is how messages and the dashboard call the step: "10%" or
// "group canary+building-3".
func (st Step) Name() string {
	if len(st.Groups) > 0 {
		return "group " + strings.Join(st.Groups, "+")
	}
	return strconv.Itoa(st.Percent) + "%"
}

// Rules are the stop rules: when one fires, the rollout halts at phase 0
// (no device that has not yet taken the version takes it) and, if
// AutoRevert is set, reverts forward to the last good version.
type Rules struct {
	// MaxFailed: halt when more than this share (0–1) of the devices that
	// attempted the version ended failed or rolled back.
	MaxFailed float64 `json:"max_failed"`
	// MaxFailedRatio: halt when the failure share is more than this many
	// times the previous version's (0 turns the rule off). With a previous
	// share of zero the absolute rule alone applies.
	MaxFailedRatio float64 `json:"max_failed_ratio"`
	// MaxHealthFailed: halt when more than this share (0–1) of the devices
	// that installed the version failed its health check.
	MaxHealthFailed float64 `json:"max_health_failed"`
	// MinAttempts: the shares above are judged once at least this many
	// devices attempted the version; MinFailures failures halt earlier
	// whatever the share.
	MinAttempts int `json:"min_attempts"`
	// MinFailures: this many failed devices halt the rollout even before
	// MinAttempts attempts (0 turns it off).
	MinFailures int `json:"min_failures"`
	// StuckPolls: a device that is eligible for the version yet still runs
	// the old one after this many checks is stuck.
	StuckPolls int `json:"stuck_polls"`
	// MaxStuck: halt when more than this share (0–1) of the eligible
	// devices is stuck (and at least MinAttempts devices are eligible).
	MaxStuck float64 `json:"max_stuck"`
	// AutoRevert: on a halt, publish the last good version's payload above
	// the bad version (forward-only revert).
	AutoRevert bool `json:"auto_revert"`
}

// Plan is a rollout's steps and stop rules.
type Plan struct {
	Steps []Step `json:"steps"`
	Rules Rules  `json:"rules"`
}

// DefaultRules are the stop rules a plan gets unless it says otherwise:
// conservative, they halt early and never revert by themselves.
var DefaultRules = Rules{
	MaxFailed:       0.05,
	MaxFailedRatio:  2,
	MaxHealthFailed: 0.05,
	MinAttempts:     5,
	MinFailures:     3,
	StuckPolls:      6,
	MaxStuck:        0.25,
}

// Presets are named plans: "default" walks 1 → 10 → 50 → 100 % over a
// day, "quick" over an hour; both with DefaultRules.
var Presets = map[string]string{
	"default": "1%:2h/1,10%:4h/5,50%:8h/20,100%",
	"quick":   "10%:10m/1,50%:20m/3,100%",
}

// ParsePlan reads a plan: a preset name or a comma-separated list of
// steps, then optional space-separated rules.
//
//	STEP  = (PERCENT["%"] | "@"GROUP{"+"GROUP})[":"SOAK]["/"MIN-UPDATED]
//	        e.g. 10%:30m/5, or @canary:1h/2 (the canary group, everyone else 0 %)
//	RULE  = max-failed=5% | max-failed-ratio=2 | max-health-failed=5% |
//	        min-attempts=5 | min-failures=3 | stuck-polls=6 |
//	        max-stuck=25% | auto-revert[=true|false]
//
// Group steps come first; percentages rise strictly and the last step is
// 100. For example "1%:1h/2,25%:2h/10,100% max-failed=2% auto-revert" or
// "@canary:2h/3,10%:4h/10,100%".
func ParsePlan(s string) (Plan, error) {
	words := strings.Fields(s)
	if len(words) == 0 {
		return Plan{}, fmt.Errorf("%w: empty plan; give steps such as \"10%%:30m/2,50%%:1h/10,100%%\" or a preset (default, quick)", ErrPlan)
	}
	steps := words[0]
	if preset, ok := Presets[steps]; ok {
		steps = preset
	}
	p := Plan{Rules: DefaultRules}
	for _, w := range strings.Split(steps, ",") {
		st, err := parseStep(w)
		if err != nil {
			return Plan{}, err
		}
		p.Steps = append(p.Steps, st)
	}
	for _, w := range words[1:] {
		if err := p.Rules.set(w); err != nil {
			return Plan{}, err
		}
	}
	return p, p.Validate()
}

func parseStep(w string) (Step, error) {
	var st Step
	rest := w
	if i := strings.IndexAny(rest, "/"); i >= 0 {
		n, err := strconv.Atoi(rest[i+1:])
		if err != nil || n < 0 {
			return st, fmt.Errorf("%w: step %q: %q after '/' is not a number of devices", ErrPlan, w, rest[i+1:])
		}
		st.MinUpdated, rest = n, rest[:i]
	}
	if i := strings.IndexByte(rest, ':'); i >= 0 {
		d, err := time.ParseDuration(rest[i+1:])
		if err != nil || d < 0 {
			return st, fmt.Errorf("%w: step %q: soak %q is not a duration (such as 30m or 2h)", ErrPlan, w, rest[i+1:])
		}
		st.Soak, rest = d, rest[:i]
	}
	if g, ok := strings.CutPrefix(rest, "@"); ok {
		for _, name := range strings.Split(g, "+") {
			if err := state.ValidGroup(name); err != nil {
				return st, fmt.Errorf("%w: step %q: %v", ErrPlan, w, err)
			}
			st.Groups = append(st.Groups, name)
		}
		return st, nil
	}
	n, err := strconv.Atoi(strings.TrimSuffix(rest, "%"))
	if err != nil {
		return st, fmt.Errorf("%w: step %q: %q is not a percentage", ErrPlan, w, rest)
	}
	st.Percent = n
	return st, nil
}

// rule is one named stop rule: how to set it from text and how to write
// it back. The table is the list of rules: parsing, String and the
// error's list of names all read it.
type rule struct {
	name string
	set  func(*Rules, string) error
	get  func(*Rules) string
}

var rules = []rule{
	{"max-failed", shareSetter(func(r *Rules) *float64 { return &r.MaxFailed }), shareGetter(func(r *Rules) float64 { return r.MaxFailed })},
	{"max-failed-ratio", func(r *Rules, v string) error {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 {
			return fmt.Errorf("%q is not a non-negative number", v)
		}
		r.MaxFailedRatio = f
		return nil
	}, func(r *Rules) string { return strconv.FormatFloat(r.MaxFailedRatio, 'g', -1, 64) }},
	{"max-health-failed", shareSetter(func(r *Rules) *float64 { return &r.MaxHealthFailed }), shareGetter(func(r *Rules) float64 { return r.MaxHealthFailed })},
	{"min-attempts", intSetter(func(r *Rules) *int { return &r.MinAttempts }), intGetter(func(r *Rules) int { return r.MinAttempts })},
	{"min-failures", intSetter(func(r *Rules) *int { return &r.MinFailures }), intGetter(func(r *Rules) int { return r.MinFailures })},
	{"stuck-polls", intSetter(func(r *Rules) *int { return &r.StuckPolls }), intGetter(func(r *Rules) int { return r.StuckPolls })},
	{"max-stuck", shareSetter(func(r *Rules) *float64 { return &r.MaxStuck }), shareGetter(func(r *Rules) float64 { return r.MaxStuck })},
	{"auto-revert", func(r *Rules, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("%q is not true or false", v)
		}
		r.AutoRevert = b
		return nil
	}, func(r *Rules) string { return strconv.FormatBool(r.AutoRevert) }},
}

func ruleNames() string {
	names := make([]string, len(rules))
	for i, r := range rules {
		names[i] = r.name
	}
	return strings.Join(names, ", ")
}

func (r *Rules) set(w string) error {
	name, value, hasValue := strings.Cut(w, "=")
	if name == "auto-revert" && !hasValue {
		value = "true"
	}
	for _, ru := range rules {
		if ru.name == name {
			if err := ru.set(r, value); err != nil {
				return fmt.Errorf("%w: rule %s: %v", ErrPlan, name, err)
			}
			return nil
		}
	}
	return fmt.Errorf("%w: unknown rule %q (known: %s)", ErrPlan, name, ruleNames())
}

func shareSetter(field func(*Rules) *float64) func(*Rules, string) error {
	return func(r *Rules, v string) error {
		pct := strings.HasSuffix(v, "%")
		f, err := strconv.ParseFloat(strings.TrimSuffix(v, "%"), 64)
		if pct {
			f /= 100
		}
		if err != nil || f < 0 || f > 1 {
			return fmt.Errorf("%q is not a share (such as 5%% or 0.05)", v)
		}
		*field(r) = f
		return nil
	}
}

func shareGetter(field func(*Rules) float64) func(*Rules) string {
	return func(r *Rules) string { return strconv.FormatFloat(field(r)*100, 'g', -1, 64) + "%" }
}

func intSetter(field func(*Rules) *int) func(*Rules, string) error {
	return func(r *Rules, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return fmt.Errorf("%q is not a non-negative whole number", v)
		}
		*field(r) = n
		return nil
	}
}

func intGetter(field func(*Rules) int) func(*Rules) string {
	return func(r *Rules) string { return strconv.Itoa(field(r)) }
}

// Validate checks that the steps rise strictly from 0 to 100 and the rules
// are in range.
func (p Plan) Validate() error {
	if len(p.Steps) == 0 {
		return fmt.Errorf("%w: no steps", ErrPlan)
	}
	prev := 0
	for i, st := range p.Steps {
		if len(st.Groups) > 0 {
			if i > 0 && len(p.Steps[i-1].Groups) == 0 || st.Percent != 0 {
				return fmt.Errorf("%w: step %d: a group step (%s) comes before the percentages, at 0%%", ErrPlan, i+1, st.Name())
			}
			continue
		}
		if st.Percent <= prev || st.Percent > 100 {
			return fmt.Errorf("%w: step %d: %d%% must be above the previous step's %d%% and at most 100%%", ErrPlan, i+1, st.Percent, prev)
		}
		prev = st.Percent
	}
	if prev != 100 {
		return fmt.Errorf("%w: the last step is %d%%; a rollout ends at 100%%", ErrPlan, prev)
	}
	if p.Rules.StuckPolls == 0 {
		return fmt.Errorf("%w: stuck-polls must be at least 1", ErrPlan)
	}
	return nil
}

// String writes the plan in the syntax ParsePlan reads, every rule
// spelled out, so that ParsePlan(p.String()) gives p back.
func (p Plan) String() string {
	var b strings.Builder
	for i, st := range p.Steps {
		if i > 0 {
			b.WriteByte(',')
		}
		if len(st.Groups) > 0 {
			b.WriteString("@" + strings.Join(st.Groups, "+"))
		} else {
			fmt.Fprintf(&b, "%d%%", st.Percent)
		}
		if st.Soak > 0 {
			b.WriteString(":" + formatDuration(st.Soak))
		}
		if st.MinUpdated > 0 {
			fmt.Fprintf(&b, "/%d", st.MinUpdated)
		}
	}
	for _, ru := range rules {
		b.WriteString(" " + ru.name + "=" + ru.get(&p.Rules))
	}
	return b.String()
}

// formatDuration drops the zero units time.Duration.String keeps ("2h0m0s"
// → "2h").
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
