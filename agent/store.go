package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/lampi-pkg/lampi-pkg/agent/state"
	"github.com/lampi-pkg/lampi-pkg/internal/atomicfile"
)

// Persisted is what the agent keeps in its state directory
// (STATE_DIR/agent.json) across restarts. Seq and Unsent belong to the
// reports; Cycle belongs to the check cycle, which works on a copy of it
// and commits it when the cycle ends (so reports and Status never wait
// for a check).
type Persisted struct {
	// Seq is the last report sequence number used.
	Seq uint64 `json:"seq"`
	// Unsent is true while the latest state was not acknowledged by the
	// broker.
	Unsent bool `json:"unsent,omitempty"`
	Cycle
}

// Cycle is the part of the persisted state a check cycle owns.
type Cycle struct {
	// Sources holds per source (Source.Key) the last accepted Release
	// date and the HTTP validators of its InRelease.
	Sources map[string]*SourceState `json:"sources,omitempty"`
	// LastCheck is when the agent last fetched the repository index.
	LastCheck time.Time `json:"last_check,omitzero"`
	// LastAttempt is when the agent last tried to check (ok or not).
	LastAttempt time.Time `json:"last_attempt,omitzero"`
	Result      string    `json:"result,omitempty"`
	Error       string    `json:"error,omitempty"`
	// Target is what the last update attempt tried to install (or, for
	// a held-back result, what is held back).
	Target map[string]string `json:"target,omitempty"`
	// Pending lists updates known but not installed (deferred).
	Pending map[string]string `json:"pending,omitempty"`
	// Managed is the set of packages last found managed, with their
	// installed versions.
	Managed map[string]string `json:"managed,omitempty"`
	// Failures counts consecutive failed checks (for the backoff).
	Failures int `json:"failures,omitempty"`
	// RetryAfter is the earliest next check the server asked for.
	RetryAfter time.Time `json:"retry_after,omitzero"`
	// PlainDeferrals counts the Retry-After answers over plain HTTP
	// honoured since the last successful check (see maxPlainDeferrals).
	PlainDeferrals int `json:"plain_http_deferrals,omitempty"`
	// FailedUpdates remembers the package versions whose update failed:
	// rolled back (held back) or failed (retried after a backoff).
	FailedUpdates []FailedUpdate `json:"failed_updates,omitempty"`
	// SelfUpdate is a self-update handed to systemd-run, checked by the
	// next agent.
	SelfUpdate *SelfUpdate `json:"self_update,omitempty"`
	// Candidates holds, per managed package with a newer version
	// published, what the last planning saw (reported as
	// state.State.Candidates; Checks carries over between checks).
	Candidates map[string]state.Candidate `json:"candidates,omitempty"`
	// Attempts holds the last update attempt per package.
	Attempts map[string]state.Attempt `json:"attempts,omitempty"`
	// StatusStamp identifies the dpkg status file at the last check
	// (size and mtime), to skip re-planning on an unchanged 304.
	StatusStamp string `json:"status_stamp,omitempty"`
}

// clone returns a deep copy (the cycle's working copy).
func (c *Cycle) clone() (*Cycle, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	out := &Cycle{}
	if err := json.Unmarshal(b, out); err != nil {
		return nil, err
	}
	if out.Sources == nil {
		out.Sources = map[string]*SourceState{}
	}
	return out, nil
}

// SourceState is the agent's memory of one source.
type SourceState struct {
	ReleaseDate time.Time   `json:"release_date,omitzero"`
	Cond        conditional `json:"cond"`
	// InRelease is the SHA256 of the last accepted InRelease, stored as
	// STATE_DIR/InRelease-<sha256>.
	InRelease string `json:"inrelease,omitempty"`
}

// SelfUpdate records an update of the agent's own package in flight.
type SelfUpdate struct {
	Package string    `json:"package"`
	From    string    `json:"from"`
	To      string    `json:"to"`
	Unit    string    `json:"unit"`
	Started time.Time `json:"started"`
}

const stateFile = "agent.json"

// loadPersisted reads STATE_DIR/agent.json; a missing file is a fresh state.
func loadPersisted(dir string) (*Persisted, error) {
	p := &Persisted{}
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if errors.Is(err, fs.ErrNotExist) {
		p.Sources = map[string]*SourceState{}
		return p, nil
	}
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	if err := json.Unmarshal(b, p); err != nil {
		return nil, fmt.Errorf("state %s: %w (delete the file to start afresh; the replay protection restarts from the next Release)", filepath.Join(dir, stateFile), err)
	}
	if p.Sources == nil {
		p.Sources = map[string]*SourceState{}
	}
	return p, nil
}

// save writes the state atomically (temporary file, fsync, rename).
func (p *Persisted) save(dir string) error {
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, stateFile), b, 0o644)
}

func writeFileAtomic(name string, data []byte, perm fs.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	return atomicfile.WriteFile(name, data, perm)
}
