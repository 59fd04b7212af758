package release

import (
	"errors"
	"strings"
)

// The steps of a release, as StepError.Step and Report.Steps name them.
const (
	StepBump    = "bump"
	StepBuild   = "build"
	StepCheck   = "check"
	StepSign    = "sign"
	StepCommit  = "commit"
	StepInclude = "include"
	StepPublish = "publish"
)

// Sentinel errors; every error of this package matching one wraps it.
var (
	// ErrVersionClash: the repository already holds the same name and
	// version with other content. apt never reinstalls a version it has,
	// so the tree needs a new version (--bump).
	ErrVersionClash = errors.New("same version already published with other content")
	// ErrOptions: the options cannot work together (no tree, a tree given
	// twice, two trees building the same package, OutDir inside a tree).
	ErrOptions = errors.New("invalid release options")
)

// StepError is a failed release: the step and the tree at fault, the
// cause, and what was put back.
type StepError struct {
	// Step is one of the Step constants.
	Step string
	// Dir is the package tree at fault, "" when the step concerns all.
	Dir string
	// Err is the cause.
	Err error
	// Restored lists what was put back ("hi: DEBIAN/control, …").
	Restored []string
	// RestoreErr is set when putting something back failed too.
	RestoreErr error
	// Unsure is set when the repository may have changed after all: a
	// server's answer to an upload was lost and it could not be asked
	// again. It says what to check.
	Unsure string
}

func (e *StepError) Error() string {
	var b strings.Builder
	b.WriteString(e.Step)
	if e.Dir != "" {
		b.WriteString(" " + e.Dir)
	}
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	switch {
	case e.RestoreErr != nil:
		b.WriteString("; UNDOING FAILED, check by hand: " + e.RestoreErr.Error())
	case len(e.Restored) > 0 && e.Unsure != "":
		b.WriteString("; put back as before: " + strings.Join(e.Restored, "; ") + "; BUT " + e.Unsure)
	case len(e.Restored) > 0:
		b.WriteString("; put back as before: " + strings.Join(e.Restored, "; ") + "; the repository is unchanged")
	default:
		b.WriteString("; nothing was changed")
	}
	return b.String()
}

func (e *StepError) Unwrap() error { return e.Err }
