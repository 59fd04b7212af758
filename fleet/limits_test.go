package fleet

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"

	mqtt "github.com/mochi-mqtt/server/v2"

	"github.com/lampi-pkg/lampi-pkg/agent/state"
)

// TestDevicePublishLimits performs issue 14 §4: a device published
// retained messages of any size on any topic under devices/<id>/, and they
// never expired (3,000 × 100 KiB added 178 MiB that stayed after the device
// left). A device now writes its own state (at most state.MaxSize bytes)
// and status only: the embedded broker refuses the rest, Mosquitto does
// with the documented ACL, message_size_limit and max_packet_size.
func TestDevicePublishLimits(t *testing.T) {
	for _, kind := range brokerKinds {
		t.Run(kind, func(t *testing.T) {
			s := openTestStore(t, StoreOptions{})
			b := startSecuredBroker(t, kind, s, []string{"lampA"}, []string{"collector"})
			runCollector(t, s, b.collector("collector"))
			ctx := t.Context()
			login := b.login("lampA")
			login.clientID, login.will = AgentClientIDPrefix+"lampA", true
			connect := func() *device {
				t.Helper()
				d, err := connectDevice(ctx, b.url, "lampA", login)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(d.close)
				return d
			}
			d := connect()
			if err := d.status(ctx, state.Online); err != nil {
				t.Fatal(err)
			}
			if err := d.publish(ctx, "lampA", mustEncode(t, state.State{Seq: 1, Time: t0, Device: "lampA"})); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "first report", func() bool { _, err := s.Device(t.Context(), "lampA"); return err == nil })
			var rssBefore int64
			if b.mosq != nil {
				rssBefore, _ = procMemory(t, b.mosq.Process().Pid)
			}

			// Retained messages on topics of its own subtree, and beside it.
			junk := bytes.Repeat([]byte("j"), 60<<10)
			for i := range 100 {
				err := d.publishTo(ctx, fmt.Sprintf("devices/lampA/junk%d", i), junk)
				if kind == "embedded" && (err == nil || !strings.Contains(err.Error(), "0x87")) {
					t.Fatalf("retained junk %d: %v, want refused as not authorized (0x87)", i, err)
				}
			}
			for _, topic := range []string{"devices/lampA", "devices/lampA/state/x", "devices/lampA/status/x", "devices/lampA/", "devices/lampB/state", "lampA/state"} {
				if err := d.publishTo(ctx, topic, []byte("x")); kind == "embedded" && err == nil {
					t.Errorf("publish on %s accepted", topic)
				}
			}
			// On its own state topic: a report larger than a report may be
			// is refused; a packet larger than a packet may be closes the
			// connection.
			if err := d.publishTo(ctx, "devices/lampA/state", bytes.Repeat([]byte(" "), state.MaxSize+2<<10)); err == nil {
				t.Error("a state report larger than state.MaxSize was accepted")
			} else if kind == "embedded" && !strings.Contains(err.Error(), "0x95") {
				t.Errorf("oversized report: %v, want refused as too large (0x95)", err)
			}
			raw, _, err := rawConnect(b.url, "lampA", 5, "lampA", b.secrets["lampA"])
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			if _, err := raw.Write(publishPacket("devices/lampA/state", 1, bytes.Repeat([]byte(" "), 100<<10))); err == nil && !closedByPeer(raw) {
				t.Error("the connection that sent a 100 KiB packet was kept open")
			}
			d = connect() // Mosquitto: the raw login of lampA took its session over
			if kind == "embedded" {
				// Mosquitto does not look at payloads: the collector
				// ignores (and counts) a bad status there.
				if err := d.publishTo(ctx, "devices/lampA/status", []byte("garbage")); err == nil || !strings.Contains(err.Error(), "0x99") {
					t.Errorf("status \"garbage\": %v, want refused (0x99)", err)
				}
				bad := login
				bad.willBody = bytes.Repeat([]byte("w"), 60<<10)
				if w, err := connectDevice(ctx, b.url, "lampA", bad); err == nil {
					w.close()
					t.Error("a 60 KiB Will on the status topic was accepted")
				}
			}
			// A last report: once it is stored, all before it has been
			// through the broker.
			if err := d.publish(ctx, "lampA", mustEncode(t, state.State{Seq: 2, Time: t0, Device: "lampA"})); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "last report", func() bool { dev, _ := s.Device(t.Context(), "lampA"); return dev.State.Seq == 2 })
			if st := s.Stats(); st.Invalid != 0 {
				t.Errorf("%d invalid messages reached the collector", st.Invalid)
			}

			switch kind {
			case "embedded":
				retained := b.emb.engine.(*mqtt.Server).Topics.Retained.GetAll()
				var topics []string
				for topic, pk := range retained {
					if strings.HasPrefix(topic, "$SYS/") {
						continue // the broker's own
					}
					topics = append(topics, topic)
					if len(pk.Payload) > state.MaxSize {
						t.Errorf("retained %s: %d bytes", topic, len(pk.Payload))
					}
				}
				slices.Sort(topics)
				if want := []string{"devices/lampA/state", "devices/lampA/status"}; !slices.Equal(topics, want) {
					t.Errorf("retained topics %v, want %v", topics, want)
				}
			case "mosquitto":
				rss, _ := procMemory(t, b.mosq.Process().Pid)
				t.Logf("mosquitto resident memory %d KiB before, %d KiB after", rssBefore>>10, rss>>10)
				if rss-rssBefore > 3<<20 {
					t.Errorf("mosquitto holds %d MiB more after the junk (retained?)", (rss-rssBefore)>>20)
				}
			}
		})
	}
}
