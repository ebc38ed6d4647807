#!/usr/bin/env bash
# Stop test peers started by tests/peers/start.sh.
#   tests/peers/stop.sh            stop every peer with a pid file
#   tests/peers/stop.sh a c1 moto  stop only these (pid file names; "c" = c1 c2 c3)
# Kills exactly the process groups recorded in .peers/run/*.pid: TERM, wait up
# to 15 s, then KILL; removes the pid files. Never kills by process name.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PEERS="$REPO/.peers"
RUN="$PEERS/run"
GRACE="${FERRY_PEERS_STOP_GRACE:-15}"

[[ -d "$RUN" ]] || {
  echo "stop.sh: nothing to stop"
  exit 0
}

pidfiles=()
if (($# == 0)); then
  for f in "$RUN"/*.pid; do [[ -e "$f" ]] && pidfiles+=("$f"); done
else
  for name in "$@"; do
    case "$name" in
      c) for n in c1 c2 c3; do [[ -e "$RUN/$n.pid" ]] && pidfiles+=("$RUN/$n.pid"); done ;;
      *) [[ -e "$RUN/$name.pid" ]] && pidfiles+=("$RUN/$name.pid") ;;
    esac
  done
fi
if ((${#pidfiles[@]} == 0)); then
  echo "stop.sh: nothing to stop"
  exit 0
fi

# Members of process group $1 that are ours (command line mentions $PEERS),
# so a recycled pid/pgid of somebody else's process is never signalled.
our_members() {
  ps -ww -eo pid=,pgid=,args= | awk -v g="$1" -v p="$PEERS" \
    '$2 == g && index($0, p) > 0 { print $1 }'
}

groups=()
names=()
for f in "${pidfiles[@]}"; do
  pgid="$(tr -dc '0-9' <"$f")"
  if [[ -n "$pgid" && -n "$(our_members "$pgid")" ]]; then
    kill -TERM -- "-$pgid" 2>/dev/null || true
    groups+=("$pgid")
    names+=("$(basename "$f" .pid)")
  fi
done

deadline=$((SECONDS + GRACE))
killed=()
while true; do
  left=()
  for g in "${groups[@]}"; do
    [[ -n "$(our_members "$g")" ]] && left+=("$g")
  done
  ((${#left[@]} == 0)) && break
  if ((SECONDS >= deadline)); then
    for g in "${left[@]}"; do
      kill -KILL -- "-$g" 2>/dev/null || true
      killed+=("$g")
    done
    sleep 0.5
    break
  fi
  sleep 0.2
done

rm -f "${pidfiles[@]}"
msg="stop.sh: stopped ${#groups[@]} peer(s)"
((${#groups[@]})) && msg+=" (${names[*]})"
((${#killed[@]})) && msg+=", ${#killed[@]} needed KILL after ${GRACE}s"
echo "$msg"
