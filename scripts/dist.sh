#!/bin/sh
# Build lampi-agent .debs for armhf, arm64 and amd64 with lampi-pkg itself.
# Usage: scripts/dist.sh LAMPI_PKG [VERSION]   (writes $DIST, default dist/)
set -eu
LAMPI_PKG=${1:?usage: scripts/dist.sh path/to/lampi-pkg [version]}
VERSION=${2:-${VERSION:-$(git describe --tags --always 2>/dev/null | sed 's/^v//; s/-/+/g' || true)}}
case "$VERSION" in [0-9]*) ;; *) VERSION="0.0.0+${VERSION:-dev}" ;; esac
: "${SOURCE_DATE_EPOCH:=$(git log -1 --format=%ct 2>/dev/null || date +%s)}"
export SOURCE_DATE_EPOCH GOFLAGS=-buildvcs=false CGO_ENABLED=0
out=${DIST:-dist}
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for arch in amd64 armhf arm64; do
	case $arch in
	armhf) goarch=arm goarm=7 ;;
	*) goarch=$arch goarm= ;;
	esac
	tree="$work/$arch"
	cp -a packaging/lampi-agent "$tree"
	mkdir -p "$tree/usr/bin"
	GOOS=linux GOARCH=$goarch GOARM=$goarm go build -trimpath \
		-ldflags "-s -w -X github.com/lampi-pkg/lampi-pkg/internal/agentcli.version=$VERSION" \
		-o "$tree/usr/bin/lampi-agent" ./cmd/lampi-agent
	mkdir -p "$tree/usr/share/doc/lampi-agent"
	printf 'lampi-agent (%s) stable; urgency=medium\n\n  * Release %s.\n\n -- LAMPi <lampi@example.org>  %s\n' "$VERSION" "$VERSION" "$(date -u -R -d "@$SOURCE_DATE_EPOCH")" | gzip -9n >"$tree/usr/share/doc/lampi-agent/changelog.gz"
	sed -i "s/@VERSION@/$VERSION/; s/@ARCH@/$arch/" "$tree/DEBIAN/control"
	"$LAMPI_PKG" build "$tree" -o "$out/"
done
ls -l "$out"/lampi-agent_*.deb
