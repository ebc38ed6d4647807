"""No-op `plan` (with refresh) of N topics, ferry against Mongey/terraform-provider-kafka v0.13.1,
on loopback and over a 40 ms round trip: wall time, admin requests and the provider's peak RSS.
Prints figures; asserts nothing about time (it does assert that every plan is a no-op).

    make bench-plan
    # or: source .peers/env && .peers/venv/bin/python tests/bench/plan_bench.py   (as root)

What it does:
  * builds Mongey's provider once per machine (tests/bench/mongey_install.sh, cached in
    ~/.cache/ferry-peers/mongey-kafka-0.13.1) and copies target/debug/terraform-provider-ferry
    (or FERRY_BENCH_PROVIDER) into its own filesystem mirror, so a rebuild mid-run changes nothing;
  * starts its own single-node Kafka 4.3.1 (KRaft, `ulimit -n` raised) in a network namespace
    (`ferry-bench`, veth 10.231.0.1 <-> 10.231.0.2), never the shared peers;
  * puts tests/bench/delay_relay.py on the host end of the veth: the broker's advertised client
    listener is the relay, which holds every chunk DELAY ms each way (0 for "loopback", 20 for
    "40 ms"), counts the Kafka requests that pass and measures "waiting": the wall time during which
    at least one request is waiting for its response. Waiting at 40 ms minus waiting on loopback is
    what the distance cost the plan, without the CLI's own time, which on a busy machine varies by
    more than the distance does. The kernel here has no sch_netem
    (CONFIG_NET_SCH_NETEM is not set), so the delay is the relay's, not `tc netem`'s; the bench
    prints the measured request round trip of each link;
  * creates the topics out of band (AdminClient, 1 partition, RF 1, retention.ms=3600000), then per
    provider imports the first topic, copies that state instance for the others and runs
    `plan -detailed-exitcode` (exit code 0 required) once per link;
  * tears the relay, the broker, the veth and the namespace down at the end (also on errors).
A plan that fails with "kafka: broker not connected" (Mongey's sarama client, now and then on a
busy machine) is run again, at most twice; the row's "attempts" says so.

Environment: FERRY_BENCH_TOPICS (default "1000,3000,10000", ascending; topics are added, never
removed, between counts), FERRY_BENCH_PROVIDERS ("ferry,mongey"), FERRY_BENCH_LINKS
("loopback,40ms"), FERRY_BENCH_CLI ("terraform", or "tofu"), FERRY_BENCH_MONGEY_40MS_MAX (default
3000: above it Mongey's 40 ms plan is estimated from its loopback plan plus the per-topic distance
cost at the largest measured count, and marked as an estimate), FERRY_BENCH_KEEP=1 keeps the
temporary directory.
"""

import base64
import json
import logging
import os
import re
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from confluent_kafka import TopicCollection
from confluent_kafka.admin import AdminClient, NewTopic

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
FERRY_VERSION = "0.1.0"
MONGEY_VERSION = "0.13.1"
NS = "ferry-bench"
HOST_IF, NS_IF = "fbench0", "fbench1"
HOST_IP, NS_IP = "10.231.0.1", "10.231.0.2"
CLIENT_PORT = 9092  # relay on HOST_IP, broker's EXTERNAL listener on NS_IP
DIRECT_PORT = 9095  # broker's DIRECT listener on NS_IP (setup only, no relay)
RELAYED = f"{HOST_IP}:{CLIENT_PORT}"
DIRECT = f"{NS_IP}:{DIRECT_PORT}"
LINKS = {"loopback": 0, "40ms": 20}
TOPIC_CONFIG = {"retention.ms": "3600000"}
PREFIX = "plan-bench.t"

cleanups = []


def sh(*args, check=True):
    return subprocess.run(args, check=check, capture_output=True, text=True)


def cleanup():
    while cleanups:
        try:
            cleanups.pop()()
        except Exception as e:  # noqa: BLE001 - best effort teardown
            print(f"teardown: {e}", file=sys.stderr)


