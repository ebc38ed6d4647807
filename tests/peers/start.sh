#!/usr/bin/env bash
# Start the test peers on 127.0.0.1 (installed by tests/peers/install.sh).
#   tests/peers/start.sh             start all: a b c s moto ministack
#   tests/peers/start.sh a moto      start only these (peers not named keep running)
# Peers (see tests/peers/README.md):
#   a     Kafka 4.3.1 KRaft, one combined broker+controller node:
#         PLAINTEXT 19092, SASL_PLAINTEXT 19094 (PLAIN, SCRAM-SHA-256/512), controller 19093
#   b     same single-node shape, PLAINTEXT 29092, controller 29093
#   c     three combined nodes (controller quorum of 3): 39092, 39192, 39292
#         (controllers 39093, 39193, 39293)
#   s     one secured KRaft node with an authorizer (StandardAuthorizer; super users
#         ANONYMOUS, ferry-admin, CN=ferry-client): SASL_SSL 49092 (SCRAM-SHA-512,
#         user ferry-admin), SSL 49094 (mutual TLS required), PLAINTEXT 49095 (internal),
#         SSL 49096 (expired server certificate), SSL 49097 (certificate for another
#         host name), controller 49093; TLS material from tests/peers/tls.sh in .peers/run/tls
#   moto  moto server (AWS mock) on 5055
#   ministack  ministack (MSK v1 API emulator) on 4566; GetBootstrapBrokers answers
#         with cluster B's address (127.0.0.1:29092), so an "MSK cluster" is really B
# Each peer runs in its own process group; pid files and logs are in
# .peers/run/, Kafka data in .peers/run/data/ (wiped and formatted with a fresh
# cluster id on every start). Waits until every peer answers a real request,
# then writes .peers/env (source it). Stop with tests/peers/stop.sh.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$REPO/tests/peers"
PEERS="$REPO/.peers"
RUN="$PEERS/run"
DATA="$RUN/data"
CONF="$RUN/conf"
LIBS="$PEERS/kafka/libs"
VENV_PY="$PEERS/venv/bin/python"
MINISTACK="$PEERS/ministack-venv/bin/ministack"
TIMEOUT="${FERRY_PEERS_TIMEOUT:-60}"
HOST=127.0.0.1

# The environment may set TF_CLI_CONFIG_FILE globally; nothing here uses it.
unset TF_CLI_CONFIG_FILE || true

t_start=$SECONDS

die() {
  echo "start.sh: $*" >&2
  exit 1
}

# ------------------------------------------------------------------ arguments
want_a=0 want_b=0 want_c=0 want_s=0 want_moto=0 want_ministack=0
(($# == 0)) && set -- a b c s moto ministack
for p in "$@"; do
  case "$p" in
    a) want_a=1 ;;
    b) want_b=1 ;;
    c) want_c=1 ;;
    s) want_s=1 ;;
    moto) want_moto=1 ;;
    ministack) want_ministack=1 ;;
    *) die "unknown peer '$p' (choose from: a b c s moto ministack)" ;;
  esac
done

# ------------------------------------------------------------------ installed?
[[ -f "$LIBS/kafka_2.13-4.3.1.jar" && -x "$VENV_PY" && -x "$MINISTACK" && -x "$PEERS/bin/terraform" && -x "$PEERS/bin/tofu" ]] ||
  die "peers not installed: run tests/peers/install.sh first"
if [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then
  JAVA="$JAVA_HOME/bin/java"
else
  JAVA="$(command -v java)" || die "java not found"
fi
JAVA="$(readlink -f "$JAVA")"

# ------------------------------------------------------------------ nodes
# node name -> "cluster node.id broker_port controller_port"
declare -A NODE=()
nodes=()
((want_a)) && NODE[a]="a 1 19092 19093" && nodes+=(a)
((want_b)) && NODE[b]="b 1 29092 29093" && nodes+=(b)
if ((want_c)); then
  NODE[c1]="c 1 39092 39093"
  NODE[c2]="c 2 39192 39193"
  NODE[c3]="c 3 39292 39293"
  nodes+=(c1 c2 c3)
fi
# s: the node's "broker port" is its internal PLAINTEXT listener; its client listeners are below.
((want_s)) && NODE[s]="s 1 49095 49093" && nodes+=(s)
peers=("${nodes[@]}")
((want_moto)) && peers+=(moto)
((want_ministack)) && peers+=(ministack)
MOTO_PORT=5055
MINISTACK_PORT=4566
# What ministack's GetBootstrapBrokers answers: cluster B's PLAINTEXT listener.
MINISTACK_BOOTSTRAP="$HOST:29092"

ports_of() {
  case "$1" in
    moto) echo "$MOTO_PORT" ;;
    ministack) echo "$MINISTACK_PORT" ;;
    a) echo "19092 19093 19094" ;;
    s) echo "49092 49093 49094 49095 49096 49097" ;;
    *)
      local f
      read -r -a f <<<"${NODE[$1]}"
      echo "${f[2]} ${f[3]}"
      ;;
  esac
}

