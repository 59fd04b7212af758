package agentcli

import (
	"context"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/lampi-pkg/lampi-pkg/agent"
)

// TestOnceOptions parses "once" command lines with a runF that only
// captures the options: each flag must land in its own field, the root's
// persistent flags in the shared globals, and bad use must not run.
func TestOnceOptions(t *testing.T) {
	env := &Env{Out: io.Discard, Err: io.Discard}
	cases := []struct {
		args    string
		want    *onceOptions // nil: refused
		globals globals
	}{
		{"once", &onceOptions{}, globals{config: agent.DefaultConfigPath}},
		{"once --json --force", &onceOptions{json: true, force: true}, globals{config: agent.DefaultConfigPath}},
		{"-c a.conf once -v --retry-failed", &onceOptions{retryFailed: true}, globals{config: "a.conf", verbose: true}},
		{"once extra", nil, globals{}},
		{"once --no-such-flag", nil, globals{}},
	}
	for _, c := range cases {
		var got *onceOptions
		g := &globals{}
		root := newRootCmd(env, g)
		root.AddCommand(newOnceCmd(env, g, func(_ context.Context, o *onceOptions) error {
			c := *o
			got = &c
			return nil
		}))
		root.SetArgs(strings.Fields(c.args))
		err := root.ExecuteContext(context.Background())
		if c.want == nil {
			if err == nil || got != nil {
				t.Errorf("%s: ran with %+v, want refused", c.args, got)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", c.args, err)
		}
		c.want.env, c.want.g = env, g
		if !reflect.DeepEqual(got, c.want) || *g != c.globals {
			t.Errorf("%s:\n got %+v, globals %+v\nwant %+v, globals %+v", c.args, got, *g, c.want, c.globals)
		}
	}
}
