package agent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"

	"github.com/lampi-pkg/lampi-pkg/agent/state"
)

// ReporterOptions configure the MQTT reporter.
type ReporterOptions struct {
	Broker   *url.URL // mqtt:// or tls://
	Username string
	Password []byte
	TLS      *tls.Config
	Prefix   string
	DeviceID string
	// MaxBackoff bounds the reconnect backoff (exponential from 0.5 s).
	MaxBackoff time.Duration
	// OnSent is called with the seq of each state the broker acknowledged.
	OnSent func(seq uint64)
	Logf   func(format string, a ...any)
}

// ReporterOptions builds the reporter's options from the configuration:
// it reads the password file and the TLS files. ok is false when no
// broker is configured.
func (a *Agent) ReporterOptions() (opts ReporterOptions, ok bool, err error) {
	c := a.cfg
	if c.Broker == "" {
		return opts, false, nil
	}
	u, err := brokerURL(c.Broker)
	if err != nil {
		return opts, false, fmt.Errorf("%w: broker: %v", ErrConfig, err)
	}
	opts = ReporterOptions{Broker: u, Username: c.BrokerUser, Prefix: c.TopicPrefix, DeviceID: a.deviceID,
		MaxBackoff: c.ReconnectBackoff, OnSent: a.MarkSent, Logf: a.opts.Logf}
	if c.BrokerPassFile != "" {
		b, err := os.ReadFile(c.BrokerPassFile)
		if err != nil {
			return opts, false, fmt.Errorf("%w: broker_password_file: %v", ErrConfig, err)
		}
		opts.Password = []byte(strings.TrimRight(string(b), "\r\n"))
	}
	if u.Scheme == "tls" {
		tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: u.Hostname()}
		if c.BrokerCA != "" {
			pem, err := os.ReadFile(c.BrokerCA)
			if err != nil {
				return opts, false, fmt.Errorf("%w: broker_ca: %v", ErrConfig, err)
			}
			tc.RootCAs = x509.NewCertPool()
			if !tc.RootCAs.AppendCertsFromPEM(pem) {
				return opts, false, fmt.Errorf("%w: broker_ca %s holds no PEM certificate", ErrConfig, c.BrokerCA)
			}
		}
		if c.BrokerCert != "" {
			cert, err := tls.LoadX509KeyPair(c.BrokerCert, c.BrokerKey)
			if err != nil {
				return opts, false, fmt.Errorf("%w: broker_cert/broker_key: %v", ErrConfig, err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		opts.TLS = tc
	}
	return opts, true, nil
}

// MQTTReporter publishes the agent's status and state over MQTT 5:
// "online" retained on every connect (the Will is "offline", retained),
// each state retained at QoS 1. While the broker is unreachable it keeps
// only the latest state and sends it once a connection is up again.
type MQTTReporter struct {
	opts ReporterOptions
	cm   *autopaho.ConnectionManager

	mu      sync.Mutex
	pending *state.State
	payload []byte
	sent    uint64
	wake    chan struct{}
	sentCh  chan struct{} // closed and replaced whenever a state is acknowledged
	// downGen counts lost connections; onlineFor is the downGen value of
	// the connection "online" was last published on (-1: none yet). Online
	// goes out first on every connection, before any state.
	downGen, onlineFor int
	// connErr is the last connection attempt's error (nil once connected):
	// Flush says why nothing was acknowledged (a refused certificate, bad
	// credentials), not only that time ran out.
	connErr error

	cancel context.CancelFunc
	done   chan struct{}
}

// NewMQTTReporter starts connecting in the background; it does not wait
// for the broker.
func NewMQTTReporter(ctx context.Context, opts ReporterOptions) (*MQTTReporter, error) {
	if opts.Broker == nil {
		return nil, errors.New("mqtt: no broker URL")
	}
	if opts.Prefix == "" {
		opts.Prefix = state.DefaultPrefix
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 5 * time.Minute
	}
	// The connection lives until Close, not until the caller's ctx ends.
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r := &MQTTReporter{opts: opts, wake: make(chan struct{}, 1), sentCh: make(chan struct{}), cancel: cancel, done: make(chan struct{}), onlineFor: -1}
	backoff := autopaho.NewConstantBackoff(opts.MaxBackoff)
	if opts.MaxBackoff > time.Second {
		backoff = autopaho.NewExponentialBackoff(500*time.Millisecond, opts.MaxBackoff, time.Second, 2)
	}
	statusTopic := state.StatusTopic(opts.Prefix, opts.DeviceID)
	cfg := autopaho.ClientConfig{
		ServerUrls:                    []*url.URL{opts.Broker},
		TlsCfg:                        opts.TLS,
		KeepAlive:                     60,
		CleanStartOnInitialConnection: true,
		ReconnectBackoff:              backoff,
		ConnectTimeout:                15 * time.Second,
		ConnectUsername:               opts.Username,
		ConnectPassword:               opts.Password,
		WillMessage:                   &paho.WillMessage{Topic: statusTopic, Payload: []byte(state.Offline), QoS: 1, Retain: true},
		OnConnectionUp: func(cm *autopaho.ConnectionManager, _ *paho.Connack) {
			opts.Logf("mqtt: connected to %s", opts.Broker.Redacted())
			r.mu.Lock()
			r.connErr = nil
			r.mu.Unlock()
			r.poke()
		},
		OnConnectionDown: func() bool {
			// the next connection needs its "online" again
			r.mu.Lock()
			r.downGen++
			r.mu.Unlock()
			return true
		},
		OnConnectError: func(err error) {
			opts.Logf("mqtt: connect %s: %v", opts.Broker.Redacted(), err)
			r.mu.Lock()
			r.connErr = err
			r.mu.Unlock()
		},
		ClientConfig: paho.ClientConfig{ClientID: "lampi-agent-" + opts.DeviceID},
	}
	cm, err := autopaho.NewConnection(ctx, cfg)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("mqtt: %w", err)
	}
	r.cm = cm
	go r.loop(ctx)
	return r, nil
}

func (r *MQTTReporter) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Report queues s, replacing a state not sent yet.
func (r *MQTTReporter) Report(s state.State) {
	b, err := state.Encode(s)
	if err != nil {
		r.opts.Logf("mqtt: state not reported: %v", err)
		return
	}
	r.mu.Lock()
	r.pending, r.payload = &s, b
	r.mu.Unlock()
	r.poke()
}

func (r *MQTTReporter) loop(ctx context.Context) {
	defer close(r.done)
	topic := state.StateTopic(r.opts.Prefix, r.opts.DeviceID)
	statusTopic := state.StatusTopic(r.opts.Prefix, r.opts.DeviceID)
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
		}
		for {
			r.mu.Lock()
			needOnline, p := r.onlineFor != r.downGen, r.pending
			r.mu.Unlock()
			if !needOnline && p == nil {
				break
			}
			if err := r.cm.AwaitConnection(ctx); err != nil {
				return
			}
			r.mu.Lock()
			gen := r.downGen
			needOnline = r.onlineFor != gen
			r.mu.Unlock()
			if needOnline {
				pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				_, err := r.cm.Publish(pctx, &paho.Publish{Topic: statusTopic, Payload: []byte(state.Online), QoS: 1, Retain: true})
				cancel()
				if err != nil {
					r.opts.Logf("mqtt: publish online: %v", err)
					if sleepCtx(ctx, time.Second) != nil {
						return
					}
					continue
				}
				r.mu.Lock()
				r.onlineFor = gen
				r.mu.Unlock()
				continue
			}
			// the wait may have been long: send the newest state only
			r.mu.Lock()
			p, payload := r.pending, r.payload
			r.mu.Unlock()
			if p == nil {
				break
			}
			pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			_, err := r.cm.Publish(pctx, &paho.Publish{Topic: topic, Payload: payload, QoS: 1, Retain: true})
			cancel()
			if err != nil {
				r.opts.Logf("mqtt: publish state %d: %v", p.Seq, err)
				if sleepCtx(ctx, time.Second) != nil {
					return
				}
				continue
			}
			r.mu.Lock()
			if r.pending == p {
				r.pending = nil
			}
			r.sent = p.Seq
			close(r.sentCh)
			r.sentCh = make(chan struct{})
			r.mu.Unlock()
			if r.opts.OnSent != nil {
				r.opts.OnSent(p.Seq)
			}
		}
	}
}

