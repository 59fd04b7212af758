#!/usr/bin/env bash
# make demo: the main job end to end on the embedded defaults.
# Builds the course's hi package without root, shows it with lampi-pkg and
# with dpkg-deb, installs it into a throwaway root with the real dpkg and
# runs it.
set -euo pipefail
bin=${1:-bin/lampi-pkg}
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
trap 'rm -rf "$root"' EXIT
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
