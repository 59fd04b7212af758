// Package fleet is the server side of device reporting: the embedded MQTT
// broker, the collector (MQTT → bbolt), the fleet store with its queries
// and reports, the JSON APIs and the dashboard. It reads the agent's wire
// format from agent/state and knows nothing of the repository: the newest
// published versions are handed in by the caller.
//
// # Basics
//
// Devices running lampi-agent publish, retained and with QoS 1, their
// state report to <prefix>/<id>/state (the installed versions, the last
// update result, a monotonic seq) and "online"/"offline" to
// <prefix>/<id>/status (the Will says "offline"). The pieces, each usable
// alone:
//
//	s, err := fleet.Open("fleet.db", fleet.StoreOptions{Now: time.Now})
//	c := fleet.NewDirectCollector(s, fleet.CollectorOptions{Now: time.Now})
//	b, err := fleet.StartBroker(ctx, fleet.BrokerOptions{Auth: s, Deliver: c.Deliver})
//	go c.Run(ctx)
//	rep, err := s.Report(ctx, fleet.ReportOptions{Newest: map[string]string{"hi": "0.2"}})
//
// [Store] is one bbolt file: the newest state of every device, each
// device's audit log (version changes and update results, at most
// StoreOptions.HistoryLimit events), the collector's counters and the
// broker credentials. One process writes it; several may read it while
// nobody writes.
//
// [StartBroker] runs the embedded broker (mochi-mqtt behind a small
// interface): devices log in with a credential ([Store.IssueCredentials])
// or a client certificate, may publish only their own state and status
// and subscribe to nothing; collectors may only read device topics; a
// login may use only its own client id, so no one takes over another's
// session. A [Collector] stores what arrives and acknowledges a message
// only once its batch is committed, so a collector killed at any point
// loses nothing: [NewCollector] subscribes to any broker (Mosquitto too)
// with a persistent session, optionally shared by a group of collectors;
// [NewDirectCollector] takes each report from the embedded broker of the
// same process before the broker acknowledges it to the device.
//
// A collector commits to a [Sink]: the Store, or the PostgreSQL store of
// package fleet/pgstore, which collectors and servers on several machines
// share ([DB] is what they use of either).
//
// Two small interfaces keep callers from caring where the fleet lives:
// a [Reader] (report, devices, one device, its history) is the [Store] or
// an [APIClient] of a running server or collector; [Credentials] (issue,
// list, revoke) is the [Store] or a [DevicesClient] of a running server.
// The JSON API that APIClient reads ([APIHandler], also read by the
// dashboard of another server and by lampi-pkg loadtest):
//
//	GET /api/v1/fleet/report[?package=P&stale=24h&stale_view=336h]   Report (stale_view=0: no stale view list)
//	GET /api/v1/fleet/devices[?stale=24h]            []Device
//	GET /api/v1/fleet/devices/{id}                   Device
//	GET /api/v1/fleet/devices/{id}/history           []Event
//	GET /api/v1/fleet/stats                          Stats
//
// The device API ([DevicesAPIHandlers]: issue and revoke credentials,
// reset a device's seq) has no authentication of its own: the server
// mounts it behind its bearer tokens. [DashboardHandler] serves the HTML
// dashboard from any [DashboardSource].
//
// # Caveats
//
// Reports are ordered by their seq, not by arrival: the store keeps the
// report with the highest seq per device and ignores older ones (a
// persistent queue or a shared subscription may reorder messages). A seq
// more than [MaxSeqAhead] beyond the receive time is rejected, or one
// report "from the future" would pin its device for ever; a device that
// got pinned before is freed with [Store.ResetSeq]. A report whose topic
// id and payload id differ is ignored (counted as spoofed).
//
// Device ids default to /etc/machine-id, which clones of one SD image
// share: their reports arrive under one id. lampi-agent reports the
// kernel's boot id; the store notices two boot ids of one id whose seq
// streams interleave (a reboot never does that) and flags the id
// (Device.Duplicate, Report.DuplicateDevices), but it keeps only one
// state for it: give each clone its own id and credential.
//
// The bbolt file takes one writer: while serve or fleet collect runs,
// other processes read through its API (APIClient, DevicesClient), and
// [Open] fails with [ErrLocked] after StoreOptions.Timeout. Report and
// VersionStats read aggregates that each ingest transaction keeps up to
// date (database format 2, aggregate.go) and decode only the devices a
// report lists; a format 1 file is migrated on its first writable open
// and walked when opened read-only. The dashboard caches a report
// (CacheFor) so that many open pages cost one. A Reader over the API sends what the
// server can honour: the server supplies the newest published versions
// and the time of a report.
//
// The embedded broker bounds what a client may cost before it logs in
// (packet size, CONNECT timeout, pending connections per address), and
// gives devices a shallow write queue (broker_queue.go), but an idle
// connection still costs it about 28 KB, most of it mochi's two goroutine
// stacks (Mosquitto under 1 KB): for very large fleets run Mosquitto and
// NewCollector instead.
package fleet