# ------------------------------------------------------------------ broker in a namespace
def setup_namespace():
    for tool in ("ip", "tc"):
        if not shutil.which(tool):
            sys.exit(f"{tool} not found")
    sh("ip", "link", "del", HOST_IF, check=False)
    sh("ip", "netns", "del", NS, check=False)
    sh("ip", "netns", "add", NS)
    cleanups.append(lambda: sh("ip", "netns", "del", NS, check=False))
    sh("ip", "link", "add", HOST_IF, "type", "veth", "peer", "name", NS_IF)
    cleanups.append(lambda: sh("ip", "link", "del", HOST_IF, check=False))
    sh("ip", "link", "set", NS_IF, "netns", NS)
    sh("ip", "addr", "add", f"{HOST_IP}/30", "dev", HOST_IF)
    sh("ip", "link", "set", HOST_IF, "up")
    for cmd in (
        ["ip", "addr", "add", f"{NS_IP}/30", "dev", NS_IF],
        ["ip", "link", "set", NS_IF, "up"],
        ["ip", "link", "set", "lo", "up"],
    ):
        sh("ip", "netns", "exec", NS, *cmd)
    # What the kernel says about netem, for the record.
    netem = sh("tc", "qdisc", "add", "dev", HOST_IF, "root", "netem", "delay", "20ms", check=False)
    if netem.returncode == 0:
        sh("tc", "qdisc", "del", "dev", HOST_IF, "root", check=False)
        print("netem: available (the bench still uses its relay, so that both links are alike)")
    else:
        print(f"netem: unavailable here: `tc qdisc add ... netem` says: {netem.stderr.strip()}")


def start_broker(root):
    libs = Path(os.environ.get("FERRY_KAFKA_LIBS", REPO / ".peers" / "kafka" / "libs"))
    java = os.environ.get("FERRY_JAVA") or shutil.which("java")
    data = root / "kafka-data"
    conf = root / "kafka.properties"
    conf.write_text(
        "\n".join(
            [
                "process.roles=broker,controller",
                "node.id=1",
                "controller.quorum.voters=1@127.0.0.1:9094",
                "controller.listener.names=CONTROLLER",
                "inter.broker.listener.name=INTERNAL",
                f"listeners=EXTERNAL://{NS_IP}:{CLIENT_PORT},DIRECT://{NS_IP}:{DIRECT_PORT},"
                "INTERNAL://127.0.0.1:9093,CONTROLLER://127.0.0.1:9094",
                f"advertised.listeners=EXTERNAL://{RELAYED},DIRECT://{DIRECT},INTERNAL://127.0.0.1:9093",
                "listener.security.protocol.map=EXTERNAL:PLAINTEXT,DIRECT:PLAINTEXT,INTERNAL:PLAINTEXT,"
                "CONTROLLER:PLAINTEXT",
                f"log.dirs={data}",
                "auto.create.topics.enable=false",
                "num.partitions=1",
                "offsets.topic.replication.factor=1",
                "offsets.topic.num.partitions=5",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "share.coordinator.state.topic.replication.factor=1",
                "share.coordinator.state.topic.min.isr=1",
                "group.initial.rebalance.delay.ms=0",
                "num.network.threads=2",
                "num.io.threads=4",
                "num.recovery.threads.per.data.dir=1",
                "log.cleaner.dedupe.buffer.size=16777216",
                "",
            ]
        )
    )
    cp = f"{libs}/*"
    log4j = f"-Dlog4j2.configurationFile={REPO}/tests/peers/log4j2.properties"
    cluster_id = sh(
        "python3", "-c",
        "import base64,os\nwhile True:\n s=base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip('=')\n"
        " if not s.startswith('-'): print(s); break",
    ).stdout.strip()
    sh(java, "-Xmx256m", log4j, "-cp", cp, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(conf))
    log = open(root / "kafka.log", "w")
    proc = subprocess.Popen(
        ["ip", "netns", "exec", NS, "bash", "-c", 'ulimit -n "$(ulimit -Hn)" && exec "$@"', "kafka",
         java, "-Xms512m", "-Xmx1536m", "-XX:+UseG1GC", "-Djava.awt.headless=true", log4j,
         "-cp", cp, "kafka.Kafka", str(conf)],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )

    def stop():
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        except ProcessLookupError:
            pass

    cleanups.append(stop)
    quiet = logging.getLogger("plan-bench-rdkafka")
    quiet.setLevel(logging.CRITICAL)
    admin = AdminClient({"bootstrap.servers": DIRECT}, logger=quiet)
    deadline = time.monotonic() + 120
    while True:
        if proc.poll() is not None:
            sys.exit(f"the bench broker exited {proc.returncode}; see {root / 'kafka.log'}")
        try:
            admin.list_topics(timeout=5)
            break
        except Exception:  # noqa: BLE001 - not up yet
            if time.monotonic() > deadline:
                sys.exit(f"the bench broker did not answer in 120 s; see {root / 'kafka.log'}")
            time.sleep(1)
    limit = re.search(r"Max open files\s+(\d+)", Path(f"/proc/{proc.pid}/limits").read_text())
    print(f"broker: Kafka 4.3.1 KRaft in netns {NS} at {NS_IP}, open-file limit {limit.group(1) if limit else '?'} "
          "(the container's hard limit; raising it further is refused)")
    return admin


