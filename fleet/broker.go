package fleet

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/lampi-pkg/lampi-pkg/agent/state"
)

// DefaultBrokerAddr is where the embedded broker listens by default.
const DefaultBrokerAddr = "127.0.0.1:1883"

// Limits on what a client may cost the broker before it has logged in.
const (
	// DefaultMaxPacketSize bounds every MQTT packet a client sends, its
	// CONNECT included: a state report of state.MaxSize bytes plus 4 KiB
	// for the fixed header, the topic and MQTT 5 properties.
	DefaultMaxPacketSize = state.MaxSize + 4<<10
	// DefaultConnectTimeout is how long a TCP connection may take to
	// complete its TLS handshake and send its CONNECT.
	DefaultConnectTimeout = 10 * time.Second
	// DefaultMaxPendingPerAddr bounds the connections of one address that
	// have not logged in yet. Devices behind one NAT share an address, and
	// after a broker restart they all reconnect within their backoff: a
	// login takes one round trip (plus the TLS handshake), so even a few
	// thousand devices behind one address rarely have more than a hundred
	// logins under way at once. Logged-in connections do not count: each
	// credential holds one session (see clientIDOwner).
	DefaultMaxPendingPerAddr = 256
)

// Authenticator checks a broker login; *Store is one.
type Authenticator interface {
	Authenticate(user, secret string) (role string, ok bool)
}

// BrokerOptions configures the embedded MQTT broker.
type BrokerOptions struct {
	// Addr is the TCP address to listen on (default DefaultBrokerAddr).
	Addr string
	// Listener, if set, is used instead of listening on Addr.
	Listener net.Listener
	// TLS, if set, makes the listener speak MQTT over TLS (mqtts). To
	// accept client certificates set ClientCAs and ClientAuth (for
	// example tls.VerifyClientCertIfGiven): a verified certificate logs
	// in as the device named by its Common Name, or as a collector when
	// its Organizational Unit is CertCollectorOU.
	TLS *tls.Config
	// Auth checks username/password logins (device and collector
	// credentials); nil accepts none.
	Auth Authenticator
	// AllowAnonymous lets clients without credentials connect, with no
	// topic restrictions. Off by default.
	AllowAnonymous bool
	// Prefix is the device topic prefix (default state.DefaultPrefix).
	Prefix string
	// MaxQueued bounds the QoS 1 messages kept per client while it is
	// slow or disconnected with a persistent session (default and
	// maximum 65535); beyond it messages are dropped.
	MaxQueued int
	// Logger receives the broker's log (default: discarded).
	Logger *slog.Logger
	// MaxPacketSize bounds every packet a client sends, CONNECT included
	// (default DefaultMaxPacketSize): the broker reads the announced
	// length first and closes the connection without reading or
	// allocating a larger packet (MQTT 5 clients are told the limit in
	// the CONNACK).
	MaxPacketSize int
	// ConnectTimeout is how long a new connection may take to send its
	// CONNECT, TLS handshake included (default DefaultConnectTimeout);
	// then it is closed. After the login the client's keep-alive applies.
	ConnectTimeout time.Duration
	// MaxPendingPerAddr bounds the connections from one address (an IPv4
	// address, or an IPv6 /64) that have not logged in yet (default
	// DefaultMaxPendingPerAddr, negative for no limit): a connection
	// beyond it is closed at once. Logged-in connections do not count.
	MaxPendingPerAddr int
	// Deliver, if set, receives every message published on a device's
	// state or status topic (<Prefix>/<id>/state|status), and every such
	// Will, before the publisher gets its PUBACK: the broker acknowledges
	// a report only once Deliver returned nil, and refuses it when Deliver
	// fails (MQTT 5: PUBACK reason code 0x80; 3.1.1: no PUBACK), so the
	// device sends it again. A direct Collector's Deliver goes here.
	Deliver func(Message) error
}

// CertCollectorOU in a client certificate's Organizational Unit makes it
// a collector login instead of a device.
const CertCollectorOU = "lampi-collector"

