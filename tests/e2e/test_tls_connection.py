"""TLS and connection settings end to end through both CLIs, on peer s: a topic over mutual TLS,
and a table of connection mistakes, each reported by its cause (wrong password, unknown user,
wrong SCRAM mechanism, wrong CA, expired and mismatched server certificates, a missing, foreign or
expired client certificate, TLS to a plaintext port and plaintext to a TLS port, MSK IAM without
credentials or at a SCRAM-only listener, a URL as bootstrap server).

librdkafka reports every refused server certificate as "certificate verify failed"; ferry asks
OpenSSL for its reason with one more handshake (a certificate-verification callback), so an
expired certificate (listener 49096) and one for another host (49097) are named as such.
A refusal (password, certificate) is final, so it is reported without waiting for `timeout`:
the tests set a long timeout and check the CLI finished well before it."""

import os

import pytest
from confluent_kafka.admin import AdminClient

from conftest import peer

HEADER = """
terraform {
  required_providers {
    ferry = { source = "ferry/ferry" }
  }
}
"""


def tls_file(name):
    return os.path.join(peer("FERRY_KAFKA_S_TLS_DIR"), name)


# Refusals are reported as soon as the broker refuses; a run that waited out this timeout
# would fail the elapsed-time checks below by a wide margin.
LONG_TIMEOUT_S = 300


def config(servers, tls="", sasl="", timeout="5s"):
    return (
        HEADER
        + f'provider "ferry" {{\n  bootstrap_servers = ["{servers}"]\n  timeout = "{timeout}"\n{tls}{sasl}}}\n'
        + 'resource "ferry_topic" "t" {\n  name = "e2e-tls-topic"\n  partitions = 1\n}\n'
    )


def tls_block(ca, cert=None, key=None):
    lines = [f'    ca_cert = file("{tls_file(ca)}")']
    if cert:
        lines.append(f'    client_cert = file("{tls_file(cert)}")')
        lines.append(f'    client_key = file("{tls_file(key)}")')
    return "  tls {\n" + "\n".join(lines) + "\n  }\n"


def test_topic_over_mutual_tls(cli):
    name = "e2e-tls-topic"
    admin = AdminClient({"bootstrap.servers": peer("FERRY_KAFKA_S_PLAIN")})
    cli.write("main.tf", config(peer("FERRY_KAFKA_S_MTLS"), tls_block("ca.pem", "client.pem", "client.key"), timeout="15s")
              .replace("e2e-tls-topic", f"{name}-{cli.name}"))
    cli.init()
    cli.apply()
    assert f"{name}-{cli.name}" in admin.list_topics(timeout=10).topics
    assert cli.plan().returncode == 0
    cli.destroy()


def sasl_block(password, mechanism="SCRAM-SHA-512", user=None):
    return (
        f'  sasl {{\n    mechanism = "{mechanism}"\n'
        f'    username = "{user or peer("FERRY_KAFKA_S_USER")}"\n    password = "{password}"\n  }}\n'
    )


def test_right_password_over_sasl_ssl_connects(cli):
    cli.write("main.tf", config(peer("FERRY_KAFKA_S_SASL_SSL"), tls_block("ca.pem"), sasl_block(peer("FERRY_KAFKA_S_PASSWORD")), timeout="30s")
              .replace("resource \"ferry_topic\" \"t\" {\n  name = \"e2e-tls-topic\"\n  partitions = 1\n}\n", 'data "ferry_topics" "all" {}\n'))
    cli.init()
    assert cli.plan().returncode == 0


# MSK IAM without AWS credentials anywhere the standard chain looks.
NO_AWS = {
    "AWS_ACCESS_KEY_ID": "",
    "AWS_SECRET_ACCESS_KEY": "",
    "AWS_SESSION_TOKEN": "",
    "AWS_PROFILE": "",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": "/nonexistent/ferry-e2e/config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/ferry-e2e/credentials",
    "AWS_REGION": "eu-west-1",
}
IAM = '  sasl {\n    mechanism = "AWS_MSK_IAM"\n  }\n'
AWS_SECRET = "ferry-e2e-secret-never-shown"
PLAINTEXT_AT_TLS = (
    "a TLS listener closes a plaintext client's connections during ApiVersion and librdkafka "
    "2.12 reports it only as '1/1 brokers are down' (no error event, no error-level log line; "
    "raising the admin client's log_level to 6 did not surface its FAIL lines either), so the "
    "provider waits out the timeout and says 'could not reach Kafka'"
)
WRONG_PASSWORD = "not-the-password"


class Row:
    """One bad connection setting: where it connects, how, and what the error must say.

    `stage` is "plan" (a connection refused, reported as "Cannot connect to Kafka" unless
    `connect` is False) or "validate" (refused before any connection). `secret` must not be in
    the CLI's output."""

    def __init__(self, id, servers, tls="", sasl="", expect=(), stage="plan", env=None,
                 connect=True, secret=None, gap=None):
        self.id, self.servers, self.tls, self.sasl = id, servers, tls, sasl
        self.expect, self.stage, self.env = list(expect), stage, env or {}
        self.connect, self.secret = connect, secret
        # A known gap: the row fails today (strict xfail) and runs with a short timeout, as
        # the wait it is about is the whole timeout.
        self.gap = gap


