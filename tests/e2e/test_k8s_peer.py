"""ferry-mirror workers as pods of a real Kubernetes (the k8s peer, tests/peers/k8s/).

The runtime image is built from target/debug/ferry-mirror without Docker or a registry
(tests/peers/k8s/image.sh) and imported into the peer's containerd; the spec goes into a
ConfigMap; a Job of two worker pods (host networking, so they reach Kafka on 127.0.0.1) copies
a topic from cluster A to cluster B. The test talks to the API server with the Python standard
library (HTTPS, bearer token, the peer's CA), not kubectl.

`make test` builds and starts the k8s peer and runs this last (`make e2e-k8s`); a pytest run by hand
skips it when the peer is not running (`make k8s-peer` starts it).
"""

import json
import os
import random
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import K8S, REPO, peer
from mirror_util import MIRROR, commit_group, committed, contents, create_topic, produce, read_partition


# Needs the k8s peer: skipped without it, a failure under `make test` (see conftest.py).
pytestmark = pytest.mark.k8s

IMAGE = "ferry.local/ferry-mirror:dev"


class Api:
    """The Kubernetes API over HTTPS with the peer's admin token."""

    def __init__(self, server, ca_file, token):
        self.server = server.rstrip("/")
        self.ctx = ssl.create_default_context(cafile=ca_file)
        self.token = token

    def call(self, method, path, body=None, ok=(200, 201, 202)):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.server + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.token}")
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=15) as resp:
                status, text = resp.status, resp.read().decode()
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read().decode()
        if status not in ok:
            raise AssertionError(f"{method} {path}: HTTP {status}: {text[:2000]}")
        try:
            return status, (json.loads(text) if text else None)
        except json.JSONDecodeError:
            return status, text

    def get(self, path):
        return self.call("GET", path)[1]

    def create(self, path, body):
        return self.call("POST", path, body)[1]


@pytest.fixture(scope="module")
def k8s():
    api = Api(K8S["FERRY_K8S_SERVER"], K8S["FERRY_K8S_CA"], Path(K8S["FERRY_K8S_TOKEN_FILE"]).read_text().strip())
    assert api.get("/readyz") == "ok"
    return api


