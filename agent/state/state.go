// Package state is the wire format between lampi-agent on a device and the
// fleet collector: MQTT topics and the JSON state report. It imports nothing
// of ours, so the agent stays small and the collector reads exactly what the
// agent writes.
//
// Topics, under a configurable prefix (default "devices"):
//
//	<prefix>/<id>/status  retained "online" or "offline" (the Will is "offline")
//	<prefix>/<id>/state   retained State JSON, QoS 1
package state

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// DefaultPrefix is the topic prefix devices publish under.
const DefaultPrefix = "devices"

// Payloads of the status topic.
const (
	Online  = "online"
	Offline = "offline"
)

// Topic kinds, the last level of a device topic.
const (
	KindStatus = "status"
	KindState  = "state"
)

// Results of the agent's last check or update attempt.
const (
	ResultUpToDate   = "up-to-date"  // nothing to install
	ResultUpdated    = "updated"     // the update was installed and passed the health check
	ResultDeferred   = "deferred"    // an update exists but waits (phasing, maintenance window)
	ResultFailed     = "failed"      // the check or the update failed; Error says why
	ResultRolledBack = "rolled-back" // the update failed and the previous version was reinstalled
	ResultHeldBack   = "held-back"   // Target rolled back before: not tried again until a newer version appears or the operator asks
)

// MaxSize bounds one state report; larger payloads are refused by Decode.
const MaxSize = 64 << 10

// MaxIDLen bounds a device id.
const MaxIDLen = 64

// State is one device's report. Seq orders a device's reports, across
// restarts: the collector keeps the report with the highest Seq.
// lampi-agent sends max(previous Seq + 1, its clock in microseconds since
// 1970), so a device that lost its state starts above its old counter when
// its clock is sane. The collector refuses a Seq more than 24 hours ahead
// of its own clock in microseconds (one "from the future", say 2⁶⁴−1,
// would make every later report of the device stale); the small counters
// of older agents stay valid.
type State struct {
	Seq      uint64            `json:"seq"`
	Time     time.Time         `json:"time"`
	Device   string            `json:"device"`
	Agent    string            `json:"agent,omitempty"` // agent version
	Arch     string            `json:"arch,omitempty"`  // dpkg architecture
	Packages map[string]string `json:"packages"`        // installed package → version
	// LastCheck is when the agent last fetched the repository's index.
	LastCheck time.Time `json:"last_check,omitzero"`
	// Result of the last check or update attempt (Result* constants).
	Result string `json:"result,omitempty"`
	// Error explains a failed or rolled-back result.
	Error string `json:"error,omitempty"`
	// Target is what the last update attempt tried to install (package → version).
	Target map[string]string `json:"target,omitempty"`
	// ReleaseDate is the Date field of the newest signed Release file the
	// agent accepted: how fresh the device's view of the repository is. A
	// mirror or cache that keeps serving an old InRelease shows up as a
	// ReleaseDate that stops moving.
	ReleaseDate time.Time `json:"release_date,omitzero"`
	// Candidates are the updates the device sees for its managed
	// packages (package → candidate): what a rollout controller needs to
	// tell a device that waits for its phasing draw from one that should
	// have updated and did not.
	Candidates map[string]Candidate `json:"candidates,omitempty"`
	// Attempts holds the last update attempt per package (package →
	// attempt), so that a failure stays visible after later checks.
	Attempts map[string]Attempt `json:"attempts,omitempty"`
	// Groups are the device's rollout groups (agent.conf's groups, such
	// as "canary"): a rollout may offer a version to a group before any
	// percentage (PhasedGroupsField).
	Groups []string `json:"groups,omitempty"`
	// BootID is the kernel's id of the current boot
	// (/proc/sys/kernel/random/boot_id). Clones of one SD image share a
	// device id, but never a boot id: reports of one id that alternate
	// between two boot ids come from two devices.
	BootID string `json:"boot_id,omitempty"`
}

// PhasedGroupsField is the Packages stanza field in which a rollout names
// the groups offered a version whatever its Phased-Update-Percentage
// ("Lampi-Phased-Groups: canary, building-3"). apt ignores fields it does
// not know, so plain apt clients follow the percentage alone.
const PhasedGroupsField = "Lampi-Phased-Groups"

// MaxGroups bounds the groups of one device.
const MaxGroups = 16

// ValidGroup checks a group name: 1–32 characters of [a-z0-9.-], starting
// with a letter or digit (so that it never reads as a plan's rule or
// percentage, and lists split on commas and spaces).
func ValidGroup(g string) error {
	if g == "" || len(g) > 32 {
		return fmt.Errorf("%w: group %q must have 1 to 32 characters", ErrInvalid, g)
	}
	for i := 0; i < len(g); i++ {
		c := g[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || i > 0 && (c == '-' || c == '.')) {
			return fmt.Errorf("%w: group %q: character %q at %d is not allowed (use lowercase letters, digits, '-', '.')", ErrInvalid, g, c, i)
		}
	}
	return nil
}

// ParseGroups splits a list of groups separated by commas or spaces
// ("canary, building-3") and checks each; "" is no group.
func ParseGroups(s string) ([]string, error) {
	var out []string
	for _, g := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
		if err := ValidGroup(g); err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	if len(out) > MaxGroups {
		return nil, fmt.Errorf("%w: %d groups, at most %d", ErrInvalid, len(out), MaxGroups)
	}
	return out, nil
}

// InGroups reports whether any of have is in offered.
func InGroups(have, offered []string) bool {
	for _, g := range have {
		for _, o := range offered {
			if g == o {
				return true
			}
		}
	}
	return false
}

