"""TLS and connection settings end to end through both CLIs, on peer s: a topic over mutual TLS,
and connection mistakes reported by their cause (wrong CA, a URL as bootstrap server, MSK IAM).
Expired and mismatched server certificates (s's listeners 49096 and 49097) are not told apart
from a wrong CA yet: librdkafka reports all three as "certificate verify failed"."""

import os

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


def test_wrong_ca_is_named(cli):
    cli.write("main.tf", config(peer("FERRY_KAFKA_S_MTLS"), tls_block("other-ca.pem", "client.pem", "client.key")))
    cli.init()
    out = cli.plan(expect=1)
    assert "certificate verify failed" in out.flat, out.flat


def test_url_bootstrap_server_is_refused_at_validate(cli):
    cli.write("main.tf", config("http://127.0.0.1:49092"))
    cli.init()
    out = cli.run("validate", "-no-color", expect=1)
    assert "Invalid bootstrap server" in out.flat and "URL scheme" in out.flat, out.flat


def test_msk_iam_is_one_clear_error(cli):
    sasl = '  sasl {\n    mechanism = "AWS_MSK_IAM"\n  }\n'
    cli.write("main.tf", config("127.0.0.1:49092", sasl=sasl))
    cli.init()
    out = cli.run("validate", "-no-color", expect=1)
    assert out.flat.count("Error:") == 1, out.flat
    assert "MSK IAM authentication is not supported yet" in out.flat
