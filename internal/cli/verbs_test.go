package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// Every group of verbs, at any depth, refuses a verb it does not know with
// the usage exit code, instead of printing its help and exiting 0.
func TestUnknownVerbsAreErrors(t *testing.T) {
	var groups []*cobra.Command
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.HasSubCommands() {
			groups = append(groups, c)
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(NewRootCmd(&Env{Out: &bytes.Buffer{}, Err: &bytes.Buffer{}, In: strings.NewReader(""),
		Getenv: func(string) string { return "" }, Now: time.Now}))
	if len(groups) < 5 {
		t.Fatalf("found only %d groups of verbs; the walk is broken", len(groups))
	}
	for _, g := range groups {
		path := strings.Fields(g.CommandPath())[1:] // without "lampi-pkg"
		for _, bad := range [][]string{{"no-such-verb"}, {"no-such-verb", "--json"}} {
			var out, errb bytes.Buffer
			env := &Env{Out: &out, Err: &errb, In: strings.NewReader(""), Getenv: func(string) string { return "" }, Now: time.Now}
			args := append(append([]string{}, path...), bad...)
			code := Main(args, env)
			if code != ExitUsage {
				t.Errorf("lampi-pkg %s: exit %d, want %d (stdout %q, stderr %q)", strings.Join(args, " "), code, ExitUsage, out.String(), errb.String())
				continue
			}
			if !strings.Contains(errb.String(), `unknown command "no-such-verb"`) && !strings.Contains(errb.String(), "unknown flag: --json") {
				t.Errorf("lampi-pkg %s: stderr %q does not name the unknown verb", strings.Join(args, " "), errb.String())
			}
		}
		// Alone, a group shows its help and succeeds.
		var out bytes.Buffer
		env := &Env{Out: &out, Err: &bytes.Buffer{}, In: strings.NewReader(""), Getenv: func(string) string { return "" }, Now: time.Now}
		if code := Main(path, env); code != ExitOK || !strings.Contains(out.String(), "Available Commands") {
			t.Errorf("lampi-pkg %s: exit %d, help shown: %v", strings.Join(path, " "), code, strings.Contains(out.String(), "Available Commands"))
		}
	}
}

func TestUnknownVerbSuggestion(t *testing.T) {
	var errb bytes.Buffer
	env := &Env{Out: &bytes.Buffer{}, Err: &errb, In: strings.NewReader(""), Getenv: func(string) string { return "" }, Now: time.Now}
	if code := Main([]string{"repo", "lst"}, env); code != ExitUsage {
		t.Fatalf("exit %d", code)
	}
	if !strings.Contains(errb.String(), "did you mean list or ls?") {
		t.Errorf("stderr %q: no suggestion", errb.String())
	}
}

// A verb stopped by a signal exits 130 and says it was interrupted; it
// does not pass for an ordinary failure (1), nor for success.
func TestInterruptedVerbExits130(t *testing.T) {
	var out, errb bytes.Buffer
	env := &Env{Out: &out, Err: &errb, In: strings.NewReader(""), Getenv: func(string) string { return "" }, Now: time.Now,
		Signals: func(ctx context.Context) (context.Context, context.CancelFunc) {
			// The signal arrived before the verb got going.
			ctx, cancel := context.WithCancel(ctx)
			cancel()
			return ctx, cancel
		}}
	code := Main([]string{"build", "../../fixtures/hi", "-o", t.TempDir()}, env)
	if code != ExitInterrupted || !strings.Contains(errb.String(), "lampi-pkg: interrupted: ") {
		t.Fatalf("exit %d, want %d; stderr %q", code, ExitInterrupted, errb.String())
	}
}
