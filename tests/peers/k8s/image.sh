#!/usr/bin/env bash
# Build the ferry-mirror runtime image without Docker or a registry, and import
# it into the k8s peer's containerd (pods use it with imagePullPolicy: Never).
#
#   tests/peers/k8s/image.sh [--release | --binary PATH] [--name REF] [--no-import]
#
# The image has one layer: the ferry-mirror binary (target/debug by default,
# target/release with --release; it must be built already), the shared
# libraries `ldd` says it loads (copied from this machine, with the dynamic
# loader), and a minimal /etc: passwd and group (user ferry, 65532), nsswitch,
# the CA bundle. It runs as 65532:65532 with entrypoint ferry-mirror: the same
# contract as runtime/Dockerfile, which is what users with a registry build.
# Before writing the archive the binary is run once inside the rootfs
# (chroot, `ferry-mirror --help`) so a missing library fails here.
#
# Writes .peers/k8s-image/ferry-mirror.tar (docker-archive, see mkimage.py) and,
# unless --no-import, imports it with `ctr -n k8s.io images import` into the
# running peer (from .peers/k8s/env). Prints the image reference.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
HERE="$REPO/tests/peers/k8s"

bin="$REPO/target/debug/ferry-mirror"
name="${FERRY_K8S_IMAGE:-ferry.local/ferry-mirror:dev}"
import=1
while (($#)); do
  case "$1" in
  --release) bin="$REPO/target/release/ferry-mirror" ;;
  --binary) bin="$2"; shift ;;
  --name) name="$2"; shift ;;
  --no-import) import=0 ;;
  *) echo "usage: image.sh [--release | --binary PATH] [--name REF] [--no-import]" >&2; exit 2 ;;
  esac
  shift
done
[[ -x "$bin" ]] || { echo "image.sh: $bin not found: cargo build -p ferry-mirror first" >&2; exit 1; }

OUT="$REPO/.peers/k8s-image"
mkdir -p "$OUT"
rootfs="$(mktemp -d "$OUT/rootfs.XXXXXX")"
trap 'rm -rf "$rootfs"' EXIT
chmod 0755 "$rootfs"

install -D -m 0755 "$bin" "$rootfs/usr/local/bin/ferry-mirror"
# Every library the binary loads, under the path the loader resolves, plus the
# loader itself (the `/lib64/ld-linux-x86-64.so.2 (0x...)` line).
while read -r lib; do
  [[ -n "$lib" ]] || continue
  install -D -m 0755 "$(readlink -f "$lib")" "$rootfs$lib"
done < <(ldd "$bin" | awk '
  / not found/ { print "image.sh: missing library: " $1 > "/dev/stderr"; exit 1 }
  $2 == "=>" && $3 ~ /^\// { print $3; next }
  $1 ~ /^\// { print $1 }')

mkdir -p "$rootfs/etc/ssl/certs" "$rootfs/tmp" "$rootfs/work"
chmod 1777 "$rootfs/tmp"
cat >"$rootfs/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/usr/sbin/nologin
ferry:x:65532:65532:ferry-mirror:/work:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
EOF
cat >"$rootfs/etc/group" <<'EOF'
root:x:0:
ferry:x:65532:
nogroup:x:65534:
EOF
cat >"$rootfs/etc/nsswitch.conf" <<'EOF'
passwd: files
group: files
hosts: files dns
EOF
chown 65532:65532 "$rootfs/work"
ca=/etc/ssl/certs/ca-certificates.crt
if [[ -f "$ca" ]]; then
  install -m 0644 "$ca" "$rootfs/etc/ssl/certs/ca-certificates.crt"
else
  echo "image.sh: warning: $ca missing; the image has no CA bundle (TLS needs ca_file)" >&2
fi

# The binary must start inside its own rootfs.
if ! out="$(chroot --userspec=65532:65532 "$rootfs" /usr/local/bin/ferry-mirror --help 2>&1)"; then
  echo "image.sh: ferry-mirror does not start inside the image rootfs:" >&2
  echo "$out" >&2
  exit 1
fi
version="$(sed -n 's/^version = "\(.*\)"$/\1/p' "$REPO/Cargo.toml" | head -n 1)"

tar="$OUT/ferry-mirror.tar"
id="$(python3 "$HERE/mkimage.py" --rootfs "$rootfs" --name "$name" --out "$tar" \
  --entrypoint '["/usr/local/bin/ferry-mirror"]' --cmd '["--help"]' --user 65532:65532 --workdir /work \
  --label "org.opencontainers.image.title=ferry-mirror" \
  --label "org.opencontainers.image.version=$version")"

if ((import)); then
  env_file="$K8S_RUN/env"
  [[ -f "$env_file" ]] || { echo "image.sh: the k8s peer is not running (no $env_file); use --no-import" >&2; exit 1; }
  # shellcheck disable=SC1090
  . "$env_file"
  "$FERRY_K8S_CTR" --address "$FERRY_K8S_CONTAINERD_ADDRESS" --namespace k8s.io \
    images import --snapshotter "$FERRY_K8S_SNAPSHOTTER" "$tar" >/dev/null
fi
echo "$name $id $(du -h "$tar" | cut -f1) (ferry-mirror $version from ${bin#"$REPO"/})"
