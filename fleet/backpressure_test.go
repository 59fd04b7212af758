package fleet

import (
	"bytes"
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
)

// TestEmbeddedBrokerBackpressure: a QoS 1 subscriber that stops reading
// (a collector in a long commit) holds the devices back instead of
// costing reports. The embedded broker acknowledges a device's publish
// only while the subscriber has fewer than sinkHighWater messages
// unacknowledged, so its write queue (8192) cannot overflow — mochi
// drops what does not fit, after the PUBACK. Once the subscriber reads
// again it receives every report the devices got a PUBACK for.
func TestEmbeddedBrokerBackpressure(t *testing.T) {
	testutil.Heavy(t, "floods the embedded broker until a stalled subscriber's queue fills")
	br, err := StartBroker(context.Background(), BrokerOptions{Addr: "127.0.0.1:0", AllowAnonymous: true})
	if err != nil {
		t.Fatal(err)
	}
	defer br.Close()

	release := make(chan struct{})
	var got atomic.Int64
	sub, err := dialRawSubscriber(br.URL(), "slow-collector", "devices/+/state", func() {
		if got.Add(1) == 1 {
			<-release // stop reading the socket until released
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.close()

	const devices, each = 64, 200
	const n = devices * each
	devs := make([]*rawDevice, devices)
	for i := range devs {
		if devs[i], err = dialRaw(br.URL(), fmt.Sprintf("lamp-%d", i), 64); err != nil {
			t.Fatal(err)
		}
		defer devs[i].close()
	}
	payload := bytes.Repeat([]byte("x"), 1000)
	sent := make(chan error, devices)
	for i, d := range devs {
		go func() {
			for k := range each {
				if err := d.send(publishPacket(fmt.Sprintf("devices/lamp-%d/state", i), uint16(k+1), payload)); err != nil {
					sent <- err
					return
				}
			}
			sent <- nil
		}()
	}
	acked := func() (a, f int64) {
		for _, d := range devs {
			a += d.acked.Load()
			f += d.failed.Load()
		}
		return a, f
	}
	// Let the devices run until they are held back (or done).
	last, still := int64(-1), 0
	for still < 5 {
		time.Sleep(100 * time.Millisecond)
		if a, _ := acked(); a == last {
			still++
		} else {
			last, still = a, 0
		}
	}
	held, _ := acked()
	close(release)
	for range devices {
		if err := <-sent; err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(2 * time.Minute)
	for a, _ := acked(); a < n && time.Now().Before(deadline); a, _ = acked() {
		time.Sleep(10 * time.Millisecond)
	}
	if a, f := acked(); a != n || f != 0 {
		t.Fatalf("devices: %d of %d acknowledged, %d refused", a, n, f)
	}
	for got.Load() < n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if g := got.Load(); g != n {
		t.Errorf("the subscriber received %d of the %d acknowledged reports", g, n)
	}
	// What the devices got acknowledged while the subscriber did not
	// read is what the broker holds for it: the high-water mark, plus at
	// most one message per device that passed the check at the same time.
	if held > sinkHighWater+devices {
		t.Errorf("%d reports acknowledged while the subscriber did not read: the broker held more than %d + %d for it", held, sinkHighWater, devices)
	}
}
