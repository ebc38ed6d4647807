"""A real Prometheus (Debian's package, unpacked by tests/peers/install.sh) scraping a real
ferry-mirror worker that copies from cluster A to cluster B, queried through its HTTP API; and
the Grafana dashboard in examples/monitoring/ checked against what the worker exports.

Prometheus runs with examples/monitoring/prometheus.yml as shipped; its targets file is written
by examples/monitoring/ferry_targets.py from the run's status, as a user would. Prometheus is
started and stopped by the fixture (own process group; it also dies with this process).
"""

import ctypes
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from confluent_kafka import Producer

from conftest import REPO, peer
from mirror_util import MIRROR, create_topic, produce, start_worker, write_spec

PROMETHEUS = Path(os.environ.get("FERRY_PROMETHEUS", REPO / ".peers/prometheus/usr/bin/prometheus"))
MONITORING = REPO / "examples" / "monitoring"
DASHBOARD = MONITORING / "grafana-dashboard.json"
WORKER = "prom-w1"
TOPICS = {"prom-a": 3, "prom-b": 2}  # name prefix -> partitions
INITIAL = 100  # records per topic copied before the tests start


def unique(name):
    return f"{name}-{os.getpid()}-{time.monotonic_ns() % 1_000_000_007}"


def _die_with_parent():
    # PR_SET_PDEATHSIG: Prometheus gets SIGTERM should this test process die without cleanup.
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Prometheus:
    """One Prometheus server on a free loopback port, with its own storage directory."""

    def __init__(self, config, workdir):
        self.config = config
        self.workdir = Path(workdir)
        self.proc = None
        self.url = None

    def start(self):
        for attempt in range(3):  # another process may take the free port first
            port = free_port()
            self.url = f"http://127.0.0.1:{port}"
            log = open(self.workdir / "prometheus.log", "ab")
            self.proc = subprocess.Popen(
                [
                    str(PROMETHEUS),
                    f"--config.file={self.config}",
                    f"--storage.tsdb.path={self.workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--storage.tsdb.retention.time=1h",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
            log.close()
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    if urllib.request.urlopen(f"{self.url}/-/ready", timeout=5).status == 200:
                        return self
                except (urllib.error.URLError, ConnectionError, TimeoutError):
                    pass
                time.sleep(0.5)
            self.stop()
        raise AssertionError(f"Prometheus did not become ready:\n{self.log()}")

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=30)
        self.proc = None

    def log(self):
        path = self.workdir / "prometheus.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def api(self, path, **params):
        url = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params, doseq=True)}"
        try:
            body = urllib.request.urlopen(url, timeout=30).read()
        except urllib.error.HTTPError as e:  # a bad query answers 400 with a JSON error
            body = e.read()
        answer = json.loads(body)
        assert answer["status"] == "success", f"{path} {params}: {answer}"
        return answer["data"]

    def query(self, expr):
        """An instant vector: [(labels, value)]."""
        data = self.api("query", query=expr)
        assert data["resultType"] == "vector", data
        return [(r["metric"], float(r["value"][1])) for r in data["result"]]

    def by(self, expr, label):
        return {labels.get(label): value for labels, value in self.query(expr)}

    def wait(self, what, check, timeout=300):
        """Polls `check` (returning a truthy value when satisfied) until a bound only a hang
        breaks."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = check()
            if last:
                return last
            time.sleep(1)
        raise AssertionError(f"Prometheus never showed {what} within {timeout}s (last: {last})\n{self.log()}")


def status_json(spec):
    proc = subprocess.run(
        [str(MIRROR), "status", "--spec", str(spec), "--json"],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )
    return json.loads(proc.stdout) if proc.returncode == 0 else {}


def value_bytes(topic, i):
    return f"{topic}-v{i}-".encode() + b"x" * (i % 200)


def records(topic, partitions, start, n):
    """(partition, key, value, headers, timestamp) like mirror_util.produce takes."""
    base = int(time.time() * 1000)
    return [(i % partitions, f"k{i}".encode(), value_bytes(topic, i), None, base) for i in range(start, start + n)]


def size(recs):
    return sum(len(k or b"") + len(v or b"") for _, k, v, _, _ in recs)


class Run:
    """The shared worker, Prometheus and what was produced (records and key+value bytes)."""

    def __init__(self, a, b, topics, spec, run_id, address, prom):
        self.a, self.b, self.topics, self.spec, self.run_id = a, b, topics, spec, run_id
        self.address, self.prom = address, prom
        self.produced = {t: INITIAL for t in topics}
        self.produced_bytes = {t: size(records(t, n, 0, INITIAL)) for t, n in topics.items()}
        self.sel = f'run_id="{run_id}"'


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    if not PROMETHEUS.exists():
        pytest.fail(f"{PROMETHEUS} is missing: run tests/peers/install.sh (make install-peers)")
    if not MIRROR.exists():
        pytest.fail(f"{MIRROR} is missing: cargo build -p ferry-mirror")
    a, b = peer("FERRY_KAFKA_A"), peer("FERRY_KAFKA_B")
    tmp = tmp_path_factory.mktemp("prometheus")
    topics = {unique(prefix): n for prefix, n in TOPICS.items()}
    for topic, partitions in topics.items():
        create_topic(a, topic, partitions)
        produce(a, topic, records(topic, partitions, 0, INITIAL))
    run_id = unique("prom")
    spec = write_spec(
        tmp / "spec.json", run_id, a, b, topics={"names": sorted(topics)},
        mode="continuous", in_sync_lag=0, http_listen="127.0.0.1:0",
    )
    worker = start_worker(spec, WORKER, tmp)
    prom = None
    try:
        # The targets file, as examples/monitoring/README.md has users write it.
        targets = tmp / "ferry-targets.json"
        deadline = time.monotonic() + 180
        address = None
        while time.monotonic() < deadline and not address:
            assert worker.poll() is None, (tmp / f"{WORKER}.log").read_text()[-3000:]
            proc = subprocess.run(
                [sys.executable, str(MONITORING / "ferry_targets.py"), "--spec", str(spec), "--out", str(targets),
                 "--ferry-mirror", str(MIRROR)],
                capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL,
            )
            groups = json.loads(targets.read_text()) if proc.returncode == 0 else []
            if groups:
                assert groups[0]["labels"] == {"ferry_run": run_id}, groups
                address = groups[0]["targets"][0]
            else:
                time.sleep(1)
        assert address, f"no worker address in the status\n{(tmp / f'{WORKER}.log').read_text()[-3000:]}"
        assert status_json(spec)["workers"][0]["http"] == address

        shutil.copy(MONITORING / "prometheus.yml", tmp / "prometheus.yml")
        prom = Prometheus(tmp / "prometheus.yml", tmp).start()
        r = Run(a, b, topics, spec, run_id, address, prom)
        # Every topic's first records copied and scraped twice, so rates have two samples.
        prom.wait(
            "the initial records copied",
            lambda: prom.by(f"ferry_mirror_records_copied_total{{{r.sel}}}", "topic") == r.produced
            and prom.query(f'count_over_time(up{{job="ferry-mirror"}}[5m]) >= 3'),
        )
        yield r
    finally:
        if prom is not None:
            prom.stop()
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
            try:
                worker.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait(timeout=30)


class Producing:
    """Writes to every topic from a thread until stopped; counts what was delivered."""

    def __init__(self, run):
        self.run = run
        self.stop_event = threading.Event()
        self.delivered = {t: 0 for t in run.topics}
        self.delivered_bytes = {t: 0 for t in run.topics}
        self.failures = []
        self.unflushed = None
        self.started = None
        self.thread = threading.Thread(target=self._produce, daemon=True)

    def _on_delivery(self, err, msg):
        if err is not None:
            self.failures.append(err)
            return
        self.delivered[msg.topic()] += 1
        self.delivered_bytes[msg.topic()] += len(msg.key() or b"") + len(msg.value() or b"")

    def _produce(self):
        p = Producer({"bootstrap.servers": self.run.a, "linger.ms": 20, "enable.idempotence": True})
        i = INITIAL
        while not self.stop_event.is_set():
            for topic, partitions in self.run.topics.items():
                for part, key, value, _, _ in records(topic, partitions, i, 20):
                    p.produce(topic, key=key, value=value, partition=part, on_delivery=self._on_delivery)
            i += 20
            p.poll(0.05)
        self.unflushed = p.flush(60)

    def __enter__(self):
        self.started = time.monotonic()
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop_event.set()
        self.thread.join(timeout=120)


def test_prometheus_sees_throughput_and_lag_per_topic(run):
    prom, sel = run.prom, run.sel
    with Producing(run) as producing:
        # While records keep coming, Prometheus computes a copy rate above 0 for each topic, over
        # a window that starts after producing did (the initial records were copied before).
        def copying():
            window = int(time.monotonic() - producing.started) - 1
            if window < 12:
                return None
            rates = {}
            for kind in ("records", "bytes"):
                r = prom.by(f"sum by (topic) (rate(ferry_mirror_{kind}_copied_total{{{sel}}}[{window}s]))", "topic")
                if set(r) != set(run.topics) or not all(v > 0 for v in r.values()):
                    return None
                rates[kind] = r
            return rates

        rates = prom.wait("records and bytes copied per second above 0 for every topic", copying)
        # Lag is a series per partition, labelled by topic, all owned by this worker.
        lag_series = prom.query(f"ferry_mirror_partition_lag_records{{{sel}}}")
        by_topic = {}
        for labels, value in lag_series:
            assert labels["worker_id"] == WORKER and value >= 0, labels
            by_topic.setdefault(labels["topic"], set()).add(int(labels["partition"]))
        assert by_topic == {t: set(range(n)) for t, n in run.topics.items()}, lag_series
    assert not producing.thread.is_alive() and producing.unflushed == 0 and not producing.failures, (
        producing.unflushed, producing.failures)
    for t in run.topics:
        run.produced[t] += producing.delivered[t]
        run.produced_bytes[t] += producing.delivered_bytes[t]
    assert all(v > INITIAL for v in run.produced.values()), (run.produced, rates)

    # Caught up: the counters reach exactly what was produced, lag 0 everywhere, in_sync.
    prom.wait(
        f"every record copied ({run.produced}) with lag 0 and the worker in_sync",
        lambda: prom.by(f"ferry_mirror_records_copied_total{{{sel}}}", "topic") == run.produced
        and prom.by(f"sum by (topic) (ferry_mirror_partition_lag_records{{{sel}}})", "topic")
        == {t: 0 for t in run.topics}
        and prom.by(f'ferry_mirror_worker_state{{{sel}, worker_id="{WORKER}"}}', "state")
        == {"copying": 0, "caught_up": 0, "in_sync": 1},
    )
    assert prom.by(f"ferry_mirror_bytes_copied_total{{{sel}}}", "topic") == run.produced_bytes

    # Each series names its run and worker (exported labels) and its scrape target.
    for labels, value in prom.query(f"ferry_mirror_records_copied_total{{{sel}}}"):
        assert labels["worker_id"] == WORKER and labels["job"] == "ferry-mirror", labels
        assert labels["instance"] == run.address and labels["ferry_run"] == run.run_id, labels
    [(_, committed)] = prom.query(f"ferry_mirror_transactions_committed_total{{{sel}}}")
    assert committed >= 1
    [(_, aborted)] = prom.query(f"ferry_mirror_transactions_aborted_total{{{sel}}}")
    [(_, errors)] = prom.query(f"ferry_mirror_errors_total{{{sel}}}")
    assert aborted >= 0 and errors >= 0
    assert prom.query(f"ferry_mirror_assigned_partitions{{{sel}}}")[0][1] == sum(run.topics.values())
    [(_, last_status)] = prom.query(f"ferry_mirror_last_status_timestamp_seconds{{{sel}}}")
    assert abs(last_status - time.time()) < 600, last_status  # a wall-clock time, not a counter
    # The worker's own rate (status) and Prometheus' agree that the copy has settled.
    assert status_json(run.spec)["lag"] == 0


# ------------------------------------------------------------------ the Grafana dashboard

GRAFANA_BUILTINS = {"__rate_interval", "__interval", "__range"}
PROMQL_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset",
                   "and", "or", "unless"}


def metric_names(expr):
    """The metric names a PromQL expression selects (functions, keywords, labels left out)."""
    s = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    s = re.sub(r"\{[^}]*\}", "", s)
    s = re.sub(r"\[[^\]]*\]", "", s)
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", r"\1", s)
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", s):
        rest = s[m.end():].lstrip()
        # A function or aggregation (`sum(`, `sum by (...) (`), or a keyword.
        if rest.startswith("(") or re.match(r"(by|without)\b", rest) or m.group(0) in PROMQL_KEYWORDS:
            continue
        names.add(m.group(0))
    return names


def exported_names(exposition):
    """Sample names of a text exposition, including those of families without samples yet."""
    names = set()
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            names.add(f"{name}_total" if kind == "counter" else name)
        elif line and not line.startswith("#"):
            names.add(re.match(r"[A-Za-z_:][A-Za-z0-9_:]*", line).group(0))
    return names


def test_metric_names_parser():
    assert metric_names('sum by (topic) (rate(x_total{a=~"$b", c="d{e}"}[5m])) / (sum(y) > 0)') == {"x_total", "y"}
    assert metric_names("time() - max by (w) (z{w=~\"a|b\"}) == 1") == {"z"}
    assert metric_names("topk(20, lag > 0) or on(instance) group_left(worker_id) info") == {"lag", "info"}
    text = "# TYPE m_records counter\nm_records_total{t=\"x\"} 1\n# TYPE m_lag gauge\n# EOF\n"
    assert exported_names(text) == {"m_records_total", "m_lag"}


def test_dashboard_only_uses_exported_metrics(run):
    dashboard = json.loads(DASHBOARD.read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    assert isinstance(dashboard["schemaVersion"], int) and dashboard["uid"] and dashboard["title"]
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels), "panel ids must be unique"

    exposition = urllib.request.urlopen(f"http://{run.address}/metrics", timeout=30).read().decode()
    exported = exported_names(exposition)
    # What Grafana substitutes: "All" is ".*" (allValue); the intervals become durations.
    # (The run id and worker id have no regex metacharacters.)
    values = {"run_id": run.run_id, "worker": WORKER, "topic": ".*",
              "__rate_interval": "1m", "__interval": "5s", "__range": "1h"}

    def substitute(expr):
        for name in re.findall(r"\$(\w+)", expr):
            assert name in variables or name in GRAFANA_BUILTINS, f"${name} is not defined: {expr}"
        return re.sub(r"\$(\w+)", lambda m: values[m.group(1)], expr)

    cells = []
    checked = 0
    for p in panels:
        g = p["gridPos"]
        assert g["x"] >= 0 and g["w"] > 0 and g["x"] + g["w"] <= 24 and g["h"] > 0, p["title"]
        cells += [(g["x"] + dx, g["y"] + dy) for dx in range(g["w"]) for dy in range(g["h"])]
        if p["type"] == "row":
            continue
        assert p["type"] in {"stat", "timeseries", "table"}, p["type"]
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
        assert p["targets"], p["title"]
        for target in p["targets"]:
            assert target["datasource"] == p["datasource"] and target["refId"], p["title"]
            expr = substitute(target["expr"])
            unknown = metric_names(expr) - exported
            assert not unknown, f"panel {p['title']!r} uses {unknown}, which the worker does not export"
            # Prometheus parses and evaluates it; with a worker that has copied, it has data,
            # except where the panel filters on "> 0" (ETA while copying, lagging partitions).
            result = run.prom.api("query", query=expr)["result"]
            assert result or "> 0" in expr, f"panel {p['title']!r}: no data for {expr}"
            checked += 1
    assert len(cells) == len(set(cells)), "panels overlap"
    assert checked >= 15

    for name in ("run_id", "worker", "topic"):
        m = re.fullmatch(r"label_values\((.*), (\w+)\)", variables[name]["query"])
        assert m, variables[name]["query"]
        selector, label = substitute(m.group(1)), m.group(2)
        assert not metric_names(selector) - exported, selector
        found = run.prom.api(f"label/{label}/values", **{"match[]": selector})
        assert found, f"variable {name}: no {label} values for {selector}"
    assert run.run_id in run.prom.api("label/run_id/values", **{"match[]": "ferry_mirror_build_info"})


def test_two_workers_share_partitions_without_double_counting(run):
    """A second worker joins: Prometheus finds it through the targets file, each partition's lag
    is reported by exactly one worker (the one owning it now), and the record counters of both
    workers add up to exactly what was produced."""
    prom, sel = run.prom, run.sel
    tmp = Path(run.spec).parent
    second = start_worker(run.spec, "prom-w2", tmp)
    try:
        targets = tmp / "ferry-targets.json"

        def both_listed():
            assert second.poll() is None, (tmp / "prom-w2.log").read_text()[-3000:]
            proc = subprocess.run(
                [sys.executable, str(MONITORING / "ferry_targets.py"), "--spec", str(run.spec), "--out", str(targets),
                 "--ferry-mirror", str(MIRROR)],
                capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL,
            )
            groups = json.loads(targets.read_text()) if proc.returncode == 0 else []
            return groups and len(groups[0]["targets"]) == 2

        prom.wait("the second worker in the targets file", both_listed)
        total = sum(run.topics.values())
        partitions = {(t, str(p)) for t, n in run.topics.items() for p in range(n)}

        def shared():
            assigned = prom.by(f"ferry_mirror_assigned_partitions{{{sel}}}", "worker_id")
            if set(assigned) != {WORKER, "prom-w2"} or sum(assigned.values()) != total or 0 in assigned.values():
                return None
            owners = {}
            for labels, _ in prom.query(f"ferry_mirror_partition_lag_records{{{sel}}}"):
                owners.setdefault((labels["topic"], labels["partition"]), []).append(labels["worker_id"])
            if set(owners) != partitions or any(len(w) != 1 for w in owners.values()):
                return None
            return assigned, owners

        assigned, owners = prom.wait("the partitions split between two workers, each lag reported once", shared)
        for worker, count in assigned.items():
            assert sum(w == [worker] for w in owners.values()) == count, (assigned, owners)

        # More records, copied by both workers: together they count each one once.
        for topic, partitions_n in run.topics.items():
            batch = records(topic, partitions_n, run.produced[topic], 200)
            produce(run.a, topic, batch)
            run.produced[topic] += len(batch)
            run.produced_bytes[topic] += size(batch)
        prom.wait(
            f"both workers' counters adding up to {run.produced}",
            lambda: prom.by(f"sum by (topic) (ferry_mirror_records_copied_total{{{sel}}})", "topic") == run.produced
            and prom.by(f"sum by (topic) (ferry_mirror_partition_lag_records{{{sel}}})", "topic")
            == {t: 0 for t in run.topics},
        )
        assert prom.by(f"sum by (topic) (ferry_mirror_bytes_copied_total{{{sel}}})", "topic") == run.produced_bytes
        # The dashboard's per-worker view: the new worker committed some of the new records.
        per_worker = prom.by(f"sum by (worker_id) (ferry_mirror_records_copied_total{{{sel}}})", "worker_id")
        assert set(per_worker) == {WORKER, "prom-w2"} and per_worker["prom-w2"] > 0, per_worker
    finally:
        if second.poll() is None:
            os.killpg(second.pid, signal.SIGTERM)
            try:
                second.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(second.pid, signal.SIGKILL)
                second.wait(timeout=30)
