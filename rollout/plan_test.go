package rollout

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParsePlan(t *testing.T) {
	p, err := ParsePlan("1%:1h/2,25:2h30m/10,100% max-failed=2% auto-revert stuck-polls=4")
	if err != nil {
		t.Fatal(err)
	}
	want := []Step{{1, time.Hour, 2}, {25, 150 * time.Minute, 10}, {100, 0, 0}}
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

func TestParsePlanErrors(t *testing.T) {
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
	} {
		_, err := ParsePlan(tc.plan)
		if !errors.Is(err, ErrPlan) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("ParsePlan(%q) = %v, want ErrPlan mentioning %q", tc.plan, err, tc.msg)
		}
	}
}

func FuzzParsePlan(f *testing.F) {
	for _, s := range []string{"default", "1%:1h/2,100% auto-revert", "5,10:1s,100 max-stuck=0.5"} {
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
