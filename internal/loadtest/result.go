package loadtest

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/lampi-pkg/lampi-pkg/fleet"
)

// Result is what one run measured.
type Result struct {
	Devices     int `json:"devices"`
	Connections int `json:"connections"`
	// Duration is the wall time of the load phase.
	Duration time.Duration `json:"duration_ns"`
	MQTT     *MQTTResult   `json:"mqtt,omitempty"`
	HTTP     *HTTPResult   `json:"http,omitempty"`
	// Subscriber is the plain subscriber's count (Options.Subscribe).
	Subscriber *SubscriberResult `json:"subscriber,omitempty"`
	Collector  *CollectorResult  `json:"collector,omitempty"`
	// SuccessRate is the share of publishes acknowledged and polls answered
	// 200 or 304, of all attempted.
	SuccessRate float64 `json:"success_rate"`
}

// MQTTResult counts the state reports.
type MQTTResult struct {
	Broker      string `json:"broker"`
	QoS         byte   `json:"qos"`
	Connections int    `json:"connections"`
	// ConnectErrors counts connections that failed; their devices did not
	// report (DevicesWithoutConnection).
	ConnectErrors            int `json:"connect_errors"`
	DevicesWithoutConnection int `json:"devices_without_connection"`
	// Sent reports were handed to the client; Acked ones were confirmed by
	// a PUBACK (QoS 1) or written to the connection (QoS 0); Failed ones
	// were refused or timed out.
	Sent        uint64  `json:"sent"`
	Acked       uint64  `json:"acked"`
	Failed      uint64  `json:"failed"`
	StatusSent  uint64  `json:"status_sent"`
	StatusAcked uint64  `json:"status_acked"`
	PerSecond   float64 `json:"per_second"` // Acked per second
	// Latency of a publish: until its PUBACK for QoS 1.
	Latency Latency  `json:"latency"`
	Errors  []string `json:"errors,omitempty"`
}

// HTTPResult counts the conditional GETs of InRelease.
type HTTPResult struct {
	URL           string   `json:"url"`
	Requests      uint64   `json:"requests"`
	OK            uint64   `json:"ok"`           // 200
	NotModified   uint64   `json:"not_modified"` // 304
	OtherStatus   uint64   `json:"other_status"`
	Errors        uint64   `json:"errors"` // no answer
	Bytes         uint64   `json:"bytes"`
	PerSecond     float64  `json:"per_second"`
	Latency       Latency  `json:"latency"`
	ErrorMessages []string `json:"error_messages,omitempty"`
}

// CollectorResult compares what was acknowledged with what the collector
// accounted for, from its counters (GET /api/v1/fleet/stats) before and
// after the run and, with Options.CheckDevices, from the stored seq of
// every simulated device.
type CollectorResult struct {
	Before fleet.Stats `json:"before"`
	After  fleet.Stats `json:"after"`
	// Stored and Stale are the increase of the collector's counters; a
	// stale report arrived after a newer one of the same device and was
	// rightly not stored, so it is not a drop.
	Stored  uint64 `json:"stored"`
	Stale   uint64 `json:"stale"`
	Invalid uint64 `json:"invalid"`
	// PerSecond is the collector's ingest rate: Stored and Stale over the
	// time from the start of the run until its counters stopped moving.
	PerSecond float64 `json:"per_second"`
	// Drops is acknowledged reports minus Stored and Stale: reports the
	// broker took but the collector never saw. Negative when other
	// devices reported during the run.
	Drops int64 `json:"drops"`
	// Settled tells whether every acknowledged report was accounted for
	// before the wait ended; SettleTime is how long the wait took.
	Settled    bool          `json:"settled"`
	SettleTime time.Duration `json:"settle_ns"`
	// CountersReset: the collector restarted during the run, so the
	// counters undercount; trust DevicesBehind.
	CountersReset bool `json:"counters_reset,omitempty"`
	// DevicesBehind counts devices whose stored seq is older than their
	// last acknowledged report (only when DevicesChecked).
	DevicesChecked bool     `json:"devices_checked"`
	DevicesBehind  int      `json:"devices_behind"`
	BehindSample   []string `json:"behind_sample,omitempty"`
	// Error says why the collector could not be read.
	Error string `json:"error,omitempty"`
}

func (r *Result) successRate() float64 {
	var ok, all uint64
	if r.MQTT != nil {
		ok += r.MQTT.Acked
		all += r.MQTT.Sent
	}
	if r.HTTP != nil {
		ok += r.HTTP.OK + r.HTTP.NotModified
		all += r.HTTP.Requests
	}
	if all == 0 {
		return 0
	}
	return float64(ok) / float64(all)
}

