package fleet

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/lampi-pkg/lampi-pkg/agent/state"
)

// Sink is the database a Collector commits to: the bbolt [Store], or the
// PostgreSQL store of package fleet/pgstore, which several collectors
// may share.
type Sink interface {
	// Commit stores a batch in one transaction and returns what it did
	// with each message (see Store.Apply). It keeps the report with the
	// highest seq per device, also against other writers of the same
	// database. An error means nothing of the batch is stored: the
	// collector then acknowledges none of it.
	Commit(ctx context.Context, b *Batch) ([]Outcome, error)
	// Name names the database in errors and logs, without secrets.
	Name() string
}

// DB is all a server or a collector uses of a fleet database: the bbolt
// Store, or a PostgreSQL store (fleet/pgstore).
type DB interface {
	Reader
	Credentials
	Sink
	Authenticator
	// ResetSeq forgets the stored seq of each device (see Store.ResetSeq).
	ResetSeq(ctx context.Context, ids ...string) error
	// VersionStats counts one version of a package over the fleet.
	VersionStats(ctx context.Context, q VersionQuery) (VersionStats, error)
	// Stats returns the collectors' counters.
	Stats() Stats
	Close() error
}

// StatsReader is a Reader that also has the collectors' counters: what
// APIHandler serves.
type StatsReader interface {
	Reader
	Stats() Stats
}

// DeviceAdmin manages credentials and seqs: what DevicesAPIHandlers
// serves.
type DeviceAdmin interface {
	Credentials
	ResetSeq(ctx context.Context, ids ...string) error
}

var (
	_ Sink = (*Store)(nil)
	_ DB   = (*Store)(nil)
)

// Batch is a batch of messages decoded and checked (topic, JSON, device
// id, seq limit) outside the write transaction, on its way to a Sink.
type Batch struct{ ps []prepared }

// PrepareBatch decodes msgs; a message without a receive time gets now().
func PrepareBatch(prefix string, msgs []Message, now func() time.Time) *Batch {
	ps := make([]prepared, len(msgs))
	for i, m := range msgs {
		if m.Received.IsZero() {
			m.Received = now()
		}
		ps[i] = prepare(prefix, m)
	}
	return &Batch{ps: ps}
}

// Len is the number of messages in the batch.
func (b *Batch) Len() int { return len(b.ps) }

// Item is one decoded message of a Batch, as a Sink sees it.
type Item struct {
	// Outcome is OutcomeStored for a valid state report (the sink
	// decides between stored and stale), OutcomeStatus for a status
	// message, or the reason the message is ignored.
	Outcome Outcome
	Device  string
	// State is the decoded report (OutcomeStored only), Payload the
	// report as the device sent it.
	State   *state.State
	Payload []byte
	// Fingerprint hashes what the audit log tracks (packages, target,
	// result, error): equal fingerprints, nothing to log.
	Fingerprint uint64
	// Online is a status message's value.
	Online bool
	// Retained: the broker re-delivered a stored retained message.
	Retained bool
	Received time.Time
}

// Item returns message i.
func (b *Batch) Item(i int) Item {
	p := &b.ps[i]
	it := Item{Outcome: p.outcome, Device: p.id, Online: p.online, Retained: p.retain,
		Received: time.Unix(0, p.recv).UTC(), Fingerprint: p.fp}
	if p.outcome == OutcomeStored {
		it.State, it.Payload = &p.st, p.payload
	}
	return it
}

// Commit stores b in one bbolt transaction (Sink).
func (s *Store) Commit(ctx context.Context, b *Batch) ([]Outcome, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return s.applyPrepared(b.ps)
}

// Name is the database file (Sink).
func (s *Store) Name() string { return s.path }

// HistoryEvents returns the audit-log events a report cur adds after
// prev (nil for a device's first report): version changes, then an
// update result that differs from prev's. Every store logs the same.
func HistoryEvents(prev, cur *state.State) []Event {
	return historyEvents(prev, cur)
}

// NewCredential makes a credential for id with a random secret: what a
// store keeps (salt and hash, no secret) and what it shows once. It fails
// for an invalid id or role.
func NewCredential(id, role string, now time.Time) (Credential, Issued, error) {
	if role != RoleDevice && role != RoleCollector {
		return Credential{}, Issued{}, fmt.Errorf("credential role %q: use %q or %q", role, RoleDevice, RoleCollector)
	}
	if state.ValidDeviceID(id) != nil {
		return Credential{}, Issued{}, fmt.Errorf("credential %q: not a valid device id: use 1 to %d letters, digits, '.', '-' or '_', starting with a letter, digit or '_'", id, state.MaxIDLen)
	}
	raw := make([]byte, 32)
	salt := make([]byte, 16)
	rand.Read(raw)
	rand.Read(salt)
	secret := base64.RawURLEncoding.EncodeToString(raw)
	return Credential{ID: id, Role: role, Created: now.UTC(), Salt: salt, Hash: hashSecret(salt, secret)},
		Issued{ID: id, Role: role, Secret: secret}, nil
}

// CheckSecret tells whether secret is c's, in constant time.
func CheckSecret(c Credential, secret string) bool {
	return len(c.Hash) > 0 && subtle.ConstantTimeCompare(hashSecret(c.Salt, secret), c.Hash) == 1
}