# ------------------------------------------------------------------ previous run
mkdir -p "$RUN"
old=()
for p in "${peers[@]}"; do [[ -e "$RUN/$p.pid" ]] && old+=("$p"); done
if ((${#old[@]})); then
  "$HERE/stop.sh" "${old[@]}" >/dev/null
fi
for p in "${peers[@]}"; do
  for port in $(ports_of "$p"); do
    if [[ -n "$(ss -Htln "sport = :$port")" ]]; then
      die "port $port (peer $p) is in use by a process that is not ours:
$(ss -Htlnp "sport = :$port")"
    fi
  done
done

# ------------------------------------------------------------------ configs
new_cluster_id() {
  # Kafka Uuid: 16 random bytes, url-safe base64 without padding; one that
  # starts with '-' would read as a CLI option.
  python3 -c '
import base64, os
while True:
    s = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
    if not s.startswith("-"):
        print(s); break'
}

declare -A CLUSTER_ID=()
((want_a)) && CLUSTER_ID[a]="$(new_cluster_id)"
((want_b)) && CLUSTER_ID[b]="$(new_cluster_id)"
((want_c)) && CLUSTER_ID[c]="$(new_cluster_id)"
((want_s)) && CLUSTER_ID[s]="$(new_cluster_id)"

voters_of() {
  case "$1" in
    a) echo "1@$HOST:19093" ;;
    b) echo "1@$HOST:29093" ;;
    c) echo "1@$HOST:39093,2@$HOST:39193,3@$HOST:39293" ;;
    s) echo "1@$HOST:49093" ;;
  esac
}

write_config() {
  local node="$1" cluster id bport cport
  read -r cluster id bport cport <<<"${NODE[$node]}"
  local f="$CONF/$node.properties"
  {
    echo "# written by tests/peers/start.sh"
    echo "process.roles=broker,controller"
    echo "node.id=$id"
    echo "controller.quorum.voters=$(voters_of "$cluster")"
    echo "controller.listener.names=CONTROLLER"
    echo "inter.broker.listener.name=PLAINTEXT"
    echo "log.dirs=$DATA/$node"
    echo "auto.create.topics.enable=false"
    echo "num.partitions=1"
    echo "group.initial.rebalance.delay.ms=0"
    # small footprint for tests
    echo "num.network.threads=2"
    echo "num.io.threads=4"
    echo "num.recovery.threads.per.data.dir=1"
    echo "log.cleaner.dedupe.buffer.size=16777216"
    echo "offsets.topic.num.partitions=5"
    echo "transaction.state.log.num.partitions=5"
    if [[ "$cluster" != c ]]; then
      echo "offsets.topic.replication.factor=1"
      echo "transaction.state.log.replication.factor=1"
      echo "transaction.state.log.min.isr=1"
      echo "share.coordinator.state.topic.replication.factor=1"
      echo "share.coordinator.state.topic.min.isr=1"
    fi
    if [[ "$node" == a ]]; then
      # SASL_PLAINTEXT on 19094: PLAIN (user ferry, from the JAAS config
      # below) and SCRAM-SHA-256/512 (user ferry-scram, created at format
      # time with --add-scram). No authorizer (no ACLs) for now: every
      # authenticated or PLAINTEXT client may do everything.
      echo "listeners=PLAINTEXT://$HOST:$bport,SASL_PLAINTEXT://$HOST:19094,CONTROLLER://$HOST:$cport"
      echo "advertised.listeners=PLAINTEXT://$HOST:$bport,SASL_PLAINTEXT://$HOST:19094"
      echo "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT"
      echo "listener.name.sasl_plaintext.sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512"
      echo 'listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_ferry="ferry-secret";'
      echo 'listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;'
      echo 'listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;'
    elif [[ "$node" == s ]]; then
      # Secured: TLS everywhere clients go, SCRAM-SHA-512 on SASL_SSL, and an authorizer.
      # PLAINTEXT (internal) carries broker traffic; its ANONYMOUS principal is a super user.
      local tls="$RUN/tls"
      echo "listeners=SASL_SSL://$HOST:49092,SSL://$HOST:49094,PLAINTEXT://$HOST:$bport,EXPIRED://$HOST:49096,MISMATCH://$HOST:49097,CONTROLLER://$HOST:$cport"
      echo "advertised.listeners=SASL_SSL://$HOST:49092,SSL://$HOST:49094,PLAINTEXT://$HOST:$bport,EXPIRED://$HOST:49096,MISMATCH://$HOST:49097"
      echo "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,SSL:SSL,EXPIRED:SSL,MISMATCH:SSL"
      echo "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer"
      echo "super.users=User:ANONYMOUS;User:ferry-admin;User:CN=ferry-client"
      echo "ssl.keystore.type=PEM"
      echo "ssl.keystore.location=$tls/server.pem"
      echo "ssl.truststore.type=PEM"
      echo "ssl.truststore.location=$tls/ca.pem"
      echo "listener.name.ssl.ssl.client.auth=required"
      echo "listener.name.expired.ssl.keystore.type=PEM"
      echo "listener.name.expired.ssl.keystore.location=$tls/server-expired.pem"
      echo "listener.name.mismatch.ssl.keystore.type=PEM"
      echo "listener.name.mismatch.ssl.keystore.location=$tls/server-mismatch.pem"
      echo "listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-512"
      echo 'listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;'
    else
      echo "listeners=PLAINTEXT://$HOST:$bport,CONTROLLER://$HOST:$cport"
      echo "advertised.listeners=PLAINTEXT://$HOST:$bport"
      echo "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
    fi
  } >"$f"
}