def rows():
    ca = lambda: tls_block("ca.pem")
    mtls = lambda: tls_block("ca.pem", "client.pem", "client.key")
    return [
        Row("wrong-password", "FERRY_KAFKA_S_SASL_SSL", ca(), sasl_block(WRONG_PASSWORD),
            ["authentication failed with 127.0.0.1:49092", "refused the SASL credentials",
             "invalid credentials"], secret=WRONG_PASSWORD),
        Row("unknown-user", "FERRY_KAFKA_S_SASL_SSL", ca(),
            sasl_block("whatever-Secret-9", user="nobody-ferry-e2e"),
            ["authentication failed with 127.0.0.1:49092", "refused the SASL credentials",
             "the user must exist for that mechanism", "invalid credentials"],
            secret="whatever-Secret-9"),
        Row("wrong-scram-mechanism", "FERRY_KAFKA_S_SASL_SSL", ca(),
            sasl_block("irrelevant-Secret-8", mechanism="SCRAM-SHA-256"),
            ["authentication failed with 127.0.0.1:49092", "Unsupported SASL mechanism",
             "SCRAM-SHA-256"], secret="irrelevant-Secret-8"),
        Row("sasl-without-tls", "FERRY_KAFKA_S_SASL_SSL", "", sasl_block("plain-Secret-7"),
            ["is it a TLS listener"], secret="plain-Secret-7", gap=PLAINTEXT_AT_TLS),
        Row("wrong-ca", "FERRY_KAFKA_S_MTLS", tls_block("other-ca.pem", "client.pem", "client.key"),
            expect=["TLS handshake failed", "certificate verify failed",
                    "not issued by a CA this client trusts"]),
        Row("expired-server-certificate", "FERRY_KAFKA_S_EXPIRED", ca(),
            expect=["the broker's certificate has expired", "OpenSSL: certificate has expired"]),
        # bootstrap_servers is an IP address, so OpenSSL checks it against the certificate's IP
        # SANs and says "IP address mismatch" (a host name would give "hostname mismatch").
        Row("server-certificate-for-another-host", "FERRY_KAFKA_S_MISMATCH", ca(),
            expect=["does not name the address in bootstrap_servers",
                    "OpenSSL: IP address mismatch"]),
        Row("mtls-without-client-certificate", "FERRY_KAFKA_S_MTLS", ca(),
            expect=["TLS handshake failed", "requires a client certificate (mutual TLS)",
                    "tls.client_cert", "SSL alert number"]),
        Row("client-certificate-from-another-ca", "FERRY_KAFKA_S_MTLS",
            tls_block("ca.pem", "other-client.pem", "other-client.key"),
            expect=["TLS handshake failed", "refused this client's certificate",
                    "SSL alert number"]),
        Row("expired-client-certificate", "FERRY_KAFKA_S_MTLS",
            tls_block("ca.pem", "client-expired.pem", "client-expired.key"),
            expect=["TLS handshake failed", "refused this client's certificate"]),
        Row("plaintext-client-to-tls-port", "FERRY_KAFKA_S_MTLS",
            expect=["is it a TLS listener"], gap=PLAINTEXT_AT_TLS),
        Row("tls-client-to-plaintext-port", "FERRY_KAFKA_S_PLAIN", ca(),
            expect=["TLS handshake failed", "the listener does not speak TLS",
                    "remove the tls block"]),
        Row("msk-iam-without-aws-credentials", "FERRY_KAFKA_S_SASL_SSL", ca(), IAM,
            ["MSK IAM: could not get AWS credentials"], env=NO_AWS, connect=False),
        # Credentials from the environment sign a token (no AWS call is needed to sign); the
        # broker here speaks SCRAM only, so its refusal of OAUTHBEARER is what must come back.
        Row("msk-iam-token-to-a-scram-listener", "FERRY_KAFKA_S_SASL_SSL", ca(), IAM,
            ["Unsupported SASL mechanism"],
            env=dict(NO_AWS, AWS_ACCESS_KEY_ID="AKIDFERRYE2E", AWS_SECRET_ACCESS_KEY=AWS_SECRET),
            connect=False, secret=AWS_SECRET),
        Row("url-as-bootstrap-server", "http://127.0.0.1:49092",
            expect=["Invalid bootstrap server", "URL scheme"], stage="validate"),
    ]



@pytest.mark.parametrize("row_id", [
    "wrong-password", "unknown-user", "wrong-scram-mechanism", "sasl-without-tls", "wrong-ca",
    "expired-server-certificate", "server-certificate-for-another-host",
    "mtls-without-client-certificate", "client-certificate-from-another-ca",
    "expired-client-certificate", "plaintext-client-to-tls-port", "tls-client-to-plaintext-port",
    "msk-iam-without-aws-credentials", "msk-iam-token-to-a-scram-listener",
    "url-as-bootstrap-server",
])
def test_bad_credentials_are_named_promptly(cli, row_id, request):
    """Each bad setting fails with an error naming its cause, well before the connection's
    (long) timeout: a refusal is final, so nothing waits it out."""
    row = {r.id: r for r in rows()}[row_id]
    timeout = LONG_TIMEOUT_S
    if row.gap:
        request.applymarker(pytest.mark.xfail(strict=True, reason=row.gap))
        timeout = 20
    servers = peer(row.servers) if row.servers.startswith("FERRY_") else row.servers
    cli.write("main.tf", config(servers, row.tls, row.sasl, timeout=f"{timeout}s"))
    cli.init()
    if row.stage == "validate":
        out = cli.run("validate", "-no-color", expect=1, extra_env=row.env)
    else:
        out = cli.run("plan", "-no-color", "-input=false", expect=1, extra_env=row.env)
        if row.connect:
            assert "Cannot connect to Kafka" in out.flat, out.flat
        assert "could not reach Kafka" not in out.flat, out.flat
        assert out.elapsed < timeout * 0.75, f"took {out.elapsed:.0f}s: {out.flat}"
    for phrase in row.expect:
        assert phrase in out.flat, f"{phrase!r} missing: {out.flat}"
    if row.secret:
        assert row.secret not in out.output
