package fleet

import (
	"context"
	"time"
)

// Reader is what a fleet report or query needs. The bbolt Store reads
// its own file; APIClient asks the fleet JSON API of a running server or
// collector; a caller (the CLI's --db or --server, the dashboard) holds
// either without knowing which.
type Reader interface {
	// Report summarises the fleet (see ReportOptions). A store honours
	// every field; over the API, Package, Stale and StaleView are sent
	// (StaleView 0: the server's default) and the server supplies Newest
	// and the time.
	Report(ctx context.Context, opts ReportOptions) (*Report, error)
	// Devices returns every known device sorted by id; with stale > 0
	// only those not seen for at least stale.
	Devices(ctx context.Context, stale time.Duration) ([]Device, error)
	// Device returns one device; an error wrapping ErrNotFound if it
	// never reported.
	Device(ctx context.Context, id string) (Device, error)
	// History returns a device's audit log, oldest first; an error
	// wrapping ErrNotFound if the device never reported.
	History(ctx context.Context, id string) ([]Event, error)
}

// Credentials manages the broker logins of devices and collectors. The
// Store keeps them in its file; DevicesClient manages them through the
// device API of a running server.
type Credentials interface {
	// IssueCredentials creates a credential with role (RoleDevice or
	// RoleCollector) for each id and returns the secrets, shown only
	// now; an error wrapping ErrExists if one was issued already (none
	// is issued then).
	IssueCredentials(ctx context.Context, role string, ids ...string) ([]Issued, error)
	// Credentials lists the issued credentials, sorted by id, without
	// their secrets.
	Credentials(ctx context.Context) ([]Credential, error)
	// RemoveCredential revokes the credential of id; an error wrapping
	// ErrNotFound if there is none.
	RemoveCredential(ctx context.Context, id string) error
}

var (
	_ Reader      = (*Store)(nil)
	_ Reader      = (*APIClient)(nil)
	_ Credentials = (*Store)(nil)
	_ Credentials = (*DevicesClient)(nil)
)