// Broker is a running embedded MQTT broker (MQTT 3.1.1 and 5). Retained
// messages never expire; devices may publish only their own
// <prefix>/<id>/state (a report of at most state.MaxSize bytes) and
// <prefix>/<id>/status ("online" or "offline"), and subscribe to nothing;
// collectors may only read device topics. A login may use
// only its own client id (see clientIDOwner), so no login can take over
// another's session.
type Broker struct {
	ln     net.Listener
	tls    bool
	engine engine
	once   sync.Once
	err    error
}

// engine is what fleet needs of an MQTT broker implementation; the one in
// use (mochi-mqtt) lives in broker_mochi.go alone, so it can be replaced.
type engine interface {
	Close() error
}

// identity is who a connected client logged in as.
type identity struct {
	role string // RoleDevice, RoleCollector or "" (anonymous)
	id   string
}

// policy is the broker-independent authentication and ACL.
type policy struct {
	auth      Authenticator
	anonymous bool
	prefix    string
}

// Reasons policy.login refuses a CONNECT.
var (
	errBadLogin = errors.New("bad user name, password or certificate")
	errClientID = errors.New("client id belongs to another login")
	errWill     = errors.New("will not allowed")
)

// login decides a CONNECT: username/password, or the verified client
// certificate; clientID must belong to that login (clientIDOwner), and
// the Will (willTopic "" if none) must be one the client may publish.
func (p *policy) login(user string, password []byte, hasPassword bool, conn net.Conn, clientID, willTopic string, willPayload []byte) (identity, error) {
	var who identity
	switch {
	case user != "" && p.auth != nil:
		role, ok := p.auth.Authenticate(user, string(password))
		if !ok {
			return who, errBadLogin
		}
		who = identity{role: role, id: user}
	case user == "" && !hasPassword && certIdentity(conn, &who):
	case p.anonymous && (user == "" || p.auth == nil):
		who = identity{}
	default:
		return who, errBadLogin
	}
	if who.role != "" && clientIDOwner(clientID) != who.id {
		return who, errClientID
	}
	if willTopic != "" && (!p.may(who, willTopic, true) || p.checkPayload(who, willTopic, willPayload) != nil) {
		return who, errWill
	}
	return who, nil
}

// AgentClientIDPrefix is what lampi-agent puts before its device id to
// make its MQTT client id.
const AgentClientIDPrefix = "lampi-agent-"

// clientIDOwner is the login a client id belongs to: the id itself, or
// the device id in lampi-agent's AgentClientIDPrefix + id. Each client id
// has exactly one owner, so a login that may use only the ids it owns can
// never take over (disconnect, or inherit the persistent session of)
// another login's connection. An odd corner: a login named
// "lampi-agent-X" owns "lampi-agent-lampi-agent-X", not its own name.
func clientIDOwner(clientID string) string {
	if id, ok := strings.CutPrefix(clientID, AgentClientIDPrefix); ok {
		return id
	}
	return clientID
}

// certIdentity reads the identity from a verified TLS client certificate.
func certIdentity(conn net.Conn, who *identity) bool {
	tc, ok := conn.(*tls.Conn)
	if !ok {
		return false
	}
	cs := tc.ConnectionState()
	if len(cs.VerifiedChains) == 0 || len(cs.PeerCertificates) == 0 {
		return false
	}
	cert := cs.PeerCertificates[0]
	if state.ValidDeviceID(cert.Subject.CommonName) != nil {
		return false
	}
	who.id, who.role = cert.Subject.CommonName, RoleDevice
	for _, ou := range cert.Subject.OrganizationalUnit {
		if ou == CertCollectorOU {
			who.role = RoleCollector
		}
	}
	return true
}

// may is the ACL: topic is a topic name or, for subscribe, a filter. A
// device writes only its own state and status topics and subscribes to
// nothing (lampi-agent needs nothing; a subscriber that does not read its
// socket would hold the retained store, see mochiHook.retainMu).
func (p *policy) may(who identity, topic string, write bool) bool {
	switch who.role {
	case "":
		return p.anonymous
	case RoleDevice:
		return write && (topic == state.StateTopic(p.prefix, who.id) || topic == state.StatusTopic(p.prefix, who.id))
	case RoleCollector:
		if write {
			return false
		}
		if rest, ok := strings.CutPrefix(topic, "$share/"); ok {
			_, topic, ok = strings.Cut(rest, "/")
			if !ok {
				return false
			}
		}
		return strings.HasPrefix(topic, p.prefix+"/")
	}
	return false
}

