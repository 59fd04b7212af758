package updateserver

import (
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/lampi-pkg/lampi-pkg/repo"
	"github.com/lampi-pkg/lampi-pkg/signing"
)

// Config configures a Server. Dir and Now are required; the zero value
// of every other field is a working default.
type Config struct {
	// Dir is the repository's base directory (conf/, db/, dists/, pool/).
	Dir string
	// Now is the clock of everything the server runs: signatures,
	// Release dates, token expiry, device report ages.
	Now func() time.Time
	// Logger receives the access log (unless AccessLog is set), upload
	// outcomes, HTTP server errors and the collector's; nil discards.
	Logger *slog.Logger
	// AccessLog, when set, receives the per-request records instead of
	// Logger, in slog's JSON format from the server's fast encoder (see
	// server.Options.AccessLog).
	AccessLog io.Writer
	// Notef receives the lines an operator should read while the server
	// runs — Release renewals and their failures, notes on a
	// distribution's ValidFor, the start of a shutdown — one line per
	// call, without a trailing newline; nil discards them.
	Notef func(format string, args ...any)

	// Tokens is the token store's file ("": repo.Layout.Tokens).
	Tokens string
	// MaxUpload, MaxControlSize, MaxValidations, MaxConns and
	// MaxConnsPerAddr are server.Options' limits, with its meanings (0:
	// the default; MaxConns and MaxConnsPerAddr negative: no limit).
	MaxUpload, MaxControlSize                 int64
	MaxValidations, MaxConns, MaxConnsPerAddr int
	// LockTimeout is how long an upload or a renewal waits for the
	// repository lock held by another process (0: 30 s).
	LockTimeout time.Duration
	// RequireSignature maps a codename to the keyring that an uploaded
	// package's origin signature must verify against.
	RequireSignature map[string]*signing.Keyring
	// Passphrase returns the passphrase of the protected signing key
	// with the given fingerprint (nil: keys must be unprotected). It is
	// called while an upload or a renewal publishes, so it must not
	// prompt.
	Passphrase func(fingerprint string) ([]byte, error)
	// Mirror returns the publish targets that uploads and renewals
	// publish to beside the local tree (nil, or nil returned: none); it
	// is called each time the repository is opened, so a change of
	// conf/targets applies to the next upload.
	Mirror func() (*repo.MirrorOptions, error)
	// TargetCheckTimeout bounds the check of the publish targets before
	// an upload changes anything (0: 15 s).
	TargetCheckTimeout time.Duration
	// RenewInterval is how often the Release files are checked for
	// re-signing before their Valid-Until (0 or less: never).
	RenewInterval time.Duration
	// RolloutInterval is how often the rollout controller evaluates the
	// running rollouts (0 or less: the controller does not run). It
	// needs Fleet: it decides on the devices' reports.
	RolloutInterval time.Duration
	// RolloutWebhook, when set, is a URL (http or https) that receives a
	// POST of JSON (rollout.WebhookEvent) when a rollout this server's
	// controller drives halts, completes or is reverted; retried with
	// backoff, never blocking the controller. It may hold a secret: only
	// its scheme and host are ever logged. Needs RolloutInterval.
	RolloutWebhook string
	// TLSCertFile and TLSKeyFile, when both set, make Run serve HTTPS
	// (TLS 1.2 or later) with this certificate chain and key (PEM).
	TLSCertFile, TLSKeyFile string

	// Fleet, when set, runs the fleet side: the fleet database, the MQTT
	// broker (embedded unless Fleet.Broker names one), the collector, the
	// device API and (if Fleet.Dashboard) the dashboard and fleet API.
	Fleet *FleetConfig
}

// FleetConfig configures the fleet side of a Server.
type FleetConfig struct {
	// DB is the fleet database: a bbolt file ("": repo.Layout.FleetDB)
	// or a postgres:// URL (fleet/pgstore), which several servers and
	// collectors may share.
	DB string
	// Broker is the URL (mqtt:// or mqtts://) of an external broker to
	// collect from; "" runs the embedded one at MQTTListen.
	Broker string
	// Username and Password are the collector's login at the external
	// Broker.
	Username string
	Password []byte
	// MQTTListen is the embedded broker's address (host:port).
	MQTTListen string
	// AllowAnonymous lets clients without credentials use the embedded
	// broker, with no topic restrictions.
	AllowAnonymous bool
	// Subscribe makes the collector of the embedded broker log in and
	// subscribe over MQTT (QoS 1), with a secret that exists only in
	// this process, instead of taking each report from the broker before
	// the broker acknowledges it.
	Subscribe bool
	// MaxPendingPerAddr and ConnectTimeout are the embedded broker's
	// limits before a login (fleet.BrokerOptions).
	MaxPendingPerAddr int
	ConnectTimeout    time.Duration
	// ClientID is the collector's MQTT client id ("": "lampi-serve");
	// with a Username the id is the Username, since brokers bind ids to
	// logins.
	ClientID string
	// Dashboard mounts the dashboard at / and /devices/ and the fleet
	// API under /api/v1/fleet/: they list every device, so a server
	// reachable beyond loopback should serve them only on purpose.
	Dashboard bool
	// StaleView lists, in the dashboard and fleet report, the devices
	// whose newest accepted Release is at least this old (0: no list).
	StaleView time.Duration
}

// check returns what makes c unusable, wrapping ErrConfig.
func (c *Config) check() error {
	switch {
	case c.Dir == "" || c.Now == nil:
		return fmt.Errorf("%w: Dir and Now are required", ErrConfig)
	case (c.TLSCertFile == "") != (c.TLSKeyFile == ""):
		return fmt.Errorf("%w: TLSCertFile and TLSKeyFile go together", ErrConfig)
	case c.RolloutInterval > 0 && c.Fleet == nil:
		return fmt.Errorf("%w: RolloutInterval needs Fleet: the controller decides on the devices' reports", ErrConfig)
	case c.RolloutWebhook != "" && c.RolloutInterval <= 0:
		return fmt.Errorf("%w: RolloutWebhook needs RolloutInterval: the webhook tells what the controller decides", ErrConfig)
	case c.Fleet != nil && c.Fleet.StaleView < 0:
		return fmt.Errorf("%w: Fleet.StaleView %v is negative (0: no list)", ErrConfig, c.Fleet.StaleView)
	}
	return nil
}
