#!/usr/bin/env bash
# Builds Mongey/terraform-provider-kafka v0.13.1 from its module on the Go module proxy, once per
# machine, into a filesystem-mirror layout (registry.terraform.io/Mongey/kafka/0.13.1/linux_amd64).
#   tests/bench/mongey_install.sh      prints the mirror directory (reused when already built)
# Cache: ${FERRY_PEERS_CACHE:-~/.cache/ferry-peers}/mongey-kafka-0.13.1
set -euo pipefail
VERSION=0.13.1
CACHE="${FERRY_PEERS_CACHE:-$HOME/.cache/ferry-peers}/mongey-kafka-$VERSION"
MIRROR="$CACHE/mirror"
BIN="$MIRROR/registry.terraform.io/mongey/kafka/$VERSION/linux_amd64/terraform-provider-kafka_v$VERSION"
if [[ -x "$BIN" ]]; then
  echo "$MIRROR"
  exit 0
fi
command -v go >/dev/null || { echo "mongey_install.sh: go not found" >&2; exit 1; }
mkdir -p "$CACHE"
dir="$(GOWORK=off GOFLAGS=-mod=mod go mod download -json "github.com/Mongey/terraform-provider-kafka@v$VERSION" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')"
src="$CACHE/src"
rm -rf "$src"
cp -r "$dir" "$src"
chmod -R u+w "$src"
mkdir -p "$(dirname "$BIN")"
(cd "$src" && GOWORK=off GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -o "$BIN.tmp" .) >&2
mv -f "$BIN.tmp" "$BIN"
rm -rf "$src"
echo "$MIRROR"