// Reasons policy.checkPayload refuses a device's publish.
var (
	errTooLarge  = errors.New("state report larger than state.MaxSize")
	errBadStatus = errors.New(`status other than "online" or "offline"`)
)

// checkPayload bounds what a device leaves retained at the broker, on a
// topic it may write: a state report of at most state.MaxSize bytes (the
// collector ignores larger ones), a status "online" or "offline".
// Anonymous clients (tests and benchmarks) are not checked.
func (p *policy) checkPayload(who identity, topic string, payload []byte) error {
	if who.role != RoleDevice {
		return nil
	}
	switch {
	case strings.HasSuffix(topic, "/"+state.KindState) && len(payload) > state.MaxSize:
		return errTooLarge
	case strings.HasSuffix(topic, "/"+state.KindStatus) && string(payload) != state.Online && string(payload) != state.Offline:
		return errBadStatus
	}
	return nil
}

// collected says whether topic matches the collector's subscriptions,
// <prefix>/+/state and <prefix>/+/status (an invalid device id in it is
// for the collector to count).
func (p *policy) collected(topic string) bool {
	rest, ok := strings.CutPrefix(topic, p.prefix+"/")
	if !ok {
		return false
	}
	_, kind, ok := strings.Cut(rest, "/")
	return ok && (kind == state.KindState || kind == state.KindStatus)
}

// StartBroker starts the embedded broker and returns once it accepts
// connections. It stops when ctx is cancelled or Close is called.
func StartBroker(ctx context.Context, opts BrokerOptions) (*Broker, error) {
	if opts.Prefix == "" {
		opts.Prefix = state.DefaultPrefix
	}
	if opts.Addr == "" {
		opts.Addr = DefaultBrokerAddr
	}
	if opts.MaxQueued <= 0 || opts.MaxQueued > 65535 {
		opts.MaxQueued = 65535
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxPacketSize <= 0 {
		opts.MaxPacketSize = DefaultMaxPacketSize
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = DefaultConnectTimeout
	}
	if opts.MaxPendingPerAddr == 0 {
		opts.MaxPendingPerAddr = DefaultMaxPendingPerAddr
	}
	ln := opts.Listener
	if ln == nil {
		var err error
		ln, err = net.Listen("tcp", opts.Addr)
		if err != nil {
			return nil, fmt.Errorf("%w: listen on %s: %w (another broker running? choose another address)", ErrBroker, opts.Addr, err)
		}
	}
	// The guard sits under TLS, so its deadline covers the handshake.
	guard := newGuardListener(ln, opts.ConnectTimeout, opts.MaxPendingPerAddr, opts.Logger)
	ln = guard
	if opts.TLS != nil {
		ln = tls.NewListener(guard, opts.TLS)
	}
	pol := &policy{auth: opts.Auth, anonymous: opts.AllowAnonymous, prefix: opts.Prefix}
	eng, err := startMochi(ln, guard, pol, opts)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("%w: %w", ErrBroker, err)
	}
	b := &Broker{ln: ln, engine: eng, tls: opts.TLS != nil}
	go func() {
		<-ctx.Done()
		b.Close()
	}()
	return b, nil
}

// Addr is the address the broker listens on.
func (b *Broker) Addr() net.Addr { return b.ln.Addr() }

// URL is the broker's address as an mqtt:// (or, with TLS, mqtts://) URL.
func (b *Broker) URL() string {
	if b.tls {
		return "mqtts://" + b.ln.Addr().String()
	}
	return "mqtt://" + b.ln.Addr().String()
}

// Close stops the broker and disconnects every client.
func (b *Broker) Close() error {
	b.once.Do(func() { b.err = b.engine.Close() })
	return b.err
}