// Flush waits until every queued state was acknowledged by the broker, or
// ctx ends.
func (r *MQTTReporter) Flush(ctx context.Context) error {
	for {
		r.mu.Lock()
		p, ch := r.pending, r.sentCh
		r.mu.Unlock()
		if p == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			r.mu.Lock()
			connErr := r.connErr
			r.mu.Unlock()
			if connErr != nil {
				return fmt.Errorf("mqtt: state %d not acknowledged by %s: %w (last connection attempt: %v)", p.Seq, r.opts.Broker.Redacted(), ctx.Err(), connErr)
			}
			return fmt.Errorf("mqtt: state %d not acknowledged by %s: %w", p.Seq, r.opts.Broker.Redacted(), ctx.Err())
		case <-ch:
		}
	}
}

// Close publishes "offline" (a clean DISCONNECT suppresses the Will) when
// connected, and disconnects.
func (r *MQTTReporter) Close(ctx context.Context) error {
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	if _, err := r.cm.Publish(pctx, &paho.Publish{Topic: state.StatusTopic(r.opts.Prefix, r.opts.DeviceID),
		Payload: []byte(state.Offline), QoS: 1, Retain: true}); err != nil {
		r.opts.Logf("mqtt: publish offline: %v", err)
	}
	cancel()
	err := r.cm.Disconnect(ctx)
	r.cancel()
	<-r.done
	return err
}