// Candidate is a version newer than the installed one that the
// repository offers a device.
type Candidate struct {
	Version string `json:"version"`
	// Phased is the published Phased-Update-Percentage (100 when the
	// version is not phased).
	Phased int `json:"phased"`
	// Eligible: apt's phasing rule (the draw of source, version and
	// machine id against Phased) admits this device.
	Eligible bool `json:"eligible"`
	// Checks counts the checks in a row that found the device eligible
	// for Version while it still ran an older version.
	Checks int `json:"checks,omitempty"`
}

// Health check outcomes of an attempt.
const (
	HealthPassed = "passed" // the health check ran after the install and passed
	HealthFailed = "failed" // it failed: the version was rolled back (or could not be)
)

// Attempt is the outcome of one update attempt of a package.
type Attempt struct {
	Version string `json:"version"`
	// Result is ResultUpdated, ResultFailed or ResultRolledBack.
	Result string `json:"result"`
	// Health is HealthPassed, HealthFailed, or empty when no health
	// check ran (none configured, or the install failed before it).
	Health string    `json:"health,omitempty"`
	Time   time.Time `json:"time"`
}

// ValidDeviceID checks a device id: 1–64 characters of [A-Za-z0-9._-], not
// starting with '.' or '-'; never MQTT wildcards or level separators.
func ValidDeviceID(id string) error {
	if id == "" {
		return fmt.Errorf("%w: empty device id", ErrInvalid)
	}
	if len(id) > MaxIDLen {
		return fmt.Errorf("%w: device id longer than %d characters", ErrInvalid, MaxIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' ||
			(i > 0 && (c == '.' || c == '-'))
		if !ok {
			return fmt.Errorf("%w: device id %q: character %q at %d is not allowed (use letters, digits, '.', '-', '_')", ErrInvalid, id, c, i)
		}
	}
	return nil
}

// StateTopic is the topic a device publishes its State to.
func StateTopic(prefix, id string) string { return prefix + "/" + id + "/" + KindState }

// StatusTopic is the topic of a device's online/offline status.
func StatusTopic(prefix, id string) string { return prefix + "/" + id + "/" + KindStatus }

// ParseTopic splits "<prefix>/<id>/<kind>" into the device id and kind
// (KindStatus or KindState); ok is false for any other topic.
func ParseTopic(prefix, topic string) (id, kind string, ok bool) {
	rest, found := strings.CutPrefix(topic, prefix+"/")
	if !found {
		return "", "", false
	}
	id, kind, found = strings.Cut(rest, "/")
	if !found || (kind != KindState && kind != KindStatus) || ValidDeviceID(id) != nil {
		return "", "", false
	}
	return id, kind, true
}

// Validate checks what the collector relies on.
func (s *State) Validate() error {
	if err := ValidDeviceID(s.Device); err != nil {
		return err
	}
	if s.Seq == 0 {
		return fmt.Errorf("%w: seq must be at least 1", ErrInvalid)
	}
	if s.Time.IsZero() {
		return fmt.Errorf("%w: time is missing", ErrInvalid)
	}
	switch s.Result {
	case "", ResultUpToDate, ResultUpdated, ResultDeferred, ResultFailed, ResultRolledBack, ResultHeldBack:
	default:
		return fmt.Errorf("%w: unknown result %q", ErrInvalid, s.Result)
	}
	for name, v := range s.Packages {
		if name == "" || v == "" {
			return fmt.Errorf("%w: package %q with version %q", ErrInvalid, name, v)
		}
	}
	if len(s.Groups) > MaxGroups {
		return fmt.Errorf("%w: %d groups, at most %d", ErrInvalid, len(s.Groups), MaxGroups)
	}
	for _, g := range s.Groups {
		if err := ValidGroup(g); err != nil {
			return err
		}
	}
	if len(s.BootID) > 64 {
		return fmt.Errorf("%w: boot id longer than 64 characters", ErrInvalid)
	}
	for name, c := range s.Candidates {
		if name == "" || c.Version == "" || c.Phased < 0 || c.Phased > 100 || c.Checks < 0 {
			return fmt.Errorf("%w: candidate %q: version %q, phased %d, checks %d", ErrInvalid, name, c.Version, c.Phased, c.Checks)
		}
	}
	for name, at := range s.Attempts {
		switch {
		case name == "" || at.Version == "":
			return fmt.Errorf("%w: attempt of package %q at version %q", ErrInvalid, name, at.Version)
		case at.Result != ResultUpdated && at.Result != ResultFailed && at.Result != ResultRolledBack:
			return fmt.Errorf("%w: attempt of %s %s: result %q (want updated, failed or rolled-back)", ErrInvalid, name, at.Version, at.Result)
		case at.Health != "" && at.Health != HealthPassed && at.Health != HealthFailed:
			return fmt.Errorf("%w: attempt of %s %s: health %q (want passed, failed or nothing)", ErrInvalid, name, at.Version, at.Health)
		}
	}
	return nil
}

// Encode validates s and returns its JSON.
func Encode(s State) ([]byte, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if s.Packages == nil {
		s.Packages = map[string]string{}
	}
	return json.Marshal(s)
}

// Decode parses and validates a state report. Unknown fields are ignored so
// newer agents can add fields; trailing data and oversized payloads are not.
func Decode(b []byte) (State, error) {
	var s State
	if len(b) > MaxSize {
		return s, fmt.Errorf("%w: %d bytes, more than %d", ErrInvalid, len(b), MaxSize)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&s); err != nil {
		return State{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if dec.More() {
		return State{}, fmt.Errorf("%w: data after the JSON object", ErrInvalid)
	}
	if err := s.Validate(); err != nil {
		return State{}, err
	}
	return s, nil
}
