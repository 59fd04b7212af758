package cli

import (
	"bytes"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// processincoming parses RULESET and an optional .changes name into its
// options, and refuses other argument counts with the usage exit code
// before anything runs.
func TestRepoProcessIncomingOptions(t *testing.T) {
	env := &Env{In: strings.NewReader(""), Out: io.Discard, Err: io.Discard, Getenv: func(string) string { return "" }, Now: time.Now}
	cmd := captureRepo(newRepoProcessIncomingCmd)
	for _, c := range []struct {
		args string
		want *repoIncomingOptions
	}{
		{"repo -b /srv processincoming up", &repoIncomingOptions{env: env, repo: repoFlags("/srv", "basedir"), rule: "up"}},
		{"repo processincoming up hi_1_amd64.changes --json", &repoIncomingOptions{env: env, repo: repoFlags(""), rule: "up", changes: "hi_1_amd64.changes", json: true}},
		{"repo processincoming", nil},
		{"repo processincoming up a.changes b.changes", nil},
	} {
		var got any
		root := &cobra.Command{Use: "lampi-pkg", SilenceErrors: true, SilenceUsage: true}
		root.SetOut(io.Discard)
		root.AddCommand(cmd(env, &got))
		root.SetArgs(strings.Fields(c.args))
		ran, err := root.ExecuteC()
		if c.want == nil {
			var msg bytes.Buffer
			if code := exitCode(&msg, ran.CommandPath(), err); code != ExitUsage || got != nil {
				t.Errorf("%s: exit %d, options %+v, want usage exit %d and nothing run", c.args, code, got, ExitUsage)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", c.args, err)
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", c.args, got, c.want)
		}
	}
}
