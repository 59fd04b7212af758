// Package updateserver is what "lampi-pkg serve" runs, as a library: one
// process that serves a repository to devices, takes uploads from the
// release pipeline, keeps the Release signatures fresh and collects what
// the devices report.
//
// # Basics
//
//	s, err := updateserver.New(updateserver.Config{
//		Dir: "/srv/repo", Now: time.Now, Logger: logger,
//		RenewInterval: 10 * time.Minute,
//		Fleet: &updateserver.FleetConfig{MQTTListen: "127.0.0.1:1883", Dashboard: true},
//	})
//	if err != nil { … }
//	defer s.Close()
//	ln, err := net.Listen("tcp", "127.0.0.1:8080")
//	err = s.Run(ctx, ln) // until ctx ends; then a graceful shutdown
//
// New opens what the server holds for its whole life and starts the
// fleet side; Run serves HTTP on a listener the caller made (so the
// caller picks the address, reports it, and can hand in a socket it was
// given); Close releases everything. The caller owns the process: signal
// handling, the Go runtime's settings, profiles, and what to tell the
// operator (Notef receives the lines worth telling; BrokerURL and
// FleetDB say what started).
//
// What runs, by part:
//
//   - The repository's files (package server): dists/, pool/ and the
//     public keyring files at the top of Config.Dir, read-only, with
//     ETag, Last-Modified (kept per file version in
//     repo.Layout.ServeDates), 304 and Range answers; /healthz and the
//     Prometheus /metrics.
//   - The upload API: POST /api/v1/repos/CODENAME/packages (CODENAME or
//     its suite) with a bearer token of the token store (Config.Tokens,
//     default repo.Layout.Tokens), checked and published as "repo
//     includedeb" does, under the repository lock, signed with the keys
//     of conf/keys (Config.Passphrase unlocks a protected one) and
//     published to the targets of Config.Mirror after they answered a
//     check (Config.TargetCheckTimeout).
//   - Renewal: every Config.RenewInterval, a distribution with a ValidFor
//     and less than half of it left is published again with a new Date
//     and Valid-Until and nothing else changed (repo.Renew), so devices
//     never see an expired Release while the server runs.
//   - The fleet side (Config.Fleet): the fleet database (default
//     repo.Layout.FleetDB, or a postgres:// URL: fleet/pgstore); the embedded MQTT broker, where devices log
//     in with the database's credentials and publish their reports, or
//     an external broker (FleetConfig.Broker); the collector that commits
//     each report to the database; the device API (issue, list and
//     revoke broker credentials; token scope "devices") on every
//     listener; and, with FleetConfig.Dashboard, the dashboard at / and
//     the JSON fleet API under /api/v1/fleet/, whose "behind" is measured
//     against the newest published versions (repo.Repo.Newest, read
//     again when an InRelease changes).
//
// # Caveats
//
// The embedded broker keeps nothing on disk. By default it hands each
// report to the collector before it acknowledges it to the device, so an
// acknowledged report is committed; with FleetConfig.Subscribe (and with
// an external broker) the collector subscribes like any other client and
// a report waits in the broker's memory until the collector takes it.
//
// The default fleet database is a bbolt file: one process holds it. New
// fails with ErrFleetDB while another server or "lampi-pkg fleet collect"
// has it open. A PostgreSQL fleet database (FleetConfig.DB postgres://…)
// is shared: servers and collectors on several machines write it at once.
//
// The dashboard and fleet API list every device and need no token:
// FleetConfig.Dashboard should be false on a server reachable beyond
// loopback unless that is intended ("serve --expose-fleet").
//
// Plain HTTP is served through the server's fast path (server.Front);
// with TLS every request goes through net/http. Nothing here refuses a
// plain-HTTP listener on a public address: the caller decides (serve
// insists on TLS or --insecure-listen).
//
// A renewal does not wait for the publish targets to answer: the local
// tree is renewed even when a target is down, and the next sync catches
// it up. A failed renewal is retried at the next tick and told through
// Notef.
//
// Run stops the collector and the broker as soon as its context ends,
// then gives the HTTP requests in flight up to ShutdownTimeout; uploads
// in flight finish or fail as a whole (the repository's publish is
// atomic). A Server runs once: make a new one to serve again.
package updateserver
