// Package agent is lampi-agent's library: the on-device updater. It reads
// the device's apt source and its own configuration, checks the repository
// with everything verified before it is used, installs newer versions of
// the managed packages through apt-get or dpkg, rolls back on failure,
// keeps an inventory from dpkg's status file and reports over MQTT.
//
// # Basics
//
//	cfg, err := agent.LoadConfig("/etc/lampi-agent/agent.conf")
//	a, err := agent.New(cfg, agent.Options{Now: time.Now, Env: os.Environ(), Version: "1.2.0"})
//	o := a.Once(ctx)              // one cycle; o.Result is a state.Result* constant
//	s, err := a.NewState("")      // the next report (seq persisted first)
//	rep.Report(s)                 // *MQTTReporter: latest state only, QoS 1, retained
//	err = a.Run(ctx, rep)         // the daemon loop: schedule, backoff, heartbeats
//	_, err = a.RetryFailed()      // forget held-back and failed versions ("once --retry-failed")
//
// # One cycle (Agent.Once)
//
//  1. If dpkg's status holds half-installed/unpacked/half-configured
//     packages, or ADMINDIR/updates holds journal entries, run
//     "dpkg --configure -a" (an agent or dpkg killed mid-install).
//  2. For every source: GET dists/SUITE/InRelease with If-None-Match /
//     If-Modified-Since (bounded to 16 MiB and max_index_size); a 304 re-uses
//     the stored copy. The clearsigned file is verified with
//     signing.VerifyClearsigned against the source's Signed-By keyring
//     before any of it is parsed; only the signed text is read. The Release
//     must name the configured suite (Suite or Codename); Date must not be
//     in the future (beyond max_future), Valid-Until must not have passed,
//     and Date must not be older than the newest Date accepted before
//     (persisted in STATE_DIR/agent.json: replay and freeze defence).
//     Without InRelease (404), Release and Release.gpg are fetched and the
//     detached signature is verified the same way (no conditional GET then).
//  3. An idle check stops here: every InRelease answered 304, the dpkg
//     status file unchanged since an up-to-date result. Otherwise,
//     COMP/binary-ARCH/Packages(.xz|.gz) is fetched — by hash
//     (by-hash/SHA256/…) when the Release says Acquire-By-Hash: yes or the
//     source says by-hash=force — read up to the size the Release lists,
//     and checked against the Release's size and SHA256 before it is
//     decompressed (bounded) and parsed.
//  4. Plan: the managed packages are agent.conf's packages, or every
//     installed package the source publishes. A newer version is an
//     update; an older one is ignored (never a downgrade); a stanza with a
//     Filename outside the repository ("..", absolute, "//", a URL), or
//     without Size/SHA256, is refused with the reason. Phasing and the
//     maintenance window defer updates (result "deferred").
//  5. Every .deb is downloaded into CACHE_DIR (resuming CACHE_DIR/partial
//     with a Range request), read at most up to its listed Size, and checked
//     against Size and SHA256 (and its _gpgorigin signature with
//     signing.VerifyDeb when origin_keyring is set) before dpkg sees it.
//  6. Install all updates in one apt-get ("apt-get install FILE.deb…",
//     DEBIAN_FRONTEND=noninteractive, --force-confold/--force-confdef,
//     DPkg::Lock::Timeout) or "dpkg -i" call, after waiting for dpkg's
//     locks (lock_timeout). Then run health_check ("sh -c", LAMPI_ROOT set).
//  7. If the install or the health check fails, the previous versions are
//     reinstalled from the cache (the agent caches the installed version's
//     .deb at the first check that finds it published) and the result is
//     "rolled-back" with the error; without a cached previous version it is
//     "failed" wrapping ErrNoRollback.
//
// # Stalls
//
// Every request has an idle deadline, fetch_idle_timeout (default 1 min):
// no answer, or no body byte, for that long fails the request with
// ErrStalled (http.Transport's ResponseHeaderTimeout does not bound a
// body). All the requests of one cycle together are bounded by
// fetch_timeout (default 30 min), so a server or proxy that trickles a
// byte now and then cannot hold a cycle either; installs and health
// checks are not cut by it. A stall is a failed check like any other:
// reported, backed off, and the schedule goes on; a .deb cut off is
// resumed by the next cycle (Range). Run sends its heartbeat while a
// cycle runs, and Status, NewState and MarkSent never wait for a cycle.
//
// # Failed updates
//
// The agent remembers in its state directory (FailedUpdate) which versions
// failed. A version that was rolled back is held back: later cycles do not
// download or install it again, and report "held-back" with the held
// versions as Target, until a newer version is published or the operator
// calls RetryFailed ("lampi-agent once --retry-failed"). When several
// packages were updated together, all of them are held (the agent cannot
// tell which one broke). A version whose update failed otherwise
// (download, verification, install without a rollback, a self-update
// that did not complete) is tried again after a backoff of 5 min,
// doubling with each further failure of that version up to max_backoff,
// jittered over its upper half; meanwhile the result is "deferred" with
// the reason. A dpkg lock held by another program does not count.
//
// # Phasing
//
// Phased-Update-Percentage is honoured as apt does it (apt-pkg/upgrade.cc,
// apt ≥ 2.1): only for installed packages, a draw from
// std::uniform_int_distribution(0,100) over std::minstd_rand seeded by
// std::seed_seq over "SOURCE-SOURCEVERSION-MACHINEID"; the update waits
// while draw > percentage. PhaseDraw reproduces libstdc++'s algorithms
// exactly (tested against values computed by apt's own code), so the agent
// and apt on one device agree. MACHINEID is /etc/machine-id (machine_id_file).
// Unlike apt, the agent also phases in containers and with
// SOURCE_DATE_EPOCH set; like apt, no machine id means no phasing.
//
// # Self-update
//
// When the package to update is the agent's own (self_package), the
// install is handed to "systemd-run --unit=lampi-agent-update-VERSION
// --collect --no-block -- apt-get … install FILE.deb" (Config.SelfUpdateCommand):
// it runs in its own transient unit, outside lampi-agent.service's cgroup,
// so the package's postinst can restart the service. The hand-over is
// recorded in the state directory; the next agent (after the restart)
// reports "updated" when the new version is installed, or "failed" after 30
// minutes without it.
//
// # Reporting
//
// MQTTReporter (eclipse/paho.golang autopaho, MQTT 5) publishes
// "online" retained at QoS 1 on every connect, with a Will "offline"
// retained, and "offline" itself before a clean disconnect (a clean
// DISCONNECT suppresses the Will). State reports (agent/state) are
// published retained at QoS 1; while the broker is unreachable only the
// newest one is kept and it is sent when a connection is up again (the
// reconnect backoff grows exponentially from 0.5 s to reconnect_backoff).
// Seq is persisted before a report is handed over, so it grows across
// restarts. Every report carries release_date, the Date of the newest
// Release whose signature verified (the oldest such date of several
// sources), persisted with the replay defence: a device behind a mirror
// or cache that stopped moving shows an old date. Over TLS (mqtts://, tls://, ssl://) the broker is verified
// against broker_ca (default: the system roots) and broker_cert/broker_key
// are presented as a client certificate; Flush's error carries the last
// connection attempt's error (a refused certificate, bad credentials).
//
// # Retry-After
//
// A 429 or 503 with Retry-After makes the check fail, and the time
// (capped at 24 h) is persisted in the state directory. NotBefore returns
// it while it holds. Run waits it out before the first check, even after
// a restart, and "lampi-agent once" makes no request before it (exit 20)
// unless --force.
//
// Over plain HTTP anyone on the path can send that answer, every day. The
// agent honours at most 3 such deferrals in a row (maxPlainDeferrals)
// without a successful check between them; after that a plain-HTTP
// Retry-After is ignored (the check fails with the usual backoff, the
// error says so) until a check succeeds. Answers over TLS are always
// honoured: use https:// sources where the device can.
//
// # Caveats
//
// Flat repositories, deb-src, Signed-By fingerprints and the machine-wide
// trusted keyring are not supported: the source must name its keyring.
// The agent installs local, verified .deb files: apt resolves their
// dependencies from its own (separately updated) lists. Health checks and
// rollbacks do not apply to self-updates.
package agent