def ensure_topics(admin, count):
    have = {t for t in admin.list_topics(timeout=60).topics if t.startswith(PREFIX)}
    want = [f"{PREFIX}{i:05d}" for i in range(count)]
    missing = [n for n in want if n not in have]
    started = time.monotonic()
    for i in range(0, len(missing), 250):
        batch = [NewTopic(n, 1, 1, config=TOPIC_CONFIG) for n in missing[i : i + 250]]
        for f in admin.create_topics(batch, operation_timeout=120).values():
            f.result(timeout=180)
    deadline = time.monotonic() + 180
    while missing and len([t for t in admin.list_topics(timeout=60).topics if t.startswith(PREFIX)]) < count:
        if time.monotonic() > deadline:
            sys.exit(f"the broker does not list all {count} topics after 180 s")
        time.sleep(1)
    if missing:
        print(f"created {len(missing)} topics in {time.monotonic() - started:.0f} s (now {count})", flush=True)
    return want


# ------------------------------------------------------------------ relay
class Relay:
    def __init__(self, root, delay_ms):
        self.stats = root / f"relay-{time.monotonic_ns()}.json"
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "delay_relay.py"), RELAYED, f"{NS_IP}:{CLIENT_PORT}", str(delay_ms),
             str(self.stats)],
            stdout=subprocess.PIPE, text=True,
        )
        cleanups.append(self.stop)
        if self.proc.stdout.readline().strip() != "ready":
            sys.exit("delay relay did not start")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)
        if self in cleanups:
            pass
        try:
            return json.loads(self.stats.read_text())
        except OSError:
            return None


def kafka_rtt_ms(address, n=7):
    """Median time of an ApiVersions v0 request/response on one connection."""
    host, port = address.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    times = []
    for i in range(n):
        body = struct.pack(">hhih", 18, 0, i, 5) + b"bench"
        t = time.monotonic()
        s.sendall(struct.pack(">i", len(body)) + body)
        size = struct.unpack(">i", recv_exact(s, 4))[0]
        recv_exact(s, size)
        times.append((time.monotonic() - t) * 1000)
    s.close()
    return statistics.median(times)


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return buf


def tcp_connect_ms(host, port, n=5):
    times = []
    for _ in range(n):
        t = time.monotonic()
        socket.create_connection((host, port), timeout=10).close()
        times.append((time.monotonic() - t) * 1000)
    return statistics.median(times)


# ------------------------------------------------------------------ CLI runs
def peak_rss_watcher(stop, out, cpu=None):
    """Largest VmRSS (kB) of any terraform-provider-* process while `stop` is unset; `cpu` (a dict)
    gets each such process's last seen user+system CPU seconds."""
    tick = os.sysconf("SC_CLK_TCK")
    while not stop.is_set():
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            # The kernel keeps 15 characters of the name.
            if not status.startswith("Name:\tterraform-provi"):
                continue
            m = re.search(r"VmRSS:\s+(\d+) kB", status)
            if m:
                out[0] = max(out[0], int(m.group(1)))
            if cpu is not None:
                try:
                    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                    cpu[pid] = (int(fields[11]) + int(fields[12])) / tick
                except (OSError, IndexError, ValueError):
                    pass
        time.sleep(0.1)


