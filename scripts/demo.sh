#!/usr/bin/env bash
# make demo: the main job end to end on the embedded defaults.
# Part 1: builds the course's hi package without root, shows it with
# lampi-pkg and with dpkg-deb, installs it into a throwaway root with the
# real dpkg and runs it, signs and verifies it.
# Part 2: the whole system on loopback — a signed repository, release 0.1,
# lampi-pkg serve (repository, embedded MQTT broker, collector, dashboard),
# a device (apt and dpkg confined to a throwaway root) running lampi-agent,
# release --bump minor, the agent installs 0.2, the fleet report shows it.
set -euo pipefail
bin=${1:-bin/lampi-pkg}
agent=${2:-$(dirname "$bin")/lampi-agent}
out=demo-out
rm -rf "$out" && mkdir -p "$out"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "lampi-pkg build fixtures/hi -o $out/"
"$bin" build fixtures/hi -o "$out/"
deb=$(ls "$out"/hi_*.deb)

step "lampi-pkg info $deb"
"$bin" info "$deb"

step "lampi-pkg contents $deb"
"$bin" contents "$deb"

step "dpkg-deb --info agrees (the real tool)"
dpkg-deb --info "$deb"

step "install into a throwaway root with the real dpkg, then run it"
root=$(mktemp -d)
server=""
cleanup() {
  [ -z "$server" ] || kill -INT "$server" 2>/dev/null || true
  [ -z "$server" ] || wait "$server" 2>/dev/null || true
  rm -rf "$root"
}
trap cleanup EXIT
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates"
touch "$root/var/lib/dpkg/status"
dpkg --root="$root" --instdir="$root" --admindir="$root/var/lib/dpkg" \
  --force-script-chrootless --force-not-root --log=/dev/null -i "$deb"
dpkg --admindir="$root/var/lib/dpkg" -s hi | grep -E '^(Package|Status|Version):'
"$root/opt/hi/hi"

step "sign it (in-process OpenPGP, no gpg) and verify: ours, then the real debsig-verify"
"$bin" key generate --name "LAMPi demo" --email demo@example.org --no-passphrase --expire 30d -o "$out/demo-key.asc" >/dev/null
"$bin" key export "$out/demo-key.asc" -o "$out/demo-key.gpg"
"$bin" sign "$deb" --key "$out/demo-key.asc"
"$bin" verify "$deb" --keyring "$out/demo-key.gpg"
"$bin" sign --key "$out/demo-key.asc" --debsig-policy "$out/debsig" >/dev/null
debsig-verify --policies-dir "$out/debsig/etc/debsig/policies" --keyrings-dir "$out/debsig/usr/share/debsig/keyrings" "$deb"

step "rebuild: byte-identical"
"$bin" build fixtures/hi -o "$out/one.deb" >/dev/null
"$bin" build fixtures/hi -o "$out/two.deb" >/dev/null
cmp "$out/one.deb" "$out/two.deb" && echo "identical: $(sha256sum "$out/one.deb" | cut -d' ' -f1)"

step "part 2: a signed repository, and release hi 0.1 into it"
# The package tree lives outside this checkout, as a project of its own.
work="$root/project"
mkdir -p "$work"
cp "$out/demo-key.asc" "$work/"
cp -r fixtures/hi "$work/hi"
cat > "$work/hi/.bumpversion.cfg" <<'CFG'
[bumpversion]
current_version = 0.1
parse = (?P<major>\d+)\.(?P<minor>\d+)
serialize = {major}.{minor}

[bumpversion:file:opt/hi/__VERSION__]
CFG
"$bin" repo init "$work/srv" --codename bookworm --suite stable --architectures amd64,armhf,arm64 --sign-with "$work/demo-key.asc" >/dev/null
"$bin" repo -b "$work/srv" createsymlinks >/dev/null
"$bin" key export "$work/demo-key.asc" -o "$work/srv/lampi.gpg"
"$bin" release "$work/hi" --repo "$work/srv" --out "$work/debs"

step "a device: apt and dpkg confined to a throwaway root, hi 0.1 installed"
dev="$root/device"
for d in var/lib/dpkg/info var/lib/dpkg/updates var/lib/apt/lists/partial var/cache/apt/archives/partial var/log/apt etc/apt/preferences.d etc/apt/apt.conf.d etc/apt/sources.list.d; do
  mkdir -p "$dev/$d"
done
cp /var/lib/dpkg/status "$dev/var/lib/dpkg/status"
dpkg --root="$dev" --admindir="$dev/var/lib/dpkg" --force-script-chrootless --force-not-root --log=/dev/null -i "$work"/debs/hi_0.1_all.deb >"$work/dpkg.log" 2>&1
"$dev/opt/hi/hi"
"$bin" device add lamp-demo --db "$work/srv/db/fleet.db" --json > "$work/creds.json"
( umask 077; sed -n 's/.*"secret": "\([^"]*\)".*/\1/p' "$work/creds.json" > "$work/mqtt-password" )

step "lampi-pkg serve: the repository, the MQTT broker, the collector and the dashboard"
"$bin" serve --repo "$work/srv" --listen 127.0.0.1:0 --addr-file "$work/addr" --mqtt-listen 127.0.0.1:0 --mqtt-addr-file "$work/maddr" --access-log off 2>"$work/serve.log" &
server=$!
for _ in $(seq 600); do [ -s "$work/addr" ] && [ -s "$work/maddr" ] && break; sleep 0.05; done
addr=$(cat "$work/addr"); maddr=$(cat "$work/maddr")
echo "update server http://$addr/  MQTT broker mqtt://$maddr  dashboard http://$addr/"
echo "deb [signed-by=$work/srv/lampi.gpg] http://$addr/ stable main" > "$dev/etc/apt/sources.list.d/lampi.list"
echo 0123456789abcdef0123456789abcdef > "$work/machine-id"
cat > "$work/agent.conf" <<CONF
device_id = lamp-demo
sources = $dev/etc/apt/sources.list.d/lampi.list
root = $dev
state_dir = $work/agent/state
cache_dir = $work/agent/cache
machine_id_file = $work/machine-id
architecture = amd64
broker = mqtt://$maddr
broker_username = lamp-demo
broker_password_file = $work/mqtt-password
CONF
"$agent" once --config "$work/agent.conf"

step "lampi-pkg release --bump minor: 0.2 is published"
"$bin" release "$work/hi" --repo "$work/srv" --bump minor

step "lampi-agent once: verifies, installs through apt, reports (exit 10 = updated)"
rc=0; "$agent" once --config "$work/agent.conf" || rc=$?
[ "$rc" -eq 10 ] || { echo "lampi-agent once exited $rc, expected 10 (updated)" >&2; exit 1; }
"$dev/opt/hi/hi"

step "lampi-pkg fleet report: which lamp runs which version"
for _ in $(seq 300); do
  "$bin" fleet report --server "http://$addr" --json > "$work/report.json"
  grep -q '"newest": "0.2"' "$work/report.json" && grep -q '"up_to_date": 1' "$work/report.json" && break
  sleep 0.1
done
"$bin" fleet report --server "http://$addr"
grep -q '"up_to_date": 1' "$work/report.json" || { echo "the fleet report does not show the device on 0.2" >&2; exit 1; }
echo
echo "demo done: everything above ran for real on this machine, on loopback only."
