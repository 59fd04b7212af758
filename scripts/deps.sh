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
  # PostgreSQL keeps its server binaries off PATH, in /usr/lib/postgresql/<major>/bin.
  /usr/lib/postgresql/15/bin/initdb:postgresql-15
  curl:curl
  python3:python3
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

# MinIO, for the tests of publishing to object storage: built from the Go
# module proxy at a pinned version (no binaries are downloaded) into a
# cache that later runs reuse. The first build takes minutes.
minio_version=v0.0.0-20260212201848-7aac2a2c5b7c
minio_dir=${XDG_CACHE_HOME:-$HOME/.cache}/lampi-pkg/minio-bin
if [ "$(cat "$minio_dir/.version" 2>/dev/null)" != "$minio_version" ] || [ ! -x "$minio_dir/minio" ]; then
  echo "deps: building MinIO $minio_version into $minio_dir (once; takes a few minutes)"
  mkdir -p "$minio_dir"
  GOFLAGS=-buildvcs=false GOBIN="$minio_dir" go install "github.com/minio/minio@$minio_version"
  echo "$minio_version" > "$minio_dir/.version"
fi

# Real Debian packages, for the tests that unpack them with dpkg-deb -R,
# rebuild them with lampi-pkg build and judge the result against the
# originals (md5sums, modes, owners, lintian, dpkg-deb --info). Fetched once
# with apt-get download into a cache that later runs reuse; the tests read
# every .deb there (LAMPI_REAL_DEBS names another directory).
real_debs=(perl-base bzip2 gzip base-files sudo tzdata libutempter0 ucf passwd mount debconf)
debs_dir=${XDG_CACHE_HOME:-$HOME/.cache}/lampi-pkg/debs
mkdir -p "$debs_dir"
want=()
for p in "${real_debs[@]}"; do
  compgen -G "$debs_dir/${p}_*.deb" >/dev/null || want+=("$p")
done
if [ ${#want[@]} -gt 0 ]; then
  echo "deps: downloading real Debian packages for the tests into $debs_dir: ${want[*]}"
  ( cd "$debs_dir" && { apt-get download -qq "${want[@]}" 2>/dev/null || { apt-get update -qq && apt-get download -qq "${want[@]}"; }; } )
fi
