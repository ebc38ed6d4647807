"""TLS and connection settings end to end through both CLIs, on peer s: a topic over mutual TLS,
and connection mistakes reported by their cause (wrong password, wrong CA, expired and
mismatched server certificates, a URL as bootstrap server, MSK IAM).

librdkafka reports every refused server certificate as "certificate verify failed"; ferry asks
OpenSSL for its reason with one more handshake (a certificate-verification callback), so an
expired certificate (listener 49096) and one for another host (49097) are named as such.
A refusal (password, certificate) is final, so it is reported without waiting for `timeout`:
the tests set a long timeout and check the CLI finished well before it."""

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


def refused(cli, servers, tls="", sasl=""):
    """A plan that must fail at connection, well before the long timeout."""
    cli.write("main.tf", config(servers, tls, sasl, timeout=f"{LONG_TIMEOUT_S}s"))
    cli.init()
    out = cli.plan(expect=1)
    assert "Cannot connect to Kafka" in out.flat, out.flat
    assert "could not reach Kafka" not in out.flat, out.flat
    assert out.elapsed < LONG_TIMEOUT_S * 0.75, f"took {out.elapsed:.0f}s: {out.flat}"
    return out


def sasl_block(password):
    return (
        '  sasl {\n    mechanism = "SCRAM-SHA-512"\n'
        f'    username = "{peer("FERRY_KAFKA_S_USER")}"\n    password = "{password}"\n  }}\n'
    )


def test_wrong_password_is_an_authentication_failure_reported_promptly(cli):
    out = refused(cli, peer("FERRY_KAFKA_S_SASL_SSL"), tls_block("ca.pem"), sasl_block("not-the-password"))
    assert "authentication failed with 127.0.0.1:49092" in out.flat, out.flat
    assert "refused the SASL credentials" in out.flat and "invalid credentials" in out.flat, out.flat
    assert "not-the-password" not in out.output


def test_right_password_over_sasl_ssl_connects(cli):
    cli.write("main.tf", config(peer("FERRY_KAFKA_S_SASL_SSL"), tls_block("ca.pem"), sasl_block(peer("FERRY_KAFKA_S_PASSWORD")), timeout="30s")
              .replace("resource \"ferry_topic\" \"t\" {\n  name = \"e2e-tls-topic\"\n  partitions = 1\n}\n", 'data "ferry_topics" "all" {}\n'))
    cli.init()
    assert cli.plan().returncode == 0


def test_wrong_ca_is_named(cli):
    out = refused(cli, peer("FERRY_KAFKA_S_MTLS"), tls_block("other-ca.pem", "client.pem", "client.key"))
    assert "TLS handshake failed" in out.flat and "certificate verify failed" in out.flat, out.flat
    assert "not issued by a CA this client trusts" in out.flat, out.flat


def test_expired_server_certificate_is_named(cli):
    out = refused(cli, peer("FERRY_KAFKA_S_EXPIRED"), tls_block("ca.pem"))
    assert "the broker's certificate has expired" in out.flat, out.flat
    assert "OpenSSL: certificate has expired" in out.flat, out.flat


def test_server_certificate_for_another_host_is_named(cli):
    # bootstrap_servers is an IP address, so OpenSSL checks it against the certificate's IP
    # SANs and says "IP address mismatch" (a host name would give "hostname mismatch").
    out = refused(cli, peer("FERRY_KAFKA_S_MISMATCH"), tls_block("ca.pem"))
    assert "does not name the address in bootstrap_servers" in out.flat, out.flat
    assert "OpenSSL: IP address mismatch" in out.flat, out.flat


def test_url_bootstrap_server_is_refused_at_validate(cli):
    cli.write("main.tf", config("http://127.0.0.1:49092"))
    cli.init()
    out = cli.run("validate", "-no-color", expect=1)
    assert "Invalid bootstrap server" in out.flat and "URL scheme" in out.flat, out.flat


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


def iam_refused(cli, extra_env):
    """An MSK IAM plan against peer s's SASL_SSL listener (SCRAM only: no OAUTHBEARER there)."""
    cli.write("main.tf", config(peer("FERRY_KAFKA_S_SASL_SSL"), tls_block("ca.pem"), IAM, timeout=f"{LONG_TIMEOUT_S}s"))
    cli.init()
    out = cli.run("plan", "-no-color", "-input=false", expect=1, extra_env=extra_env)
    assert "could not reach Kafka" not in out.flat, out.flat
    assert out.elapsed < LONG_TIMEOUT_S * 0.75, f"took {out.elapsed:.0f}s: {out.flat}"
    return out


def test_msk_iam_without_aws_credentials_says_so_at_once(cli):
    out = iam_refused(cli, NO_AWS)
    assert "MSK IAM: could not get AWS credentials" in out.flat, out.flat


def test_msk_iam_token_is_offered_and_the_brokers_refusal_reported(cli):
    # Credentials from the environment sign a token (no AWS call is needed to sign); the broker
    # here speaks SCRAM only, so its refusal of OAUTHBEARER is what must come back, promptly.
    secret = "ferry-e2e-secret-never-shown"
    out = iam_refused(
        cli,
        dict(NO_AWS, AWS_ACCESS_KEY_ID="AKIDFERRYE2E", AWS_SECRET_ACCESS_KEY=secret),
    )
    assert "Unsupported SASL mechanism" in out.flat, out.flat
    assert secret not in out.output


def test_msk_iam_is_refused_for_the_mirrors_workers(cli):
    cli.write(
        "main.tf",
        HEADER
        + 'resource "ferry_mirror" "m" {\n  topics = ["t"]\n'
        + f'  source {{\n    bootstrap_servers = ["{peer("FERRY_KAFKA_A")}"]\n  }}\n'
        + '  target {\n    bootstrap_servers = ["b-1.example:9098"]\n    tls {}\n'
        + '    sasl {\n      mechanism = "AWS_MSK_IAM"\n    }\n  }\n}\n',
    )
    cli.init()
    out = cli.run("validate", "-no-color", expect=1)
    assert out.flat.count("Error:") == 1, out.flat
    assert "MSK IAM is not supported by ferry-mirror workers yet" in out.flat, out.flat
