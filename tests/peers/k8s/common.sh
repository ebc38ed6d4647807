# Shared settings of the k8s peer scripts (sourced, not run).
#
# Two places:
#   $K8S_CACHE  per machine, outside the repo: the built Kubernetes binaries,
#               Debian's etcd/containerd/runc unpacked, the pause image. Built
#               once; every clone on this machine reuses it.
#   $K8S_RUN    per clone: $REPO/.peers/k8s (git-ignored): etcd data, keys and
#               tokens, containerd and kubelet state, logs, pid files, kubeconfig.

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
K8S_VERSION="${FERRY_K8S_VERSION:-v1.37.2}"
K8S_CACHE="${FERRY_K8S_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ferry-peers/k8s-$K8S_VERSION}"
K8S_BIN="$K8S_CACHE/bin"                 # kube-apiserver, ..., kubectl (build-kube.sh)
K8S_DEB="$K8S_CACHE/debian/root"         # etcd-server, containerd, runc unpacked
K8S_PAUSE_TAR="$K8S_CACHE/pause/pause.tar"
K8S_PAUSE_IMAGE="ferry.local/pause:1"
K8S_RUN="$REPO/.peers/k8s"

# Debian packages unpacked with `apt-get download` + `dpkg-deb -x`; their
# binaries link only against libc (runc also libseccomp, part of a Debian base).
K8S_DEBS=(etcd-server containerd runc)

# Loopback ports (chosen away from the Kafka peers' 19xxx-49xxx and defaults of
# a system etcd/kubelet, so a stray system service does not collide).
K8S_ETCD_PORT="${FERRY_K8S_ETCD_PORT:-12379}"
K8S_ETCD_PEER_PORT="${FERRY_K8S_ETCD_PEER_PORT:-12380}"
K8S_API_PORT="${FERRY_K8S_API_PORT:-16443}"
K8S_KUBELET_PORT="${FERRY_K8S_KUBELET_PORT:-20250}"
K8S_KUBELET_HEALTHZ_PORT="${FERRY_K8S_KUBELET_HEALTHZ_PORT:-20248}"
K8S_NODE="ferry-k8s-node"

# Components in start order; stop goes the other way.
K8S_COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet)

k8s_now() { date +%s; }

# Pids of the processes whose /proc/PID/exe is one of our binaries (under the
# cache) and whose pid is recorded in $K8S_RUN/pids: what stop.sh may kill.
k8s_pid_alive() {
  local pid="$1" exe
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
  exe="$(readlink "/proc/$pid/exe" 2>/dev/null)" || return 1
  [[ "$exe" == "$K8S_CACHE"/* ]]
}