JVM_OPTS=(-Xms256m -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20
  -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent
  -Djava.awt.headless=true -Dlog4j2.configurationFile="$HERE/log4j2.properties")
if [[ -n "${FERRY_PEERS_JAVA_OPTS:-}" ]]; then
  # shellcheck disable=SC2206 # extra options are split on purpose
  JVM_OPTS+=(${FERRY_PEERS_JAVA_OPTS})
fi
CP="$LIBS/*"

mkdir -p "$CONF" "$DATA"
# FERRY_PEERS_KEEP_DATA=1 restarts nodes on their existing data (a broker restart in a test).
keep_data="${FERRY_PEERS_KEEP_DATA:-0}"
for node in "${nodes[@]}"; do
  [[ "$keep_data" == 1 && -d "$DATA/$node" ]] || rm -rf "${DATA:?}/$node" "$RUN/format-$node.log"
  rm -f "$RUN/$node.log"
  write_config "$node"
done
((want_moto)) && rm -f "$RUN/moto.log"
((want_ministack)) && rm -f "$RUN/ministack.log"

# A fresh CA and certificates for s on every start (the broker reads them at start-up).
if ((want_s)); then
  "$HERE/tls.sh" "$RUN/tls" || die "generating TLS material for s failed"
fi

# ------------------------------------------------------------------ format
format_node() {
  local node="$1" cluster
  cluster="${NODE[$node]%% *}"
  local extra=()
  if [[ "$node" == a ]]; then
    extra=(--add-scram 'SCRAM-SHA-256=[name=ferry-scram,password=ferry-scram-secret]'
      --add-scram 'SCRAM-SHA-512=[name=ferry-scram,password=ferry-scram-secret]')
  elif [[ "$node" == s ]]; then
    extra=(--add-scram 'SCRAM-SHA-512=[name=ferry-admin,password=ferry-admin-secret]')
  fi
  "$JAVA" -Xmx256m -XX:TieredStopAtLevel=1 -Xshare:auto \
    -Dlog4j2.configurationFile="$HERE/log4j2.properties" -cp "$CP" \
    kafka.tools.StorageTool format -t "${CLUSTER_ID[$cluster]}" \
    -c "$CONF/$node.properties" "${extra[@]}"
}
fmt_pids=()
for node in "${nodes[@]}"; do
  if [[ "$keep_data" == 1 && -d "$DATA/$node" ]]; then
    true & # already formatted: keep its data
    fmt_pids+=($!)
    continue
  fi
  format_node "$node" >"$RUN/format-$node.log" 2>&1 &
  fmt_pids+=($!)
done
i=0
for node in "${nodes[@]}"; do
  if ! wait "${fmt_pids[$i]}"; then
    echo "start.sh: formatting $node failed ($RUN/format-$node.log):" >&2
    tail -n 30 "$RUN/format-$node.log" >&2
    exit 1
  fi
  i=$((i + 1))
done

# ------------------------------------------------------------------ launch
# setsid: the peer leads a new session and process group; the shell records
# its own pid (= the group id stop.sh signals) and then execs the peer.
launch() {
  local name="$1"
  shift
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$RUN/$name.pid" "$@" \
    </dev/null >"$RUN/$name.log" 2>&1 &
}
for node in "${nodes[@]}"; do
  launch "$node" "$JAVA" "${JVM_OPTS[@]}" -cp "$CP" kafka.Kafka "$CONF/$node.properties"
done
if ((want_moto)); then
  launch moto "$VENV_PY" "$PEERS/venv/bin/moto_server" -H "$HOST" -p "$MOTO_PORT"
