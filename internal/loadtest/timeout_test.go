package loadtest

import (
	"bufio"
	"context"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"
)

// TestRunReportTimesOut runs a device against a scripted broker that
// withholds the PUBACK of the first report until the load generator has
// counted that report as failed (no PUBACK in time), then acknowledges it
// late and every later report at once: the late PUBACK frees the packet
// id for the device's next reports, and it is not counted again.
func TestRunReportTimesOut(t *testing.T) {
	defer func(timeout, sweep time.Duration) { reportTimeout, sweepEvery = timeout, sweep }(reportTimeout, sweepEvery)
	reportTimeout, sweepEvery = 100*time.Millisecond, 20*time.Millisecond

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	failedSeen := make(chan struct{})
	brokerErr := make(chan error, 1)
	var publishes atomic.Int32
	go func() {
		brokerErr <- func() error {
			c, err := l.Accept()
			if err != nil {
				return err
			}
			defer c.Close()
			r := bufio.NewReader(c)
			if _, err := packets.ReadPacket(r); err != nil { // CONNECT
				return err
			}
			if _, err := packets.NewControlPacket(packets.CONNACK).WriteTo(c); err != nil {
				return err
			}
			for {
				in, err := packets.ReadPacket(r)
				if err != nil {
					return nil // the client disconnected
				}
				p, ok := in.Content.(*packets.Publish)
				if !ok {
					continue
				}
				if publishes.Add(1) == 1 {
					select {
					case <-failedSeen:
					case <-time.After(10 * time.Second): // never seen: the counts below tell
					}
				}
				if _, err := c.Write([]byte{0x40, 2, byte(p.PacketID >> 8), byte(p.PacketID)}); err != nil {
					return err
				}
			}
		}()
	}()

	var once atomic.Bool
	res, err := Run(context.Background(), Options{Devices: 1, Duration: 15 * time.Second, MaxReports: 3, QoS: 1,
		Broker: "mqtt://" + l.Addr().String(), Now: time.Now, Progress: func(p Progress) {
			if p.Failed > 0 && once.CompareAndSwap(false, true) {
				close(failedSeen)
			}
		}})
	if !once.Load() {
		close(failedSeen)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := <-brokerErr; err != nil {
		t.Fatal(err)
	}
	m := res.MQTT
	if m.Sent != 3 || m.Acked != 2 || m.Failed != 1 || m.Latency.Count != 2 || publishes.Load() != 3 {
		t.Errorf("mqtt %+v, %d publishes", m, publishes.Load())
	}
	if e := strings.Join(m.Errors, "; "); !strings.Contains(e, "no PUBACK within 100ms") {
		t.Errorf("errors: %s", e)
	}
}

// TestRunQoS0Unpaced publishes at QoS 0 as fast as the connections take
// the reports: each counts as acknowledged once written, and all reach a
// subscriber in order (not necessarily from every device: one pacer may
// spend the budget before the other starts).
func TestRunQoS0Unpaced(t *testing.T) {
	broker := startMosquitto(t, "allow_anonymous true")
	sub := subscribe(t, broker)
	res, err := Run(context.Background(), Options{Devices: 6, Connections: 2, Duration: time.Minute, MaxReports: 200,
		QoS: 0, Broker: broker, Now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	if m := res.MQTT; m.Sent != 200 || m.Acked != 200 || m.Failed != 0 || m.Latency.Count != 200 {
		t.Fatalf("mqtt %+v", m)
	}
	if got := sub.waitReports(200); got != 200 {
		t.Errorf("subscriber got %d of 200", got)
	}
	sub.mu.Lock()
	defer sub.mu.Unlock()
	if len(sub.seq) == 0 || sub.outOrder != 0 || len(sub.invalid) != 0 {
		t.Errorf("%d devices, %d out of order, invalid %q", len(sub.seq), sub.outOrder, sub.invalid)
	}
}