// Problems lists what makes the run a failure: failed connections,
// publishes or polls, drops, devices whose newest report is missing, and
// a collector that could not be read. Empty means a clean run.
func (r *Result) Problems() []string {
	var out []string
	if m := r.MQTT; m != nil {
		if m.ConnectErrors > 0 {
			out = append(out, fmt.Sprintf("%d of %d connections to the broker failed", m.ConnectErrors, m.Connections))
		}
		if m.Failed > 0 {
			out = append(out, fmt.Sprintf("%d of %d state reports were not acknowledged", m.Failed, m.Sent))
		}
		if m.Sent == 0 {
			out = append(out, "no state report was sent")
		}
	}
	if s := r.Subscriber; s != nil && s.Missing > 0 {
		out = append(out, fmt.Sprintf("the plain subscriber missed %d acknowledged reports", s.Missing))
	}
	if h := r.HTTP; h != nil {
		if bad := h.Errors + h.OtherStatus; bad > 0 {
			out = append(out, fmt.Sprintf("%d of %d polls of %s failed", bad, h.Requests, h.URL))
		}
	}
	if c := r.Collector; c != nil {
		switch {
		case c.Error != "":
			out = append(out, "collector: "+c.Error)
		case c.Drops > 0:
			out = append(out, fmt.Sprintf("%d acknowledged reports never reached the collector", c.Drops))
		}
		if c.DevicesBehind > 0 {
			out = append(out, fmt.Sprintf("%d devices' newest report is missing from the collector (e.g. %s)", c.DevicesBehind, strings.Join(c.BehindSample, ", ")))
		}
	}
	return out
}

// WriteText writes the result for people.
func (r *Result) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "loadtest: %d devices, %s\n", r.Devices, r.Duration.Round(time.Millisecond))
	if m := r.MQTT; m != nil {
		fmt.Fprintf(&b, "mqtt      %s, QoS %d, %d connections", m.Broker, m.QoS, m.Connections)
		if m.ConnectErrors > 0 {
			fmt.Fprintf(&b, " (%d failed, %d devices idle)", m.ConnectErrors, m.DevicesWithoutConnection)
		}
		fmt.Fprintf(&b, "\n          reports sent %d, acked %d, failed %d (%s), %.1f msg/s\n",
			m.Sent, m.Acked, m.Failed, percent(m.Acked, m.Sent), m.PerSecond)
		if m.StatusSent > 0 {
			fmt.Fprintf(&b, "          status messages %d, acked %d\n", m.StatusSent, m.StatusAcked)
		}
		fmt.Fprintf(&b, "          latency %s\n", m.Latency.text())
		for _, e := range m.Errors {
			fmt.Fprintf(&b, "          error: %s\n", e)
		}
	}
	if s := r.Subscriber; s != nil {
		fmt.Fprintf(&b, "subscriber received %d (%.1f msg/s), missing %d, invalid %d\n          delivery latency %s\n",
			s.Received, s.PerSecond, s.Missing, s.Invalid, s.Latency.text())
	}
	if h := r.HTTP; h != nil {
		fmt.Fprintf(&b, "http      GET %s\n          requests %d: 200 %d, 304 %d, other %d, errors %d (%s), %.1f req/s\n",
			h.URL, h.Requests, h.OK, h.NotModified, h.OtherStatus, h.Errors, percent(h.OK+h.NotModified, h.Requests), h.PerSecond)
		fmt.Fprintf(&b, "          latency %s\n", h.Latency.text())
		for _, e := range h.ErrorMessages {
			fmt.Fprintf(&b, "          error: %s\n", e)
		}
	}
	if c := r.Collector; c != nil {
		if c.Error != "" {
			fmt.Fprintf(&b, "collector not read: %s\n", c.Error)
		} else {
			fmt.Fprintf(&b, "collector stored %d, stale %d, invalid %d; drops %d", c.Stored, c.Stale, c.Invalid, c.Drops)
			if c.Settled {
				fmt.Fprintf(&b, " (caught up %s after the run)\n", c.SettleTime.Round(time.Millisecond))
			} else {
				fmt.Fprintf(&b, " (still behind %s after the run)\n", c.SettleTime.Round(time.Millisecond))
			}
			fmt.Fprintf(&b, "          ingest %.1f msg/s", c.PerSecond)
			if s := r.Subscriber; s != nil && s.PerSecond > 0 {
				fmt.Fprintf(&b, " (%.2f× the plain subscriber)", c.PerSecond/s.PerSecond)
			}
			b.WriteString("\n")
			if c.CountersReset {
				b.WriteString("          the collector restarted during the run: its counters start again\n")
			}
			if c.DevicesChecked {
				fmt.Fprintf(&b, "          devices missing their newest report: %d\n", c.DevicesBehind)
			}
		}
	}
	fmt.Fprintf(&b, "success rate %.2f%%\n", r.SuccessRate*100)
	_, err := io.WriteString(w, b.String())
	return err
}

func percent(part, whole uint64) string {
	if whole == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f%%", float64(part)*100/float64(whole))
}

func (l Latency) text() string {
	if l.Count == 0 {
		return "-"
	}
	ms := func(d time.Duration) string { return fmt.Sprintf("%.3fms", float64(d)/float64(time.Millisecond)) }
	return fmt.Sprintf("mean %s stddev %s min %s max %s p50 %s p99 %s", ms(l.Mean), ms(l.Stddev), ms(l.Min), ms(l.Max), ms(l.P50), ms(l.P99))
}
