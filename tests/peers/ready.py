"""Wait until test peers really answer (used by tests/peers/start.sh).

Run with the peers venv python. Reads one check per line on stdin:

    NAME PIDFILE kafka BOOTSTRAP BROKERS [MECHANISM USER PASSWORD]
    NAME PIDFILE http URL

A kafka check passes when a metadata request to BOOTSTRAP (over SASL_PLAINTEXT
when MECHANISM is given) answers with at least BROKERS brokers. An http check
passes on any HTTP response. A check fails at once when the process group
leader in PIDFILE has died. Exit 0 when all pass before --timeout seconds, else
print one line per peer that is not ready and exit 1 (its first word is the
peer name; start.sh prints that peer's log tail).
"""

import argparse
import os
import sys
import time
import urllib.error
import urllib.request


def alive(pidfile):
    try:
        with open(pidfile) as f:
            pid = int(f.read().strip())
        os.kill(pid, 0)
        # A zombie is not alive.
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, ValueError, IndexError):
        return False


def check_kafka(bootstrap, brokers, sasl):
    from confluent_kafka.admin import AdminClient

    conf = {
        "bootstrap.servers": bootstrap,
        "log_level": 0,
        "error_cb": lambda err: None,
        "socket.connection.setup.timeout.ms": 2000,
    }
    if sasl:
        mech, user, password = sasl
        conf.update(
            {
                "security.protocol": "SASL_PLAINTEXT",
                "sasl.mechanism": mech,
                "sasl.username": user,
                "sasl.password": password,
            }
        )
    admin = AdminClient(conf)
    md = admin.list_topics(timeout=3)
    got = len(md.brokers)
    if got < brokers:
        return f"{got}/{brokers} brokers in metadata"
    return None


def check_http(url):
    try:
        with urllib.request.urlopen(url, timeout=3) as resp:
            resp.read()
    except urllib.error.HTTPError:
        pass  # any HTTP answer means the server is up
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--timeout", type=float, default=60)
    args = ap.parse_args()

    pending = {}
    for line in sys.stdin:
        parts = line.split()
        if not parts:
            continue
        name, pidfile, kind, *rest = parts
        pending[name] = (pidfile, kind, rest)

    deadline = time.monotonic() + args.timeout
    last = {}
    dead = {}
    while pending and time.monotonic() < deadline:
        for name, (pidfile, kind, rest) in list(pending.items()):
            if not alive(pidfile):
                dead[name] = "process exited"
                del pending[name]
                continue
            try:
                if kind == "kafka":
                    sasl = rest[2:5] if len(rest) >= 5 else None
                    err = check_kafka(rest[0], int(rest[1]), sasl)
                elif kind == "http":
                    err = check_http(rest[0])
                else:
                    err = f"unknown check kind {kind}"
            except Exception as e:  # noqa: BLE001 - keep polling on any error
                err = f"{type(e).__name__}: {e}"
            if err is None:
                del pending[name]
            else:
                last[name] = err
        if pending:
            time.sleep(0.5)

    for name, why in dead.items():
        print(f"{name} {why}")
    for name in pending:
        print(f"{name} not ready after {args.timeout:g}s: {last.get(name, 'no answer')}")
    sys.exit(1 if dead or pending else 0)


if __name__ == "__main__":
    main()
