#!/usr/bin/env bash
# Run build-kube.sh (the Kubernetes binaries, ~20 min cold on 2 busy cores, a
# no-op when the per-machine cache is warm) in the background, so that `make
# test` overlaps it with the Rust build and the Kafka end-to-end tests:
#
#   build-bg.sh start   start it under `nice -n 19` in its own session; output
#                       in .peers/k8s-build/log, exit code in .peers/k8s-build/rc
#   build-bg.sh wait    wait for it; when it failed print the log's tail and exit
#                       1. Without a started build, run build-kube.sh here.
#   build-bg.sh stop    end it (its process group) if it still runs; used by
#                       `make test`'s traps when something else failed first
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
HERE="$REPO/tests/peers/k8s"
DIR="$REPO/.peers/k8s-build"
LOG="$DIR/log" RC="$DIR/rc" PIDF="$DIR/pid" T0="$DIR/started"

# The pid in $PIDF, if it is still our background build (its command line names
# this script's worker mode), else nothing.
running_pid() {
  local pid
  [[ -f "$PIDF" ]] || return 1
  pid="$(cat "$PIDF")"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "build-bg.sh __run" || return 1
  echo "$pid"
}

case "${1:-}" in
start)
  if pid="$(running_pid)"; then
    echo "build-bg.sh: already running (pid $pid), log $LOG"
    exit 0
  fi
  mkdir -p "$DIR"
  rm -f "$RC" "$PIDF"
  : >"$LOG"
  date +%s >"$T0"
  # setsid: its own session and process group (pgid = pid), so `stop` ends it
  # and all of go's children, and make's Ctrl-C does not reach it half-way.
  # The worker writes its own pid (setsid may fork).
  setsid -f "$HERE/build-bg.sh" __run </dev/null >/dev/null 2>&1
  for _ in $(seq 1 100); do [[ -s "$PIDF" ]] && break; sleep 0.1; done
  [[ -s "$PIDF" ]] || { echo "build-bg.sh: the background build did not start; log $LOG" >&2; exit 1; }
  echo "build-bg.sh: building the k8s peer's binaries in the background (pid $(cat "$PIDF")), log $LOG"
  ;;
__run)
  echo "$$" >"$PIDF.tmp" && mv "$PIDF.tmp" "$PIDF"
  rc=0
  nice -n 19 "$HERE/build-kube.sh" >>"$LOG" 2>&1 || rc=$?
  echo "$rc" >"$RC.tmp" && mv "$RC.tmp" "$RC"
  ;;
wait)
  if [[ ! -f "$PIDF" ]]; then
    # Nothing started in the background (e.g. `make e2e-k8s` by hand).
    exec "$HERE/build-kube.sh"
  fi
  t=$(k8s_now)
  while [[ ! -f "$RC" ]]; do
    if ! running_pid >/dev/null; then
      sleep 1 # it may have just written its exit code
      [[ -f "$RC" ]] && break
      echo "build-bg.sh: the background build (pid $(cat "$PIDF")) ended without an exit code; log tail:" >&2
      tail -n 40 "$LOG" >&2
      rm -f "$PIDF"
      exit 1
    fi
    sleep 2
  done
  rc="$(cat "$RC")"
  waited=$(($(k8s_now) - t))
  total=$(($(k8s_now) - $(cat "$T0" 2>/dev/null || echo "$t")))
  if [[ "$rc" != 0 ]]; then
    echo "build-bg.sh: the background build of the k8s peer's binaries failed (exit $rc); tail of $LOG:" >&2
    tail -n 40 "$LOG" >&2
    rm -f "$PIDF" # reported once; a later `wait` builds in the foreground
    exit 1
  fi
  echo "build-bg.sh: $(tail -n 1 "$LOG" | sed 's/^build-kube.sh: //') (waited ${waited}s for it, ${total}s since start)"
  rm -f "$PIDF"
  ;;
stop)
  if pid="$(running_pid)"; then
    kill -TERM -- "-$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do running_pid >/dev/null || break; sleep 0.1; done
    running_pid >/dev/null && kill -KILL -- "-$pid" 2>/dev/null
    echo "build-bg.sh: stopped the background build (pid $pid); log $LOG"
  fi
  rm -f "$PIDF"
  ;;
*)
  echo "usage: build-bg.sh start | wait | stop" >&2
  exit 2
  ;;
esac
