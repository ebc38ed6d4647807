#!/usr/bin/env bash
# Build the Kubernetes binaries the k8s peer runs (kube-apiserver,
# kube-controller-manager, kube-scheduler, kubelet, kubectl) from the Go module
# proxy, once per machine, into a cache outside the repo:
#   $FERRY_K8S_CACHE/bin  (default ${XDG_CACHE_HOME:-$HOME/.cache}/ferry-peers/k8s-v1.37.2)
# A stamp ($FERRY_K8S_CACHE/bin/.built) records version, Go version and the
# binaries; when it matches and every binary reports the version, nothing runs.
#
# Why a wrapper module: k8s.io/kubernetes's go.mod replaces each staging module
# (k8s.io/api, k8s.io/apimachinery, ...) with ./staging/..., which is not in the
# module zip, so `go install k8s.io/kubernetes/cmd/x@v` is refused and building
# inside the module cache fails. Our own module requires k8s.io/kubernetes and
# replaces each staging module with its published v0.<minor>.<patch>; its
# tools.go imports the cmd/ packages so `go mod tidy` resolves what they need.
#
# The build is slow (~20+ min cold on 2 busy cores); it runs under `nice -n 19`.
set -euo pipefail

K8S_VERSION="${FERRY_K8S_VERSION:-v1.37.2}"
STAGING_VERSION="v0.${K8S_VERSION#v1.}"   # v1.37.2 -> v0.37.2
CACHE="${FERRY_K8S_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ferry-peers/k8s-$K8S_VERSION}"
BIN="$CACHE/bin"
STAMP="$BIN/.built"
CMDS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl)

go_version="$(go env GOVERSION)"
want_stamp="kubernetes=$K8S_VERSION staging=$STAGING_VERSION go=$go_version bins=${CMDS[*]}"

built_ok() {
  [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want_stamp" ]] || return 1
  local c
  for c in "${CMDS[@]}"; do [[ -x "$BIN/$c" ]] || return 1; done
  "$BIN/kube-apiserver" --version 2>/dev/null | grep -qx "Kubernetes $K8S_VERSION"
}

mkdir -p "$CACHE"
# One build at a time per machine (two clones may install at once): wait for
# the other, then find its result.
exec 9>"$CACHE/.build.lock"
flock 9

if built_ok; then
  echo "build-kube.sh: $K8S_VERSION present in $BIN"
  exit 0
fi

t0=$(date +%s)
WRAP="$CACHE/wrapper"
rm -rf "$WRAP" "$STAMP"
mkdir -p "$WRAP" "$BIN"

# The staging modules: every `k8s.io/x => ./staging/src/k8s.io/x` of
# kubernetes's own go.mod at this version.
dl_json="$(cd / && GOWORK=off go mod download -json "k8s.io/kubernetes@$K8S_VERSION" 2>&1)" || {
  echo "build-kube.sh: go mod download k8s.io/kubernetes@$K8S_VERSION failed:" >&2
  echo "$dl_json" >&2
  exit 1
}
gomod_file="$(sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p' <<<"$dl_json")"
[[ -f "$gomod_file" ]] || { echo "build-kube.sh: no go.mod for k8s.io/kubernetes@$K8S_VERSION" >&2; exit 1; }
mapfile -t staging < <(sed -n 's#^[[:space:]]*\(k8s\.io/[^ ]*\) => \./staging/src/.*#\1#p' "$gomod_file")
[[ ${#staging[@]} -gt 10 ]] || { echo "build-kube.sh: found only ${#staging[@]} staging modules" >&2; exit 1; }
go_directive="$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$gomod_file")"

{
  echo "module ferry.local/k8s-peer-build"
  echo
  echo "go $go_directive"
  echo
  echo "require k8s.io/kubernetes $K8S_VERSION"
  echo
  echo "replace ("
  for m in "${staging[@]}"; do echo "	$m => $m $STAGING_VERSION"; done
  echo ")"
} >"$WRAP/go.mod"
{
  echo "//go:build tools"
  echo
  echo "// Package tools pins the Kubernetes commands the ferry k8s peer builds."
  echo "package tools"
  echo
  echo "import ("
  for c in "${CMDS[@]}"; do echo "	_ \"k8s.io/kubernetes/cmd/$c\""; done
  echo ")"
} >"$WRAP/tools.go"

cd "$WRAP"
export GOWORK=off GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0
echo "build-kube.sh: resolving modules ($(date -u +%T))"
nice -n 19 go mod tidy -e >"$CACHE/tidy.log" 2>&1 || {
  tail -n 40 "$CACHE/tidy.log" >&2
  exit 1
}
# tidy with -e tolerates errors; a build with missing modules still fails below.

vpkg="k8s.io/component-base/version"
minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
ldflags="-s -w -X $vpkg.gitVersion=$K8S_VERSION -X $vpkg.gitMajor=1 -X $vpkg.gitMinor=$minor"
ldflags+=" -X $vpkg.gitTreeState=clean -X $vpkg.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
pkgs=()
for c in "${CMDS[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
echo "build-kube.sh: building ${CMDS[*]} ($(date -u +%T))"
# One `go build` for all commands: shared packages compile once.
nice -n 19 go build -trimpath -ldflags "$ldflags" -o "$BIN/" "${pkgs[@]}" \
  >"$CACHE/build.log" 2>&1 || {
  tail -n 40 "$CACHE/build.log" >&2
  exit 1
}
echo "$want_stamp" >"$STAMP"
built_ok || { echo "build-kube.sh: built binaries do not report $K8S_VERSION" >&2; exit 1; }
t1=$(date +%s)
echo "build-kube.sh: built ${CMDS[*]} $K8S_VERSION in $((t1 - t0))s into $BIN"
echo "$((t1 - t0))" >"$CACHE/build-seconds"