fi
if ((want_ministack)); then
  # In-memory state (no PERSIST_STATE), loopback only; runs in .peers/run.
  launch ministack env BIND_HOST="$HOST" GATEWAY_PORT="$MINISTACK_PORT" \
    MINISTACK_MSK_BOOTSTRAP="$MINISTACK_BOOTSTRAP" "$MINISTACK"
fi

for p in "${peers[@]}"; do
  for _ in $(seq 50); do [[ -s "$RUN/$p.pid" ]] && break; sleep 0.1; done
  [[ -s "$RUN/$p.pid" ]] || die "peer $p did not start (no pid file; see $RUN/$p.log)"
done

# ------------------------------------------------------------------ wait ready
checks=""
((want_a)) && checks+="a $RUN/a.pid kafka $HOST:19092 1
a-sasl $RUN/a.pid kafka $HOST:19094 1 PLAIN ferry ferry-secret
a-scram $RUN/a.pid kafka $HOST:19094 1 SCRAM-SHA-512 ferry-scram ferry-scram-secret
"
((want_b)) && checks+="b $RUN/b.pid kafka $HOST:29092 1
"
((want_c)) && checks+="c1 $RUN/c1.pid kafka $HOST:39092 3
c2 $RUN/c2.pid kafka $HOST:39192 3
c3 $RUN/c3.pid kafka $HOST:39292 3
"
((want_s)) && checks+="s $RUN/s.pid kafka $HOST:49095 1
"
((want_moto)) && checks+="moto $RUN/moto.pid http http://$HOST:$MOTO_PORT/moto-api/
"
((want_ministack)) && checks+="ministack $RUN/ministack.pid http http://$HOST:$MINISTACK_PORT/v1/clusters
"

if ! failed="$(printf '%s' "$checks" | "$VENV_PY" "$HERE/ready.py" --timeout "$TIMEOUT")"; then
  echo "start.sh: peers not ready:" >&2
  while read -r name why; do
    [[ -n "$name" ]] || continue
    log="$RUN/${name%%-*}.log"
    echo "--- $name: $why; last lines of $log:" >&2
    tail -n 25 "$log" >&2 || true
  done <<<"$failed"
  "$HERE/stop.sh" "${peers[@]}" >/dev/null || true
  exit 1
fi

# ------------------------------------------------------------------ env file
# Every peer running now, including those a previous start (of another subset) left running.
running=()
for p in a b c1 c2 c3 s moto ministack; do [[ -s "$RUN/$p.pid" ]] && running+=("$p"); done
env_tmp="$PEERS/env.tmp"
cat >"$env_tmp" <<EOF
# Written by tests/peers/start.sh (peers running: ${running[*]}). Source it.
export FERRY_KAFKA_A=$HOST:19092
export FERRY_KAFKA_A_SASL=$HOST:19094
export FERRY_KAFKA_A_PLAIN_USER=ferry
export FERRY_KAFKA_A_PLAIN_PASSWORD=ferry-secret
export FERRY_KAFKA_A_SCRAM_USER=ferry-scram
export FERRY_KAFKA_A_SCRAM_PASSWORD=ferry-scram-secret
export FERRY_KAFKA_B=$HOST:29092
export FERRY_KAFKA_C=$HOST:39092,$HOST:39192,$HOST:39292
export FERRY_KAFKA_S_SASL_SSL=$HOST:49092
export FERRY_KAFKA_S_MTLS=$HOST:49094
export FERRY_KAFKA_S_PLAIN=$HOST:49095
export FERRY_KAFKA_S_EXPIRED=$HOST:49096
export FERRY_KAFKA_S_MISMATCH=$HOST:49097
export FERRY_KAFKA_S_USER=ferry-admin
export FERRY_KAFKA_S_PASSWORD=ferry-admin-secret
export FERRY_KAFKA_S_TLS_DIR=$RUN/tls
export FERRY_MOTO_ENDPOINT=http://$HOST:$MOTO_PORT
export FERRY_MINISTACK_ENDPOINT=http://$HOST:$MINISTACK_PORT
export FERRY_MINISTACK_BOOTSTRAP=$MINISTACK_BOOTSTRAP
export FERRY_TERRAFORM=$PEERS/bin/terraform
export FERRY_TOFU=$PEERS/bin/tofu
export FERRY_PEERS_PYTHON=$VENV_PY
export FERRY_KAFKA_LIBS=$LIBS
export FERRY_JAVA=$JAVA
export FERRY_PEERS_STARTED="${running[*]}"
case ":\$PATH:" in
  *":$PEERS/bin:"*) ;;
  *) export PATH="$PEERS/bin:\$PATH" ;;
esac
EOF
mv -f "$env_tmp" "$PEERS/env"

echo "start.sh: ${peers[*]} ready in $((SECONDS - t_start))s (source $PEERS/env; stop: tests/peers/stop.sh)"
