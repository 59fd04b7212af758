package fleet

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"

	"github.com/lampi-pkg/lampi-pkg/agent/state"
)

// DefaultBrokerAddr is where the embedded broker listens by default.
const DefaultBrokerAddr = "127.0.0.1:1883"

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
// messages never expire; devices may only publish and subscribe under
// their own <prefix>/<id>/; collectors may only read device topics.
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

// login decides a CONNECT: username/password, or the verified client
// certificate; willTopic ("" if none) must be one the client may publish.
func (p *policy) login(user string, password []byte, hasPassword bool, conn net.Conn, willTopic string) (identity, bool) {
	var who identity
	switch {
	case user != "" && p.auth != nil:
		role, ok := p.auth.Authenticate(user, string(password))
		if !ok {
			return who, false
		}
		who = identity{role: role, id: user}
	case user == "" && !hasPassword && certIdentity(conn, &who):
	case p.anonymous && (user == "" || p.auth == nil):
		who = identity{}
	default:
		return who, false
	}
	if willTopic != "" && !p.may(who, willTopic, true) {
		return who, false
	}
	return who, true
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

// may is the ACL: topic is a topic name or, for subscribe, a filter.
func (p *policy) may(who identity, topic string, write bool) bool {
	switch who.role {
	case "":
		return p.anonymous
	case RoleDevice:
		return strings.HasPrefix(topic, p.prefix+"/"+who.id+"/")
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
	ln := opts.Listener
	if ln == nil {
		var err error
		ln, err = net.Listen("tcp", opts.Addr)
		if err != nil {
			return nil, fmt.Errorf("%w: listen on %s: %w (another broker running? choose another address)", ErrBroker, opts.Addr, err)
		}
	}
	if opts.TLS != nil {
		ln = tls.NewListener(ln, opts.TLS)
	}
	pol := &policy{auth: opts.Auth, anonymous: opts.AllowAnonymous, prefix: opts.Prefix}
	eng, err := startMochi(ln, pol, opts)
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
