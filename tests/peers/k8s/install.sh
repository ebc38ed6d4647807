#!/usr/bin/env bash
# Install the k8s peer into the per-machine cache ($K8S_CACHE, see common.sh;
# default ~/.cache/ferry-peers/k8s-v1.37.2). Idempotent: each part is skipped
# when its stamp matches, so a second clone on the same machine reuses it all.
#
#   debian/root/   Debian's etcd-server, containerd (with ctr and the runc v2
#                  shim) and runc: `apt-get download` + `dpkg-deb -x`. Nothing
#                  is installed system-wide and no package script runs; the
#                  binaries need only libc (and libseccomp for runc, part of
#                  every Debian base). `apt-get update` only when a download fails.
#   bin/           kube-apiserver, kube-controller-manager, kube-scheduler,
#                  kubelet, kubectl built from the Go module proxy (build-kube.sh;
#                  ~20+ min cold, under `nice -n 19`)
#   pause/         the pod sandbox image: our pause.c, linked statically, as a
#                  one-layer docker-archive (mkimage.py)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
HERE="$REPO/tests/peers/k8s"

mkdir -p "$K8S_CACHE"
summary=()

# ------------------------------------------------------------ Debian packages
deb_stamp="$K8S_CACHE/debian/.installed"
want_deb="$(for p in "${K8S_DEBS[@]}"; do apt-cache policy "$p" 2>/dev/null |
  sed -n "s/^  Candidate: /$p=/p"; done | tr '\n' ' ')"
if [[ -f "$deb_stamp" && "$(cat "$deb_stamp")" == "$want_deb" && -x "$K8S_DEB/usr/bin/etcd" ]]; then
  summary+=("debian: present")
else
  t0=$(k8s_now)
  dl="$K8S_CACHE/debian/download"
  rm -rf "$K8S_CACHE/debian"
  mkdir -p "$dl" "$K8S_DEB"
  if ! (cd "$dl" && apt-get download "${K8S_DEBS[@]}" >download.log 2>&1); then
    apt-get update -qq >/dev/null 2>&1 || true
    (cd "$dl" && apt-get download "${K8S_DEBS[@]}" >download.log 2>&1) || {
      cat "$dl/download.log" >&2
      exit 1
    }
    want_deb="$(for p in "${K8S_DEBS[@]}"; do apt-cache policy "$p" 2>/dev/null |
      sed -n "s/^  Candidate: /$p=/p"; done | tr '\n' ' ')"
  fi
  for deb in "$dl"/*.deb; do dpkg-deb -x "$deb" "$K8S_DEB"; done
  for b in usr/bin/etcd usr/bin/containerd usr/bin/containerd-shim-runc-v2 usr/bin/ctr usr/sbin/runc; do
    [[ -x "$K8S_DEB/$b" ]] || { echo "k8s install: $b missing after unpacking" >&2; exit 1; }
    if ldd "$K8S_DEB/$b" 2>&1 | grep -q "not found"; then
      echo "k8s install: $b needs a library this machine lacks:" >&2
      ldd "$K8S_DEB/$b" | grep "not found" >&2
      exit 1
    fi
  done
  rm -rf "$dl"
  echo "$want_deb" >"$deb_stamp"
  summary+=("debian ${K8S_DEBS[*]}: unpacked in $(($(k8s_now) - t0))s")
fi

# -------------------------------------------------------------- pause image
pause_stamp="$K8S_CACHE/pause/.built"
want_pause="$(sha256sum "$HERE/pause.c" "$HERE/mkimage.py" | cut -c1-16 | tr '\n' ' ')$K8S_PAUSE_IMAGE"
if [[ -f "$pause_stamp" && "$(cat "$pause_stamp")" == "$want_pause" && -f "$K8S_PAUSE_TAR" ]]; then
  summary+=("pause image: present")
else
  rm -rf "$K8S_CACHE/pause"
  rootfs="$K8S_CACHE/pause/rootfs"
  mkdir -p "$rootfs"
  gcc -static -Os -Wall -Wextra -Werror -o "$rootfs/pause" "$HERE/pause.c"
  strip "$rootfs/pause"
  python3 "$HERE/mkimage.py" --rootfs "$rootfs" --name "$K8S_PAUSE_IMAGE" \
    --entrypoint '["/pause"]' --user 65535:65535 --out "$K8S_PAUSE_TAR" >/dev/null
  echo "$want_pause" >"$pause_stamp"
  summary+=("pause image: built")
fi

# ------------------------------------------------------- Kubernetes binaries
t0=$(k8s_now)
out="$("$HERE/build-kube.sh")"
summary+=("${out#build-kube.sh: }")

echo "k8s install: ${summary[*]/%/;}"