def run(cli, args, cwd, env, timeout=5400, retry=None):
    started = time.monotonic()
    proc = subprocess.run([cli, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    elapsed = time.monotonic() - started
    if proc.returncode == 1 and retry is not None and retry[0] > 0 and "broker not connected" in proc.stderr:
        # Mongey's client (sarama) now and then fails one read with this on the busy machine; the
        # bench says how many attempts a row took.
        retry[0] -= 1
        retry[1] += 1
        print(f"retrying {cli} {args[0]}: {proc.stderr.strip().splitlines()[0]}", flush=True)
        return run(cli, args, cwd, env, timeout, retry)
    if proc.returncode not in (0, 2) or (args[0] != "plan" and proc.returncode != 0):
        sys.exit(f"{cli} {' '.join(args)} exited {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc, elapsed


PROVIDERS = {
    "ferry": dict(
        source="ferry/ferry",
        local="ferry",
        resource="ferry_topic",
        provider_block=f'provider "ferry" {{\n  bootstrap_servers = ["{RELAYED}"]\n}}\n',
    ),
    "mongey": dict(
        source="Mongey/kafka",
        local="kafka",
        resource="kafka_topic",
        provider_block=(
            f'provider "kafka" {{\n  bootstrap_servers = ["{RELAYED}"]\n  tls_enabled = false\n}}\n'
        ),
    ),
}


def write_config(work, p, names):
    cfg = "".join(f'    "{k}" = "{v}"\n' for k, v in TOPIC_CONFIG.items())
    (work / "main.tf").write_text(
        f'terraform {{\n  required_providers {{\n    {p["local"]} = {{ source = "{p["source"]}" }}\n  }}\n}}\n'
        + p["provider_block"]
        + 'variable "names" { type = set(string) }\n'
        f'resource "{p["resource"]}" "t" {{\n  for_each = var.names\n  name = each.key\n  partitions = 1\n'
        f"  replication_factor = 1\n  config = {{\n{cfg}  }}\n}}\n"
    )
    (work / "terraform.tfvars.json").write_text(json.dumps({"names": names}))


def topic_ids(admin, names):
    """Topic name -> topic id as ferry's state writes it (standard base64, no padding)."""
    ids = {}
    deadline = time.monotonic() + 180
    while len(ids) < len(names):
        todo = [n for n in names if n not in ids]
        for i in range(0, len(todo), 500):
            futures = admin.describe_topics(TopicCollection(todo[i : i + 500]), request_timeout=120)
            for name, f in futures.items():
                try:
                    uid = f.result().topic_id
                except Exception:  # noqa: BLE001 - a topic just created may not be visible yet
                    if time.monotonic() > deadline:
                        raise
                    continue
                raw = struct.pack(">qq", uid.get_most_significant_bits(), uid.get_least_significant_bits())
                ids[name] = base64.b64encode(raw).decode().rstrip("=")
        if len(ids) < len(names):
            time.sleep(1)
    return ids


def make_state(cli, work, env, p, names, admin):
    """Import the first topic, then give every other name a copy of that instance (with its own
    topic id where the state records one)."""
    write_config(work, p, names[:1])
    state = work / "terraform.tfstate"
    state.unlink(missing_ok=True)
    run(cli, ["import", "-no-color", "-input=false", f'{p["resource"]}.t["{names[0]}"]', names[0]], work, env)
    doc = json.loads(state.read_text())
    (res,) = [r for r in doc["resources"] if r["mode"] == "managed"]
    (inst,) = res["instances"]
    template = json.dumps(inst)
    first = json.dumps(names[0])[1:-1]
    res["instances"] = [json.loads(template.replace(first, json.dumps(n)[1:-1])) for n in names]
    if "topic_id" in inst["attributes"]:
        ids = topic_ids(admin, names)
        if ids[names[0]] != inst["attributes"]["topic_id"]:
            sys.exit(f"topic id encoding differs: state {inst['attributes']['topic_id']}, computed {ids[names[0]]}")
        for i in res["instances"]:
            i["attributes"]["topic_id"] = ids[i["attributes"]["name"]]
    doc["serial"] += 1
    state.write_text(json.dumps(doc))
    write_config(work, p, names)


def plan(cli, work, env, provider, root, delay_ms):
    log = work / f"provider-{delay_ms}.log"
    log.unlink(missing_ok=True)
    plan_env = dict(env, TF_LOG_PROVIDER="DEBUG", TF_LOG_PATH=str(log)) if provider == "ferry" else env
    relay = Relay(root, delay_ms)
    stop, peak, cpu = threading.Event(), [0], {}
    watcher = threading.Thread(target=peak_rss_watcher, args=(stop, peak, cpu), daemon=True)
    watcher.start()
    try:
        retry = [2, 1]
        proc, plan_s = run(cli, ["plan", "-detailed-exitcode", "-no-color", "-input=false"], work, plan_env,
                           retry=retry)
    finally:
        stop.set()
        watcher.join()
        stats = relay.stop()
    if proc.returncode != 0:
        sys.exit(f"{provider}: the plan of unchanged topics is not empty (exit {proc.returncode}):\n"
                 f"{proc.stdout[-3000:]}")
    self_count = None
    if provider == "ferry":
        totals = [int(m) for m in re.findall(r'admin_requests_total["=:\s]+(\d+)', log.read_text())]
        self_count = max(totals) if totals else None
    return dict(
        plan_s=round(plan_s, 1),
        requests_relay=stats["requests"] if stats else None,
        requests_self=self_count,
        connections=stats["connections"] if stats else None,
        waiting_s=stats.get("waiting_s") if stats else None,
        rss_mb=round(peak[0] / 1024, 1),
        provider_cpu_s=round(sum(cpu.values()), 1),
        attempts=retry[1],
    )


def cli_config(root, providers):
    mirror = root / "mirror"
    config = root / "cli.tfrc"
    binary = Path(os.environ.get("FERRY_BENCH_PROVIDER") or REPO / "target" / "debug" / "terraform-provider-ferry")
    for host in ["registry.terraform.io", "registry.opentofu.org"]:
        if "ferry" in providers:
            target = mirror / host / "ferry" / "ferry" / FERRY_VERSION / "linux_amd64"
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(binary, target / f"terraform-provider-ferry_v{FERRY_VERSION}")
        if "mongey" in providers:
            built = sh(str(HERE / "mongey_install.sh")).stdout.strip()
            src = Path(built) / "registry.terraform.io" / "mongey" / "kafka" / MONGEY_VERSION / "linux_amd64"
            target = mirror / host / "mongey" / "kafka" / MONGEY_VERSION / "linux_amd64"
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src / f"terraform-provider-kafka_v{MONGEY_VERSION}", target)
    config.write_text(f'provider_installation {{\n  filesystem_mirror {{\n    path = "{mirror}"\n  }}\n}}\n')
    return config


def main():
    if os.geteuid() != 0:
        sys.exit("plan_bench.py makes a network namespace and a veth pair: run it as root")
    counts = sorted(int(c) for c in os.environ.get("FERRY_BENCH_TOPICS", "1000,3000,10000").split(","))
    providers = os.environ.get("FERRY_BENCH_PROVIDERS", "ferry,mongey").split(",")
    links = os.environ.get("FERRY_BENCH_LINKS", "loopback,40ms").split(",")
    cli_name = os.environ.get("FERRY_BENCH_CLI", "terraform")
    cli = os.environ.get("FERRY_TERRAFORM" if cli_name == "terraform" else "FERRY_TOFU") or str(
        REPO / ".peers" / "bin" / cli_name
    )
    mongey_40ms_max = int(os.environ.get("FERRY_BENCH_MONGEY_40MS_MAX", "3000"))
    # A warning about the environment's CLI configuration may come first.
    out = sh(cli, "version").stdout.splitlines()
    version = next((line for line in out if re.match(r"(Terraform|OpenTofu) v", line)), cli_name)
    root = Path(tempfile.mkdtemp(prefix="ferry-bench-plan-"))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("terminated"))
    rows = []
    try:
        config = cli_config(root, providers)
        setup_namespace()
        admin = start_broker(root)
        for name, delay in LINKS.items():
            relay = Relay(root, delay)
            print(f"link {name}: Kafka ApiVersions round trip through the relay {kafka_rtt_ms(RELAYED):.1f} ms "
                  f"(median of 7); TCP connect over the veth {tcp_connect_ms(NS_IP, DIRECT_PORT):.2f} ms", flush=True)
            relay.stop()
        env = {k: v for k, v in os.environ.items() if not k.startswith("TF_")}
        env.update(TF_CLI_CONFIG_FILE=str(config), TF_IN_AUTOMATION="1", CHECKPOINT_DISABLE="1")
        for count in counts:
            names = ensure_topics(admin, count)
            for provider in providers:
                p = PROVIDERS[provider]
                work = root / f"{provider}-{count}"
                work.mkdir()
                write_config(work, p, names[:1])
                run(cli, ["init", "-no-color", "-input=false"], work, env)
                relay = Relay(root, 0)
                make_state(cli, work, env, p, names, admin)
                relay.stop()
                for link in links:
                    row = dict(provider=provider, topics=count, link=link)
                    if provider == "mongey" and link == "40ms" and count > mongey_40ms_max:
                        row.update(estimate_mongey(rows, count), estimated=True)
                    else:
                        row.update(plan(cli, work, env, provider, root, LINKS[link]))
                    print(json.dumps(row), flush=True)
                    rows.append(row)
    finally:
        cleanup()
        leftover = sh("ip", "netns", "list").stdout
        print(f"teardown: namespaces left: {leftover.strip() or 'none'}")
        if os.environ.get("FERRY_BENCH_KEEP") == "1":
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    report(rows, version)


def estimate_mongey(rows, count):
    def get(topics, link):
        return next((r for r in rows if r["provider"] == "mongey" and r["topics"] == topics and r["link"] == link
                     and not r.get("estimated")), None)

    base = get(count, "loopback")
    measured = [r["topics"] for r in rows if r["provider"] == "mongey" and r["link"] == "40ms" and not r.get("estimated")]
    if not base or not measured:
        return dict(plan_s=None, requests_relay=None, requests_self=None, connections=None, rss_mb=None,
                    provider_cpu_s=None)
    ref = max(measured)
    per_topic = (get(ref, "40ms")["plan_s"] - get(ref, "loopback")["plan_s"]) / ref
    ratio = base["requests_relay"] / count if base["requests_relay"] else None
    return dict(
        plan_s=round(base["plan_s"] + per_topic * count, 1),
        requests_relay=round(ratio * count) if ratio else None,
        requests_self=None,
        connections=None,
        waiting_s=None,
        rss_mb=None,
        provider_cpu_s=None,
    )


def report(rows, version):
    print(f"\n{version}; distance = plan time at 40 ms minus plan time on loopback (same provider, same count);"
          " waiting = wall time with a request in flight (relay), whose 40 ms minus loopback difference is the"
          " distance without the CLI's own time")
    print("| provider | topics | link | no-op plan (s) | distance (s) | waiting (s) | distance by waiting (s) | "
          "admin requests (relay) | admin requests (ferry's log) | provider peak RSS (MB) | provider CPU (s) |")
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        base = next((b for b in rows if b["provider"] == r["provider"] and b["topics"] == r["topics"]
                     and b["link"] == "loopback"), None)
        dist = wdist = ""
        if r["link"] != "loopback" and base and r["plan_s"] is not None:
            dist = f"{r['plan_s'] - base['plan_s']:.1f}"
        if r["link"] != "loopback" and base and r.get("waiting_s") is not None and base.get("waiting_s") is not None:
            wdist = f"{r['waiting_s'] - base['waiting_s']:.2f}"
        est = " (estimate)" if r.get("estimated") else ""
        fmt = lambda v: "n/a" if v is None else v  # noqa: E731
        print(f"| {r['provider']} | {r['topics']} | {r['link']} | {fmt(r['plan_s'])}{est} | {dist}{est if dist else ''} | "
              f"{fmt(r.get('waiting_s'))} | {wdist} | "
              f"{fmt(r['requests_relay'])} | {fmt(r['requests_self'])} | {fmt(r['rss_mb'])} | "
              f"{fmt(r.get('provider_cpu_s'))} |")


if __name__ == "__main__":
    main()
