package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"
)

// Exit codes shared by all verbs. Verbs with their own documented codes
// (version compare, verify) return an *ExitError carrying them.
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitUsage   = 2
	// ExitInterrupted: SIGINT or SIGTERM stopped the command before it
	// finished (128 + SIGINT, as shells report an interrupted program).
	ExitInterrupted = 130
)

// ExitError makes a command end with a specific exit code. Err, if not nil,
// is printed; a nil Err exits silently (e.g. "version compare" answering false).
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// hintError attaches a "Try: …" line to an error shown to the user.
type hintError struct {
	err  error
	hint string
}

func (h *hintError) Error() string { return h.err.Error() }
func (h *hintError) Unwrap() error { return h.err }

// withHint wraps err so that the user also sees what to do about it.
func withHint(err error, hint string) error {
	if err == nil {
		return nil
	}
	return &hintError{err: err, hint: hint}
}

// usageError marks bad command-line use (exit code 2).
type usageError struct{ err error }

func (u *usageError) Error() string { return u.err.Error() }
func (u *usageError) Unwrap() error { return u.err }

func usageErrorf(format string, a ...any) error {
	return &usageError{fmt.Errorf(format, a...)}
}

// exitCode prints err (with its hint) to w and maps it to an exit code;
// cmdPath names the command that failed, for the usage hint.
func exitCode(w io.Writer, cmdPath string, err error) int {
	if err == nil {
		return ExitOK
	}
	code := ExitFailure
	var ee *ExitError
	var ue *usageError
	switch {
	case errors.As(err, &ee):
		code = ee.Code
		if ee.Err == nil {
			return code
		}
	case errors.As(err, &ue), isCobraUsage(err):
		code = ExitUsage
	}
	fmt.Fprintf(w, "lampi-pkg: %v\n", err)
	var he *hintError
	if errors.As(err, &he) {
		fmt.Fprintf(w, "Try: %s\n", he.hint)
	} else if code == ExitUsage {
		fmt.Fprintf(w, "Try: %s --help\n", cmdPath)
	}
	return code
}

// isCobraUsage recognises cobra's own argument and flag errors, which it
// returns as plain errors.
func isCobraUsage(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "accepts ", "requires at least", "requires at most", "invalid argument", "flag needs an argument", "required flag",
		// cobra's flag groups (MarkFlagsMutuallyExclusive and friends)
		"none of the others can be", "must all be set", "at least one of the flags in the group"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}

func isTerminal(f any) bool {
	file, ok := f.(*os.File)
	return ok && term.IsTerminal(int(file.Fd()))
}
