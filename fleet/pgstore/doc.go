// Package pgstore is the fleet database on PostgreSQL, for a fleet that
// outgrows one machine: devices sharded over several brokers, a group of
// collectors ($share) per broker, and every collector and server writing
// and reading one database. It implements what the bbolt fleet.Store
// does — fleet.Sink for the collectors, fleet.Reader, fleet.Credentials
// (fleet.DB) — with the driver pgx.
//
// # Basics
//
//	s, err := pgstore.Open(ctx, "postgres://lampi@db.example/fleet", pgstore.Options{Now: time.Now})
//	c, err := fleet.NewCollector(s, fleet.CollectorOptions{Broker: "mqtt://broker1:1883", Group: "fleet", …})
//	rep, err := s.Report(ctx, fleet.ReportOptions{Newest: newest})
//
// Open applies the embedded schema migrations (migrations/*.sql, recorded
// in schema_migrations) under an advisory lock, so that servers starting
// together apply each once. The schema:
//
//   - devices: one row per device — seq, receive and status times,
//     online, agent, arch, last result and error, the Release date it
//     accepted, and the report as sent; partial indexes for the offline
//     and failed lists.
//   - installed: (device, package, version), indexed by (package,
//     version) for "who runs X" and the devices behind.
//   - history: the append-only audit log, partitioned by month of
//     receive time; months older than Options.Retention are dropped whole.
//   - version_counts, device_counts, collector_stats: aggregates and
//     counters, one row per writer (no two collectors contend for a
//     row), summed by a report; Open folds them into one row.
//   - credentials: broker logins, a salted hash of each secret.
//
// A collector's batch is one transaction. The rows of its devices are
// read without a lock — not at all for a device whose reports all keep
// the stored fingerprint, a fleet's steady state — and the batch is
// applied to them as the bbolt store applies it (the highest seq wins, a
// version change or result is logged). Every changed row is then written
// in one statement, each only if it still holds what was assumed (a
// compare-and-swap: stored seq below the batch's first report, same
// fingerprint, same status); a device another writer changed meanwhile is
// read again and its items applied again, so the newest seq wins across
// collectors and the log and aggregates stay exact. Writers take turns
// (a transaction-level advisory lock) from their first write to their
// commit, so that batches holding the same devices do not wait on each
// other row by row. The collector acknowledges the batch only after the
// commit; a transaction that deadlocks with another is retried.
//
// # Caveats
//
// A report reads the aggregates, the indexed lists and the devices
// behind: its cost grows with what it lists, not with the fleet. Devices
// walks every row. History returns the newest Options.HistoryLimit events
// of a device; older ones stay until their month is dropped.
//
// Connection strings follow libpq (postgres://user:password@host:port/db?
// sslmode=…); the store never logs or returns the password (Name, Redact).
package pgstore
