#!/usr/bin/env bash
# Stop the k8s peer: exactly what start.sh started, and the containers its
# kubelet ran. Never kills by name.
#
#   1. kubelet (so it restarts nothing), by its pid file;
#   2. every container task in containerd's k8s.io namespace: killed and
#      deleted through ctr while containerd still runs (its shims then exit);
#   3. containerd, then the scheduler, controller-manager, apiserver, etcd;
#   4. leftovers, each identified as ours: runc shims whose /proc/PID/exe is
#      our cache's shim and whose command line names our containerd socket,
#      and container processes whose root filesystem is ours (the "/" line of
#      /proc/PID/mountinfo names a snapshot under .peers/k8s: the overlay's
#      lower/upper dirs, or the bind source of the native snapshotter);
#      TERM, then KILL;
#   5. every mount under .peers/k8s (container rootfs, /dev/shm, pod volumes),
#      deepest first.
# Process groups get TERM, up to FERRY_K8S_STOP_GRACE (default 10) seconds, then
# KILL. Pid files and .peers/k8s/env are removed; logs and data stay until the
# next start. Exit 1 if anything of ours is still running or mounted.
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
GRACE="${FERRY_K8S_STOP_GRACE:-10}"
PIDS="$K8S_RUN/pids"
CTRD_SOCK="$K8S_RUN/containerd/containerd.sock"
CTR=("$K8S_DEB/usr/bin/ctr" --address "$CTRD_SOCK" --namespace k8s.io --timeout 10s)
stopped=()

# stop_group NAME: TERM the recorded process group if its leader is our binary.
stop_group() {
  local name="$1" pidfile="$PIDS/$1.pid" pid i
  [[ -f "$pidfile" ]] || return 0
  pid="$(cat "$pidfile")"
  if k8s_pid_alive "$pid"; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < GRACE * 10; i++)); do
      k8s_pid_alive "$pid" || break
      sleep 0.1
    done
    if k8s_pid_alive "$pid"; then
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null
      sleep 0.2
    fi
    stopped+=("$name")
  fi
  rm -f "$pidfile"
}

# Processes of ours that no pid file names (see 4. above).
leftovers() {
  local p exe
  for p in /proc/[0-9]*; do
    p="${p#/proc/}"
    exe="$(readlink "/proc/$p/exe" 2>/dev/null)" || continue
    if [[ "$exe" == "$K8S_DEB/usr/bin/containerd-shim"* ]] &&
      tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -qF -- "$CTRD_SOCK"; then
      echo "$p"
      continue
    fi
    # (readlink /proc/PID/root says "/" from outside the container's mount namespace.)
    awk -v run="$K8S_RUN/" '$5 == "/" && index($0, run) { found = 1 } END { exit !found }' \
      "/proc/$p/mountinfo" 2>/dev/null && echo "$p"
  done
}

stop_group kubelet

# Containers: kill and delete through containerd while it runs.
if [[ -S "$CTRD_SOCK" ]] && "${CTR[@]}" version >/dev/null 2>&1; then
  mapfile -t tasks < <("${CTR[@]}" tasks ls -q 2>/dev/null)
  for t in "${tasks[@]}"; do "${CTR[@]}" tasks kill -s SIGKILL "$t" >/dev/null 2>&1; done
  for t in "${tasks[@]}"; do
    for _ in $(seq 1 50); do
      "${CTR[@]}" tasks delete "$t" >/dev/null 2>&1 && break
      sleep 0.1
    done
  done
  mapfile -t ctrs < <("${CTR[@]}" containers ls -q 2>/dev/null)
  for c in "${ctrs[@]}"; do "${CTR[@]}" containers delete "$c" >/dev/null 2>&1; done
  ((${#tasks[@]})) && stopped+=("${#tasks[@]} container tasks")
fi

for name in containerd kube-scheduler kube-controller-manager kube-apiserver etcd; do
  stop_group "$name"
done

mapfile -t left < <(leftovers)
if ((${#left[@]})); then
  kill -TERM "${left[@]}" 2>/dev/null
  sleep 1
  mapfile -t left < <(leftovers)
  ((${#left[@]})) && kill -KILL "${left[@]}" 2>/dev/null && sleep 0.5
  stopped+=("leftover processes")
fi

# Mounts under .peers/k8s, deepest first (field 5 of mountinfo is the mount point).
umounted=0
for _ in 1 2 3; do
  mapfile -t mounts < <(awk -v run="$K8S_RUN/" 'index($5, run) == 1 { print $5 }' /proc/self/mountinfo |
    awk '{ print length($0) " " $0 }' | sort -rn | cut -d' ' -f2-)
  ((${#mounts[@]})) || break
  for m in "${mounts[@]}"; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
    umounted=$((umounted + 1))
  done
done
((umounted)) && stopped+=("$umounted mounts")

rm -f "$K8S_RUN/env"
rc=0
mapfile -t left < <(leftovers)
for f in "$PIDS"/*.pid; do [[ -f "$f" ]] && k8s_pid_alive "$(cat "$f")" && left+=("$(cat "$f")"); done
if ((${#left[@]})); then
  echo "k8s stop: still running: ${left[*]}" >&2
  rc=1
fi
if grep -q " $K8S_RUN/" /proc/self/mountinfo; then
  echo "k8s stop: still mounted under $K8S_RUN" >&2
  rc=1
fi
if ((${#stopped[@]})); then
  echo "k8s stop: stopped ${stopped[*]}"
else
  echo "k8s stop: nothing was running"
fi
exit $rc
