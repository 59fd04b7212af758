-- The fleet database of lampi-pkg on PostgreSQL (fleet/pgstore).

-- Ids, package names and versions sort as bytes (COLLATE "C"), as the
-- bbolt store and Go sort them, whatever the database's locale.

-- One row per device: its newest state (highest seq) and its last status.
CREATE TABLE devices (
	id           text COLLATE "C" PRIMARY KEY,
	seq          bigint      NOT NULL DEFAULT 0,  -- 0: no state yet, or reset (ResetSeq)
	received     timestamptz,                     -- when the stored state arrived
	status_time  timestamptz,                     -- when the last status arrived
	online       boolean     NOT NULL DEFAULT false,
	last_seen    timestamptz GENERATED ALWAYS AS (greatest(status_time, received)) STORED,
	fingerprint  bigint      NOT NULL DEFAULT 0,  -- of packages, target, result, error
	agent        text        NOT NULL DEFAULT '',
	arch         text        NOT NULL DEFAULT '',
	result       text        NOT NULL DEFAULT '',
	error        text        NOT NULL DEFAULT '',
	release_date timestamptz,
	state        json                             -- the report as the device sent it
);
-- The report's lists: offline, failed, stale view of the repository.
CREATE INDEX devices_offline ON devices (id) WHERE NOT online;
CREATE INDEX devices_failed ON devices (id) WHERE result IN ('failed', 'rolled-back', 'held-back');
CREATE INDEX devices_release_date ON devices (release_date);

-- Installed versions per device, for "who runs X".
CREATE TABLE installed (
	device  text COLLATE "C" NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
	package text COLLATE "C" NOT NULL,
	version text COLLATE "C" NOT NULL,
	PRIMARY KEY (device, package)
);
CREATE INDEX installed_package_version ON installed (package, version, device);

-- The audit log: append-only, one partition per month of receive time,
-- old months dropped whole (Options.Retention).
CREATE TABLE history (
	id       bigint GENERATED ALWAYS AS IDENTITY,
	device   text COLLATE "C" NOT NULL,
	received timestamptz NOT NULL,
	event    json        NOT NULL
) PARTITION BY RANGE (received);
CREATE INDEX history_device ON history (device, id);

-- Aggregates kept up to date by every writer in its own rows (no two
-- collectors contend for a row); a report sums them.
CREATE TABLE version_counts (
	writer  text   NOT NULL,
	package text   NOT NULL,
	version text   NOT NULL,
	devices bigint NOT NULL,
	PRIMARY KEY (writer, package, version)
);
CREATE TABLE device_counts (
	writer  text PRIMARY KEY,
	devices bigint NOT NULL DEFAULT 0,
	online  bigint NOT NULL DEFAULT 0
);
-- What the collectors received (fleet.Stats), one row per writer.
CREATE TABLE collector_stats (
	writer   text PRIMARY KEY,
	received bigint NOT NULL DEFAULT 0,
	stored   bigint NOT NULL DEFAULT 0,
	stale    bigint NOT NULL DEFAULT 0,
	invalid  bigint NOT NULL DEFAULT 0,
	spoofed  bigint NOT NULL DEFAULT 0,
	rejected bigint NOT NULL DEFAULT 0,
	status   bigint NOT NULL DEFAULT 0
);

-- Broker logins: a salted SHA-256 of the secret, never the secret.
CREATE TABLE credentials (
	id      text COLLATE "C" PRIMARY KEY,
	role    text        NOT NULL,
	created timestamptz NOT NULL,
	salt    bytea       NOT NULL,
	hash    bytea       NOT NULL
);
