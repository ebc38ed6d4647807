#!/usr/bin/env python3
"""Writes a Prometheus file_sd targets file listing the live ferry-mirror workers of runs.

Local workers (the `ferry_mirror` resource's default launcher) each pick a free loopback port
at start, so their addresses are not known in advance. Every worker publishes its address in the
run's status topic; `ferry-mirror status --json` lists them. This script reads that and writes

    [{"targets": ["127.0.0.1:40123", ...], "labels": {"ferry_run": "<run_id>"}}, ...]

atomically, which Prometheus' file_sd_configs reloads by itself (see prometheus.yml).

    ferry_targets.py --out ferry-targets.json --spec <state_dir>/<run_id>/spec.json [--spec ...]
    ferry_targets.py ... --every 15     # keep refreshing, e.g. beside Prometheus

Only the Python standard library and the ferry-mirror binary (--ferry-mirror, else $PATH).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

# A worker that has not published for this long is left out (it is gone, or its run ended).
LIVE_MS = 60_000


def workers_of(ferry_mirror, spec, now_ms):
    """The scrapeable addresses of the live workers of one run, and the run id."""
    proc = subprocess.run(
        [ferry_mirror, "status", "--spec", spec, "--json"],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"ferry-mirror status --spec {spec} exited {proc.returncode}: {proc.stderr.strip()[-500:]}")
    status = json.loads(proc.stdout)
    addresses = set()
    for worker in status.get("workers", []):
        address = worker.get("http")
        if not address or now_ms - worker.get("updated_at_ms", 0) > LIVE_MS:
            continue
        host, _, port = address.rpartition(":")
        if host in ("0.0.0.0", "[::]"):
            # Bound to every interface: the worker's own host name is not in its status, so
            # such workers belong in a static_configs list (see README.md).
            print(f"ferry_targets.py: skipping {worker.get('worker_id')}: listens on {address}", file=sys.stderr)
            continue
        addresses.add(f"{host}:{port}")
    return status.get("run_id", ""), sorted(addresses)


def write_atomically(path, groups):
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".ferry-targets-", suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(groups, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


def refresh(args):
    now_ms = int(time.time() * 1000)
    groups = []
    for spec in args.spec:
        run_id, targets = workers_of(args.ferry_mirror, spec, now_ms)
        if targets:
            groups.append({"targets": targets, "labels": {"ferry_run": run_id}})
    write_atomically(args.out, groups)
    return sum(len(g["targets"]) for g in groups)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", action="append", required=True, help="a run's spec.json (repeatable)")
    parser.add_argument("--out", required=True, help="the file_sd targets file to write")
    parser.add_argument("--ferry-mirror", default="ferry-mirror", help="the ferry-mirror binary")
    parser.add_argument("--every", type=float, default=0, help="refresh every N seconds (0: once)")
    args = parser.parse_args()
    while True:
        try:
            n = refresh(args)
            if not args.every:
                print(f"ferry_targets.py: {n} worker(s) in {args.out}")
                return 0
        except (RuntimeError, ValueError, subprocess.TimeoutExpired) as e:
            # Keep the last good file: Prometheus keeps scraping what it knew.
            print(f"ferry_targets.py: {e}", file=sys.stderr)
            if not args.every:
                return 1
        time.sleep(args.every)


if __name__ == "__main__":
    sys.exit(main())
