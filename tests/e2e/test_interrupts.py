"""The two ferry_topic defects of issue 7, through both CLIs: a Ctrl-C in the middle of an apply
must leave a state the next apply converges from, and plan-time broker checks of topics that
would be created must not block a destroy or a refresh-only run."""

import os
import re
import signal
import subprocess
import time

import pytest

from conftest import peer
from test_mirror import unique
from test_topics import PROVIDER_HEADER, provider_block

TOPICS = 50


def broker_names(kafka, prefix):
    return {t for t in kafka.admin.list_topics(timeout=15).topics if t.startswith(prefix)}


def state_names(cli):
    """Topic names in state, from `state list` addresses like ferry_topic.t["<name>"]."""
    out = cli.run("state", "list", timeout=120).stdout
    return set(re.findall(r'^ferry_topic\.t\["([^"]+)"\]$', out, re.M))


def tail(text, n=4000):
    return text[-n:]


def error_summary(output):
    """Each distinct `Error:` title with its count: the shape of a failed run at a glance."""
    titles = re.findall(r"^Error: (.+)$", output, re.M)
    return ", ".join(f"{t} x{titles.count(t)}" for t in sorted(set(titles))) or "no errors"


def test_sigint_mid_apply_then_reapply_converges(cli, kafka_a, tmp_path):
    prefix = unique(f"sigint-{cli.name}") + "-"
    want = {f"{prefix}{i:02d}" for i in range(TOPICS)}
    cli.write(
        "main.tf",
        PROVIDER_HEADER
        + provider_block(peer("FERRY_KAFKA_A"))
        + "resource \"ferry_topic\" \"t\" {\n"
        f'  for_each   = toset([for i in range({TOPICS}) : format("{prefix}%02d", i)])\n'
        "  name       = each.value\n"
        "  partitions = 8\n"
        "}\n",
    )
    cli.init()
    log_path = tmp_path / "interrupted-apply.log"
    try:
        with open(log_path, "w") as log:
            # Its own process group, like a terminal's foreground job: Ctrl-C reaches the CLI
            # and every provider process it started, and never this test.
            proc = subprocess.Popen(
                [cli.binary, "apply", "-auto-approve", "-no-color", "-input=false", "-parallelism=4"],
                cwd=cli.workdir,
                env=cli.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
            deadline = time.monotonic() + 300
            seen = set()
            while time.monotonic() < deadline and proc.poll() is None:
                seen = broker_names(kafka_a, prefix)
                if len(seen) >= 3:
                    break
                time.sleep(0.2)
            if proc.poll() is not None:
                pytest.fail(
                    f"{cli.name} apply exited {proc.returncode} before it could be interrupted "
                    f"({len(seen)} topics seen); nothing was tested\n{tail(log_path.read_text())}"
                )
            if len(seen) < 3:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=60)
                pytest.fail(f"no topic appeared within 300 s of starting the apply\n{tail(log_path.read_text())}")
            os.killpg(proc.pid, signal.SIGINT)
            try:
                interrupted_rc = proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=60)
                pytest.fail(f"{cli.name} did not exit within 120 s of SIGINT\n{tail(log_path.read_text())}")
        interrupted = log_path.read_text()
        at_interrupt = len(seen)
        assert at_interrupt < TOPICS, f"all {TOPICS} topics existed before the SIGINT; the apply was not interrupted mid-way"
        summary = (
            f"{cli.name}: SIGINT with {at_interrupt} topics on the broker; the CLI exited {interrupted_rc} "
            f"({error_summary(interrupted)}); {len(broker_names(kafka_a, prefix))} topics on the broker afterwards"
        )
        print(summary)

        again = cli.apply(expect=None, timeout=600)
        # Topics created before the interrupt but missing from state make the plan-time check fail.
        assert "already exists" not in again.flat, (
            f"re-apply after SIGINT hit 'already exists': topics were created but not recorded in state\n"
            f"{summary}\n--- re-apply ({error_summary(again.output)})\n{tail(again.output, 2000)}"
        )
        assert again.returncode == 0, f"re-apply after SIGINT exited {again.returncode}\n{tail(again.output)}"
        on_broker = broker_names(kafka_a, prefix)
        in_state = state_names(cli)
        assert on_broker == want, f"broker vs config: missing {sorted(want - on_broker)}, extra {sorted(on_broker - want)}"
        # Same set on both sides: no topic on the broker that state does not know (an orphan).
        assert in_state == on_broker, f"state vs broker: missing {sorted(on_broker - in_state)}, extra {sorted(in_state - on_broker)}"
        assert cli.plan().returncode == 0, "after converging, a plan shows no changes"

        cli.destroy(timeout=600)
        assert broker_names(kafka_a, prefix) == set(), "destroy leaves no topic of the test behind"
    finally:
        for name in broker_names(kafka_a, prefix):
            kafka_a.delete_if_exists(name)


def test_destroy_not_blocked_by_plan_checks_of_unborn_topics(cli, kafka_a):
    x, y = unique(f"unborn-{cli.name}-x"), unique(f"unborn-{cli.name}-y")

    def topic(label, name):
        return f'resource "ferry_topic" "{label}" {{\n  name = "{name}"\n  partitions = 1\n}}\n'

    head = PROVIDER_HEADER + provider_block(peer("FERRY_KAFKA_A"))
    try:
        cli.write("main.tf", head + topic("y", y))
        cli.init()
        cli.apply()
        assert kafka_a.topic(y) == (1, 1)

        # X exists on the broker but not in state; the configuration now declares it.
        kafka_a.create(x, 1)
        cli.write("main.tf", head + topic("y", y) + topic("x", x))
        # A normal plan must still refuse to create X: that is the check the rest must not trip on.
        plan = cli.plan()
        assert plan.returncode == 1 and "already exists" in plan.flat, plan.output

        refresh_plan = cli.plan("-refresh-only")
        assert "already exists" not in refresh_plan.flat, f"refresh-only plan ran the create check\n{refresh_plan.output}"
        assert refresh_plan.returncode == 0, f"refresh-only plan exited {refresh_plan.returncode}\n{refresh_plan.output}"
        refresh = cli.apply("-refresh-only", expect=None)
        assert "already exists" not in refresh.flat, f"refresh-only apply ran the create check\n{refresh.output}"
        assert refresh.returncode == 0, f"refresh-only apply exited {refresh.returncode}\n{refresh.output}"

        destroy = cli.destroy(expect=None)
        assert "already exists" not in destroy.flat, f"destroy was blocked by the create check of X\n{destroy.output}"
        assert destroy.returncode == 0, f"destroy exited {destroy.returncode}\n{destroy.output}"
        assert kafka_a.topic(y) is None, "destroy deletes Y"
        assert kafka_a.topic(x) == (1, 1), "destroy leaves X, which it never managed"
    finally:
        kafka_a.delete_if_exists(x)
        kafka_a.delete_if_exists(y)
