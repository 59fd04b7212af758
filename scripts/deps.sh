#!/usr/bin/env bash
# Installs what the tests and the demo need, only when it is missing:
# Debian packages through apt-get, Go modules through the module proxy.
set -euo pipefail

# command:package pairs; the command tells whether the package is there.
need=(
  dpkg-deb:dpkg
  apt-get:apt
  gpg:gnupg
  gpgv:gpgv
  lintian:lintian
  debsig-verify:debsig-verify
  xz:xz-utils
  zstd:zstd
  setpriv:util-linux
  dpkg-gencontrol:dpkg-dev
  bumpversion:bumpversion
  git:git
  reprepro:reprepro
  aptly:aptly
  /usr/bin/time:time
  mosquitto:mosquitto
  curl:curl
  openssl:openssl
  chromium:chromium
)
# "deps.sh bench" also installs what only the benchmarks run against.
if [ "${1:-}" = bench ]; then
  need+=(wrk:wrk nginx:nginx-light)
fi
missing=()
for pair in "${need[@]}"; do
  cmd=${pair%%:*} pkg=${pair#*:}
  command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing Debian packages: ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  # Services such as mosquitto must not start on install: tests start their
  # own on free loopback ports, and nothing else may listen. A policy-rc.d
  # that says "no" is Debian's way to keep invoke-rc.d from starting them.
  policy=/usr/sbin/policy-rc.d
  placed=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
    $sudo chmod 0755 "$policy"
    placed=1
    trap '$sudo rm -f "$policy"' EXIT
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v go >/dev/null 2>&1 || { echo "deps: Go is not installed (need Go >= 1.26); see https://go.dev/doc/install" >&2; exit 1; }
go mod download
