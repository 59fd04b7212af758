package loadtest

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"

	"github.com/lampi-pkg/lampi-pkg/agent/state"
	"github.com/lampi-pkg/lampi-pkg/internal/mqttconn"
)

// dial opens a device connection: a lean MQTT 5 client with a clean
// session, the device's id as client id, its login and its Will.
func (p *publisher) dial(ctx context.Context, u *url.URL, c *mqttConn, perDevice bool, rx *reactor) (*leanClient, error) {
	cctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	nc, err := dialNet(cctx, u, p.opts)
	if err != nil {
		return nil, err // "dial tcp HOST: …"
	}
	cp := &packets.Connect{ProtocolName: "MQTT", ProtocolVersion: 5, ClientID: c.clientID,
		KeepAlive: keepAlive, CleanStart: true, Properties: &packets.Properties{}}
	if perDevice && p.opts.Status {
		cp.WillFlag, cp.WillQOS, cp.WillRetain = true, 1, true
		cp.WillTopic = state.StatusTopic(p.opts.Prefix, c.clientID)
		cp.WillMessage = []byte(state.Offline)
		cp.WillProperties = &packets.Properties{}
	}
	if user, pass, ok := login(u, p.opts, c.clientID); ok {
		cp.Username, cp.UsernameFlag = user, true
		cp.Password, cp.PasswordFlag = pass, pass != nil
	}
	window := 1
	if !perDevice {
		window = min(len(c.devices), p.opts.Inflight)
	}
	return dialLean(cctx, nc, cp, window, rx)
}

// keepAlive is the devices' MQTT keep-alive in seconds.
const keepAlive = 30

// login returns the credentials a connection logs in with.
func login(u *url.URL, opts *Options, clientID string) (string, []byte, bool) {
	switch {
	case opts.Credentials != nil:
		return opts.Credentials(clientID)
	case u.User != nil: // mqtt://user:password@host: one login for all
		var pass []byte
		if pw, ok := u.User.Password(); ok {
			pass = []byte(pw)
		}
		return u.User.Username(), pass, true
	}
	return "", nil, false
}

// dialNet opens the TCP or TLS connection to the broker.
func dialNet(ctx context.Context, u *url.URL, opts *Options) (net.Conn, error) {
	host := u.Host
	if u.Port() == "" {
		port := "1883"
		if u.Scheme == "mqtts" || u.Scheme == "ssl" {
			port = "8883"
		}
		host = net.JoinHostPort(u.Hostname(), port)
	}
	var nc net.Conn
	var err error
	d := &net.Dialer{}
	if u.Scheme == "mqtts" || u.Scheme == "ssl" {
		cfg := opts.TLS
		if cfg == nil {
			cfg = &tls.Config{}
		}
		cfg = cfg.Clone()
		if cfg.ServerName == "" {
			cfg.ServerName = u.Hostname()
		}
		td := &tls.Dialer{NetDialer: d, Config: cfg}
		nc, err = td.DialContext(ctx, "tcp", host)
	} else {
		nc, err = d.DialContext(ctx, "tcp", host)
	}
	return nc, err
}

// dialMQTT opens one paho MQTT 5 connection with a clean session (the
// plain subscriber's).
func dialMQTT(ctx context.Context, u *url.URL, opts *Options, clientID string, will *paho.WillMessage,
	onPublish []func(paho.PublishReceived) (bool, error)) (*paho.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	nc, err := dialNet(ctx, u, opts)
	if err != nil {
		return nil, err // "dial tcp HOST: …"
	}
	nc = mqttconn.NewBatching(nc, 4<<10)
	cfg := paho.ClientConfig{ClientID: clientID, Conn: nc, PacketTimeout: publishTimeout, OnPublishReceived: onPublish}
	if onPublish != nil {
		// A subscriber's PUBACKs leave in batches every 2 ms (its handlers
		// acknowledge each message) rather than a write each.
		cfg.EnableManualAcknowledgment, cfg.SendAcksInterval = true, 2*time.Millisecond
	}
	client := paho.NewClient(cfg)
	cp := &paho.Connect{ClientID: clientID, KeepAlive: 30, CleanStart: true, WillMessage: will}
	if onPublish == nil {
		// A device receives nothing; paho sizes a channel by the receive
		// maximum (65535 pointers, 512 KiB, per connection by default).
		recvMax := uint16(16)
		cp.Properties = &paho.ConnectProperties{ReceiveMaximum: &recvMax, RequestProblemInfo: true}
	}
	if user, pass, ok := login(u, opts, clientID); ok {
		cp.Username, cp.UsernameFlag = user, true
		cp.Password, cp.PasswordFlag = pass, pass != nil
	}
	ack, err := client.Connect(ctx, cp)
	if err != nil {
		_ = nc.Close()
		if ack != nil && ack.ReasonCode != 0 {
			return nil, fmt.Errorf("%w: %s (reason code 0x%02x)", ErrRefused, reasonText(ack.ReasonCode), ack.ReasonCode)
		}
		return nil, fmt.Errorf("connect: %w", err)
	}
	return client, nil
}

func reasonText(code byte) string {
	switch code {
	case 0x86:
		return "bad user name or password"
	case 0x87:
		return "not authorized"
	case 0x85:
		return "client identifier not valid"
	case 0x97:
		return "quota exceeded"
	case 0x9F:
		return "connection rate exceeded"
	}
	return "connection refused"
}

// announce publishes every connected device's retained status.
func (p *publisher) announce(ctx context.Context, status string) {
	parallel(len(p.workers), 256, func(i int) {
		w := p.workers[i]
		for _, d := range w.devices {
			if ctx.Err() != nil || closed(w.conn.client) {
				return
			}
			id := deviceID(p.opts.IDPrefix, d, p.opts.Devices)
			pctx, cancel := context.WithTimeout(ctx, publishTimeout)
			err := w.conn.client.Publish(pctx, 1, true, state.StatusTopic(p.opts.Prefix, id), []byte(status))
			cancel()
			p.statusSent.Add(1)
			if err != nil {
				p.errs.add(fmt.Errorf("publish status: %w", err))
				continue
			}
			p.statusAcked.Add(1)
		}
	})
}
