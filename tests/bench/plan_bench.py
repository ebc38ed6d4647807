"""No-op `plan` (with refresh) of many ferry_topic resources: wall time, admin requests the
provider sent, and the provider's peak RSS. Prints figures; asserts nothing about time.

    source .peers/env && .peers/venv/bin/python tests/bench/plan_bench.py

FERRY_BENCH_TOPICS (default "1000", comma-separated counts), FERRY_BENCH_CLIS (default
"terraform,tofu"), FERRY_BENCH_KAFKA (default $FERRY_KAFKA_B). Not done yet: Mongey's provider
side by side and the 40 ms netem link (docs/benchmarks.md says what is missing).
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from confluent_kafka.admin import AdminClient

REPO = Path(__file__).resolve().parents[2]
VERSION = "0.1.0"


def cli_config(root):
    mirror = root / "mirror"
    binary = REPO / "target" / "debug" / "terraform-provider-ferry"
    for host in ["registry.terraform.io", "registry.opentofu.org"]:
        target = mirror / host / "ferry" / "ferry" / VERSION / "linux_amd64"
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy2(binary, target / f"terraform-provider-ferry_v{VERSION}")
    config = root / "cli.tfrc"
    config.write_text(f'provider_installation {{\n  filesystem_mirror {{\n    path = "{mirror}"\n  }}\n}}\n')
    return config


def peak_rss_watcher(stop, out):
    """Largest VmRSS (kB) of any terraform-provider-ferry process while `stop` is unset."""
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
        time.sleep(0.1)


def run(cli, args, cwd, env, timeout=3600):
    started = time.monotonic()
    proc = subprocess.run([cli, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    elapsed = time.monotonic() - started
    if proc.returncode not in (0, 2) or (args[0] == "apply" and proc.returncode != 0):
        sys.exit(f"{cli} {' '.join(args)} exited {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc, elapsed


def bench(cli_name, cli, count, kafka, root, config):
    work = root / f"{cli_name}-{count}"
    work.mkdir()
    prefix = f"bench-plan-{cli_name}-{count}-{int(time.time())}"
    names = [f"{prefix}.t{i:05d}" for i in range(count)]
    (work / "main.tf").write_text(
        'terraform {\n  required_providers {\n    ferry = { source = "ferry/ferry" }\n  }\n}\n'
        f'provider "ferry" {{\n  bootstrap_servers = ["{kafka}"]\n}}\n'
        'variable "names" { type = set(string) }\n'
        'resource "ferry_topic" "t" {\n  for_each = var.names\n  name = each.key\n  partitions = 1\n'
        '  config = { "retention.ms" = "3600000" }\n}\n'
    )
    (work / "terraform.tfvars.json").write_text(json.dumps({"names": names}))
    log = work / "provider.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_")}
    env.update(TF_CLI_CONFIG_FILE=str(config), TF_IN_AUTOMATION="1", CHECKPOINT_DISABLE="1")
    run(cli, ["init", "-no-color", "-input=false"], work, env)
    _, create_s = run(cli, ["apply", "-auto-approve", "-no-color", "-input=false", "-parallelism=50"], work, env)

    plan_env = dict(env, TF_LOG_PROVIDER="DEBUG", TF_LOG_PATH=str(log))
    stop, peak = threading.Event(), [0]
    watcher = threading.Thread(target=peak_rss_watcher, args=(stop, peak), daemon=True)
    watcher.start()
    proc, plan_s = run(cli, ["plan", "-detailed-exitcode", "-no-color", "-input=false"], work, plan_env)
    stop.set()
    watcher.join()
    if proc.returncode != 0:
        sys.exit(f"{cli_name}: the plan of {count} unchanged topics is not empty:\n{proc.stdout[-3000:]}")
    totals = [int(m) for m in re.findall(r'admin_requests_total["=:\s]+(\d+)', log.read_text())]
    requests = max(totals) if totals else None
    snapshots = len(re.findall(r"topic snapshot taken", log.read_text()))

    admin = AdminClient({"bootstrap.servers": kafka})
    for i in range(0, len(names), 500):
        for f in admin.delete_topics(names[i : i + 500], operation_timeout=60).values():
            f.result(timeout=120)
    return dict(
        cli=cli_name,
        topics=count,
        create_s=round(create_s, 1),
        plan_s=round(plan_s, 1),
        admin_requests=requests,
        snapshots=snapshots,
        provider_peak_rss_mb=round(peak[0] / 1024, 1),
    )


def main():
    kafka = os.environ.get("FERRY_BENCH_KAFKA") or os.environ["FERRY_KAFKA_B"]
    counts = [int(c) for c in os.environ.get("FERRY_BENCH_TOPICS", "1000").split(",")]
    clis = os.environ.get("FERRY_BENCH_CLIS", "terraform,tofu").split(",")
    binaries = {"terraform": os.environ["FERRY_TERRAFORM"], "tofu": os.environ["FERRY_TOFU"]}
    root = Path(tempfile.mkdtemp(prefix="ferry-bench-plan-"))
    config = cli_config(root)
    rows = []
    for count in counts:
        for name in clis:
            row = bench(name, binaries[name], count, kafka, root, config)
            print(json.dumps(row), flush=True)
            rows.append(row)
    print("\n| CLI | topics | no-op plan (s) | admin requests | snapshots | provider peak RSS (MB) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(
            f"| {r['cli']} | {r['topics']} | {r['plan_s']} | {r['admin_requests']} | {r['snapshots']} | "
            f"{r['provider_peak_rss_mb']} |"
        )
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
