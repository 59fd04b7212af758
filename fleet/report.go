package fleet

import (
	"time"

	"github.com/lampi-pkg/lampi-pkg/agent/state"
)

// Device is what the collector knows of one device.
type Device struct {
	ID string `json:"id"`
	// Online is the device's last status message ("online" retained on
	// connect, "offline" as its Will or on clean shutdown).
	Online bool `json:"online"`
	// StatusTime is when the last status message was received.
	StatusTime time.Time `json:"status_time,omitzero"`
	// LastSeen is the newest of StatusTime and the state's receive time.
	LastSeen time.Time `json:"last_seen,omitzero"`
	// State is the report with the highest seq received (zero if none yet).
	State state.State `json:"state"`
	// Duplicate is set when reports of two machines (two boot ids whose
	// seq streams interleave) arrived under this id: cloned SD cards.
	Duplicate *Duplicate `json:"duplicate,omitempty"`
}

// Event is one entry of a device's audit log: a version change or an
// update result.
type Event struct {
	Time    time.Time `json:"time"`
	Seq     uint64    `json:"seq"`
	Package string    `json:"package,omitempty"`
	From    string    `json:"from,omitempty"`
	To      string    `json:"to,omitempty"`
	Result  string    `json:"result,omitempty"`
	Error   string    `json:"error,omitempty"`
	// Target is what the update attempt of a result event tried to
	// install (package → version).
	Target map[string]string `json:"target,omitempty"`
}

// Report summarises the fleet at one moment.
type Report struct {
	Generated time.Time `json:"generated"`
	Devices   int       `json:"devices"`
	Online    int       `json:"online"`
	Offline   int       `json:"offline"`
	// Packages is sorted by name.
	Packages []PackageReport `json:"packages"`
	// OfflineDevices and FailedDevices are sorted by id. FailedDevices
	// are those whose last update failed, was rolled back, or is held
	// back because that version rolled back before: all wait for the
	// operator.
	OfflineDevices []DeviceSummary `json:"offline_devices"`
	FailedDevices  []DeviceSummary `json:"failed_devices"`
	// StaleView is the age from which a device's view of the repository
	// (the Date of the newest Release it accepted) counts as stale, 0 when
	// not checked; StaleViewDevices are the devices whose view is that
	// old, sorted by id: cut off from the repository, or served an old
	// Release (a freeze attack).
	StaleView        time.Duration   `json:"stale_view_ns"`
	StaleViewDevices []DeviceSummary `json:"stale_view_devices"`
	// DuplicateDevices are the ids under which more than one machine
	// reported within DuplicateWindow (Device.Duplicate), sorted by id.
	DuplicateDevices []DeviceSummary `json:"duplicate_devices"`
}

// PackageReport is the version distribution of one package.
type PackageReport struct {
	Name string `json:"name"`
	// Newest is the newest published version ("" when the caller did not
	// say); devices on an older version are Behind.
	Newest string `json:"newest,omitempty"`
	// Versions is sorted newest first (dpkg order).
	Versions  []VersionShare `json:"versions"`
	Installed int            `json:"installed"` // devices with the package
	UpToDate  int            `json:"up_to_date"`
	Behind    []string       `json:"behind"` // device ids, sorted
}

// VersionShare is how many devices run one version.
type VersionShare struct {
	Version string  `json:"version"`
	Count   int     `json:"count"`
	Share   float64 `json:"share"` // Count / PackageReport.Installed
}

// DeviceSummary is one line of the offline or failed list.
type DeviceSummary struct {
	ID       string            `json:"id"`
	LastSeen time.Time         `json:"last_seen,omitzero"`
	Age      time.Duration     `json:"age_ns"`
	Result   string            `json:"result,omitempty"`
	Error    string            `json:"error,omitempty"`
	Packages map[string]string `json:"packages,omitempty"`
	// LastCheck and ReleaseDate are the device's (state.State); ViewAge
	// is the age of ReleaseDate, in StaleViewDevices.
	LastCheck   time.Time     `json:"last_check,omitzero"`
	ReleaseDate time.Time     `json:"release_date,omitzero"`
	ViewAge     time.Duration `json:"view_age_ns,omitempty"`
	// Duplicate is the evidence, in DuplicateDevices.
	Duplicate *Duplicate `json:"duplicate,omitempty"`
}

// Stats counts what the collector received.
type Stats struct {
	Received uint64 `json:"received"` // state messages taken from the broker
	Stored   uint64 `json:"stored"`   // committed as the device's newest state
	Stale    uint64 `json:"stale"`    // seq not newer than the stored one
	Invalid  uint64 `json:"invalid"`  // bad JSON or failed validation
	Spoofed  uint64 `json:"spoofed"`  // topic id and payload id differ
	Rejected uint64 `json:"rejected"` // seq more than MaxSeqAhead in the future
	Status   uint64 `json:"status"`   // status messages
	Devices  int    `json:"devices"`
}
