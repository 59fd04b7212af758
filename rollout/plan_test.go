package rollout

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParsePlan(t *testing.T) {
	t.Parallel()
	p, err := ParsePlan("1%:1h/2,25:2h30m/10,100% max-failed=2% auto-revert stuck-polls=4")
	if err != nil {
		t.Fatal(err)
	}
	want := []Step{{Percent: 1, Soak: time.Hour, MinUpdated: 2}, {Percent: 25, Soak: 150 * time.Minute, MinUpdated: 10}, {Percent: 100}}
	if !reflect.DeepEqual(p.Steps, want) {
		t.Errorf("steps %+v, want %+v", p.Steps, want)
	}
	r := DefaultRules
	r.MaxFailed, r.AutoRevert, r.StuckPolls = 0.02, true, 4
	if p.Rules != r {
		t.Errorf("rules %+v, want %+v", p.Rules, r)
	}
	// String writes what ParsePlan reads back.
	back, err := ParsePlan(p.String())
	if err != nil || !reflect.DeepEqual(back, p) {
		t.Errorf("ParsePlan(%q) = %+v, %v; want %+v", p.String(), back, err, p)
	}
	for name := range Presets {
		if _, err := ParsePlan(name); err != nil {
			t.Errorf("preset %s: %v", name, err)
		}
	}
}

// TestParsePlanGroups: a plan that begins with group steps (the canary
// group at 0 % for everyone else, then two more groups) reads, writes back
// and names its steps; the groups stay offered at the later steps.
func TestParsePlanGroups(t *testing.T) {
	t.Parallel()
	p, err := ParsePlan("@canary:30m/2,@building-3+lab:1h,10%:2h/5,100% max-failed=2%")
	if err != nil {
		t.Fatal(err)
	}
	want := []Step{{Groups: []string{"canary"}, Soak: 30 * time.Minute, MinUpdated: 2},
		{Groups: []string{"building-3", "lab"}, Soak: time.Hour}, {Percent: 10, Soak: 2 * time.Hour, MinUpdated: 5}, {Percent: 100}}
	if !reflect.DeepEqual(p.Steps, want) {
		t.Fatalf("steps %+v, want %+v", p.Steps, want)
	}
	if back, err := ParsePlan(p.String()); err != nil || !reflect.DeepEqual(back, p) {
		t.Errorf("ParsePlan(%q) = %+v, %v; want %+v", p.String(), back, err, p)
	}
	if !strings.HasPrefix(p.String(), "@canary:30m/2,@building-3+lab:1h,10%:2h/5,100% ") {
		t.Errorf("String() = %q", p.String())
	}
	r := &Rollout{Plan: p, State: Running}
	for step, groups := range [][]string{{"canary"}, {"canary", "building-3", "lab"}, {"canary", "building-3", "lab"}, nil} {
		r.Step = step
		if got := r.Groups(); !reflect.DeepEqual(got, groups) || r.Percent() != p.Steps[step].Percent {
			t.Errorf("step %d (%s): groups %v at %d%%, want %v", step, p.Steps[step].Name(), got, r.Percent(), groups)
		}
	}
	for _, st := range []State{Halted, Completed, Reverted} {
		if r.State = st; r.Groups() != nil {
			t.Errorf("a %s rollout offers groups %v", st, r.Groups())
		}
	}
}

func TestParsePlanErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ plan, msg string }{
		{"", "empty plan"},
		{"10%,5%,100%", "step 2: 5% must be above the previous step's 10%"},
		{"10%,50%", "the last step is 50%"},
		{"0%,100%", "step 1: 0%"},
		{"10%,120%", "at most 100%"},
		{"ten%,100%", `"ten%" is not a percentage`},
		{"10%:soon,100%", `soak "soon" is not a duration`},
		{"10%/x,100%", `"x" after '/' is not a number`},
		{"100% max-fail=1%", `unknown rule "max-fail" (known: max-failed, max-failed-ratio`},
		{"100% max-failed=120%", `rule max-failed: "120%" is not a share`},
		{"100% stuck-polls=-1", "rule stuck-polls"},
		{"100% stuck-polls=0", "stuck-polls must be at least 1"},
		{"100% auto-revert=maybe", "rule auto-revert"},
		{"10%,@canary,100%", "step 2: a group step (group canary) comes before the percentages"},
		{"@Canary,100%", `group "Canary": character 'C'`},
		{"@canary+,100%", `group ""`},
		{"@canary", "the last step is 0%"},
	} {
		_, err := ParsePlan(tc.plan)
		if !errors.Is(err, ErrPlan) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("ParsePlan(%q) = %v, want ErrPlan mentioning %q", tc.plan, err, tc.msg)
		}
	}
}

func FuzzParsePlan(f *testing.F) {
	for _, s := range []string{"default", "1%:1h/2,100% auto-revert", "5,10:1s,100 max-stuck=0.5", "@canary+lab:1h/2,50%,100%"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePlan(s)
		if err != nil {
			return
		}
		back, err := ParsePlan(p.String())
		if err != nil || !reflect.DeepEqual(back, p) {
			t.Fatalf("%q → %q → %+v, %v", s, p.String(), back, err)
		}
	})
}
