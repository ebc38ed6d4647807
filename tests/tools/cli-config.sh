#!/usr/bin/env bash
# Writes DIR/cli.tfrc whose only install source is a filesystem mirror of the freshly built
# provider, under both default registry hosts (Terraform's and OpenTofu's), so `init` installs
# it as a registry install would. Prints the config path.
#   tests/tools/cli-config.sh DIR [PROVIDER_BINARY]
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
dir="$1"
binary="${2:-$REPO/target/debug/terraform-provider-ferry}"
version="$(sed -n 's/^version = "\(.*\)"/\1/p' "$REPO/Cargo.toml" | sed -n 1p)"
[ -x "$binary" ] || { echo "cli-config.sh: $binary is missing; run cargo build first" >&2; exit 1; }
for host in registry.terraform.io registry.opentofu.org; do
  target="$dir/mirror/$host/ferry/ferry/$version/linux_amd64"
  mkdir -p "$target"
  cp "$binary" "$target/terraform-provider-ferry_v$version"
done
cat > "$dir/cli.tfrc" <<CONF
provider_installation {
  filesystem_mirror {
    path = "$dir/mirror"
  }
}
CONF
echo "$dir/cli.tfrc"