@pytest.fixture(scope="module")
def image():
    """The runtime image from the debug binary, imported into the peer's containerd (`make e2e-k8s`
    imports it before pytest and says so with FERRY_K8S_IMAGE_IMPORTED=1)."""
    if os.environ.get("FERRY_K8S_IMAGE_IMPORTED") == "1":
        return IMAGE
    if not MIRROR.exists():
        pytest.fail(f"{MIRROR} is missing: cargo build -p ferry-mirror")
    proc = subprocess.run(
        [str(REPO / "tests" / "peers" / "k8s" / "image.sh"), "--binary", str(MIRROR), "--name", IMAGE],
        capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, f"image.sh failed:\n{proc.stdout}\n{proc.stderr}"
    return IMAGE


@pytest.fixture
def namespace(k8s):
    name = f"ferry-e2e-{os.getpid()}-{random.randrange(1 << 20)}"
    k8s.create("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield name
    # Deleting the namespace deletes the Job, its pods and the ConfigMap; wait until it is gone
    # so no worker outlives the test.
    k8s.call("DELETE", f"/api/v1/namespaces/{name}", ok=(200, 202, 404))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status, _ = k8s.call("GET", f"/api/v1/namespaces/{name}", ok=(200, 404))
        if status == 404:
            return
        time.sleep(1)
    raise AssertionError(f"namespace {name} not deleted after 120 s")


def sample_records(n, partitions):
    base = int(time.time() * 1000) - 3_600_000
    for i in range(n):
        key = None if i % 7 == 0 else f"key-{i % 500}".encode()
        value = None if i % 11 == 0 else (f"value-{i}-" + "y" * (i % 200)).encode()
        headers = [("trace", f"t{i}".encode())] if i % 3 == 0 else None
        yield i % partitions, key, value, headers, base + i


def pod_stdout(pod):
    """The container's stdout lines, from the kubelet's CRI log files (`kubectl logs` cannot reach a
    kubelet on a loopback node): <podLogsDir>/<ns>_<pod>_<uid>/<container>/<n>.log, lines
    `<time> stdout|stderr F|P <text>`."""
    meta = pod["metadata"]
    d = Path(K8S["FERRY_K8S_POD_LOGS"]) / f"{meta['namespace']}_{meta['name']}_{meta['uid']}" / "worker"
    out, partial = [], ""
    for f in sorted(d.glob("*.log")):
        for line in f.read_text().splitlines():
            parts = line.split(" ", 3)
            if len(parts) < 4 or parts[1] != "stdout":
                continue
            partial += parts[3]
            if parts[2] == "F":
                out.append(partial)
                partial = ""
    return out


def json_documents(lines):
    """The JSON documents printed on stdout (the report is pretty-printed over many lines)."""
    text, docs, decoder, i = "\n".join(lines), [], json.JSONDecoder(), 0
    while (i := text.find("{", i)) >= 0:
        try:
            doc, i = decoder.raw_decode(text, i)
            docs.append(doc)
        except json.JSONDecodeError:
            i += 1
    return docs


def pod_log_tail(pod, n=40):
    meta = pod["metadata"]
    d = Path(K8S["FERRY_K8S_POD_LOGS"]) / f"{meta['namespace']}_{meta['name']}_{meta['uid']}"
    lines = []
    for f in sorted(d.glob("*/*.log")):
        lines += f.read_text().splitlines()[-n:]
    return "\n".join(lines)


def test_job_of_worker_pods_copies_exactly(k8s, image, namespace):
    a, b = peer("FERRY_KAFKA_A"), peer("FERRY_KAFKA_B")
    suffix = f"{os.getpid()}-{random.randrange(1 << 30)}"
    topic, run_id, group = f"k8s-copy-{suffix}", f"k8s-run-{suffix}", f"k8s-billing-{suffix}"
    create_topic(a, topic, 4)
    n = produce(a, topic, sample_records(8000, 4))
    commit_group(a, group, topic, {0: 500, 1: 1999, 2: 2000, 3: 0})

    spec = {
        "version": 1,
        "run_id": run_id,
        "source": {"bootstrap_servers": [a], "timeout_seconds": 15},
        "target": {"bootstrap_servers": [b], "timeout_seconds": 15},
        "topics": {"names": [topic]},
        "consumer_groups_regex": group,
        "tuning": {"transaction_max_ms": 500, "status_interval_ms": 500},
    }
    ns = f"/api/v1/namespaces/{namespace}"
    k8s.create(f"{ns}/configmaps", {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "ferry-spec"},
        "data": {"spec.json": json.dumps(spec, indent=2)},
    })
    workers = 2
    job = {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "ferry-mirror", "labels": {"app.kubernetes.io/name": "ferry-mirror"}},
        "spec": {
            "parallelism": workers,
            "completions": workers,
            "backoffLimit": 0,
            "activeDeadlineSeconds": 300,
            "template": {
                "metadata": {"labels": {"app.kubernetes.io/name": "ferry-mirror", "ferry.run": run_id}},
                "spec": {
                    # No CNI on the peer: host networking reaches Kafka on 127.0.0.1, and the node
                    # stays NotReady, hence the toleration.
                    "hostNetwork": True,
                    "dnsPolicy": "ClusterFirstWithHostNet",
                    "tolerations": [{"operator": "Exists"}],
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,
                    "terminationGracePeriodSeconds": 15,
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532},
                    "containers": [{
                        "name": "worker",
                        "image": image,
                        "imagePullPolicy": "Never",
                        "args": ["run", "--spec", "/etc/ferry/spec.json", "--worker-id", "$(POD_NAME)"],
                        "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                        "volumeMounts": [{"name": "spec", "mountPath": "/etc/ferry", "readOnly": True}],
                        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "512Mi"}},
                        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                            "capabilities": {"drop": ["ALL"]}},
                    }],
                    "volumes": [{"name": "spec", "configMap": {"name": "ferry-spec"}}],
                },
            },
        },
    }
    started = time.monotonic()
    k8s.create(f"/apis/batch/v1/namespaces/{namespace}/jobs", job)

    deadline = time.monotonic() + 240
    while True:
        status = k8s.get(f"/apis/batch/v1/namespaces/{namespace}/jobs/ferry-mirror").get("status", {})
        conds = {c["type"]: c["status"] for c in status.get("conditions", [])}
        if conds.get("Complete") == "True" or conds.get("Failed") == "True" or time.monotonic() > deadline:
            break
        time.sleep(1)
    elapsed = time.monotonic() - started
    pods = k8s.get(f"{ns}/pods?labelSelector=ferry.run%3D{run_id}")["items"]
    if conds.get("Complete") != "True":
        detail = "\n".join(
            f"--- {p['metadata']['name']} {p['status'].get('phase')} {json.dumps(p['status'].get('containerStatuses'))}\n"
            f"{pod_log_tail(p)}"
            for p in pods
        )
        raise AssertionError(f"job did not complete in {elapsed:.0f}s: {status}\n{detail}")
    assert status.get("succeeded") == workers
    print(f"job of {workers} worker pods completed in {elapsed:.1f}s")

    # Both workers ran as pods of this node's containerd from the imported image.
    assert len(pods) == workers
    for p in pods:
        assert p["spec"]["nodeName"] == K8S["FERRY_K8S_NODE"]
        assert p["status"]["phase"] == "Succeeded"
        (cs,) = p["status"]["containerStatuses"]
        assert cs["image"].endswith(IMAGE.split("/", 1)[1]), cs["image"]
        assert cs["state"]["terminated"]["exitCode"] == 0
        # Every worker of an until_caught_up run prints the run's final report on stdout.
        reports = json_documents(pod_stdout(p))
        assert reports, f"no report on stdout of {p['metadata']['name']}:\n{pod_log_tail(p)}"
        report = reports[-1]
        assert report["run_id"] == run_id
        assert report["records_copied"] == n == 8000
        assert [g["state"] for g in report["groups"]] == ["translated"]

    # The copy is exact on B, partition by partition.
    for part in range(4):
        src, dst = read_partition(a, topic, part), read_partition(b, topic, part)
        assert len(dst) == len(src) == 2000
        assert contents(dst) == contents(src), f"partition {part} differs"
    # And the group resumes on B at the record it would read next on A.
    translated = committed(b, group, topic, 4)
    for part, source_offset in {0: 500, 1: 1999, 2: 2000, 3: 0}.items():
        src_next = [r for r in read_partition(a, topic, part) if r[0] >= source_offset]
        dst_next = [r for r in read_partition(b, topic, part) if r[0] >= translated[part]]
        assert contents(dst_next) == contents(src_next), f"partition {part}: group resumes at the wrong record"
