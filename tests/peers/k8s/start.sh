#!/usr/bin/env bash
# Start a real one-node Kubernetes on loopback (the k8s peer), from what
# install.sh put in the per-machine cache. All state lives in .peers/k8s/ and
# is wiped on every start (a fresh cluster, as the Kafka peers):
#
#   etcd                     127.0.0.1:$K8S_ETCD_PORT (Debian's etcd-server)
#   kube-apiserver           https://127.0.0.1:$K8S_API_PORT, token auth
#   kube-controller-manager  no serving port, no leader election
#   kube-scheduler           no serving port, no leader election
#   containerd               own root/state/socket under .peers/k8s/containerd
#   kubelet                  node $K8S_NODE, cgroupfs, on that containerd
#
# Returns once a real pod (the pause image, host network) ran on the node, or
# fails after FERRY_K8S_TIMEOUT (default 120) seconds with the failing
# component's log tail. Writes .peers/k8s/kubeconfig (admin) and .peers/k8s/env.
# Each component runs in its own process group; pids in .peers/k8s/pids/.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
HERE="$REPO/tests/peers/k8s"
TIMEOUT="${FERRY_K8S_TIMEOUT:-120}"

for b in kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl; do
  [[ -x "$K8S_BIN/$b" ]] || { echo "k8s start: $K8S_BIN/$b missing: run tests/peers/k8s/install.sh" >&2; exit 1; }
done
[[ -x "$K8S_DEB/usr/bin/etcd" && -f "$K8S_PAUSE_TAR" ]] ||
  { echo "k8s start: run tests/peers/k8s/install.sh first" >&2; exit 1; }

# A previous run is stopped first (its state is about to be wiped).
if compgen -G "$K8S_RUN/pids/*.pid" >/dev/null || grep -q " $K8S_RUN/" /proc/self/mountinfo; then
  "$HERE/stop.sh"
fi
if grep -q " $K8S_RUN/" /proc/self/mountinfo; then
  echo "k8s start: mounts under $K8S_RUN remain after stop.sh; not wiping" >&2
  exit 1
fi
for port in "$K8S_ETCD_PORT" "$K8S_ETCD_PEER_PORT" "$K8S_API_PORT" "$K8S_KUBELET_PORT" "$K8S_KUBELET_HEALTHZ_PORT"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "k8s start: 127.0.0.1:$port is in use by something else" >&2
    exit 1
  fi
done

rm -rf "$K8S_RUN"
PKI="$K8S_RUN/pki" LOGS="$K8S_RUN/logs" PIDS="$K8S_RUN/pids" CONF="$K8S_RUN/conf"
mkdir -p "$PKI" "$LOGS" "$PIDS" "$CONF"
chmod 700 "$PKI"
t_start=$(k8s_now)

# ------------------------------------------------------------ keys and tokens
openssl_q() { openssl "$@" 2>>"$LOGS/openssl.log" >/dev/null; }
openssl_q req -x509 -newkey rsa:2048 -nodes -days 7 -subj "/CN=ferry-k8s-peer-ca" \
  -keyout "$PKI/ca.key" -out "$PKI/ca.crt"
cat >"$PKI/apiserver.ext" <<EOF
subjectAltName = IP:127.0.0.1, IP:10.96.0.1, DNS:localhost, DNS:kubernetes, DNS:kubernetes.default, DNS:kubernetes.default.svc
extendedKeyUsage = serverAuth
EOF
openssl_q req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" \
  -keyout "$PKI/apiserver.key" -out "$PKI/apiserver.csr"
openssl_q x509 -req -in "$PKI/apiserver.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" \
  -CAcreateserial -days 7 -extfile "$PKI/apiserver.ext" -out "$PKI/apiserver.crt"
# Service-account token signing pair.
openssl_q genrsa -out "$PKI/sa.key" 2048
openssl_q rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub"

tok() { openssl rand -hex 16; }
ADMIN_TOKEN="$(tok)" NODE_TOKEN="$(tok)" CM_TOKEN="$(tok)" SCHED_TOKEN="$(tok)"
# token,user,uid,"groups"
cat >"$PKI/tokens.csv" <<EOF
$ADMIN_TOKEN,ferry-admin,ferry-admin,"system:masters"
$NODE_TOKEN,system:node:$K8S_NODE,system:node:$K8S_NODE,"system:nodes"
$CM_TOKEN,system:kube-controller-manager,system:kube-controller-manager
$SCHED_TOKEN,system:kube-scheduler,system:kube-scheduler
EOF
printf '%s' "$ADMIN_TOKEN" >"$PKI/admin.token"
chmod 600 "$PKI"/*

API="https://127.0.0.1:$K8S_API_PORT"
kubeconfig() { # FILE USER TOKEN
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: ferry-k8s
  cluster:
    server: $API
    certificate-authority: $PKI/ca.crt
users:
- name: $2
  user:
    token: $3
contexts:
- name: ferry-k8s
  context:
    cluster: ferry-k8s
    user: $2
current-context: ferry-k8s
EOF
  chmod 600 "$1"
}
kubeconfig "$K8S_RUN/kubeconfig" ferry-admin "$ADMIN_TOKEN"
kubeconfig "$CONF/kubelet.kubeconfig" "system:node:$K8S_NODE" "$NODE_TOKEN"
kubeconfig "$CONF/controller-manager.kubeconfig" system:kube-controller-manager "$CM_TOKEN"
kubeconfig "$CONF/scheduler.kubeconfig" system:kube-scheduler "$SCHED_TOKEN"
KUBECTL=("$K8S_BIN/kubectl" --kubeconfig "$K8S_RUN/kubeconfig" --request-timeout=10s)

# ---------------------------------------------------------------- launching
# launch NAME CMD...: own session and process group, log, pid file.
launch() {
  local name="$1"
  shift
  setsid "$@" >"$LOGS/$name.log" 2>&1 </dev/null &
  echo $! >"$PIDS/$name.pid"
}
fail() { # NAME MESSAGE
  echo "k8s start: $2" >&2
  if [[ -f "$LOGS/$1.log" ]]; then
    echo "--- tail of $LOGS/$1.log" >&2
    tail -n 30 "$LOGS/$1.log" >&2
  fi
  echo "k8s start: stopping what was started" >&2
  "$HERE/stop.sh" >&2 || true
  exit 1
}
# wait_for NAME DESCRIPTION CMD...: until CMD succeeds, the component dies, or the deadline.
deadline=$((t_start + TIMEOUT))
wait_for() {
  local name="$1" what="$2"
  shift 2
  until "$@" >/dev/null 2>&1; do
    k8s_pid_alive "$(cat "$PIDS/$name.pid")" || fail "$name" "$name exited before $what"
    (($(k8s_now) < deadline)) || fail "$name" "$name: no $what after ${TIMEOUT}s"
    sleep 0.3
  done
}
timings=()
mark() { timings+=("$1 $(($(k8s_now) - t_start))s"); }

# --------------------------------------------------------------------- etcd
launch etcd "$K8S_DEB/usr/bin/etcd" --name ferry-k8s --data-dir "$K8S_RUN/etcd" \
  --listen-client-urls "http://127.0.0.1:$K8S_ETCD_PORT" \
  --advertise-client-urls "http://127.0.0.1:$K8S_ETCD_PORT" \
  --listen-peer-urls "http://127.0.0.1:$K8S_ETCD_PEER_PORT" \
  --initial-advertise-peer-urls "http://127.0.0.1:$K8S_ETCD_PEER_PORT" \
  --initial-cluster "ferry-k8s=http://127.0.0.1:$K8S_ETCD_PEER_PORT" \
  --initial-cluster-state new
etcd_healthy() { curl -fsS --max-time 2 "http://127.0.0.1:$K8S_ETCD_PORT/health" | grep -q '"health":"true"'; }
wait_for etcd "health" etcd_healthy
mark etcd

# ----------------------------------------------------------- kube-apiserver
launch kube-apiserver "$K8S_BIN/kube-apiserver" \
  --etcd-servers "http://127.0.0.1:$K8S_ETCD_PORT" \
  --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$K8S_API_PORT" \
  --endpoint-reconciler-type none \
  --service-cluster-ip-range 10.96.0.0/24 \
  --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
  --token-auth-file "$PKI/tokens.csv" \
  --authorization-mode Node,RBAC \
  --service-account-issuer https://kubernetes.default.svc \
  --service-account-key-file "$PKI/sa.pub" \
  --service-account-signing-key-file "$PKI/sa.key" \
  --allow-privileged=true \
  --profiling=false
api_ready() {
  curl -fsS --max-time 3 --cacert "$PKI/ca.crt" -H "Authorization: Bearer $ADMIN_TOKEN" "$API/readyz" | grep -qx ok
}
wait_for kube-apiserver "/readyz ok" api_ready
mark kube-apiserver

# ------------------------------------------- controller-manager, scheduler
launch kube-controller-manager "$K8S_BIN/kube-controller-manager" \
  --kubeconfig "$CONF/controller-manager.kubeconfig" \
  --leader-elect=false --secure-port 0 \
  --use-service-account-credentials=true \
  --service-account-private-key-file "$PKI/sa.key" \
  --root-ca-file "$PKI/ca.crt" \
  --service-cluster-ip-range 10.96.0.0/24 \
  --profiling=false
launch kube-scheduler "$K8S_BIN/kube-scheduler" \
  --kubeconfig "$CONF/scheduler.kubeconfig" \
  --leader-elect=false --secure-port 0 --profiling=false
# The service-account and root-CA controllers have run: pods can mount their token.
controllers_ready() {
  "${KUBECTL[@]}" -n default get serviceaccount default && "${KUBECTL[@]}" -n default get configmap kube-root-ca.crt
}
wait_for kube-controller-manager "default service account and kube-root-ca.crt" controllers_ready
mark controllers

# --------------------------------------------------------------- containerd
CTRD="$K8S_RUN/containerd"
CTRD_SOCK="$CTRD/containerd.sock"
SNAPSHOTTER="${FERRY_K8S_SNAPSHOTTER:-overlayfs}"
mkdir -p "$CTRD/root" "$CTRD/state" "$CTRD/runc" "$CTRD/opt" "$K8S_RUN/cni/bin" "$K8S_RUN/cni/conf"
cat >"$CONF/containerd.toml" <<EOF
version = 2
root = "$CTRD/root"
state = "$CTRD/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = "$CTRD_SOCK"

[plugins."io.containerd.internal.v1.opt"]
  path = "$CTRD/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$K8S_PAUSE_IMAGE"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  # No CAP_SYS_RESOURCE here: without this every sandbox fails to start.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "$SNAPSHOTTER"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "$K8S_DEB/usr/sbin/runc"
        Root = "$CTRD/runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$K8S_RUN/cni/bin"
    conf_dir = "$K8S_RUN/cni/conf"
EOF
# containerd finds its shim (containerd-shim-runc-v2) on PATH.
launch containerd env PATH="$K8S_DEB/usr/bin:$K8S_DEB/usr/sbin:$PATH" \
  "$K8S_DEB/usr/bin/containerd" --config "$CONF/containerd.toml"
CTR=("$K8S_DEB/usr/bin/ctr" --address "$CTRD_SOCK" --namespace k8s.io)
wait_for containerd "an answer on $CTRD_SOCK" "${CTR[@]}" version
"${CTR[@]}" images import --snapshotter "$SNAPSHOTTER" "$K8S_PAUSE_TAR" >"$LOGS/import-pause.log" 2>&1 ||
  fail containerd "importing the pause image failed: $(cat "$LOGS/import-pause.log")"
mark containerd

# ------------------------------------------------------------------ kubelet
KUBELET_DIR="$K8S_RUN/kubelet"
mkdir -p "$KUBELET_DIR" "$K8S_RUN/pod-logs"
cat >"$CONF/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: $K8S_KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $K8S_KUBELET_HEALTHZ_PORT
containerRuntimeEndpoint: unix://$CTRD_SOCK
podLogsDir: $K8S_RUN/pod-logs
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
authorization:
  mode: Webhook
# This machine: cgroup v1, no systemd, no CAP_SYS_RESOURCE, swap allowed.
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupsPerQOS: false
enforceNodeAllocatable: []
failSwapOn: false
# A shared development disk: never evict or garbage-collect images for space.
evictionHard:
  memory.available: "1Mi"
  nodefs.available: "0%"
  imagefs.available: "0%"
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
registerNode: true
resolvConf: /etc/resolv.conf
serializeImagePulls: false
EOF
launch kubelet "$K8S_BIN/kubelet" \
  --config "$CONF/kubelet.yaml" \
  --kubeconfig "$CONF/kubelet.kubeconfig" \
  --root-dir "$KUBELET_DIR" \
  --cert-dir "$KUBELET_DIR/pki" \
  --hostname-override "$K8S_NODE" \
  --node-ip 127.0.0.1
kubelet_healthy() { curl -fsS --max-time 2 "http://127.0.0.1:$K8S_KUBELET_HEALTHZ_PORT/healthz" | grep -qx ok; }
wait_for kubelet "/healthz ok" kubelet_healthy
wait_for kubelet "node $K8S_NODE registered" "${KUBECTL[@]}" get node "$K8S_NODE"
mark kubelet

# ------------------------------------------------------ a real pod, proof
# No CNI: the node stays NotReady (network plugin not ready), so pods need host
# networking and a toleration of the not-ready taint.
cat >"$CONF/smoke-pod.yaml" <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: ferry-k8s-smoke
  namespace: default
spec:
  hostNetwork: true
  automountServiceAccountToken: true
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  tolerations:
  - operator: Exists
  containers:
  - name: pause
    image: $K8S_PAUSE_IMAGE
    imagePullPolicy: Never
EOF
"${KUBECTL[@]}" apply -f "$CONF/smoke-pod.yaml" >/dev/null
pod_running() {
  [[ "$("${KUBECTL[@]}" -n default get pod ferry-k8s-smoke -o 'jsonpath={.status.phase}')" == Running ]]
}
wait_for kubelet "smoke pod Running (see: kubectl describe pod ferry-k8s-smoke)" pod_running
"${KUBECTL[@]}" -n default delete pod ferry-k8s-smoke --wait=true --timeout=30s >/dev/null
mark "smoke pod"

cat >"$K8S_RUN/env" <<EOF
export FERRY_K8S_KUBECONFIG="$K8S_RUN/kubeconfig"
export FERRY_K8S_SERVER="$API"
export FERRY_K8S_CA="$PKI/ca.crt"
export FERRY_K8S_TOKEN_FILE="$PKI/admin.token"
export FERRY_K8S_KUBECTL="$K8S_BIN/kubectl"
export FERRY_K8S_CTR="$K8S_DEB/usr/bin/ctr"
export FERRY_K8S_CONTAINERD_ADDRESS="$CTRD_SOCK"
export FERRY_K8S_SNAPSHOTTER="$SNAPSHOTTER"
export FERRY_K8S_NODE="$K8S_NODE"
export FERRY_K8S_POD_LOGS="$K8S_RUN/pod-logs"
EOF
echo "k8s start: ready in $(($(k8s_now) - t_start))s (${timings[*]/%/;}) kubeconfig $K8S_RUN/kubeconfig, env $K8S_RUN/env"
